// Admission tickets (the `ticket` server event): the latest one per room, in sessionStorage,
// presented as ?ticket= when reconnecting so a restarted server restores our role.

import type { ServerEvents } from "./protocol";
import { readJson, type KeyValueStorage } from "./storage";

type Ticket = ServerEvents["ticket"];

export function ticketKey(roomId: string): string {
  return `videoconf.ticket.${roomId}`;
}

function isTicket(value: unknown): value is Ticket {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.ticket === "string" && typeof v.expiresAt === "number" && typeof v.role === "string";
}

export function saveTicket(storage: KeyValueStorage, roomId: string, ticket: Ticket): void {
  if (isTicket(ticket)) storage.setItem(ticketKey(roomId), JSON.stringify(ticket));
}

/** The stored ticket string for the room, unless missing or expired (expiresAt is in seconds). */
export function loadTicket(storage: KeyValueStorage, roomId: string, nowMs: number): string | null {
  const value = readJson(storage, ticketKey(roomId));
  if (!isTicket(value)) return null;
  if (value.expiresAt * 1000 <= nowMs) {
    storage.removeItem(ticketKey(roomId));
    return null;
  }
  return value.ticket;
}

export function clearTicket(storage: KeyValueStorage, roomId: string): void {
  storage.removeItem(ticketKey(roomId));
}

export function withTicket(url: string, ticket: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket)}`;
}
