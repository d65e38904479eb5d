// Exponential backoff with "full jitter" (AWS architecture blog): the delay before retry
// number `attempt` (0-based) is uniform in [0, min(cap, base * 2^attempt)).

export interface BackoffOptions {
  /** First ceiling, in ms. */
  baseMs?: number;
  /** Largest ceiling, in ms. */
  capMs?: number;
  /** Returns a number in [0, 1). */
  random?: () => number;
}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 10_000;

/** The ceiling of the delay for this attempt: min(cap, base * 2^attempt). */
export function backoffCeiling(attempt: number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2^n overflows to Infinity for huge n, which Math.min handles.
  return Math.min(capMs, baseMs * 2 ** n);
}

/** The delay in ms before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS, random = Math.random } = options;
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCeiling(attempt, baseMs, capMs));
}
