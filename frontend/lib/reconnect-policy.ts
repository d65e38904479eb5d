// What to do when the signaling socket closes (docs/protocol.md, "Disconnects and close
// codes"): follow the `disconnect` event's `reconnect` flag when one arrived; otherwise
// stop only for close codes that mean "do not come back", and reconnect for the rest
// (1006 network loss, 1012 restart, 1013 busy, 4008 slow consumer, ...).

import { CLOSE_CODES, type DisconnectReason, type ServerEvents } from "./protocol";

/** Reasons after which we never reconnect by ourselves. */
export const FINAL_REASONS: ReadonlySet<DisconnectReason> = new Set([
  "left",
  "replaced",
  "kicked",
  "denied",
  "room_full",
  "policy_violation",
]);

/** Reasons after which the room's admission ticket is worthless or unwanted. */
export const DROP_TICKET_REASONS: ReadonlySet<DisconnectReason> = new Set(["left", "kicked", "denied"]);

export function reasonFromCloseCode(code: number): DisconnectReason | null {
  for (const [reason, value] of Object.entries(CLOSE_CODES)) {
    if (value === code) return reason as DisconnectReason;
  }
  return null;
}

export type CloseDecision = { reconnect: true } | { reconnect: false; reason: DisconnectReason };

export function decideOnClose(disconnect: ServerEvents["disconnect"] | null, closeCode: number): CloseDecision {
  if (disconnect) {
    return disconnect.reconnect ? { reconnect: true } : { reconnect: false, reason: disconnect.reason };
  }
  // A bare 1000 ("left") without the goodbye message is not ours to believe: a proxy may
  // close idle connections with it. Our own leave() never gets here.
  const reason = reasonFromCloseCode(closeCode);
  return reason !== null && reason !== "left" && FINAL_REASONS.has(reason)
    ? { reconnect: false, reason }
    : { reconnect: true };
}
