// An audio-level meter over a MediaStream: an AnalyserNode read every ~100 ms, fed through
// the speaking detector. One shared AudioContext for the page.

import { createLogger } from "./logger";
import { QUIET, nextSpeaking, rms, type SpeakingState } from "./speaking";

const log = createLogger("audio-meter");

export const METER_INTERVAL_MS = 100;

let shared: AudioContext | null = null;

function audioContext(): AudioContext | null {
  if (shared) return shared;
  if (typeof window === "undefined") return null;
  const Ctor =
    window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!Ctor) return null;
  try {
    shared = new Ctor();
  } catch (err) {
    log.warn("no AudioContext", err);
    return null;
  }
  return shared;
}

export interface AudioMeter {
  stop(): void;
}

/**
 * Calls `onSpeaking` whenever the speaking state of the stream's audio changes. Returns
 * null when there is no audio track or no Web Audio.
 */
export function startAudioMeter(stream: MediaStream, onSpeaking: (speaking: boolean) => void): AudioMeter | null {
  if (stream.getAudioTracks().length === 0) return null;
  const ctx = audioContext();
  if (!ctx) return null;
  if (ctx.state === "suspended") void ctx.resume().catch(() => undefined);
  let source: MediaStreamAudioSourceNode;
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096; // ~85 ms of samples at 48 kHz per read, read every 100 ms
  try {
    source = ctx.createMediaStreamSource(stream);
  } catch (err) {
    log.warn("cannot meter stream", err);
    return null;
  }
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let state: SpeakingState = QUIET;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    const next = nextSpeaking(state, rms(samples), performance.now());
    if (next.speaking !== state.speaking) onSpeaking(next.speaking);
    state = next;
  }, METER_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      try {
        source.disconnect();
      } catch {
        // Already disconnected.
      }
      if (state.speaking) onSpeaking(false);
    },
  };
}
