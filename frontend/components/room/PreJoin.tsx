"use client";

import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { useShallow } from "zustand/react/shallow";
import { useCallStore, type MediaError } from "@/store/call-store";
import {
  avatarColor,
  displayNameError,
  initials,
  loadDisplayName,
  MAX_NAME_LENGTH,
  normalizeDisplayName,
  saveDisplayName,
} from "@/components/display-name";
import { AlertIcon } from "@/components/icons";
import { DevicePickers } from "./DevicePickers";
import { hasTrack } from "./derive";
import { CameraToggle, MicToggle } from "./MediaToggles";
import { RoomHeader } from "./RoomHeader";
import { StreamVideo } from "./StreamVideo";

const MEDIA_MESSAGES: Record<MediaError, { title: string; text: string; retry: boolean }> = {
  denied: {
    title: "Camera and microphone are blocked",
    text: "Allow access in your browser's site settings (the icon next to the address), then try again. You can also join without them and use chat.",
    retry: true,
  },
  not_found: {
    title: "No camera or microphone found — you can still join and chat",
    text: "Connect a device and try again if you want others to see or hear you.",
    retry: true,
  },
  in_use: {
    title: "Your camera or microphone is busy",
    text: "Another app or tab may be using it. Close it and try again, or join without them.",
    retry: true,
  },
  other: {
    title: "Your camera and microphone couldn't be started",
    text: "You can still join and chat, or try again.",
    retry: true,
  },
};

export function PreJoin({ roomId, initialName }: { roomId: string; initialName: string }) {
  const nameId = useId();
  const nameRef = useRef<HTMLInputElement>(null);
  const { localStream, audioEnabled, videoEnabled, mediaError } = useCallStore(
    useShallow((s) => ({
      localStream: s.localStream,
      audioEnabled: s.audioEnabled,
      videoEnabled: s.videoEnabled,
      mediaError: s.mediaError,
    })),
  );
  const actions = useCallStore((s) => s.actions);

  const [name, setName] = useState(initialName);
  const [nameError, setNameError] = useState<string | null>(null);
  const [joinError, setJoinError] = useState<string | null>(null);
  const [joining, setJoining] = useState(false);
  const started = useRef(false);

  // Pre-fill: ?name= first, else the name remembered on this device.
  useEffect(() => {
    if (!initialName) {
      const remembered = loadDisplayName();
      if (remembered) setName((current) => current || remembered);
    }
  }, [initialName]);

  // Start the camera and microphone preview once.
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    void actions.startPreview({ audio: true, video: true });
  }, [actions]);

  const hasAudio = hasTrack(localStream, "audio");
  const hasVideo = hasTrack(localStream, "video");
  const showVideo = hasVideo && videoEnabled;
  const trimmed = normalizeDisplayName(name);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (joining) return;
    const error = displayNameError(name);
    setNameError(error);
    if (error) {
      nameRef.current?.focus();
      return;
    }
    const displayName = normalizeDisplayName(name);
    saveDisplayName(displayName);
    setJoinError(null);
    setJoining(true);
    try {
      await actions.join({ displayName, audio: audioEnabled, video: videoEnabled });
    } catch (err) {
      setJoinError(err instanceof Error && err.message ? `Couldn't join: ${err.message}` : "Couldn't join the room. Try again.");
    } finally {
      setJoining(false);
    }
  }

  const media = mediaError ? MEDIA_MESSAGES[mediaError] : null;

  return (
    <div className="screen">
      <RoomHeader roomId={roomId} />
      <main className="prejoin">
        <section className="prejoin-preview" aria-label="Camera preview">
          <div className="preview-frame" data-camera={showVideo ? "on" : "off"}>
            <StreamVideo stream={localStream} muted mirrored hidden={!showVideo} />
            {trimmed && <span className="preview-name">{trimmed}</span>}
            {!showVideo && (
              <div className="tile-avatar">
                <span className="avatar avatar-xl" style={{ background: avatarColor(trimmed) }} aria-hidden="true">
                  {initials(trimmed || "You")}
                </span>
                <span className="preview-caption">{hasVideo ? "Your camera is off" : "No camera"}</span>
              </div>
            )}
            <div className="preview-controls">
              <MicToggle enabled={audioEnabled} onToggle={actions.toggleAudio} />
              <CameraToggle enabled={videoEnabled} onToggle={actions.toggleVideo} />
            </div>
          </div>

          {media && (
            <div className="notice notice-warning" role="alert">
              <AlertIcon size={18} />
              <div>
                <p className="notice-title">{media.title}</p>
                <p className="notice-text">{media.text}</p>
              </div>
              {media.retry && (
                <button type="button" className="btn btn-ghost btn-sm" onClick={() => void actions.startPreview({ audio: true, video: true })}>
                  Try again
                </button>
              )}
            </div>
          )}

          <DevicePickers />
        </section>

        <section className="prejoin-form" aria-labelledby="prejoin-title">
          <h1 id="prejoin-title" className="prejoin-title">
            Ready to join?
          </h1>
          <p className="prejoin-room">Check your camera and microphone, then join the call.</p>
          <form onSubmit={onSubmit} noValidate className="stack">
            <div className="field">
              <label htmlFor={nameId} className="field-label">
                Your name
              </label>
              <input
                ref={nameRef}
                id={nameId}
                className="input input-dark"
                type="text"
                autoComplete="name"
                placeholder="How others will see you"
                maxLength={MAX_NAME_LENGTH + 10}
                value={name}
                aria-invalid={nameError ? true : undefined}
                aria-describedby={nameError ? `${nameId}-error` : undefined}
                onChange={(e) => {
                  setName(e.target.value);
                  if (nameError) setNameError(null);
                }}
              />
              {nameError && (
                <p id={`${nameId}-error`} className="field-error" role="alert">
                  {nameError}
                </p>
              )}
            </div>
            <button type="submit" className="btn btn-primary btn-lg btn-block" disabled={joining} aria-busy={joining || undefined}>
              {joining && <span className="spinner spinner-sm" aria-hidden="true" />}
              <span>Join</span>
            </button>
            {joinError && (
              <p className="form-error" role="alert">
                {joinError}
              </p>
            )}
            <p className="prejoin-hint">
              {hasAudio || hasVideo
                ? `You'll join with your microphone ${audioEnabled ? "on" : "off"} and camera ${videoEnabled ? "on" : "off"}.`
                : "You'll join without camera or microphone. You can still see, hear and chat with everyone."}{" "}
              If the room has a host, they'll let you in.
            </p>
          </form>
        </section>
      </main>
    </div>
  );
}
