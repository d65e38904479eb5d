// The wire contract with the backend, in types. docs/protocol.md is the source of truth.

export type Role = "waiting" | "participant" | "screenshare" | "host";

export const ROLE_ORDER: Record<Role, number> = {
  waiting: 0,
  participant: 1,
  screenshare: 2,
  host: 3,
};

export function atLeast(role: Role, minimum: Role): boolean {
  return ROLE_ORDER[role] >= ROLE_ORDER[minimum];
}

export interface Member {
  clientId: string;
  displayName: string;
}

export interface You extends Member {
  role: Role;
}

export interface RoomState {
  roomId: string;
  you: You;
  hosts: Member[];
  /** Every admitted member (hosts included), in order of arrival. */
  participants: Member[];
  screenshareAllowed: Member[];
  handsRaised: Member[];
  /** Only filled for hosts. */
  waitingUsers: Member[];
  /** Only filled for hosts. */
  screenshareRequests: Member[];
  sharingScreen: Member[];
  unmuted: Member[];
  cameraOn: Member[];
}

export interface ChatMessage extends Member {
  chatId: string;
  chatContent: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** The author's `clientMessageId`, if they sent one. */
  clientMessageId: string | null;
}

export interface SessionDescriptionPayload {
  targetClientId: string;
  sdp: string;
  type: "offer" | "answer";
}

export interface CandidatePayload {
  targetClientId: string;
  /** An empty string is the end-of-candidates signal. */
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface RenegotiatePayload {
  targetClientId: string;
  reason?: string | null;
}

export type DisconnectReason =
  | "left"
  | "replaced"
  | "kicked"
  | "denied"
  | "room_full"
  | "server_busy"
  | "server_shutdown"
  | "policy_violation"
  | "slow_consumer";

export type ErrorCode =
  | "bad_json"
  | "binary_frame"
  | "bad_envelope"
  | "unknown_event"
  | "invalid_payload"
  | "message_too_large"
  | "rate_limited"
  | "forbidden"
  | "not_found"
  | "room_full"
  | "internal_error";

/** Events the client sends, with their payloads. */
export interface ClientEvents {
  /** `clientMessageId`: 1 to 64 characters, unique per message; makes a resend safe (no double post). */
  add_chat: { chatContent: string; clientMessageId?: string };
  delete_chat: { chatId: string };
  recents_chat: Record<string, never>;
  raise_hand: Record<string, never>;
  lower_hand: { clientId?: string };
  accept_waiting: { clientId: string };
  deny_waiting: { clientId: string };
  request_screenshare: Record<string, never>;
  accept_screenshare: { clientId: string };
  deny_screenshare: { clientId: string };
  toggle_audio: { enabled: boolean };
  toggle_video: { enabled: boolean };
  toggle_screenshare: { enabled: boolean };
  offer: SessionDescriptionPayload;
  answer: SessionDescriptionPayload;
  candidate: CandidatePayload;
  renegotiate: RenegotiatePayload;
  kick: { clientId: string };
  transfer_host: { clientId: string };
  mute_request: { clientId: string };
  connection_state: { peerClientId: string; state: "connected" | "failed"; relayed?: boolean };
  ping: { timestamp?: number };
  disconnect: Record<string, never>;
}

/** Relayed signaling arrives with the true sender stamped by the server. */
export type Relayed<T> = T & Member;

/** Events the server sends, with their payloads. */
export interface ServerEvents {
  room_state: RoomState;
  add_chat: ChatMessage;
  delete_chat: { chatId: string; clientId: string };
  recents_chat: { messages: ChatMessage[] };
  waiting_request: Member;
  accept_waiting: Member;
  request_screenshare: Member;
  accept_screenshare: Member;
  deny_screenshare: Member;
  /** The host who asks you to mute. */
  mute_request: Member;
  offer: Relayed<SessionDescriptionPayload>;
  answer: Relayed<SessionDescriptionPayload>;
  candidate: Relayed<CandidatePayload>;
  renegotiate: Relayed<RenegotiatePayload>;
  pong: { timestamp: number | null; serverTime: number };
  error: { code: ErrorCode; message: string; event: string | null };
  disconnect: { reason: DisconnectReason; reconnect: boolean };
  /** A server-signed admission ticket: present it when reconnecting to keep your role. */
  ticket: { ticket: string; role: Role; expiresAt: number };
  /**
   * The first message of every connection: the ICE servers (STUN, and TURN with credentials
   * for this clientId) minted when it opened; the same as `/api/config`'s `iceServers` and
   * `iceServersExpiresAt` asked with the token.
   */
  ice_servers: { iceServers: RTCIceServer[]; expiresAt: number | null };
}

export type ServerEventName = keyof ServerEvents;
export type ClientEventName = keyof ClientEvents;

export type ServerMessage = {
  [K in ServerEventName]: { event: K; payload: ServerEvents[K] };
}[ServerEventName];

/** What GET /api/config answers. */
export interface ClientConfig {
  auth: {
    guest: boolean;
    auth0: { domain: string; clientId: string | null; audience: string | null } | null;
  };
  /**
   * STUN servers for anyone; plus a TURN entry (`urls`, `username`, `credential`) when the
   * request carried a participant token (`Authorization: Bearer`).
   */
  iceServers: RTCIceServer[];
  /** Unix seconds when the TURN credential stops working for new relays; null without TURN. */
  iceServersExpiresAt: number | null;
  websocket: { path: string; subprotocol: string; url?: string | null };
  limits: {
    maxChatLength: number;
    maxMessageBytes: number;
    rateLimit: number;
    rateBurst: number;
    maxRoomSize: number;
    chatHistory: number;
    reconnectGraceSeconds: number;
  };
}

/** What POST /api/auth/guest and /api/auth/refresh answer. */
export interface GuestToken {
  token: string;
  clientId: string;
  displayName: string;
  /** Unix time in seconds. */
  expiresAt: number;
}

/** WebSocket close codes the server uses (docs/protocol.md, "Disconnects and close codes"). */
export const CLOSE_CODES: Record<DisconnectReason, number> = {
  left: 1000,
  replaced: 4000,
  kicked: 4001,
  denied: 4002,
  room_full: 4003,
  server_busy: 1013,
  server_shutdown: 1012,
  policy_violation: 1008,
  slow_consumer: 4008,
};
