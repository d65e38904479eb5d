"use client";

import { useEffect } from "react";
import { useCallStore, type Toast } from "@/store/call-store";
import { AlertIcon, CloseIcon, InfoIcon } from "@/components/icons";

const DISMISS_AFTER_MS = 5000;

function ToastItem({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  useEffect(() => {
    const timer = window.setTimeout(() => onDismiss(toast.id), DISMISS_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [toast.id, onDismiss]);

  const Icon = toast.kind === "info" ? InfoIcon : AlertIcon;
  return (
    <li className={`toast toast-${toast.kind}`}>
      <Icon size={18} className="toast-icon" />
      <span className="toast-text">{toast.text}</span>
      {toast.action && (
        <button
          type="button"
          className="btn btn-primary btn-xs toast-action"
          // Distinct from the control bar's buttons of the same word ("Mute").
          aria-label={`${toast.action.label} — ${toast.text}`}
          onClick={() => {
            toast.action?.run();
            onDismiss(toast.id);
          }}
        >
          {toast.action.label}
        </button>
      )}
      <button type="button" className="icon-btn icon-btn-sm" aria-label="Dismiss notification" onClick={() => onDismiss(toast.id)}>
        <CloseIcon size={16} />
      </button>
    </li>
  );
}

export function Toasts() {
  const toasts = useCallStore((s) => s.toasts);
  const dismiss = useCallStore((s) => s.actions.dismissToast);
  return (
    <section className="toasts" aria-live="polite" aria-label="Notifications">
      <ul className="toast-list">
        {toasts.map((toast) => (
          <ToastItem key={toast.id} toast={toast} onDismiss={dismiss} />
        ))}
      </ul>
    </section>
  );
}
