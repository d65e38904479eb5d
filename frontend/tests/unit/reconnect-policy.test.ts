import { describe, expect, it } from "vitest";
import { decideOnClose, reasonFromCloseCode } from "@/lib/reconnect-policy";

describe("reconnect policy", () => {
  it("follows the disconnect event's flag when one arrived", () => {
    expect(decideOnClose({ reason: "server_shutdown", reconnect: true }, 1012)).toEqual({ reconnect: true });
    expect(decideOnClose({ reason: "kicked", reconnect: false }, 1006)).toEqual({ reconnect: false, reason: "kicked" });
  });

  it("without one, stops only for the final close codes", () => {
    expect(decideOnClose(null, 1006)).toEqual({ reconnect: true });
    expect(decideOnClose(null, 1000)).toEqual({ reconnect: true });
    expect(decideOnClose(null, 1009)).toEqual({ reconnect: true });
    expect(decideOnClose(null, 4008)).toEqual({ reconnect: true });
    expect(decideOnClose(null, 1013)).toEqual({ reconnect: true });
    expect(decideOnClose(null, 4000)).toEqual({ reconnect: false, reason: "replaced" });
    expect(decideOnClose(null, 4002)).toEqual({ reconnect: false, reason: "denied" });
    expect(decideOnClose(null, 1008)).toEqual({ reconnect: false, reason: "policy_violation" });
  });

  it("maps close codes to reasons", () => {
    expect(reasonFromCloseCode(4003)).toBe("room_full");
    expect(reasonFromCloseCode(1006)).toBeNull();
  });
});
