import type { Member } from "@/lib/protocol";

export function has(list: readonly Member[] | undefined, clientId: string): boolean {
  return list !== undefined && list.some((m) => m.clientId === clientId);
}

/** Grid columns by tile count: 1 → 1, 2 → 2, 3–4 → 2, 5–9 → 3, 10+ → 4. */
export function gridColumns(count: number): number {
  if (count <= 1) return 1;
  if (count <= 4) return 2;
  if (count <= 9) return 3;
  return 4;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });

export function formatTime(timestamp: number): string {
  return timeFormat.format(new Date(timestamp));
}

export function hasTrack(stream: MediaStream | null, kind: "audio" | "video"): boolean {
  if (!stream) return false;
  return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks()).some((t) => t.readyState === "live");
}
