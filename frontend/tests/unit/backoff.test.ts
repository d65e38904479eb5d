import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay, BACKOFF_BASE_MS, BACKOFF_CAP_MS } from "@/lib/backoff";

describe("backoff", () => {
  it("doubles the ceiling from 500 ms up to the 10 s cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 30, 5000].map((n) => backoffCeiling(n))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000,
    ]);
    expect(BACKOFF_BASE_MS).toBe(500);
    expect(BACKOFF_CAP_MS).toBe(10_000);
  });

  it("draws uniformly below the ceiling (full jitter)", () => {
    expect(backoffDelay(0, { random: () => 0 })).toBe(0);
    expect(backoffDelay(0, { random: () => 0.5 })).toBe(250);
    expect(backoffDelay(3, { random: () => 0.25 })).toBe(1000);
    expect(backoffDelay(100, { random: () => 0.999 })).toBe(9990);
  });

  it("stays within [0, ceiling] even for odd random values and attempts", () => {
    expect(backoffDelay(2, { random: () => 7 })).toBe(2000);
    expect(backoffDelay(2, { random: () => -1 })).toBe(0);
    expect(backoffDelay(-3, { random: () => 0.5 })).toBe(250);
    for (let i = 0; i < 200; i += 1) {
      const d = backoffDelay(i % 12);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(backoffCeiling(i % 12));
    }
  });

  it("honours custom base and cap", () => {
    expect(backoffDelay(4, { baseMs: 100, capMs: 1000, random: () => 0.5 })).toBe(500);
  });
});
