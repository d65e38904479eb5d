import { describe, expect, it, vi } from "vitest";
import { buildConstraints, captureUserMedia, classifyMediaError, listDevices, type MediaDevicesLike } from "@/lib/media";
import { isRelayed } from "@/lib/rtc-stats";
import { nextSpeaking, QUIET, rms, SPEAKING_HOLD_MS } from "@/lib/speaking";

const domError = (name: string) => Object.assign(new Error(name), { name });

describe("media errors", () => {
  it("classifies getUserMedia failures", () => {
    expect(classifyMediaError(domError("NotAllowedError"))).toBe("denied");
    expect(classifyMediaError(domError("NotFoundError"))).toBe("not_found");
    expect(classifyMediaError(domError("OverconstrainedError"))).toBe("not_found");
    expect(classifyMediaError(domError("NotReadableError"))).toBe("in_use");
    expect(classifyMediaError(domError("AbortError"))).toBe("other");
    expect(classifyMediaError("nope")).toBe("other");
    expect(classifyMediaError(null)).toBe("other");
  });
});

describe("capture", () => {
  it("asks for 640x360 and the chosen devices exactly", () => {
    expect(buildConstraints({ audio: true, video: true, audioDeviceId: "mic", videoDeviceId: "cam" })).toEqual({
      audio: { deviceId: { exact: "mic" }, echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 360 }, deviceId: { exact: "cam" } },
    });
    expect(buildConstraints({ audio: false, video: true }).audio).toBe(false);
  });

  function devices(getUserMedia: (c: MediaStreamConstraints) => Promise<MediaStream>): MediaDevicesLike {
    return {
      getUserMedia: vi.fn(getUserMedia),
      enumerateDevices: vi.fn(async () => [
        { kind: "audioinput", deviceId: "m" } as MediaDeviceInfo,
        { kind: "videoinput", deviceId: "c" } as MediaDeviceInfo,
        { kind: "audiooutput", deviceId: "s" } as MediaDeviceInfo,
      ]),
      getDisplayMedia: vi.fn(),
    };
  }

  it("falls back to the microphone alone when the camera is busy", async () => {
    const stream = {} as MediaStream;
    const d = devices(async (c) => {
      if (c.video) throw domError("NotReadableError");
      return stream;
    });
    await expect(captureUserMedia({ audio: true, video: true }, d)).resolves.toEqual({ stream, error: "in_use" });
  });

  it("does not retry after a refusal, and needs no call for nothing", async () => {
    const d = devices(async () => {
      throw domError("NotAllowedError");
    });
    await expect(captureUserMedia({ audio: true, video: true }, d)).resolves.toEqual({ stream: null, error: "denied" });
    expect(d.getUserMedia).toHaveBeenCalledTimes(1);
    await expect(captureUserMedia({ audio: false, video: false }, d)).resolves.toEqual({ stream: null, error: null });
    await expect(captureUserMedia({ audio: true, video: false }, null)).resolves.toEqual({ stream: null, error: "other" });
  });

  it("lists inputs by kind", async () => {
    const lists = await listDevices(devices(async () => ({}) as MediaStream));
    expect(lists.audioInputs.map((d) => d.deviceId)).toEqual(["m"]);
    expect(lists.videoInputs.map((d) => d.deviceId)).toEqual(["c"]);
  });
});

describe("speaking detection", () => {
  it("computes RMS", () => {
    expect(rms([])).toBe(0);
    expect(rms([0.5, -0.5, 0.5, -0.5])).toBeCloseTo(0.5);
  });

  it("switches on above the upper threshold and off after a quiet hold time", () => {
    let s = nextSpeaking(QUIET, 0.02, 0); // between thresholds: stays quiet
    expect(s.speaking).toBe(false);
    s = nextSpeaking(s, 0.1, 100);
    expect(s.speaking).toBe(true);
    s = nextSpeaking(s, 0.02, 200); // between thresholds: keeps speaking
    expect(s.speaking).toBe(true);
    s = nextSpeaking(s, 0.001, 300);
    expect(s.speaking).toBe(true); // within the hold time
    s = nextSpeaking(s, 0.001, 200 + SPEAKING_HOLD_MS);
    expect(s.speaking).toBe(false);
  });
});

describe("relayed connections", () => {
  const report = (local: string, remote: string, viaTransport = true) =>
    new Map<string, unknown>([
      ...(viaTransport ? [["T", { id: "T", type: "transport", selectedCandidatePairId: "P" }] as const] : []),
      ["P", { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", nominated: true, state: "succeeded" }],
      ["X", { id: "X", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R", state: "failed" }],
      ["L", { id: "L", type: "local-candidate", candidateType: local }],
      ["L2", { id: "L2", type: "local-candidate", candidateType: "relay" }],
      ["R", { id: "R", type: "remote-candidate", candidateType: remote }],
    ]);

  it("reads the selected pair's candidate types", () => {
    expect(isRelayed(report("host", "host"))).toBe(false);
    expect(isRelayed(report("relay", "host"))).toBe(true);
    expect(isRelayed(report("srflx", "relay"))).toBe(true);
    expect(isRelayed(report("host", "srflx", false))).toBe(false);
    expect(isRelayed(report("relay", "srflx", false))).toBe(true);
    expect(isRelayed(new Map())).toBe(false);
  });
});
