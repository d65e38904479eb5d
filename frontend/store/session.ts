// The store's run-time context: what lives outside zustand state (sockets, peer
// connections, meters) and the helpers every part of the store shares.

import type { AudioMeter } from "@/lib/audio-meter";
import { createLogger } from "@/lib/logger";
import { stopStream } from "@/lib/media";
import { atLeast, type ChatMessage, type ClientConfig, type ClientEventName, type ClientEvents, type DisconnectReason } from "@/lib/protocol";
import type { CallDeps, MeshLike, SignalingLike } from "./deps";
import { buildPeers, ENDED_MESSAGES, samePeers, type ToastDraft } from "./messages";
import type { CallState } from "./types";

const log = createLogger("store");

/** Toasts kept at most; older ones drop off. */
export const MAX_TOASTS = 6;

export interface Session {
  config: ClientConfig | null;
  preparing: { roomId: string; promise: Promise<void> } | null;
  signaling: SignalingLike | null;
  mesh: MeshLike | null;
  unsubscribe: (() => void)[];
  /** The last room_state admitted us. */
  admitted: boolean;
  /** Set while reconnecting: the next room_state re-sends toggles and re-syncs peers. */
  resync: boolean;
  localMeter: AudioMeter | null;
  remoteMeters: Map<string, { stream: MediaStream; meter: AudioMeter | null }>;
  toastId: number;
  /** Orders overlapping startPreview calls: only the latest one is kept. */
  previewSeq: number;
  /**
   * Chat messages we sent whose echo has not come back yet: clientMessageId -> content, in
   * sending order. Resent with the same ids after a reconnect; dropped when the call ends.
   */
  pendingChat: Map<string, string>;
  /** Set while reconnecting: the next admitted room_state resends `pendingChat`. */
  resendChat: boolean;
  /** Fires before the TURN credentials expire (store/ice.ts). */
  iceRefreshTimer: ReturnType<typeof setTimeout> | null;
  /** Bumped at teardown: ICE fetches of an earlier call are then ignored. */
  iceGeneration: number;
  /** The participant's fresh-token source for ICE refreshes (set by store/ice.ts at join). */
  iceGetToken: (() => Promise<string>) | null;
}

export function newSession(): Session {
  return {
    config: null,
    preparing: null,
    signaling: null,
    mesh: null,
    unsubscribe: [],
    admitted: false,
    resync: false,
    localMeter: null,
    remoteMeters: new Map(),
    toastId: 0,
    previewSeq: 0,
    pendingChat: new Map(),
    resendChat: false,
    iceRefreshTimer: null,
    iceGeneration: 0,
    iceGetToken: null,
  };
}

export interface Ctx {
  get(): CallState;
  set(partial: Partial<CallState> | ((state: CallState) => Partial<CallState>)): void;
  deps: CallDeps;
  session: Session;
}

export function toast(ctx: Ctx, draft: ToastDraft): void {
  ctx.session.toastId += 1;
  const id = ctx.session.toastId;
  ctx.set((s) => ({ toasts: [...s.toasts, { id, ...draft }].slice(-MAX_TOASTS) }));
}

/** Sends when connected; silently dropped otherwise (the state is re-sent after a reconnect). */
export function send<K extends ClientEventName>(ctx: Ctx, event: K, payload: ClientEvents[K]): boolean {
  return ctx.session.signaling?.send(event, payload) ?? false;
}

/** Sends every still-pending chat message again, oldest first, with its original id. */
export function resendPendingChat(ctx: Ctx): void {
  for (const [clientMessageId, chatContent] of ctx.session.pendingChat) {
    if (!send(ctx, "add_chat", { chatContent, clientMessageId })) return; // still offline: next time
  }
}

/** Our own messages among `messages` acknowledge the pending ones with the same clientMessageId. */
export function acknowledgeChat(ctx: Ctx, messages: readonly ChatMessage[]): void {
  const pending = ctx.session.pendingChat;
  const selfId = ctx.get().self?.clientId;
  if (pending.size === 0 || !selfId) return;
  for (const m of messages) {
    if (m.clientId === selfId && typeof m.clientMessageId === "string") pending.delete(m.clientMessageId);
  }
}

export function isAdmitted(ctx: Ctx): boolean {
  const role = ctx.get().self?.role;
  return role !== undefined && role !== "waiting";
}

export function mayShareScreen(ctx: Ctx): boolean {
  const role = ctx.get().self?.role;
  return role !== undefined && atLeast(role, "screenshare");
}

/** Re-reads the mesh into `peers` and keeps one audio meter per remote stream. */
export function refreshPeers(ctx: Ctx): void {
  const { room } = ctx.get();
  const views = ctx.session.mesh?.views() ?? {};
  const next = buildPeers(room, views);
  if (!samePeers(ctx.get().peers, next)) ctx.set({ peers: next });
  syncRemoteMeters(ctx, next);
}

function setSpeaking(ctx: Ctx, clientId: string, speaking: boolean): void {
  if ((ctx.get().speaking[clientId] ?? false) === speaking) return;
  ctx.set((s) => ({ speaking: { ...s.speaking, [clientId]: speaking } }));
}

function syncRemoteMeters(ctx: Ctx, peers: CallState["peers"]): void {
  const meters = ctx.session.remoteMeters;
  for (const [id, entry] of [...meters]) {
    if (peers[id]?.stream === entry.stream) continue;
    entry.meter?.stop();
    meters.delete(id);
    ctx.set((s) => {
      const { [id]: _gone, ...rest } = s.speaking;
      return { speaking: rest };
    });
  }
  for (const peer of Object.values(peers)) {
    if (!peer.stream || meters.has(peer.clientId)) continue;
    const meter = ctx.deps.media.startMeter(peer.stream, (on) => setSpeaking(ctx, peer.clientId, on));
    meters.set(peer.clientId, { stream: peer.stream, meter });
  }
}

/** (Re)starts the meter on our own stream, keyed by our clientId once we know it. */
export function restartLocalMeter(ctx: Ctx, selfId: string | null): void {
  ctx.session.localMeter?.stop();
  ctx.session.localMeter = null;
  const stream = ctx.get().localStream;
  if (!stream || !selfId) return;
  ctx.session.localMeter = ctx.deps.media.startMeter(stream, (on) => setSpeaking(ctx, selfId, on));
}

/** Stops everything of the call: signaling (unless `keepSignaling`), peers, meters, media (unless `keepMedia`). */
export function teardown(ctx: Ctx, options: { keepSignaling?: boolean; keepMedia?: boolean } = {}): void {
  const { session } = ctx;
  for (const off of session.unsubscribe) off();
  session.unsubscribe = [];
  if (!options.keepSignaling) session.signaling?.close();
  session.signaling = null;
  session.mesh?.close();
  session.mesh = null;
  session.localMeter?.stop();
  session.localMeter = null;
  for (const { meter } of session.remoteMeters.values()) meter?.stop();
  session.remoteMeters.clear();
  session.admitted = false;
  session.resync = false;
  session.pendingChat.clear();
  session.resendChat = false;
  if (session.iceRefreshTimer !== null) clearTimeout(session.iceRefreshTimer);
  session.iceRefreshTimer = null;
  session.iceGeneration += 1;
  session.iceGetToken = null;
  const { localStream, screenStream } = ctx.get();
  if (!options.keepMedia) stopStream(localStream);
  stopStream(screenStream);
}

/** The call is over: phase "ended" with the reason's text. */
export function endCall(
  ctx: Ctx,
  reason: DisconnectReason | "error",
  options: { message?: string; keepSignaling?: boolean } = {},
): void {
  if (ctx.get().phase === "ended") return;
  log.info("call ended", reason);
  teardown(ctx, options);
  const message = options.message ?? (reason === "error" ? "Something went wrong" : ENDED_MESSAGES[reason]);
  ctx.set({
    phase: "ended",
    ended: { reason, message },
    peers: {},
    speaking: {},
    localStream: null,
    screenStream: null,
    sharing: false,
    screenshareRequested: false,
  });
}
