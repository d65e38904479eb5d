"use client";

import { useEffect, useRef, useState, type ReactNode } from "react";
import { CheckIcon, LinkIcon, LogoMark } from "@/components/icons";

export function CopyLinkButton({ roomId, compact = false }: { roomId: string; compact?: boolean }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);

  async function copy() {
    const link = `${window.location.origin}/${encodeURIComponent(roomId)}`;
    try {
      await navigator.clipboard.writeText(link);
      setState("copied");
    } catch {
      setState("failed");
    }
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setState("idle"), 2500);
  }

  const text = state === "copied" ? "Link copied" : state === "failed" ? "Couldn't copy" : "Copy invite link";
  return (
    <button type="button" className={`btn btn-ghost ${compact ? "btn-sm" : ""}`} onClick={() => void copy()}>
      {state === "copied" ? <CheckIcon size={16} /> : <LinkIcon size={16} />}
      <span className="copy-text">{text}</span>
    </button>
  );
}

export function RoomHeader({
  roomId,
  children,
  homeLink = true,
}: {
  roomId: string;
  children?: ReactNode;
  /** Off during a call: a stray click must not drop the call. */
  homeLink?: boolean;
}) {
  const brand = (
    <>
      <LogoMark size={26} />
      <span className="brand-name">Videoconf</span>
    </>
  );
  return (
    <header className="room-header">
      {homeLink ? (
        <a href="/" className="brand brand-dark">
          {brand}
        </a>
      ) : (
        <span className="brand brand-dark">{brand}</span>
      )}
      <div className="room-header-info">
        <span className="room-header-label">Room</span>
        <code className="room-code">{roomId}</code>
      </div>
      <div className="room-header-actions">
        {children}
        <CopyLinkButton roomId={roomId} compact />
      </div>
    </header>
  );
}
