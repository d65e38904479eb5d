// @vitest-environment jsdom
import { useCallStore } from "@/store/call-store";
import { createLogger, getLogLevel, setLogLevel } from "@/lib/logger";
import { describe, expect, it, vi } from "vitest";

describe("in the browser", () => {
  it("exposes window.__videoconf for end-to-end tests", () => {
    const handle = window.__videoconf;
    expect(handle).toBeDefined();
    expect(handle?.state()).toBe(useCallStore.getState());
    expect(handle?.state().phase).toBe("idle");
    expect(handle?.peerConnections()).toEqual({});
  });
});

describe("logger", () => {
  it("is silent under tests and at level silent, verbose when asked", () => {
    const debug = vi.spyOn(console, "debug").mockImplementation(() => undefined);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const before = getLogLevel();
    const log = createLogger("t");
    setLogLevel("silent");
    log.error("x");
    expect(error).not.toHaveBeenCalled();
    setLogLevel("debug");
    log.debug("y", 1);
    expect(debug).toHaveBeenCalledWith("[videoconf:t]", "y", 1);
    setLogLevel("warn");
    log.debug("z");
    expect(debug).toHaveBeenCalledTimes(1);
    setLogLevel(before);
  });
});
