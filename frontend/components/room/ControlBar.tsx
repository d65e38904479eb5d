"use client";

import { useEffect, useState, type ReactElement } from "react";
import { useShallow } from "zustand/react/shallow";
import { atLeast } from "@/lib/protocol";
import { useCallStore } from "@/store/call-store";
import { ChatIcon, HandIcon, PhoneOffIcon, ScreenShareIcon, ScreenShareOffIcon, SettingsIcon, UsersIcon } from "@/components/icons";
import { has } from "./derive";
import { CameraToggle, MicToggle } from "./MediaToggles";

export type PanelName = "chat" | "participants" | "settings";

interface ControlBarProps {
  roomId: string;
  panels: Record<PanelName, boolean>;
  onTogglePanel: (panel: PanelName) => void;
  unreadChat: number;
  waitingCount: number;
}

function useCanCaptureScreen(): boolean {
  const [can, setCan] = useState(false);
  useEffect(() => {
    setCan(typeof navigator !== "undefined" && typeof navigator.mediaDevices?.getDisplayMedia === "function");
  }, []);
  return can;
}

function useClock(): string {
  const [now, setNow] = useState<string>("");
  useEffect(() => {
    const format = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
    const tick = () => setNow(format.format(new Date()));
    tick();
    const timer = window.setInterval(tick, 10_000);
    return () => window.clearInterval(timer);
  }, []);
  return now;
}

export function ControlBar({ roomId, panels, onTogglePanel, unreadChat, waitingCount }: ControlBarProps) {
  const { self, room, audioEnabled, videoEnabled, sharing, screenshareRequested } = useCallStore(
    useShallow((s) => ({
      self: s.self,
      room: s.room,
      audioEnabled: s.audioEnabled,
      videoEnabled: s.videoEnabled,
      sharing: s.sharing,
      screenshareRequested: s.screenshareRequested,
    })),
  );
  const actions = useCallStore((s) => s.actions);
  const canCapture = useCanCaptureScreen();
  const clock = useClock();

  const handRaised = self !== null && room !== null && has(room.handsRaised, self.clientId);
  const mayShare = self !== null && atLeast(self.role, "screenshare");

  let share: ReactElement | null = null;
  if (sharing) {
    share = (
      <button type="button" className="ctrl ctrl-active" aria-label="Stop sharing" aria-pressed="true" data-tooltip="Stop sharing" onClick={actions.stopScreenshare}>
        <ScreenShareOffIcon />
      </button>
    );
  } else if (mayShare) {
    share = canCapture ? (
      <button type="button" className="ctrl" aria-label="Share screen" aria-pressed="false" data-tooltip="Share screen" onClick={() => void actions.startScreenshare()}>
        <ScreenShareIcon />
      </button>
    ) : null;
  } else {
    share = (
      <button
        type="button"
        className={`ctrl ${screenshareRequested ? "ctrl-pending" : ""}`}
        aria-label="Request to share screen"
        aria-describedby={screenshareRequested ? "share-request-state" : undefined}
        data-tooltip={screenshareRequested ? "Request sent — waiting for a host" : "Request to share screen"}
        disabled={screenshareRequested || !canCapture}
        onClick={actions.requestScreenshare}
      >
        <ScreenShareIcon />
        {screenshareRequested && (
          <span id="share-request-state" className="sr-only">
            Request sent, waiting for a host
          </span>
        )}
      </button>
    );
  }

  return (
    <footer className="control-bar">
      <div className="cb-side cb-left">
        <span className="cb-clock">{clock}</span>
        <span className="cb-sep" aria-hidden="true">
          |
        </span>
        <code className="cb-room">{roomId}</code>
      </div>

      <div className="cb-center" role="group" aria-label="Call controls">
        <MicToggle enabled={audioEnabled} onToggle={actions.toggleAudio} />
        <CameraToggle enabled={videoEnabled} onToggle={actions.toggleVideo} />
        {share}
        <button
          type="button"
          className={`ctrl ${handRaised ? "ctrl-active ctrl-hand" : ""}`}
          aria-label={handRaised ? "Lower hand" : "Raise hand"}
          aria-pressed={handRaised}
          data-tooltip={handRaised ? "Lower hand" : "Raise hand"}
          onClick={() => (handRaised ? actions.lowerHand() : actions.raiseHand())}
        >
          <HandIcon />
        </button>
        <button type="button" className="ctrl ctrl-leave" aria-label="Leave" data-tooltip="Leave call" onClick={actions.leave}>
          <PhoneOffIcon />
        </button>
      </div>

      <div className="cb-side cb-right" role="group" aria-label="Panels">
        <button
          type="button"
          id="ctrl-chat"
          className={`ctrl ctrl-flat ${panels.chat ? "ctrl-selected" : ""}`}
          aria-label="Chat"
          aria-pressed={panels.chat}
          aria-controls={panels.chat ? "chat-panel" : undefined}
          data-tooltip="Chat"
          onClick={() => onTogglePanel("chat")}
        >
          <ChatIcon />
          {unreadChat > 0 && (
            <span className="ctrl-badge" aria-hidden="true">
              {unreadChat > 9 ? "9+" : unreadChat}
            </span>
          )}
        </button>
        <button
          type="button"
          id="ctrl-participants"
          className={`ctrl ctrl-flat ${panels.participants ? "ctrl-selected" : ""}`}
          aria-label="Participants"
          aria-pressed={panels.participants}
          aria-controls={panels.participants ? "participants-panel" : undefined}
          data-tooltip={waitingCount > 0 ? `Participants · ${waitingCount} waiting` : "Participants"}
          onClick={() => onTogglePanel("participants")}
        >
          <UsersIcon />
          {waitingCount > 0 ? (
            <span className="ctrl-badge ctrl-badge-alert" aria-hidden="true">
              {waitingCount}
            </span>
          ) : (
            <span className="ctrl-count" aria-hidden="true">
              {room?.participants.length ?? 0}
            </span>
          )}
        </button>
        <button
          type="button"
          id="ctrl-settings"
          className={`ctrl ctrl-flat ${panels.settings ? "ctrl-selected" : ""}`}
          aria-label="Settings"
          aria-pressed={panels.settings}
          aria-controls={panels.settings ? "settings-panel" : undefined}
          data-tooltip="Settings"
          onClick={() => onTogglePanel("settings")}
        >
          <SettingsIcon />
        </button>
      </div>
    </footer>
  );
}
