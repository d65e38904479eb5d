// The display name the user last used, remembered in localStorage, and its validation
// (the backend's rules: docs/protocol.md, "Display name").

const STORAGE_KEY = "videoconf.displayName";
export const MAX_NAME_LENGTH = 50;

export function loadDisplayName(): string {
  try {
    return window.localStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

export function saveDisplayName(name: string): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, name);
  } catch {
    // Private mode or storage disabled: nothing to remember.
  }
}

export function normalizeDisplayName(name: string): string {
  return name.trim().replace(/\s+/g, " ");
}

// Control, zero-width and bidi-override characters.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]/;

/** An error message for the name, or null when the backend will accept it. */
export function displayNameError(raw: string): string | null {
  const name = normalizeDisplayName(raw);
  if (name.length === 0) return "Enter your name so others know who you are.";
  if ([...name].length > MAX_NAME_LENGTH) return `Use at most ${MAX_NAME_LENGTH} characters.`;
  if (/[<>]/.test(name)) return "Names can't contain < or >.";
  if (INVISIBLE.test(name)) return "Names can't contain invisible or control characters.";
  return null;
}

export function initials(name: string): string {
  const words = normalizeDisplayName(name).split(" ").filter(Boolean);
  if (words.length === 0) return "?";
  const first = [...words[0]][0] ?? "";
  const last = words.length > 1 ? ([...words[words.length - 1]][0] ?? "") : "";
  return (first + last).toUpperCase();
}

const AVATAR_COLORS = ["#5b7cfa", "#14a38b", "#d9822b", "#b45fd6", "#e05a77", "#3f9fd8", "#7a9a2e", "#c76b4d"];

/** A stable color per display name (the same person looks the same on every screen). */
export function avatarColor(name: string): string {
  const seed = normalizeDisplayName(name).toLowerCase();
  let hash = 0;
  for (let i = 0; i < seed.length; i++) hash = (hash * 31 + seed.charCodeAt(i)) | 0;
  return AVATAR_COLORS[Math.abs(hash) % AVATAR_COLORS.length];
}
