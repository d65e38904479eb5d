"use client";

import { useEffect, useRef } from "react";
import { useShallow } from "zustand/react/shallow";
import { atLeast } from "@/lib/protocol";
import { useCallStore } from "@/store/call-store";
import { InRoom } from "./InRoom";
import { PreJoin } from "./PreJoin";
import { ConnectingScreen, EndedScreen, LoadingScreen, WaitingScreen } from "./StatusScreens";
import { Toasts } from "./Toasts";

const ACTIVE_PHASES = new Set(["connecting", "waiting", "in-room", "reconnecting"]);

function RoomScreen({ roomId, initialName }: { roomId: string; initialName: string }) {
  const { phase, role, hasRoom } = useCallStore(
    useShallow((s) => ({ phase: s.phase, role: s.self?.role ?? null, hasRoom: s.room !== null })),
  );

  switch (phase) {
    case "idle":
      return <LoadingScreen roomId={roomId} text="Getting the room ready…" />;
    case "prejoin":
      return <PreJoin roomId={roomId} initialName={initialName} />;
    case "connecting":
      return <ConnectingScreen roomId={roomId} reconnecting={false} />;
    case "waiting":
      return <WaitingScreen roomId={roomId} reconnecting={false} />;
    case "in-room":
      return <InRoom roomId={roomId} reconnecting={false} />;
    case "reconnecting":
      // Keep whatever the user was looking at, with a "Reconnecting…" banner.
      if (role !== null && atLeast(role, "participant") && hasRoom) return <InRoom roomId={roomId} reconnecting />;
      if (role === "waiting") return <WaitingScreen roomId={roomId} reconnecting />;
      return <ConnectingScreen roomId={roomId} reconnecting />;
    case "ended":
      return <EndedScreen roomId={roomId} initialName={initialName} />;
    default:
      return <LoadingScreen roomId={roomId} text="Loading…" />;
  }
}

/** The room page: drives the call store through its phases and shows one screen per phase. */
export function Room({ roomId, initialName }: { roomId: string; initialName: string }) {
  const prepared = useRef<string | null>(null);

  useEffect(() => {
    if (prepared.current === roomId) return;
    prepared.current = roomId;
    const state = useCallStore.getState();
    if (state.phase === "idle" || state.roomId !== roomId) void state.actions.prepare(roomId);
  }, [roomId]);

  // Leaving the page inside the app (not a reload) ends the call properly.
  useEffect(() => {
    return () => {
      const state = useCallStore.getState();
      if (ACTIVE_PHASES.has(state.phase)) state.actions.leave();
    };
  }, []);

  return (
    <div className="room-root">
      <RoomScreen roomId={roomId} initialName={initialName} />
      <Toasts />
    </div>
  );
}
