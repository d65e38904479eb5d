import { describe, expect, it } from "vitest";
import {
  isOfferCollision,
  isPolite,
  isRemoteRestart,
  sdpSessionId,
  shouldIgnoreOffer,
  shouldInitiate,
} from "@/lib/negotiation";

const A = "g_AAAAAAAAAAAAAAAA";
const B = "g_BBBBBBBBBBBBBBBB";

describe("politeness and first offer", () => {
  it("makes exactly one side of a pair polite: the smaller clientId", () => {
    expect(isPolite(A, B)).toBe(true);
    expect(isPolite(B, A)).toBe(false);
    expect(isPolite("g_a", "g_B")).toBe(false); // code-unit order: "B" < "a"
    expect(isPolite("g_B", "g_a")).toBe(true);
  });

  it("lets only the impolite side create the first offer", () => {
    expect(shouldInitiate(A, B)).toBe(false);
    expect(shouldInitiate(B, A)).toBe(true);
    for (const [x, y] of [
      [A, B],
      ["auth0|1", "g_x"],
      ["g_1", "g_10"],
    ]) {
      expect(shouldInitiate(x, y) !== shouldInitiate(y, x)).toBe(true);
    }
  });
});

describe("offer collisions (glare)", () => {
  const stable = { makingOffer: false, signalingState: "stable" as const };

  it("is no collision when stable and not making an offer, or for answers", () => {
    expect(isOfferCollision({ descriptionType: "offer", ...stable })).toBe(false);
    expect(isOfferCollision({ descriptionType: "answer", makingOffer: true, signalingState: "have-local-offer" })).toBe(false);
  });

  it("is a collision while making an offer or with an offer pending", () => {
    expect(isOfferCollision({ descriptionType: "offer", makingOffer: true, signalingState: "stable" })).toBe(true);
    expect(isOfferCollision({ descriptionType: "offer", makingOffer: false, signalingState: "have-local-offer" })).toBe(true);
  });

  it("resolves glare on both sides: the impolite side ignores, the polite side accepts", () => {
    // A (polite) and B (impolite) both sent offers; each receives the other's.
    const atA = { descriptionType: "offer" as const, makingOffer: false, signalingState: "have-local-offer" as const };
    const atB = { ...atA };
    const aIgnores = shouldIgnoreOffer({ ...atA, polite: isPolite(A, B) });
    const bIgnores = shouldIgnoreOffer({ ...atB, polite: isPolite(B, A) });
    expect(aIgnores).toBe(false);
    expect(bIgnores).toBe(true);
  });

  it("never ignores a non-colliding offer, polite or not", () => {
    expect(shouldIgnoreOffer({ descriptionType: "offer", ...stable, polite: false })).toBe(false);
    expect(shouldIgnoreOffer({ descriptionType: "offer", ...stable, polite: true })).toBe(false);
  });
});

describe("remote restarts", () => {
  const sdp = (id: string) => `v=0\r\no=- ${id} 2 IN IP4 127.0.0.1\r\ns=-\r\n`;

  it("reads the o= session id", () => {
    expect(sdpSessionId(sdp("4611731400430051336"))).toBe("4611731400430051336");
    expect(sdpSessionId("garbage")).toBeNull();
  });

  it("detects a new peer connection on the other side by a changed session id", () => {
    expect(isRemoteRestart(null, sdp("1"))).toBe(false);
    expect(isRemoteRestart(sdp("1"), sdp("1"))).toBe(false);
    expect(isRemoteRestart(sdp("1"), sdp("2"))).toBe(true);
    expect(isRemoteRestart(sdp("1"), "no origin")).toBe(false);
  });
});
