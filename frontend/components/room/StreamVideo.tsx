"use client";

import { useEffect, useRef, useState } from "react";
import { PlayIcon } from "@/components/icons";

interface StreamVideoProps {
  stream: MediaStream | null;
  /** Own camera and own screen: never play back one's own audio. */
  muted?: boolean;
  /** Own camera preview is mirrored, like a mirror. */
  mirrored?: boolean;
  /** Keep the element (and its audio) but hide the picture, e.g. when the camera is off. */
  hidden?: boolean;
  /** object-fit: contain for screen shares (nothing cropped). */
  fit?: "cover" | "contain";
  className?: string;
}

/**
 * A <video> bound to a MediaStream through `srcObject`. When the browser refuses to start
 * playback with sound (autoplay policy), a button lets the user start it.
 */
export function StreamVideo({ stream, muted = false, mirrored = false, hidden = false, fit = "cover", className }: StreamVideoProps) {
  const ref = useRef<HTMLVideoElement>(null);
  const [blocked, setBlocked] = useState(false);

  useEffect(() => {
    const video = ref.current;
    if (!video) return;
    video.muted = muted;
    video.defaultMuted = muted;
    if (video.srcObject !== stream) video.srcObject = stream;
    if (!stream) {
      setBlocked(false);
      return;
    }
    let cancelled = false;
    const tryPlay = () => {
      video.play().then(
        () => {
          if (!cancelled) setBlocked(false);
        },
        (err: unknown) => {
          if (!cancelled && err instanceof DOMException && err.name === "NotAllowedError") setBlocked(true);
        },
      );
    };
    tryPlay();
    stream.addEventListener("addtrack", tryPlay);
    return () => {
      cancelled = true;
      stream.removeEventListener("addtrack", tryPlay);
    };
  }, [stream, muted]);

  useEffect(() => {
    const video = ref.current;
    return () => {
      if (video) video.srcObject = null;
    };
  }, []);

  const classes = ["stream-video", `fit-${fit}`, mirrored ? "mirrored" : "", hidden ? "is-hidden" : "", className ?? ""]
    .filter(Boolean)
    .join(" ");

  return (
    <>
      <video ref={ref} className={classes} autoPlay playsInline muted={muted} />
      {blocked && (
        <button
          type="button"
          className="play-blocked"
          onClick={() => {
            const video = ref.current;
            if (video) video.play().then(() => setBlocked(false), () => undefined);
          }}
        >
          <PlayIcon size={16} />
          <span>Play audio and video</span>
        </button>
      )}
    </>
  );
}
