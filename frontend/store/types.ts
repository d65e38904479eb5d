// The store's public types, exactly as store/contract.md lists them (plus Toast.action,
// see "Changes" there).

import type { DisconnectReason, Role, RoomState, ChatMessage } from "@/lib/protocol";
import type { MediaError } from "@/lib/media";

export type { MediaError };

export type Phase =
  | "idle" // nothing loaded
  | "prejoin" // config loaded, preview running, user picks name/devices
  | "connecting" // signing in / opening the WebSocket
  | "waiting" // in the waiting room (role waiting)
  | "in-room" // admitted
  | "reconnecting" // WebSocket lost, retrying with backoff (media may still flow)
  | "ended"; // left, denied, kicked, replaced, room full, fatal error

export interface EndInfo {
  reason: DisconnectReason | "error";
  message: string;
}

export interface PeerView {
  clientId: string;
  displayName: string;
  connectionState: RTCPeerConnectionState; // "new" until known
  stream: MediaStream | null; // camera + microphone tracks from that peer
  screenStream: MediaStream | null; // their screen share, when they share
}

/** An optional button on a toast (e.g. "Mute" on a mute request). */
export interface ToastAction {
  label: string;
  run(): void;
}

export interface Toast {
  id: number;
  kind: "info" | "warning" | "error";
  text: string;
  action?: ToastAction;
}

export interface CallActions {
  prepare(roomId: string): Promise<void>;
  startPreview(opts: { audio: boolean; video: boolean }): Promise<void>;
  selectAudioInput(deviceId: string): Promise<void>;
  selectVideoInput(deviceId: string): Promise<void>;
  join(opts: { displayName: string; audio: boolean; video: boolean }): Promise<void>;
  leave(): void;
  toggleAudio(): void;
  toggleVideo(): void;
  requestScreenshare(): void;
  startScreenshare(): Promise<void>;
  stopScreenshare(): void;
  raiseHand(): void;
  lowerHand(clientId?: string): void;
  sendChat(text: string): void;
  deleteChat(chatId: string): void;
  admit(clientId: string): void;
  deny(clientId: string): void;
  grantScreenshare(clientId: string): void;
  denyScreenshare(clientId: string): void;
  kick(clientId: string): void;
  makeHost(clientId: string): void;
  askToMute(clientId: string): void;
  dismissToast(id: number): void;
  /**
   * Relay-only mode (diagnosing a user's network): every peer connection uses
   * `iceTransportPolicy: "relay"`, so media flows only through the TURN server. Applies to
   * open connections too (with an ICE restart). `?relay=1` in the room URL turns it on.
   */
  setRelayOnly(on: boolean): void;
}

export interface CallState {
  phase: Phase;
  roomId: string | null;
  self: { clientId: string; displayName: string; role: Role } | null;
  room: RoomState | null;
  chat: ChatMessage[];
  peers: Record<string, PeerView>;
  speaking: Record<string, boolean>;
  localStream: MediaStream | null;
  screenStream: MediaStream | null;
  audioEnabled: boolean;
  videoEnabled: boolean;
  sharing: boolean;
  screenshareRequested: boolean;
  devices: { audioInputs: MediaDeviceInfo[]; videoInputs: MediaDeviceInfo[] };
  selectedAudioInput: string | null;
  selectedVideoInput: string | null;
  mediaError: MediaError | null;
  toasts: Toast[];
  ended: EndInfo | null;
  /** Relay-only mode is on (`?relay=1` or the setting). */
  relayOnly: boolean;
  actions: CallActions;
}
