// Server messages and signaling status changes, applied to the store.

import { createLogger } from "@/lib/logger";
import { atLeast, type RoomState, type ServerEvents, type ServerMessage } from "@/lib/protocol";
import type { SignalingStatus } from "@/lib/signaling";
import { addChat, deleteChat, normalizeRoomState, participantToasts, uniqueChats } from "./messages";
import { onIceServers } from "./ice";
import { stopScreenshareLocally, sendMediaState } from "./media-actions";
import {
  acknowledgeChat,
  endCall,
  refreshPeers,
  resendPendingChat,
  restartLocalMeter,
  toast,
  type Ctx,
} from "./session";

const log = createLogger("store");

/** Relayed-signaling events whose `not_found` only means the peer has just left. */
const QUIET_NOT_FOUND = new Set(["offer", "answer", "candidate", "renegotiate", "connection_state"]);

export function handleServerMessage(ctx: Ctx, message: ServerMessage): void {
  if (ctx.get().phase === "ended") return;
  switch (message.event) {
    case "room_state":
      onRoomState(ctx, normalizeRoomState(message.payload));
      return;
    case "recents_chat": {
      const messages = uniqueChats(Array.isArray(message.payload.messages) ? message.payload.messages : []);
      acknowledgeChat(ctx, messages);
      ctx.set({ chat: messages });
      return;
    }
    case "add_chat":
      acknowledgeChat(ctx, [message.payload]);
      ctx.set((s) => ({ chat: addChat(s.chat, message.payload) }));
      return;
    case "delete_chat":
      ctx.set((s) => ({ chat: deleteChat(s.chat, message.payload.chatId) }));
      return;
    case "waiting_request":
      if (ctx.get().self?.role === "host") {
        toast(ctx, { kind: "info", text: `${message.payload.displayName} is waiting to join` });
      }
      return;
    case "request_screenshare":
      if (ctx.get().self?.role === "host") {
        toast(ctx, { kind: "info", text: `${message.payload.displayName} asks to share their screen` });
      }
      return;
    case "accept_screenshare":
      ctx.set({ screenshareRequested: false });
      toast(ctx, { kind: "info", text: "You may now share your screen" });
      return;
    case "deny_screenshare":
      ctx.set({ screenshareRequested: false });
      if (ctx.get().sharing) stopScreenshareLocally(ctx, { announce: false });
      toast(ctx, { kind: "warning", text: "Screen sharing was not allowed" });
      return;
    case "mute_request":
      onMuteRequest(ctx, message.payload);
      return;
    case "error":
      onError(ctx, message.payload);
      return;
    case "offer":
    case "answer":
    case "candidate":
    case "renegotiate":
      ctx.session.mesh?.handleSignal(message);
      return;
    case "ice_servers":
      onIceServers(ctx, message.payload);
      return;
    case "accept_waiting":
    case "disconnect": // acted on through the signaling status
    case "ticket": // kept by the signaling client
    case "pong":
      return;
  }
}

function onRoomState(ctx: Ctx, room: RoomState): void {
  const { session } = ctx;
  const prev = ctx.get();
  const admitted = room.you.role !== "waiting";
  const wasAdmitted = prev.self !== null && prev.self.role !== "waiting";
  // A new identity (the token had to be replaced while reconnecting): new peer connections.
  if (session.mesh && session.mesh.selfId !== room.you.clientId) replaceMesh(ctx, room.you.clientId);

  ctx.set({
    room,
    self: { clientId: room.you.clientId, displayName: room.you.displayName, role: room.you.role },
    phase: admitted ? "in-room" : "waiting",
    ...(atLeast(room.you.role, "screenshare") ? { screenshareRequested: false } : {}),
  });
  if (prev.room && wasAdmitted && admitted) {
    for (const draft of participantToasts(prev.room, room)) toast(ctx, draft);
    if (prev.self?.role !== "host" && room.you.role === "host") toast(ctx, { kind: "info", text: "You are now a host" });
  }
  if (prev.self?.clientId !== room.you.clientId) restartLocalMeter(ctx, room.you.clientId);
  if (ctx.get().sharing && !atLeast(room.you.role, "screenshare")) stopScreenshareLocally(ctx, { announce: false });

  if (admitted && (!session.admitted || session.resync)) sendMediaState(ctx);
  // Chat that was not acknowledged: out again (same ids, in order) once we are back in the room.
  if (admitted && (!session.admitted || session.resendChat)) {
    session.resendChat = false;
    resendPendingChat(ctx);
  }
  session.admitted = admitted;
  session.mesh?.sync(admitted ? room.participants.map((m) => m.clientId) : []);
  if (session.resync) {
    session.resync = false;
    if (admitted) session.mesh?.resendPending();
  }
  refreshPeers(ctx);
}

function replaceMesh(ctx: Ctx, selfId: string): void {
  const { session } = ctx;
  log.warn("identity changed, starting the peer connections afresh");
  session.mesh?.close();
  const config = session.config;
  session.mesh = config ? createMesh(ctx, selfId) : null;
}

/** A mesh for `selfId` sending what we currently capture. */
export function createMesh(ctx: Ctx, selfId: string) {
  const config = ctx.session.config;
  const mesh = ctx.deps.createMesh({
    selfId,
    iceServers: config?.iceServers ?? [],
    iceTransportPolicy: ctx.get().relayOnly ? "relay" : "all",
    lingerMs: (config?.limits.reconnectGraceSeconds ?? 30) * 1000,
    send: (event, payload) => void ctx.session.signaling?.send(event, payload),
    onChange: () => refreshPeers(ctx),
  });
  const { localStream, screenStream, sharing } = ctx.get();
  mesh.setLocalTrack("audio", localStream?.getAudioTracks()[0] ?? null);
  mesh.setLocalTrack("video", localStream?.getVideoTracks()[0] ?? null);
  if (sharing) mesh.setScreenTrack(screenStream?.getVideoTracks()[0] ?? null);
  return mesh;
}

function onMuteRequest(ctx: Ctx, host: ServerEvents["mute_request"]): void {
  toast(ctx, {
    kind: "warning",
    text: `${host.displayName} asks you to mute`,
    action: {
      label: "Mute",
      run: () => {
        if (ctx.get().audioEnabled) ctx.get().actions.toggleAudio();
      },
    },
  });
}

function onError(ctx: Ctx, error: ServerEvents["error"]): void {
  log.warn("server error", error.code, error.event, error.message);
  if (error.code === "room_full") return; // the ended screen says it
  if (error.code === "not_found" && error.event !== null && QUIET_NOT_FOUND.has(error.event)) return;
  const text = typeof error.message === "string" && error.message ? error.message : `Error: ${String(error.code)}`;
  toast(ctx, { kind: error.code === "rate_limited" ? "warning" : "error", text });
}

export function handleStatus(ctx: Ctx, status: SignalingStatus): void {
  const phase = ctx.get().phase;
  if (phase === "ended") return;
  switch (status.state) {
    case "reconnecting":
      ctx.session.resendChat = true;
      // Before the first room_state this is still "connecting" (the handshake keeps failing).
      if (ctx.get().room !== null) {
        ctx.session.resync = true;
        if (phase !== "reconnecting") ctx.set({ phase: "reconnecting" });
      }
      return;
    case "closed":
      if (status.reason === "client") return;
      endCall(ctx, status.reason, { keepSignaling: true });
      return;
    case "connecting":
    case "open":
    case "idle":
      return;
  }
}
