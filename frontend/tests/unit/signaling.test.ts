import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeServerMessage, encodeClientMessage } from "@/lib/envelope";
import { SignalingClient, type SignalingStatus } from "@/lib/signaling";
import { memoryStorage, type KeyValueStorage } from "@/lib/storage";
import { ticketKey } from "@/lib/tickets";
import { FakeWebSocket } from "./fake-websocket";

const URL = "ws://localhost:8080/ws/hub/room-1";

function roomState() {
  return {
    event: "room_state",
    payload: {
      roomId: "room-1",
      you: { clientId: "g_a", displayName: "Ann", role: "host" },
      hosts: [],
      participants: [],
      screenshareAllowed: [],
      handsRaised: [],
      waitingUsers: [],
      screenshareRequests: [],
      sharingScreen: [],
      unmuted: [],
      cameraOn: [],
    },
  };
}

describe("envelope", () => {
  it("encodes client events", () => {
    expect(encodeClientMessage("toggle_audio", { enabled: true })).toBe('{"event":"toggle_audio","payload":{"enabled":true}}');
  });

  it("decodes server events and rejects everything else without throwing", () => {
    expect(decodeServerMessage('{"event":"pong","payload":{"timestamp":1,"serverTime":2}}')).toEqual({
      event: "pong",
      payload: { timestamp: 1, serverTime: 2 },
    });
    expect(decodeServerMessage('{"event":"recents_chat"}')).toEqual({ event: "recents_chat", payload: {} });
    for (const bad of ["", "{", "[]", "null", '"x"', '{"event":1}', '{"event":"nope","payload":{}}', '{"event":"pong","payload":[]}']) {
      expect(decodeServerMessage(bad)).toBeNull();
    }
    expect(decodeServerMessage(new ArrayBuffer(4))).toBeNull();
  });
});

describe("SignalingClient", () => {
  let storage: KeyValueStorage;
  let statuses: SignalingStatus[];
  let random: () => number;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
    FakeWebSocket.reset();
    storage = memoryStorage();
    statuses = [];
    random = () => 0.5;
  });
  afterEach(() => vi.useRealTimers());

  function client(getToken = async () => "a.b.c") {
    const c = new SignalingClient({
      roomId: "room-1",
      url: URL,
      getToken,
      WebSocketImpl: FakeWebSocket,
      storage,
      random: () => random(),
    });
    c.onStatus((s) => statuses.push(s));
    return c;
  }

  async function connected(c: SignalingClient): Promise<FakeWebSocket> {
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeWebSocket.last();
    ws.open();
    return ws;
  }

  it("offers the subprotocol and the token, and sends JSON envelopes once open", async () => {
    const c = client();
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe(URL);
    expect(ws.protocols).toEqual(["videoconf.v1", "a.b.c"]);
    expect(c.send("raise_hand", {})).toBe(false); // not open yet: dropped
    ws.open();
    expect(c.send("add_chat", { chatContent: "hi" })).toBe(true);
    expect(ws.events()).toEqual([{ event: "add_chat", payload: { chatContent: "hi" } }]);
    expect(statuses.map((s) => s.state)).toEqual(["connecting", "open"]);
  });

  it("dispatches typed events and survives garbage and throwing handlers", async () => {
    const c = client();
    const ws = await connected(c);
    const pongs: number[] = [];
    const all: string[] = [];
    c.on("pong", (p) => pongs.push(p.serverTime));
    c.on("pong", () => {
      throw new Error("handler bug");
    });
    c.onMessage((m) => all.push(m.event));
    ws.receive("not json");
    ws.receive({ event: "mystery", payload: {} });
    ws.receive({ event: "pong", payload: { timestamp: null, serverTime: 42 } });
    const off = c.on("pong", () => pongs.push(-1));
    off();
    ws.receive({ event: "pong", payload: { timestamp: null, serverTime: 43 } });
    expect(pongs).toEqual([42, 43]);
    expect(all).toEqual(["pong", "pong"]);
  });

  it("keeps the latest ticket per room and presents it when reconnecting", async () => {
    const c = client();
    const ws = await connected(c);
    ws.receive({ event: "ticket", payload: { ticket: "t1", role: "participant", expiresAt: 2000 } });
    ws.receive({ event: "ticket", payload: { ticket: "t/2", role: "host", expiresAt: 2000 } });
    expect(JSON.parse(storage.getItem(ticketKey("room-1")) ?? "{}")).toMatchObject({ ticket: "t/2" });
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeWebSocket.last().url).toBe(`${URL}?ticket=t%2F2`);
  });

  it("ignores an expired ticket", async () => {
    storage.setItem(ticketKey("room-1"), JSON.stringify({ ticket: "old", role: "host", expiresAt: 999 }));
    const c = client();
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.last().url).toBe(URL);
  });

  it("reconnects after an abnormal close with exponential backoff and full jitter", async () => {
    const c = client();
    let ws = await connected(c);
    const delays: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      ws.serverClose(1006);
      const status = statuses[statuses.length - 1];
      expect(status.state).toBe("reconnecting");
      if (status.state === "reconnecting") delays.push(status.delayMs);
      const before = FakeWebSocket.instances.length;
      await vi.advanceTimersByTimeAsync(status.state === "reconnecting" ? status.delayMs - 1 : 0);
      expect(FakeWebSocket.instances.length).toBe(before); // not yet
      await vi.advanceTimersByTimeAsync(1);
      expect(FakeWebSocket.instances.length).toBe(before + 1);
      ws = FakeWebSocket.last();
      ws.open();
    }
    // random() = 0.5: half of 500, 1000, 2000, 4000, 8000, 10000 (cap)
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000]);
  });

  it("also retries when the handshake is refused (close before open) or the token fails", async () => {
    let fail = true;
    const c = client(async () => {
      if (fail) throw new Error("offline");
      return "a.b.c";
    });
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(statuses[statuses.length - 1]).toMatchObject({ state: "reconnecting", attempt: 1 });
    fail = false;
    await vi.advanceTimersByTimeAsync(250);
    FakeWebSocket.last().serverClose(1006);
    expect(statuses[statuses.length - 1]).toMatchObject({ state: "reconnecting", attempt: 2, delayMs: 500 });
  });

  it("times out a handshake that never completes", async () => {
    const c = client();
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    const first = FakeWebSocket.last();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(first.readyState).toBe(2); // given up on
    expect(statuses[statuses.length - 1].state).toBe("reconnecting");
  });

  it("resets the attempt counter after a room_state", async () => {
    const c = client();
    let ws = await connected(c);
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(250);
    ws = FakeWebSocket.last();
    ws.open();
    ws.serverClose(1006); // attempt 1: 500 ms ceiling
    expect(statuses[statuses.length - 1]).toMatchObject({ delayMs: 500 });
    await vi.advanceTimersByTimeAsync(500);
    ws = FakeWebSocket.last();
    ws.open();
    ws.receive(roomState());
    ws.serverClose(1006);
    expect(statuses[statuses.length - 1]).toMatchObject({ state: "reconnecting", attempt: 1, delayMs: 250 });
  });

  it("resets the attempt counter after a connection that lasted more than 10 s", async () => {
    const c = client();
    let ws = await connected(c);
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(250);
    ws = FakeWebSocket.last();
    ws.open();
    await vi.advanceTimersByTimeAsync(10_001);
    ws.serverClose(1006);
    expect(statuses[statuses.length - 1]).toMatchObject({ attempt: 1, delayMs: 250 });
  });

  for (const reason of ["kicked", "denied", "left", "replaced", "room_full", "policy_violation"] as const) {
    it(`stops after disconnect ${reason}`, async () => {
      const c = client();
      const ws = await connected(c);
      ws.receive({ event: "disconnect", payload: { reason, reconnect: false } });
      ws.serverClose(1000);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeWebSocket.instances).toHaveLength(1);
      expect(statuses[statuses.length - 1]).toEqual({ state: "closed", reason });
    });
  }

  it("stops on a final close code even when the disconnect message was lost", async () => {
    const c = client();
    const ws = await connected(c);
    ws.serverClose(4001);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(statuses[statuses.length - 1]).toEqual({ state: "closed", reason: "kicked" });
  });

  for (const reason of ["server_shutdown", "server_busy", "slow_consumer"] as const) {
    it(`reconnects after disconnect ${reason}`, async () => {
      const c = client();
      const ws = await connected(c);
      ws.receive({ event: "disconnect", payload: { reason, reconnect: true } });
      ws.serverClose(1012);
      expect(statuses[statuses.length - 1]).toMatchObject({ state: "reconnecting", delayMs: 250 });
      await vi.advanceTimersByTimeAsync(250);
      expect(FakeWebSocket.instances).toHaveLength(2);
    });
  }

  it("leave() sends disconnect, drops the ticket and never reconnects", async () => {
    storage.setItem(ticketKey("room-1"), JSON.stringify({ ticket: "t", role: "host", expiresAt: 9e9 }));
    const c = client();
    const ws = await connected(c);
    c.leave();
    expect(ws.events()).toEqual([{ event: "disconnect", payload: {} }]);
    expect(storage.getItem(ticketKey("room-1"))).toBeNull();
    ws.receive({ event: "disconnect", payload: { reason: "left", reconnect: false } });
    ws.serverClose(1000);
    expect(statuses[statuses.length - 1]).toEqual({ state: "closed", reason: "left" });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it("leave() closes by itself when the server does not", async () => {
    const c = client();
    const ws = await connected(c);
    c.leave();
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.closedWith).toBe(1000);
    expect(statuses[statuses.length - 1]).toEqual({ state: "closed", reason: "left" });
  });

  it("close() stops for good, also during a pending reconnect", async () => {
    const c = client();
    const ws = await connected(c);
    ws.serverClose(1006);
    c.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(statuses[statuses.length - 1]).toEqual({ state: "closed", reason: "client" });
  });
});
