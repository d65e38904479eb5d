// Ids for chat messages we send (`clientMessageId`, 1 to 64 characters, unique per message).

interface CryptoLike {
  randomUUID?: () => string;
  getRandomValues?: <T extends ArrayBufferView | null>(array: T) => T;
}

let counter = 0;

/**
 * A fresh `clientMessageId`: `crypto.randomUUID()` where available (it is missing outside
 * secure contexts, e.g. plain http on a LAN address), else random hex from
 * `crypto.getRandomValues`, else Math.random plus time and a counter. At most 64 characters.
 */
export function newClientMessageId(cryptoImpl: CryptoLike | undefined = globalThis.crypto): string {
  if (typeof cryptoImpl?.randomUUID === "function") {
    try {
      return cryptoImpl.randomUUID();
    } catch {
      // fall through (some browsers throw outside secure contexts)
    }
  }
  counter = (counter + 1) % 1_000_000;
  let random = "";
  if (typeof cryptoImpl?.getRandomValues === "function") {
    try {
      const bytes = cryptoImpl.getRandomValues(new Uint8Array(16));
      random = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    } catch {
      random = "";
    }
  }
  if (!random) {
    for (let i = 0; i < 4; i += 1) random += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0");
  }
  return `m-${Date.now().toString(36)}-${counter.toString(36)}-${random}`; // ≤ 2+9+1+4+1+32 < 64
}
