// One guest identity per browser tab, kept in sessionStorage so that a reload or a
// reconnect keeps the same clientId (and so the role within the reconnect grace period).

import { ApiError, createApi, type Api } from "./api";
import { createLogger } from "./logger";
import type { GuestToken } from "./protocol";
import { readJson, sessionStore, type KeyValueStorage } from "./storage";

const log = createLogger("identity");

export const IDENTITY_KEY = "videoconf.identity";
/** Refresh a token that expires within this many ms. */
export const REFRESH_MARGIN_MS = 10 * 60 * 1000;

/** The server's display-name normalisation: trimmed, inner whitespace runs become one space. */
export function normalizeDisplayName(name: string): string {
  return name.trim().replace(/\s+/g, " ");
}

function isGuestToken(value: unknown): value is GuestToken {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.token === "string" &&
    typeof v.clientId === "string" &&
    typeof v.displayName === "string" &&
    typeof v.expiresAt === "number"
  );
}

export function loadIdentity(storage: KeyValueStorage): GuestToken | null {
  const value = readJson(storage, IDENTITY_KEY);
  return isGuestToken(value) ? value : null;
}

export function saveIdentity(storage: KeyValueStorage, identity: GuestToken): void {
  storage.setItem(IDENTITY_KEY, JSON.stringify(identity));
}

export function clearIdentity(storage: KeyValueStorage): void {
  storage.removeItem(IDENTITY_KEY);
}

export function needsRefresh(identity: GuestToken, nowMs: number): boolean {
  return identity.expiresAt * 1000 - nowMs < REFRESH_MARGIN_MS;
}

export interface IdentityDeps {
  api: Pick<Api, "guestSignIn" | "refresh">;
  storage: KeyValueStorage;
  now?: () => number;
}

async function signIn(deps: IdentityDeps, displayName: string): Promise<GuestToken> {
  const identity = await deps.api.guestSignIn(displayName);
  saveIdentity(deps.storage, identity);
  return identity;
}

/**
 * A usable token for this tab. Reuses the stored identity (refreshing it when it expires
 * within 10 minutes); signs in afresh when there is none, when `displayName` differs from
 * the stored one, or when the server no longer accepts the stored token.
 */
export async function ensureIdentity(deps: IdentityDeps, displayName?: string): Promise<GuestToken> {
  const now = deps.now ?? Date.now;
  const stored = loadIdentity(deps.storage);
  const wanted = displayName === undefined ? undefined : normalizeDisplayName(displayName);
  if (!stored || (wanted !== undefined && stored.displayName !== wanted)) {
    if (wanted === undefined) throw new ApiError(401, "missing_token", "no identity in this tab");
    return signIn(deps, wanted);
  }
  if (!needsRefresh(stored, now())) return stored;
  try {
    const fresh = await deps.api.refresh(stored.token);
    saveIdentity(deps.storage, fresh);
    return fresh;
  } catch (err) {
    if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
      // Expired, or signed by a server secret that is gone: a new identity it must be.
      log.warn("token refresh refused, signing in again", err.code);
      return signIn(deps, wanted ?? stored.displayName);
    }
    // Network trouble: the stored token may still be good enough.
    log.warn("token refresh failed", err);
    return stored;
  }
}

/**
 * This tab's identity for `displayName` with the default REST client and sessionStorage:
 * use it instead of a bare guestSignIn (e.g. before creating a room) so that joining later
 * reuses the same clientId.
 */
export async function signInForTab(displayName: string): Promise<GuestToken> {
  return ensureIdentity({ api: createApi(), storage: sessionStore() }, displayName);
}
