"use client";

import { useEffect, useRef, type ReactNode } from "react";
import { CloseIcon } from "@/components/icons";

interface SidePanelProps {
  id: string;
  title: ReactNode;
  onClose: () => void;
  children: ReactNode;
  /** Focus the heading when the panel opens (unless the content focuses something itself). */
  focusHeading?: boolean;
}

export function SidePanel({ id, title, onClose, children, focusHeading = true }: SidePanelProps) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (focusHeading) headingRef.current?.focus();
  }, [focusHeading]);
  return (
    <aside
      id={id}
      className="side-panel"
      aria-labelledby={`${id}-title`}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.stopPropagation();
          onClose();
        }
      }}
    >
      <div className="panel-header">
        <h2 id={`${id}-title`} className="panel-title" tabIndex={-1} ref={headingRef}>
          {title}
        </h2>
        <button type="button" className="icon-btn" aria-label="Close panel" title="Close" onClick={onClose}>
          <CloseIcon size={18} />
        </button>
      </div>
      {children}
    </aside>
  );
}
