// sessionStorage access that never throws (private modes, no DOM under tests).

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** An in-memory storage, for tests and for environments without sessionStorage. */
export function memoryStorage(): KeyValueStorage {
  const data = new Map<string, string>();
  return {
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => void data.set(key, value),
    removeItem: (key) => void data.delete(key),
  };
}

/** The tab's sessionStorage, or an in-memory one when it is not available. */
export function sessionStore(): KeyValueStorage {
  try {
    if (typeof window !== "undefined" && window.sessionStorage) {
      const s = window.sessionStorage;
      return {
        getItem: (key) => {
          try {
            return s.getItem(key);
          } catch {
            return null;
          }
        },
        setItem: (key, value) => {
          try {
            s.setItem(key, value);
          } catch {
            // Quota or privacy mode: the identity simply does not survive a reload.
          }
        },
        removeItem: (key) => {
          try {
            s.removeItem(key);
          } catch {
            // As above.
          }
        },
      };
    }
  } catch {
    // Access to window.sessionStorage itself can throw (sandboxed frames).
  }
  return memoryStorage();
}

export function readJson(storage: KeyValueStorage, key: string): unknown {
  const raw = storage.getItem(key);
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    storage.removeItem(key);
    return null;
  }
}
