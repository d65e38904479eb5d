// Pure pieces of the store: texts, diffs and list updates.

import type { ChatMessage, DisconnectReason, Member, RoomState } from "@/lib/protocol";
import type { PeerView as MeshPeerView } from "@/lib/peer-mesh";
import type { PeerView, Toast } from "./types";

/** The ended-screen texts (contract.md, "Ended screen texts by reason"). */
export const ENDED_MESSAGES: Record<DisconnectReason, string> = {
  denied: "The host did not let you in",
  kicked: "You were removed from the room",
  replaced: "You joined from another tab or device",
  room_full: "This room is full",
  left: "You left the room",
  policy_violation: "You were disconnected for sending too many invalid messages",
  server_busy: "The server is busy, try again later",
  server_shutdown: "The server restarted",
  slow_consumer: "The connection was too slow",
};

export type ToastDraft = Omit<Toast, "id">;

/** "X joined" / "X left" toasts between two room states (other members only). */
export function participantToasts(prev: RoomState, next: RoomState): ToastDraft[] {
  const selfId = next.you.clientId;
  const before = new Map(prev.participants.map((m) => [m.clientId, m]));
  const after = new Map(next.participants.map((m) => [m.clientId, m]));
  const out: ToastDraft[] = [];
  for (const [id, m] of after) {
    if (id !== selfId && !before.has(id)) out.push({ kind: "info", text: `${m.displayName} joined` });
  }
  for (const [id, m] of before) {
    if (id !== selfId && !after.has(id)) out.push({ kind: "info", text: `${m.displayName} left` });
  }
  return out;
}

export function others(room: RoomState): Member[] {
  return room.participants.filter((m) => m.clientId !== room.you.clientId);
}

/** One PeerView per other admitted member, with what the mesh knows of them. */
export function buildPeers(room: RoomState | null, views: Record<string, MeshPeerView>): Record<string, PeerView> {
  const out: Record<string, PeerView> = {};
  if (!room || room.you.role === "waiting") return out;
  for (const m of others(room)) {
    const view = views[m.clientId];
    out[m.clientId] = {
      clientId: m.clientId,
      displayName: m.displayName,
      connectionState: view?.connectionState ?? "new",
      stream: view?.stream ?? null,
      screenStream: view?.screenStream ?? null,
    };
  }
  return out;
}

/** Whether two peer maps show the same thing (to skip needless re-renders). */
export function samePeers(a: Record<string, PeerView>, b: Record<string, PeerView>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const x = a[k];
    const y = b[k];
    return (
      y !== undefined &&
      x.displayName === y.displayName &&
      x.connectionState === y.connectionState &&
      x.stream === y.stream &&
      x.screenStream === y.screenStream
    );
  });
}

/** Appends a message; one whose chatId is already there changes nothing (e.g. a second echo). */
export function addChat(chat: ChatMessage[], message: ChatMessage): ChatMessage[] {
  if (chat.some((m) => m.chatId === message.chatId)) return chat;
  return [...chat, message];
}

/** A history list without repeated chatIds (the first one wins). */
export function uniqueChats(messages: readonly ChatMessage[]): ChatMessage[] {
  const seen = new Set<string>();
  return messages.filter((m) => !seen.has(m.chatId) && (seen.add(m.chatId), true));
}

export function deleteChat(chat: ChatMessage[], chatId: string): ChatMessage[] {
  const next = chat.filter((m) => m.chatId !== chatId);
  return next.length === chat.length ? chat : next;
}

/** A room_state with every list present (the server always sends them; be safe anyway). */
export function normalizeRoomState(room: RoomState): RoomState {
  const list = (value: unknown): Member[] => (Array.isArray(value) ? (value as Member[]) : []);
  return {
    ...room,
    hosts: list(room.hosts),
    participants: list(room.participants),
    screenshareAllowed: list(room.screenshareAllowed),
    handsRaised: list(room.handsRaised),
    waitingUsers: list(room.waitingUsers),
    screenshareRequests: list(room.screenshareRequests),
    sharingScreen: list(room.sharingScreen),
    unmuted: list(room.unmuted),
    cameraOn: list(room.cameraOn),
  };
}
