"use client";

import { useRouter } from "next/navigation";
import { useEffect, useId, useState, type FormEvent } from "react";
import { ApiError, createRoom, guestSignIn, isValidRoomId } from "@/lib/api";
import { ArrowRightIcon, CameraIcon } from "@/components/icons";
import { displayNameError, loadDisplayName, MAX_NAME_LENGTH, normalizeDisplayName, saveDisplayName } from "@/components/display-name";

/** A bare room id, or the id inside a full room link; null when neither. */
export function parseRoomInput(raw: string, origin: string): string | null {
  const input = raw.trim();
  if (input.length === 0) return null;
  if (isValidRoomId(input)) return input;
  let url: URL;
  try {
    url = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? new URL(input) : new URL(input.startsWith("/") ? input : `https://${input}`, origin);
  } catch {
    return null;
  }
  const segments = url.pathname.split("/").filter(Boolean);
  if (segments.length !== 1) return null;
  let candidate: string;
  try {
    candidate = decodeURIComponent(segments[0]);
  } catch {
    return null;
  }
  return isValidRoomId(candidate) ? candidate : null;
}

function createErrorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.code === "guest_auth_disabled") return "Guest sign-in is turned off on this server.";
    if (err.code === "invalid_display_name") return "The server didn't accept that name. Try a different one.";
    if (err.code === "backend_unreachable" || err.code === "network_error" || err.status >= 500)
      return "We couldn't reach the server. Check your connection and try again.";
    return `Couldn't create a room: ${err.message}`;
  }
  return "Couldn't create a room. Try again.";
}

export function HomeForm() {
  const router = useRouter();
  const ids = useId();
  const nameId = `${ids}-name`;
  const roomId = `${ids}-room`;

  const [name, setName] = useState("");
  const [roomInput, setRoomInput] = useState("");
  const [nameError, setNameError] = useState<string | null>(null);
  const [roomError, setRoomError] = useState<string | null>(null);
  const [createError, setCreateError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    const remembered = loadDisplayName();
    if (remembered) setName((current) => current || remembered);
  }, []);

  function roomHref(id: string, displayName: string): string {
    const query = displayName ? `?name=${encodeURIComponent(displayName)}` : "";
    return `/${encodeURIComponent(id)}${query}`;
  }

  async function onCreate(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (creating) return;
    setCreateError(null);
    const error = displayNameError(name);
    setNameError(error);
    if (error) {
      document.getElementById(nameId)?.focus();
      return;
    }
    const displayName = normalizeDisplayName(name);
    saveDisplayName(displayName);
    setCreating(true);
    try {
      const token = await guestSignIn(displayName);
      const room = await createRoom(token.token);
      router.push(roomHref(room.roomId, displayName));
    } catch (err) {
      setCreateError(createErrorMessage(err));
      setCreating(false);
    }
  }

  function onJoin(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const id = parseRoomInput(roomInput, window.location.origin);
    if (roomInput.trim().length === 0) {
      setRoomError("Paste a room link or type a room code.");
      document.getElementById(roomId)?.focus();
      return;
    }
    if (!id) {
      setRoomError("That doesn't look like a room link or code. Codes use letters, digits, - and _ (3–64 characters).");
      document.getElementById(roomId)?.focus();
      return;
    }
    setRoomError(null);
    const displayName = normalizeDisplayName(name);
    if (displayName && !displayNameError(displayName)) saveDisplayName(displayName);
    router.push(roomHref(id, displayNameError(displayName) ? "" : displayName));
  }

  return (
    <div className="home-card">
      <form className="home-section" onSubmit={onCreate} noValidate aria-labelledby={`${ids}-start`}>
        <h2 id={`${ids}-start`} className="home-card-title">
          Start a call
        </h2>
        <p className="home-card-lead">You&apos;ll be the host: people you invite wait until you let them in.</p>
        <div className="field">
          <label htmlFor={nameId} className="field-label">
            Your name
          </label>
          <input
            id={nameId}
            className="input"
            type="text"
            autoComplete="name"
            placeholder="e.g. Ann Lee"
            maxLength={MAX_NAME_LENGTH + 10}
            value={name}
            aria-invalid={nameError ? true : undefined}
            aria-describedby={nameError ? `${nameId}-error` : `${nameId}-hint`}
            onChange={(e) => {
              setName(e.target.value);
              if (nameError) setNameError(null);
            }}
          />
          {nameError ? (
            <p id={`${nameId}-error`} className="field-error" role="alert">
              {nameError}
            </p>
          ) : (
            <p id={`${nameId}-hint`} className="field-hint">
              Shown to everyone in the call. We remember it on this device.
            </p>
          )}
        </div>
        <button type="submit" className="btn btn-primary btn-lg btn-block" aria-busy={creating || undefined} disabled={creating}>
          {creating ? <span className="spinner spinner-sm" aria-hidden="true" /> : <CameraIcon size={18} />}
          <span>Create room</span>
        </button>
        {createError && (
          <p className="form-error" role="alert">
            {createError}
          </p>
        )}
      </form>

      <div className="divider" role="separator">
        <span>or join a call</span>
      </div>

      <form className="home-section" onSubmit={onJoin} noValidate>
        <div className="field">
          <label htmlFor={roomId} className="field-label">
            Room link or code
          </label>
          <div className="input-row">
            <input
              id={roomId}
              className="input"
              type="text"
              inputMode="url"
              autoComplete="off"
              autoCapitalize="off"
              spellCheck={false}
              placeholder="Paste a link or code"
              value={roomInput}
              aria-invalid={roomError ? true : undefined}
              aria-describedby={roomError ? `${roomId}-error` : undefined}
              onChange={(e) => {
                setRoomInput(e.target.value);
                if (roomError) setRoomError(null);
              }}
            />
            <button type="submit" className="btn btn-secondary">
              <span>Join room</span>
              <ArrowRightIcon size={16} />
            </button>
          </div>
          {roomError && (
            <p id={`${roomId}-error`} className="field-error" role="alert">
              {roomError}
            </p>
          )}
        </div>
      </form>
    </div>
  );
}
