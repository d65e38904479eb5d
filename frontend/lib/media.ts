// Camera, microphone and screen capture.

import { createLogger } from "./logger";

const log = createLogger("media");

export type MediaError = "denied" | "not_found" | "in_use" | "other";

/** Why capture failed, from the DOMException name. */
export function classifyMediaError(err: unknown): MediaError {
  const name = typeof err === "object" && err !== null && "name" in err ? (err as { name: unknown }).name : undefined;
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
    case "PermissionDeniedError":
      return "denied";
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError":
      return "not_found";
    case "NotReadableError":
    case "TrackStartError":
      return "in_use";
    default:
      return "other";
  }
}

export interface CaptureRequest {
  audio: boolean;
  video: boolean;
  audioDeviceId?: string | null;
  videoDeviceId?: string | null;
}

/** getUserMedia constraints: ideal 640x360; a chosen device is required exactly. */
export function buildConstraints(request: CaptureRequest): MediaStreamConstraints {
  const audio: boolean | MediaTrackConstraints = request.audio
    ? request.audioDeviceId
      ? { deviceId: { exact: request.audioDeviceId }, echoCancellation: true, noiseSuppression: true }
      : { echoCancellation: true, noiseSuppression: true }
    : false;
  const video: boolean | MediaTrackConstraints = request.video
    ? {
        width: { ideal: 640 },
        height: { ideal: 360 },
        ...(request.videoDeviceId ? { deviceId: { exact: request.videoDeviceId } } : {}),
      }
    : false;
  return { audio, video };
}

export interface CaptureResult {
  stream: MediaStream | null;
  /** The first failure, also when a fallback got part of what was asked. */
  error: MediaError | null;
}

export type MediaDevicesLike = Pick<MediaDevices, "getUserMedia" | "enumerateDevices" | "getDisplayMedia">;

export function browserMediaDevices(): MediaDevicesLike | null {
  if (typeof navigator === "undefined" || !navigator.mediaDevices) return null;
  return navigator.mediaDevices;
}

/**
 * Captures what was asked. When asking for both fails, tries the microphone alone, then the
 * camera alone, so that a busy camera does not also cost the microphone.
 */
export async function captureUserMedia(
  request: CaptureRequest,
  devices: MediaDevicesLike | null = browserMediaDevices(),
): Promise<CaptureResult> {
  if (!request.audio && !request.video) return { stream: null, error: null };
  if (!devices) return { stream: null, error: "other" };
  try {
    return { stream: await devices.getUserMedia(buildConstraints(request)), error: null };
  } catch (err) {
    const error = classifyMediaError(err);
    log.warn("getUserMedia failed", error, err);
    if (!(request.audio && request.video) || error === "denied") return { stream: null, error };
    for (const single of [{ ...request, video: false }, { ...request, audio: false }]) {
      try {
        return { stream: await devices.getUserMedia(buildConstraints(single)), error };
      } catch {
        // Try the next one.
      }
    }
    return { stream: null, error };
  }
}

export interface DeviceLists {
  audioInputs: MediaDeviceInfo[];
  videoInputs: MediaDeviceInfo[];
}

export async function listDevices(devices: MediaDevicesLike | null = browserMediaDevices()): Promise<DeviceLists> {
  if (!devices) return { audioInputs: [], videoInputs: [] };
  try {
    const all = await devices.enumerateDevices();
    return {
      audioInputs: all.filter((d) => d.kind === "audioinput"),
      videoInputs: all.filter((d) => d.kind === "videoinput"),
    };
  } catch (err) {
    log.warn("enumerateDevices failed", err);
    return { audioInputs: [], videoInputs: [] };
  }
}

/** The screen (or window/tab) to share; rejects when the user cancels. */
export async function captureScreen(devices: MediaDevicesLike | null = browserMediaDevices()): Promise<MediaStream> {
  if (!devices || typeof devices.getDisplayMedia !== "function") {
    throw new DOMException("screen capture is not supported", "NotSupportedError");
  }
  return devices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
}

export function stopStream(stream: MediaStream | null | undefined): void {
  if (!stream) return;
  for (const track of stream.getTracks()) {
    try {
      track.stop();
    } catch {
      // Already stopped.
    }
  }
}

/** The device id a live track was opened with, when the browser says. */
export function trackDeviceId(track: MediaStreamTrack | undefined): string | null {
  if (!track || typeof track.getSettings !== "function") return null;
  return track.getSettings().deviceId ?? null;
}
