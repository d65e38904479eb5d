import { describe, expect, it } from "vitest";
import { newClientMessageId } from "@/lib/message-id";

describe("newClientMessageId", () => {
  it("uses crypto.randomUUID when there is one", () => {
    expect(newClientMessageId({ randomUUID: () => "uuid-1" })).toBe("uuid-1");
  });

  it("falls back to getRandomValues, then Math.random: unique, 1 to 64 characters", () => {
    const fallbacks = [
      { getRandomValues: <T extends ArrayBufferView | null>(a: T) => globalThis.crypto.getRandomValues(a as unknown as Uint8Array) as unknown as T },
      {},
      undefined,
      { randomUUID: () => { throw new Error("insecure context"); } },
    ];
    const seen = new Set<string>();
    for (const impl of fallbacks) {
      for (let i = 0; i < 50; i += 1) {
        const id = newClientMessageId(impl);
        expect(id.length).toBeGreaterThan(0);
        expect(id.length).toBeLessThanOrEqual(64);
        seen.add(id);
      }
    }
    expect(seen.size).toBe(200);
  });
});
