"use client";

import { useEffect, useRef } from "react";
import { useShallow } from "zustand/react/shallow";
import { useCallStore, type EndInfo } from "@/store/call-store";
import { avatarColor, initials } from "@/components/display-name";
import { AlertIcon, CheckIcon, InfoIcon, PhoneOffIcon } from "@/components/icons";
import { hasTrack } from "./derive";
import { RoomHeader } from "./RoomHeader";
import { StreamVideo } from "./StreamVideo";

/** Moves focus to the screen's heading when a screen appears, for keyboard and screen reader users. */
function useFocusOnMount<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return ref;
}

export function LoadingScreen({ roomId, text }: { roomId: string; text: string }) {
  return (
    <div className="screen">
      <RoomHeader roomId={roomId} />
      <main className="center-screen">
        <div className="status-card" role="status">
          <span className="spinner" aria-hidden="true" />
          <p className="status-title">{text}</p>
        </div>
      </main>
    </div>
  );
}

export function ConnectingScreen({ roomId, reconnecting }: { roomId: string; reconnecting: boolean }) {
  const leave = useCallStore((s) => s.actions.leave);
  return (
    <div className="screen">
      <RoomHeader roomId={roomId} homeLink={false} />
      <main className="center-screen">
        <div className="status-card">
          <span className="spinner" aria-hidden="true" />
          <div role="status">
            <p className="status-title">{reconnecting ? "Reconnecting…" : "Connecting…"}</p>
          </div>
          <p className="status-text">
            {reconnecting ? "The connection dropped. We're getting you back in." : "Setting up your connection to the room."}
          </p>
          <button type="button" className="btn btn-ghost" onClick={leave}>
            Cancel
          </button>
        </div>
      </main>
    </div>
  );
}

export function WaitingScreen({ roomId, reconnecting }: { roomId: string; reconnecting: boolean }) {
  const { localStream, videoEnabled, self } = useCallStore(
    useShallow((s) => ({ localStream: s.localStream, videoEnabled: s.videoEnabled, self: s.self })),
  );
  const leave = useCallStore((s) => s.actions.leave);
  const headingRef = useFocusOnMount<HTMLHeadingElement>();
  const showVideo = videoEnabled && hasTrack(localStream, "video");
  const name = self?.displayName ?? "";
  return (
    <div className="screen">
      <RoomHeader roomId={roomId} homeLink={false} />
      {reconnecting && (
        <div className="conn-banner" role="status">
          <span className="spinner spinner-sm" aria-hidden="true" />
          Reconnecting…
        </div>
      )}
      <main className="center-screen">
        <div className="waiting-card">
          <div className="waiting-preview">
            <StreamVideo stream={localStream} muted mirrored hidden={!showVideo} />
            {!showVideo && (
              <div className="tile-avatar" aria-hidden="true">
                <span className="avatar avatar-lg" style={{ background: avatarColor(name) }}>
                  {initials(name || "You")}
                </span>
              </div>
            )}
          </div>
          <div className="waiting-body">
            <span className="pulse-dot" aria-hidden="true" />
            <h1 className="status-title" tabIndex={-1} ref={headingRef}>
              Waiting for the host to let you in
            </h1>
            <p className="status-text">
              {name ? `You're in the waiting room as ${name}. ` : "You're in the waiting room. "}
              The call opens as soon as a host admits you — keep this page open.
            </p>
            <button type="button" className="btn btn-danger" onClick={leave}>
              <PhoneOffIcon size={18} />
              <span>Leave</span>
            </button>
          </div>
        </div>
      </main>
    </div>
  );
}

const ENDED_TEXT: Record<EndInfo["reason"], { title: string; text: string; tone: "neutral" | "warning" }> = {
  left: { title: "You left the room", text: "Thanks for joining. You can rejoin while the call is still going.", tone: "neutral" },
  denied: { title: "The host did not let you in", text: "If you think this is a mistake, ask the host for a new invitation.", tone: "warning" },
  kicked: { title: "You were removed from the room", text: "A host removed you from this call.", tone: "warning" },
  replaced: {
    title: "You joined from another tab or device",
    text: "This window left the call because you're connected to it somewhere else.",
    tone: "neutral",
  },
  room_full: { title: "This room is full", text: "Try again later, or ask the host to make room.", tone: "warning" },
  server_busy: { title: "The server is busy", text: "Too many calls are running right now. Try again in a minute.", tone: "warning" },
  server_shutdown: { title: "The server restarted", text: "Rejoin to continue the call.", tone: "warning" },
  policy_violation: {
    title: "You were disconnected",
    text: "Your browser sent too many messages the server couldn't accept. Rejoin to continue.",
    tone: "warning",
  },
  slow_consumer: { title: "Your connection couldn't keep up", text: "Check your network, then rejoin.", tone: "warning" },
  error: { title: "Something went wrong", text: "The call couldn't continue.", tone: "warning" },
};

export function EndedScreen({ roomId, initialName }: { roomId: string; initialName: string }) {
  const { ended, self } = useCallStore(useShallow((s) => ({ ended: s.ended, self: s.self })));
  const headingRef = useFocusOnMount<HTMLHeadingElement>();
  const reason = ended?.reason ?? "left";
  const info = ENDED_TEXT[reason] ?? ENDED_TEXT.error;
  const detail = reason === "error" && ended?.message ? ended.message : null;
  const name = self?.displayName || initialName;
  const rejoinHref = `/${encodeURIComponent(roomId)}${name ? `?name=${encodeURIComponent(name)}` : ""}`;
  const Icon = reason === "left" ? CheckIcon : info.tone === "warning" ? AlertIcon : InfoIcon;
  return (
    <div className="screen">
      <RoomHeader roomId={roomId} />
      <main className="center-screen">
        <div className="status-card ended-card" data-reason={reason}>
          <span className={`status-icon status-icon-${info.tone}`}>
            <Icon size={24} />
          </span>
          <h1 className="status-title" tabIndex={-1} ref={headingRef}>
            {info.title}
          </h1>
          <p className="status-text">{info.text}</p>
          {detail && <p className="status-detail">{detail}</p>}
          <div className="button-row">
            {/* Plain links: a full page load starts the room afresh. */}
            <a className="btn btn-primary" href={rejoinHref}>
              Rejoin
            </a>
            <a className="btn btn-ghost" href="/">
              Home
            </a>
          </div>
        </div>
      </main>
    </div>
  );
}
