// Voice activity from audio levels: RMS of the time-domain samples, with hysteresis so that
// the "speaking" flag does not flicker between words.

export const SPEAKING_ON_RMS = 0.03;
export const SPEAKING_OFF_RMS = 0.015;
/** How long the level must stay below the "off" threshold before speaking ends. */
export const SPEAKING_HOLD_MS = 400;

/** Root mean square of samples in [-1, 1]. */
export function rms(samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

export interface SpeakingState {
  speaking: boolean;
  /** When the level last was above the "off" threshold, in ms. */
  lastLoudAt: number;
}

export const QUIET: SpeakingState = { speaking: false, lastLoudAt: -Infinity };

export function nextSpeaking(state: SpeakingState, level: number, nowMs: number): SpeakingState {
  if (level >= SPEAKING_ON_RMS) return { speaking: true, lastLoudAt: nowMs };
  if (level >= SPEAKING_OFF_RMS) {
    return state.speaking ? { speaking: true, lastLoudAt: nowMs } : state;
  }
  if (state.speaking && nowMs - state.lastLoudAt < SPEAKING_HOLD_MS) return state;
  return state.speaking ? { speaking: false, lastLoudAt: state.lastLoudAt } : state;
}
