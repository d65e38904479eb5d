// The call store (zustand 5), as store/contract.md describes it. createCallStore(deps)
// builds one over injectable dependencies (tests pass fakes); useCallStore is the app's.

import { create, type StoreApi, type UseBoundStore } from "zustand";
import { ApiError, isValidRoomId, relayParam, websocketUrl } from "@/lib/api";
import { ensureIdentity, normalizeDisplayName } from "@/lib/identity";
import { newClientMessageId } from "@/lib/message-id";
import type { ServerMessage } from "@/lib/protocol";
import type { SignalingStatus } from "@/lib/signaling";
import { defaultDeps, type CallDeps } from "./deps";
import { selectInput, startPreview, startScreenshare, stopScreenshareLocally, toggle } from "./media-actions";
import { loadSignedInIceServers, warnIfRelayWithoutTurn } from "./ice";
import { createMesh, handleServerMessage, handleStatus } from "./server-handler";
import { endCall, isAdmitted, newSession, restartLocalMeter, send, teardown, toast, type Ctx } from "./session";
import type { CallActions, CallState } from "./types";

export type { CallActions, CallState, EndInfo, MediaError, PeerView, Phase, Toast, ToastAction } from "./types";
export { ENDED_MESSAGES } from "./messages";

type Data = Omit<CallState, "actions">;

function initialData(): Data {
  return {
    phase: "idle",
    roomId: null,
    self: null,
    room: null,
    chat: [],
    peers: {},
    speaking: {},
    localStream: null,
    screenStream: null,
    audioEnabled: false,
    videoEnabled: false,
    sharing: false,
    screenshareRequested: false,
    devices: { audioInputs: [], videoInputs: [] },
    selectedAudioInput: null,
    selectedVideoInput: null,
    mediaError: null,
    toasts: [],
    ended: null,
    relayOnly: false,
  };
}

/** What tests (and the debug handle) reach beyond the public state. */
export interface CallInternals {
  handleServerMessage(message: ServerMessage): void;
  handleStatus(status: SignalingStatus): void;
  peerConnections(): Record<string, RTCPeerConnection>;
}

export type CallStore = UseBoundStore<StoreApi<CallState>> & { internals: CallInternals };

export function createCallStore(deps: CallDeps): CallStore {
  const session = newSession();
  let ctx: Ctx;

  const store = create<CallState>()((set, get) => {
    ctx = { get, set, deps, session };

    async function prepare(roomId: string): Promise<void> {
      const state = get();
      if (session.preparing?.roomId === roomId) return session.preparing.promise;
      const live = state.phase !== "idle" && state.phase !== "ended";
      if (state.roomId === roomId && session.config && live) return;
      const keepPreview = state.phase === "prejoin";
      teardown(ctx, { keepMedia: keepPreview });
      set({
        ...initialData(),
        roomId,
        devices: state.devices,
        selectedAudioInput: state.selectedAudioInput,
        selectedVideoInput: state.selectedVideoInput,
        // `?relay=1` / `?relay=0` in the room URL wins; otherwise the setting stays as it was.
        relayOnly: relayParam(deps.location().search) ?? state.relayOnly,
        ...(keepPreview
          ? { localStream: state.localStream, audioEnabled: state.audioEnabled, videoEnabled: state.videoEnabled }
          : {}),
      });
      if (!isValidRoomId(roomId)) {
        endCall(ctx, "error", { message: "This room link is not valid" });
        return;
      }
      const promise = (async () => {
        try {
          session.config = await deps.api.getConfig();
          if (get().roomId !== roomId || get().phase !== "idle") return;
          set({ phase: "prejoin" });
          const devices = await deps.media.listDevices();
          if (get().devices.audioInputs.length + get().devices.videoInputs.length === 0) set({ devices });
        } catch (err) {
          endCall(ctx, "error", { message: `Could not reach the server${err instanceof Error ? `: ${err.message}` : ""}` });
        } finally {
          session.preparing = null;
        }
      })();
      session.preparing = { roomId, promise };
      return promise;
    }

    /** Applies the join-time choice of microphone and camera, capturing what is missing. */
    async function applyJoinMedia(audio: boolean, video: boolean): Promise<void> {
      const stream = get().localStream;
      if (!stream) {
        if (audio || video) await startPreview(ctx, { audio, video });
        return;
      }
      for (const [kind, want] of [["audio", audio], ["video", video]] as const) {
        const track = (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0];
        if (track) {
          track.enabled = want;
          set(kind === "audio" ? { audioEnabled: want } : { videoEnabled: want });
        } else if (want) {
          await selectInput(ctx, kind, kind === "audio" ? get().selectedAudioInput : get().selectedVideoInput);
        }
      }
    }

    async function join(opts: { displayName: string; audio: boolean; video: boolean }): Promise<void> {
      const roomId = get().roomId;
      if (session.signaling || !roomId) return;
      if (!session.config) await prepare(roomId);
      const config = session.config;
      if (!config || get().phase === "ended") return;
      if (!config.auth.guest) {
        endCall(ctx, "error", { message: "Guest sign-in is turned off on this server" });
        return;
      }
      set({ phase: "connecting", ended: null });
      await applyJoinMedia(opts.audio, opts.video);
      const identityDeps = { api: deps.api, storage: deps.storage, now: deps.now };
      const displayName = normalizeDisplayName(opts.displayName);
      const getToken = async () => (await ensureIdentity(identityDeps, displayName)).token;
      let clientId: string;
      let token: string;
      try {
        ({ clientId, token } = await ensureIdentity(identityDeps, displayName));
      } catch (err) {
        endCall(ctx, "error", { message: err instanceof ApiError ? err.message : "Could not sign in" });
        return;
      }
      if (get().phase !== "connecting" || session.signaling) return;
      // Signed in: the config again, with the token, brings the TURN servers.
      await loadSignedInIceServers(ctx, token, getToken);
      if (get().phase !== "connecting" || session.signaling) return;
      session.mesh = createMesh(ctx, clientId);
      const signaling = deps.createSignaling({
        roomId,
        url: websocketUrl(config, roomId, deps.location()),
        getToken,
      });
      session.signaling = signaling;
      session.unsubscribe.push(
        signaling.onMessage((message) => handleServerMessage(ctx, message)),
        signaling.onStatus((status) => handleStatus(ctx, status)),
      );
      restartLocalMeter(ctx, clientId);
      signaling.connect();
    }


    const actions: CallActions = {
      prepare,
      startPreview: (opts) => startPreview(ctx, opts),
      selectAudioInput: async (deviceId) => void (await selectInput(ctx, "audio", deviceId)),
      selectVideoInput: async (deviceId) => void (await selectInput(ctx, "video", deviceId)),
      join,
      leave: () => {
        session.signaling?.leave();
        endCall(ctx, "left", { keepSignaling: true });
      },
      toggleAudio: () => toggle(ctx, "audio"),
      toggleVideo: () => toggle(ctx, "video"),
      requestScreenshare: () => {
        if (!isAdmitted(ctx) || get().screenshareRequested) return;
        if (send(ctx, "request_screenshare", {})) set({ screenshareRequested: true });
      },
      startScreenshare: () => startScreenshare(ctx),
      stopScreenshare: () => stopScreenshareLocally(ctx, { announce: true }),
      raiseHand: () => void send(ctx, "raise_hand", {}),
      lowerHand: (clientId) => void send(ctx, "lower_hand", clientId ? { clientId } : {}),
      sendChat: (text) => {
        const content = text.trim();
        const max = session.config?.limits.maxChatLength ?? 1000;
        if (!content) return;
        if ([...content].length > max) {
          toast(ctx, { kind: "warning", text: `Messages can be at most ${max} characters long` });
          return;
        }
        const phase = get().phase;
        if (phase === "idle" || phase === "prejoin" || phase === "ended") return;
        // Kept until its echo (or a recents_chat holding it) arrives; resent after a reconnect.
        const clientMessageId = newClientMessageId();
        session.pendingChat.set(clientMessageId, content);
        // Older pending messages wait for the post-reconnect resend: join them there, in order.
        if (isAdmitted(ctx) && !session.resendChat) send(ctx, "add_chat", { chatContent: content, clientMessageId });
      },
      deleteChat: (chatId) => void send(ctx, "delete_chat", { chatId }),
      admit: (clientId) => void send(ctx, "accept_waiting", { clientId }),
      deny: (clientId) => void send(ctx, "deny_waiting", { clientId }),
      grantScreenshare: (clientId) => void send(ctx, "accept_screenshare", { clientId }),
      denyScreenshare: (clientId) => void send(ctx, "deny_screenshare", { clientId }),
      kick: (clientId) => void send(ctx, "kick", { clientId }),
      makeHost: (clientId) => void send(ctx, "transfer_host", { clientId }),
      askToMute: (clientId) => void send(ctx, "mute_request", { clientId }),
      dismissToast: (id) => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })),
      setRelayOnly: (on) => {
        if (get().relayOnly === on) return;
        set({ relayOnly: on });
        if (!session.mesh) return;
        session.mesh.updateConfiguration({ iceTransportPolicy: on ? "relay" : "all" });
        warnIfRelayWithoutTurn(ctx);
      },
    };

    return { ...initialData(), actions };
  });

  const internals: CallInternals = {
    handleServerMessage: (message) => handleServerMessage(ctx, message),
    handleStatus: (status) => handleStatus(ctx, status),
    peerConnections: () => session.mesh?.peerConnections() ?? {},
  };
  return Object.assign(store, { internals });
}

export const useCallStore: CallStore = createCallStore(defaultDeps());

export interface VideoconfDebug {
  peerConnections(): Record<string, RTCPeerConnection>;
  state(): CallState;
}

declare global {
  interface Window {
    __videoconf?: VideoconfDebug;
  }
}

if (typeof window !== "undefined") {
  window.__videoconf = {
    peerConnections: () => useCallStore.internals.peerConnections(),
    state: () => useCallStore.getState(),
  };
}
