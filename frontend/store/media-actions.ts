// Local media in the store: preview, device choice, mute/camera toggles, screen sharing.

import { createLogger } from "@/lib/logger";
import { classifyMediaError, stopStream, trackDeviceId } from "@/lib/media";
import { isAdmitted, mayShareScreen, restartLocalMeter, send, toast, type Ctx } from "./session";

const log = createLogger("media");

type Kind = "audio" | "video";

function trackOf(stream: MediaStream | null, kind: Kind): MediaStreamTrack | null {
  if (!stream) return null;
  return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] ?? null;
}

const FLAG = { audio: "audioEnabled", video: "videoEnabled" } as const;
const SELECTED = { audio: "selectedAudioInput", video: "selectedVideoInput" } as const;
const TOGGLE = { audio: "toggle_audio", video: "toggle_video" } as const;

/** Announces our microphone, camera and screen state (after admission and reconnects). */
export function sendMediaState(ctx: Ctx): void {
  const { audioEnabled, videoEnabled, sharing } = ctx.get();
  send(ctx, "toggle_audio", { enabled: audioEnabled });
  send(ctx, "toggle_video", { enabled: videoEnabled });
  if (sharing && mayShareScreen(ctx)) send(ctx, "toggle_screenshare", { enabled: true });
}

export async function startPreview(ctx: Ctx, opts: { audio: boolean; video: boolean }): Promise<void> {
  const seq = ++ctx.session.previewSeq;
  const { selectedAudioInput, selectedVideoInput } = ctx.get();
  const request = { ...opts, audioDeviceId: selectedAudioInput, videoDeviceId: selectedVideoInput };
  let result = await ctx.deps.media.capture(request);
  if (result.error === "not_found" && (selectedAudioInput || selectedVideoInput)) {
    result = await ctx.deps.media.capture(opts); // the chosen device is gone: take the default
  }
  if (seq !== ctx.session.previewSeq || ctx.get().phase === "ended") {
    stopStream(result.stream);
    return;
  }
  const old = ctx.get().localStream;
  const stream = result.stream;
  if (old && old !== stream) stopStream(old);
  const audio = trackOf(stream, "audio");
  const video = trackOf(stream, "video");
  ctx.set({
    localStream: stream,
    mediaError: result.error,
    audioEnabled: audio !== null && opts.audio,
    videoEnabled: video !== null && opts.video,
    selectedAudioInput: trackDeviceId(audio ?? undefined) ?? selectedAudioInput,
    selectedVideoInput: trackDeviceId(video ?? undefined) ?? selectedVideoInput,
  });
  ctx.session.mesh?.setLocalTrack("audio", audio);
  ctx.session.mesh?.setLocalTrack("video", video);
  restartLocalMeter(ctx, ctx.get().self?.clientId ?? null);
  if (isAdmitted(ctx)) sendMediaState(ctx);
  const devices = await ctx.deps.media.listDevices();
  if (seq === ctx.session.previewSeq) ctx.set({ devices });
}

/** Opens `deviceId` for `kind` and swaps it in everywhere (replaceTrack: no renegotiation). */
export async function selectInput(ctx: Ctx, kind: Kind, deviceId: string | null): Promise<boolean> {
  const result = await ctx.deps.media.capture({
    audio: kind === "audio",
    video: kind === "video",
    audioDeviceId: kind === "audio" ? deviceId : null,
    videoDeviceId: kind === "video" ? deviceId : null,
  });
  const track = trackOf(result.stream, kind);
  if (ctx.get().phase === "ended") {
    stopStream(result.stream);
    return false;
  }
  if (!track) {
    stopStream(result.stream);
    const what = kind === "audio" ? "microphone" : "camera";
    ctx.set({ mediaError: result.error ?? "other" });
    toast(ctx, { kind: "error", text: `Could not use the ${what}` });
    return false;
  }
  const state = ctx.get();
  const old = state.localStream;
  const oldTrack = trackOf(old, kind);
  // Choosing a device when there was none turns it on.
  const enabled = oldTrack ? state[FLAG[kind]] : true;
  track.enabled = enabled;
  const keep = old ? (kind === "audio" ? old.getVideoTracks() : old.getAudioTracks()) : [];
  const stream = ctx.deps.media.createStream(kind === "audio" ? [track, ...keep] : [...keep, track]);
  oldTrack?.stop();
  ctx.set({
    localStream: stream,
    mediaError: null,
    [FLAG[kind]]: enabled,
    [SELECTED[kind]]: trackDeviceId(track) ?? deviceId,
  });
  ctx.session.mesh?.setLocalTrack(kind, track);
  restartLocalMeter(ctx, state.self?.clientId ?? null);
  if (isAdmitted(ctx) && enabled !== state[FLAG[kind]]) send(ctx, TOGGLE[kind], { enabled });
  if (state.devices.audioInputs.length + state.devices.videoInputs.length === 0 || !oldTrack) {
    ctx.set({ devices: await ctx.deps.media.listDevices() });
  }
  return true;
}

/** Mute/unmute or camera off/on: track.enabled, and the announcement when admitted. */
export function toggle(ctx: Ctx, kind: Kind): void {
  const state = ctx.get();
  const next = !state[FLAG[kind]];
  const track = trackOf(state.localStream, kind);
  if (next && !track) {
    // Nothing captured yet: open the chosen (or default) device; that turns it on.
    void selectInput(ctx, kind, state[SELECTED[kind]]);
    return;
  }
  if (track) track.enabled = next;
  ctx.set({ [FLAG[kind]]: next });
  if (isAdmitted(ctx)) send(ctx, TOGGLE[kind], { enabled: next });
}

export async function startScreenshare(ctx: Ctx): Promise<void> {
  if (ctx.get().sharing) return;
  if (!mayShareScreen(ctx)) {
    toast(ctx, { kind: "warning", text: "A host has to allow you to share your screen first" });
    return;
  }
  let stream: MediaStream;
  try {
    stream = await ctx.deps.media.captureScreen();
  } catch (err) {
    log.info("no screen to share", err);
    if (classifyMediaError(err) !== "denied") toast(ctx, { kind: "error", text: "Could not share your screen" });
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track || ctx.get().phase === "ended" || ctx.get().sharing || !mayShareScreen(ctx)) {
    stopStream(stream);
    return;
  }
  // The browser's own "Stop sharing" bar ends the track.
  track.addEventListener("ended", () => {
    if (ctx.get().screenStream === stream) stopScreenshareLocally(ctx, { announce: true });
  });
  ctx.set({ screenStream: stream, sharing: true, screenshareRequested: false });
  ctx.session.mesh?.setScreenTrack(track);
  send(ctx, "toggle_screenshare", { enabled: true });
}

/** Stops our screen share; `announce` sends toggle_screenshare false (when still allowed). */
export function stopScreenshareLocally(ctx: Ctx, { announce }: { announce: boolean }): void {
  const { screenStream, sharing } = ctx.get();
  if (!sharing && !screenStream) return;
  ctx.set({ sharing: false, screenStream: null });
  ctx.session.mesh?.setScreenTrack(null);
  stopStream(screenStream);
  if (announce && mayShareScreen(ctx)) send(ctx, "toggle_screenshare", { enabled: false });
}
