// Same-origin REST calls to the backend (README.md, "HTTP surface").

import type { ClientConfig, GuestToken } from "./protocol";

/** An HTTP failure, with the server's {"error": {"code", "message"}} when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export interface RoomInfo {
  roomId: string;
  exists: boolean;
  participantCount: number;
  participants?: { clientId: string; displayName: string }[];
}

export interface CreatedRoom {
  roomId: string;
  path: string;
}

export interface Api {
  /** With a participant token the answer also holds TURN servers and their expiry. */
  getConfig(token?: string): Promise<ClientConfig>;
  guestSignIn(displayName: string): Promise<GuestToken>;
  refresh(token: string): Promise<GuestToken>;
  createRoom(token: string): Promise<CreatedRoom>;
  roomInfo(roomId: string, token?: string): Promise<RoomInfo>;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body: unknown = await response.json();
    const error = isRecord(body) ? body.error : undefined;
    if (isRecord(error)) {
      if (typeof error.code === "string") code = error.code;
      if (typeof error.message === "string") message = error.message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, code, message);
}

/** REST client over `fetchFn` (the global fetch by default), against `base` ("" = same origin). */
export function createApi(fetchFn?: FetchLike, base = ""): Api {
  const doFetch: FetchLike = fetchFn ?? ((input, init) => fetch(input, init));

  async function call<T>(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, { method, headers, body, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "network_error", err instanceof Error ? err.message : "network error");
    }
    if (!response.ok) throw await errorFrom(response);
    try {
      return (await response.json()) as T;
    } catch {
      throw new ApiError(response.status, "bad_response", "the server answered something that is not JSON");
    }
  }

  return {
    getConfig: (token) => call<ClientConfig>("GET", "/api/config", { token }),
    guestSignIn: (displayName) => call<GuestToken>("POST", "/api/auth/guest", { body: { displayName } }),
    refresh: (token) => call<GuestToken>("POST", "/api/auth/refresh", { token }),
    createRoom: (token) => call<CreatedRoom>("POST", "/api/rooms", { token }),
    roomInfo: (roomId, token) => call<RoomInfo>("GET", `/api/rooms/${encodeURIComponent(roomId)}`, { token }),
  };
}

const defaultApi = createApi();

export const getConfig = (token?: string): Promise<ClientConfig> => defaultApi.getConfig(token);
export const guestSignIn = (displayName: string): Promise<GuestToken> => defaultApi.guestSignIn(displayName);
export const refresh = (token: string): Promise<GuestToken> => defaultApi.refresh(token);
export const createRoom = (token: string): Promise<CreatedRoom> => defaultApi.createRoom(token);
export const roomInfo = (roomId: string, token?: string): Promise<RoomInfo> => defaultApi.roomInfo(roomId, token);

/** Room ids the backend accepts (docs/protocol.md, "Connecting"). */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{3,64}$/;

export function isValidRoomId(roomId: string): boolean {
  return ROOM_ID_PATTERN.test(roomId);
}

export interface LocationLike {
  protocol: string;
  hostname: string;
  /** The query string ("?relay=1"), when known. */
  search?: string;
}

/**
 * The signaling WebSocket URL for a room: `config.websocket.url` (a base such as
 * "wss://host:8080") when set, else ws(s)://<page host>:8080, followed by
 * `config.websocket.path` with {roomId} filled in, and the room once more as `?room=`: the
 * Gateway hashes on it, so that a room's connections reach the replica that runs it and are
 * not forwarded (devops/README.md, "Forwarding").
 */
export function websocketUrl(config: Pick<ClientConfig, "websocket">, roomId: string, location: LocationLike): string {
  const configured = config.websocket.url;
  const base = configured
    ? configured.replace(/\/+$/, "")
    : `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:8080`;
  const path = config.websocket.path.replace("{roomId}", encodeURIComponent(roomId));
  return `${base}${path.startsWith("/") ? path : `/${path}`}?room=${encodeURIComponent(roomId)}`;
}

/** Whether an ICE server list holds a TURN server (a `turn:` or `turns:` URL). */
export function hasTurnServer(servers: readonly RTCIceServer[]): boolean {
  return servers.some((server) =>
    (Array.isArray(server.urls) ? server.urls : [server.urls]).some((url) => /^turns?:/i.test(url)),
  );
}

/** `?relay=1` (or `true`/`yes`/`on`) turns relay-only on, `?relay=0` off; null when absent. */
export function relayParam(search: string | undefined): boolean | null {
  if (!search) return null;
  const value = new URLSearchParams(search).get("relay");
  if (value === null) return null;
  return ["", "1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}
