// ICE servers for the call: the signed-in /api/config (STUN + TURN with short-lived
// credentials) before the WebSocket opens, the `ice_servers` event each WebSocket connection
// starts with, refreshed before their expiry during long calls, and the relay-only mode
// (`iceTransportPolicy: "relay"`, from `?relay=1` or the Settings panel).

import { hasTurnServer } from "@/lib/api";
import { createLogger } from "@/lib/logger";
import type { ClientConfig, ServerEvents } from "@/lib/protocol";
import { toast, type Ctx } from "./session";

const log = createLogger("ice");

/** Refresh when this fraction of the credential's remaining lifetime has passed. */
export const ICE_REFRESH_FRACTION = 0.8;
/** Never refresh more often than this (a short TTL or a client clock ahead of the server's). */
export const ICE_REFRESH_MIN_MS = 15_000;
/** After a failed refresh, try again this much later. */
export const ICE_REFRESH_RETRY_MS = 30_000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2_147_483_647;

export const RELAY_WITHOUT_TURN =
  "Relay-only mode needs a TURN server, and this server has none configured: media will not flow";

/** Milliseconds from `nowMs` until the credentials expiring at `expiresAt` (Unix seconds) are refreshed. */
export function iceRefreshDelay(expiresAt: number, nowMs: number): number {
  const remaining = expiresAt * 1000 - nowMs;
  return Math.min(MAX_TIMER_MS, Math.max(ICE_REFRESH_MIN_MS, Math.floor(remaining * ICE_REFRESH_FRACTION)));
}

/** How long joining waits for the signed-in config before connecting with what it has. */
export const ICE_CONFIG_WAIT_MS = 5_000;

/**
 * Takes `iceServers` for the call: kept in the config (for new peer connections) and given to
 * the open ones (`setConfiguration`). `whole` stands in for a config not loaded yet.
 */
function applyIceServers(
  ctx: Ctx,
  iceServers: RTCIceServer[],
  expiresAt: number | null,
  whole?: ClientConfig,
): void {
  const { session } = ctx;
  const base = session.config ?? whole;
  if (!base) return;
  session.config = { ...base, iceServers, iceServersExpiresAt: expiresAt };
  session.mesh?.updateConfiguration({ iceServers });
}

function applyConfig(ctx: Ctx, fresh: ClientConfig): void {
  applyIceServers(ctx, fresh.iceServers, fresh.iceServersExpiresAt ?? null, fresh);
}

/**
 * The `ice_servers` event, the first message of every WebSocket connection: servers and TURN
 * credentials minted when that connection opened. Applied like a refreshed /api/config, and
 * the refresh is rescheduled from their expiry, so a reconnect after a long time away has
 * working credentials at once, before the `room_state` that builds peer connections.
 */
export function onIceServers(ctx: Ctx, payload: ServerEvents["ice_servers"]): void {
  if (!Array.isArray(payload.iceServers)) {
    log.warn("ignoring an ice_servers event without a list of servers");
    return;
  }
  const expiresAt = typeof payload.expiresAt === "number" ? payload.expiresAt : null;
  applyIceServers(ctx, payload.iceServers, expiresAt);
  log.debug("ICE servers from the connection");
  const getToken = ctx.session.iceGetToken;
  if (getToken) scheduleIceRefresh(ctx, getToken);
}

/**
 * Fetches /api/config with the participant's token and takes its ICE servers (TURN
 * included) for the call, then schedules their refresh. Keeps the servers it had when that
 * fails (STUN only). Waits at most ICE_CONFIG_WAIT_MS: a later answer still reaches the peer
 * connections (setConfiguration). Warns when relay-only is on and there is no TURN server.
 */
export async function loadSignedInIceServers(
  ctx: Ctx,
  token: string,
  getToken: () => Promise<string>,
): Promise<void> {
  const generation = ctx.session.iceGeneration;
  ctx.session.iceGetToken = getToken;
  const load = (async () => {
    try {
      const fresh = await ctx.deps.api.getConfig(token);
      if (generation !== ctx.session.iceGeneration) return;
      applyConfig(ctx, fresh);
      scheduleIceRefresh(ctx, getToken);
    } catch (err) {
      if (generation !== ctx.session.iceGeneration) return;
      log.warn("could not load the signed-in configuration (TURN servers)", err);
      scheduleIceRefresh(ctx, getToken, ICE_REFRESH_RETRY_MS);
    }
    warnIfRelayWithoutTurn(ctx);
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const slow = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ICE_CONFIG_WAIT_MS);
  });
  try {
    await Promise.race([load, slow]);
  } finally {
    clearTimeout(timer);
  }
}

/** Schedules the next refresh of the TURN credentials, when they expire at all. */
export function scheduleIceRefresh(ctx: Ctx, getToken: () => Promise<string>, delayMs?: number): void {
  const { session } = ctx;
  if (session.iceRefreshTimer !== null) clearTimeout(session.iceRefreshTimer);
  session.iceRefreshTimer = null;
  const expiresAt = session.config?.iceServersExpiresAt ?? null;
  if (delayMs === undefined) {
    if (expiresAt === null) return;
    delayMs = iceRefreshDelay(expiresAt, ctx.deps.now());
  }
  const generation = session.iceGeneration;
  log.debug("refreshing the ICE servers in", Math.round(delayMs / 1000), "s");
  session.iceRefreshTimer = setTimeout(() => {
    session.iceRefreshTimer = null;
    if (generation !== session.iceGeneration) return;
    void refreshIceServers(ctx, getToken, generation);
  }, delayMs);
}

async function refreshIceServers(ctx: Ctx, getToken: () => Promise<string>, generation: number): Promise<void> {
  const { session } = ctx;
  const before = session.config?.iceServersExpiresAt ?? null;
  let ok = false;
  try {
    const token = await getToken();
    if (generation !== session.iceGeneration) return;
    const fresh = await ctx.deps.api.getConfig(token);
    if (generation !== session.iceGeneration) return;
    applyConfig(ctx, fresh);
    ok = true;
    log.info("ICE servers refreshed");
  } catch (err) {
    if (generation !== session.iceGeneration) return;
    log.warn("could not refresh the ICE servers, trying again", err);
  }
  const after = session.config?.iceServersExpiresAt ?? null;
  // A refresh that did not move the expiry forward (or failed) is retried a little later.
  if (!ok || (after !== null && before !== null && after <= before)) {
    scheduleIceRefresh(ctx, getToken, ICE_REFRESH_RETRY_MS);
  } else {
    scheduleIceRefresh(ctx, getToken);
  }
}

/** Warns (once per call of this) when relay-only is on but there is no TURN server to relay through. */
export function warnIfRelayWithoutTurn(ctx: Ctx): void {
  if (!ctx.get().relayOnly) return;
  if (hasTurnServer(ctx.session.config?.iceServers ?? [])) return;
  toast(ctx, { kind: "warning", text: RELAY_WITHOUT_TURN });
}
