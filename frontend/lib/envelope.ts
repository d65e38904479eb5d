// The JSON envelope {"event", "payload"} in both directions (docs/protocol.md, "Messages").

import type { ClientEventName, ClientEvents, ServerEventName, ServerMessage } from "./protocol";

const SERVER_EVENTS: ReadonlySet<string> = new Set<ServerEventName>([
  "room_state",
  "add_chat",
  "delete_chat",
  "recents_chat",
  "waiting_request",
  "accept_waiting",
  "request_screenshare",
  "accept_screenshare",
  "deny_screenshare",
  "mute_request",
  "offer",
  "answer",
  "candidate",
  "renegotiate",
  "pong",
  "error",
  "disconnect",
  "ticket",
  "ice_servers",
]);

export function encodeClientMessage<K extends ClientEventName>(event: K, payload: ClientEvents[K]): string {
  return JSON.stringify({ event, payload });
}

/**
 * A server message from a text frame, or null for anything else (not text, not JSON, not
 * an envelope, an event we do not know, a payload that is not an object). Never throws.
 */
export function decodeServerMessage(data: unknown): ServerMessage | null {
  if (typeof data !== "string") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  const { event, payload } = parsed as { event?: unknown; payload?: unknown };
  if (typeof event !== "string" || !SERVER_EVENTS.has(event)) return null;
  const body = payload === undefined ? {} : payload;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null;
  // The server is trusted for the shape of each payload (protocol.ts); consumers still
  // guard against missing lists where a crash would hurt.
  return { event, payload: body } as ServerMessage;
}
