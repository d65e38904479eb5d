"use client";

import { CameraIcon, CameraOffIcon, MicIcon, MicOffIcon } from "@/components/icons";

interface ToggleProps {
  enabled: boolean;
  disabled?: boolean;
  onToggle: () => void;
  /** Show the text under the icon (control bar) or only a tooltip (preview overlay). */
  showText?: boolean;
}

// aria-pressed marks the "active" state of a control: muted, camera off, hand raised, sharing,
// panel open. The accessible names are the contract's exact words.

export function MicToggle({ enabled, disabled, onToggle, showText = false }: ToggleProps) {
  const label = enabled ? "Mute" : "Unmute";
  return (
    <button
      type="button"
      className={`ctrl ${enabled ? "" : "ctrl-off"}`}
      aria-label={label}
      aria-pressed={!enabled}
      data-tooltip={disabled ? "No microphone" : label}
      disabled={disabled}
      onClick={onToggle}
    >
      {enabled ? <MicIcon /> : <MicOffIcon />}
      {showText && (
        <span className="ctrl-text" aria-hidden="true">
          {label}
        </span>
      )}
    </button>
  );
}

export function CameraToggle({ enabled, disabled, onToggle, showText = false }: ToggleProps) {
  const label = enabled ? "Turn camera off" : "Turn camera on";
  return (
    <button
      type="button"
      className={`ctrl ${enabled ? "" : "ctrl-off"}`}
      aria-label={label}
      aria-pressed={!enabled}
      data-tooltip={disabled ? "No camera" : label}
      disabled={disabled}
      onClick={onToggle}
    >
      {enabled ? <CameraIcon /> : <CameraOffIcon />}
      {showText && (
        <span className="ctrl-text" aria-hidden="true">
          {enabled ? "Stop video" : "Start video"}
        </span>
      )}
    </button>
  );
}
