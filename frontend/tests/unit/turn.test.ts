// TURN in the web app: the signed-in /api/config, ICE servers for the peer connections,
// their refresh before `iceServersExpiresAt`, and relay-only mode (`?relay=1`, the setting).

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApi, hasTurnServer, relayParam } from "@/lib/api";
import { decodeServerMessage } from "@/lib/envelope";
import { PeerMesh } from "@/lib/peer-mesh";
import type { ClientConfig } from "@/lib/protocol";
import { createCallStore, type CallStore } from "@/store/call-store";
import {
  ICE_CONFIG_WAIT_MS,
  ICE_REFRESH_MIN_MS,
  ICE_REFRESH_RETRY_MS,
  iceRefreshDelay,
  RELAY_WITHOUT_TURN,
} from "@/store/ice";
import { CONFIG, fakeDeps, member, roomState, type FakeSignaling } from "./fake-deps";
import { FakePeerConnection, FakeStream, FakeTrack } from "./fake-rtc";
import { fakePc, Net } from "./mesh-harness";

const ann = member("Ann");
const bob = member("Bob");
const cleo = member("Cleo");

/** fakeDeps' clock: 1_000_000 ms, i.e. Unix second 1000. */
const NOW_S = 1000;
const TTL_S = 3600;

function signedIn(expiresAt: number, n: number): ClientConfig {
  return {
    ...CONFIG,
    iceServers: [
      { urls: ["stun:stun.example.org"] },
      {
        urls: ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
        username: `${expiresAt}:g_ann`,
        credential: `secret-${n}`,
      },
    ],
    iceServersExpiresAt: expiresAt,
  };
}

let f: ReturnType<typeof fakeDeps>;
let store: CallStore;
let meshes: PeerMesh[];
let configs: number;

const state = () => store.getState();
const actions = () => store.getState().actions;
const sig = (): FakeSignaling => {
  const s = f.signalings[f.signalings.length - 1];
  if (!s) throw new Error("no signaling");
  return s;
};
const pcs = () => FakePeerConnection.instances;
const tokenCalls = () => f.api.getConfig.mock.calls.filter(([token]) => token !== undefined);

/** A store whose mesh is the real PeerMesh over fake peer connections. */
function setup(options: { search?: string; turn?: boolean } = {}) {
  f = fakeDeps({ search: options.search });
  meshes = [];
  configs = 0;
  f.api.getConfig.mockImplementation(async (token?: string) => {
    if (!token || options.turn === false) return CONFIG;
    configs += 1;
    // Each answer's credential lives TTL_S from "now" (the clock does not move: the same expiry
    // would be minted, so each answer is pushed one TTL further to tell them apart).
    return signedIn(NOW_S + TTL_S * configs, configs);
  });
  f.deps.createMesh = (opts) => {
    const mesh = new PeerMesh({
      ...opts,
      createPeerConnection: (config) => new FakePeerConnection(config) as unknown as RTCPeerConnection,
      createMediaStream: (tracks) => new FakeStream(tracks as unknown as FakeTrack[]) as unknown as MediaStream,
    });
    meshes.push(mesh);
    return mesh;
  };
  store = createCallStore(f.deps);
}

async function joinRoom(others = [bob]) {
  await actions().prepare("room-1");
  await actions().join({ displayName: "Ann", audio: false, video: false });
  sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, ...others]) });
}

beforeEach(() => {
  FakePeerConnection.instances = [];
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("REST: the signed-in config", () => {
  it("sends the token as a Bearer header when given one", async () => {
    const fetchFn = vi.fn(async (_url: string, _init?: RequestInit) => new Response(JSON.stringify(CONFIG)));
    const api = createApi(fetchFn);
    await api.getConfig();
    await api.getConfig("tok-1");
    const auth = fetchFn.mock.calls.map(([, init]) => (init?.headers as Record<string, string>).Authorization);
    expect(auth).toEqual([undefined, "Bearer tok-1"]);
    expect(fetchFn.mock.calls.map(([url]) => url)).toEqual(["/api/config", "/api/config"]);
  });

  it("tells TURN servers from STUN ones and reads ?relay", () => {
    expect(hasTurnServer(CONFIG.iceServers)).toBe(false);
    expect(hasTurnServer(signedIn(1, 1).iceServers)).toBe(true);
    expect(hasTurnServer([{ urls: "turns:t.example.org:443" }])).toBe(true);
    expect(relayParam("?relay=1")).toBe(true);
    expect(relayParam("?name=Ann&relay=true")).toBe(true);
    expect(relayParam("?relay=0")).toBe(false);
    expect(relayParam("?name=Ann")).toBeNull();
    expect(relayParam("")).toBeNull();
  });

  it("refreshes at 80% of the remaining lifetime, within bounds", () => {
    expect(iceRefreshDelay(NOW_S + 3600, NOW_S * 1000)).toBe(2_880_000);
    expect(iceRefreshDelay(NOW_S + 5, NOW_S * 1000)).toBe(ICE_REFRESH_MIN_MS);
    expect(iceRefreshDelay(NOW_S - 100, NOW_S * 1000)).toBe(ICE_REFRESH_MIN_MS);
    expect(iceRefreshDelay(NOW_S + 1e9, NOW_S * 1000)).toBe(2_147_483_647);
  });
});

describe("call store: TURN servers", () => {
  it("fetches the config with the participant's token after signing in and gives peer connections its TURN servers", async () => {
    setup();
    await joinRoom([bob, cleo]);
    expect(f.api.getConfig.mock.calls[0]).toEqual([]); // prepare: anonymous
    expect(tokenCalls()).toEqual([["tok1"]]); // the guest token from sign-in
    expect(pcs()).toHaveLength(2);
    for (const pc of pcs()) {
      expect(pc.config.iceServers).toEqual(signedIn(NOW_S + TTL_S, 1).iceServers);
      expect(pc.config.iceTransportPolicy).toBeUndefined(); // the default, "all"
    }
    expect(state().toasts).toEqual([]);
  });

  it("keeps STUN only (and joins anyway) when the signed-in config cannot be loaded", async () => {
    setup();
    await actions().prepare("room-1");
    f.api.getConfig.mockRejectedValueOnce(new Error("offline"));
    await actions().join({ displayName: "Ann", audio: false, video: false });
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob]) });
    expect(pcs()[0]?.config.iceServers).toEqual(CONFIG.iceServers);
    expect(sig().connected).toBe(true);
  });

  it("does not hold the join up for a slow config: a late answer still reaches the connections", async () => {
    setup();
    await actions().prepare("room-1");
    let answer: (config: ClientConfig) => void = () => undefined;
    f.api.getConfig.mockImplementationOnce(() => new Promise<ClientConfig>((resolve) => (answer = resolve)));
    const joining = actions().join({ displayName: "Ann", audio: false, video: false });
    await vi.advanceTimersByTimeAsync(ICE_CONFIG_WAIT_MS);
    await joining;
    expect(sig().connected).toBe(true);
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob]) });
    const [pc] = pcs();
    expect(pc?.config.iceServers).toEqual(CONFIG.iceServers);
    answer(signedIn(NOW_S + TTL_S, 1));
    await vi.advanceTimersByTimeAsync(0);
    expect(pc?.getConfiguration().iceServers).toEqual(signedIn(NOW_S + TTL_S, 1).iceServers);
    expect(vi.getTimerCount()).toBeGreaterThan(0); // the refresh is scheduled
  });

  it("refreshes the ICE servers before they expire and applies them to open and new connections", async () => {
    setup();
    await joinRoom();
    const [pc] = pcs();
    if (!pc) throw new Error("no pc");
    expect(tokenCalls()).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(2_880_000 - 1);
    expect(tokenCalls()).toHaveLength(1);
    expect(pc.configurations).toEqual([]);

    await vi.advanceTimersByTimeAsync(1);
    expect(tokenCalls()).toHaveLength(2);
    const second = signedIn(NOW_S + 2 * TTL_S, 2).iceServers;
    expect(pc.configurations).toHaveLength(1);
    expect(pc.configurations[0]).toMatchObject({ iceServers: second, iceTransportPolicy: "all" });
    expect(pc.getConfiguration().iceServers).toEqual(second);

    // A newcomer's connection gets the fresh credentials.
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob, cleo]) });
    expect(pcs()).toHaveLength(2);
    expect(pcs()[1]?.config.iceServers).toEqual(second);

    // The next refresh is due at 80% of the new credential's remaining lifetime (2 TTLs from "now").
    await vi.advanceTimersByTimeAsync(0.8 * 2 * TTL_S * 1000);
    expect(tokenCalls()).toHaveLength(3);
    expect(pc.configurations).toHaveLength(2);
    expect(pcs()[1]?.configurations).toHaveLength(1);
  });

  it("retries a failed refresh and stops refreshing when the call ends", async () => {
    setup();
    await joinRoom();
    const [pc] = pcs();
    f.api.getConfig.mockRejectedValueOnce(new Error("offline"));
    await vi.advanceTimersByTimeAsync(2_880_000);
    expect(tokenCalls()).toHaveLength(2);
    expect(pc?.configurations).toEqual([]);
    await vi.advanceTimersByTimeAsync(ICE_REFRESH_RETRY_MS);
    expect(tokenCalls()).toHaveLength(3);
    expect(pc?.configurations).toHaveLength(1);

    actions().leave();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10 * TTL_S * 1000);
    expect(tokenCalls()).toHaveLength(3);
  });

  it("schedules nothing without TURN (no expiry)", async () => {
    setup({ turn: false });
    await joinRoom();
    expect(tokenCalls()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10 * TTL_S * 1000);
    expect(tokenCalls()).toHaveLength(1);
  });
});

/** An `ice_servers` event as the server sends it first on every connection. */
function iceServersEvent(expiresAt: number | null, credential = `ws-${expiresAt}`) {
  const iceServers: RTCIceServer[] =
    expiresAt === null
      ? CONFIG.iceServers
      : [
          { urls: ["stun:stun.example.org"] },
          { urls: ["turn:turn.example.org:3478?transport=udp"], username: `${expiresAt}:g_ann`, credential },
        ];
  return { event: "ice_servers", payload: { iceServers, expiresAt } };
}

describe("call store: ICE servers from the WebSocket (ice_servers)", () => {
  it("is understood by the envelope decoder", () => {
    const message = iceServersEvent(NOW_S + TTL_S);
    expect(decodeServerMessage(JSON.stringify(message))).toEqual(message);
  });

  it("the connection's servers, sent before room_state, are the ones the first peer connections get", async () => {
    setup();
    await actions().prepare("room-1");
    await actions().join({ displayName: "Ann", audio: false, video: false });
    const fromWs = iceServersEvent(NOW_S + TTL_S, "from-the-socket");
    sig().emit(fromWs);
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob, cleo]) });
    expect(pcs()).toHaveLength(2);
    for (const pc of pcs()) expect(pc.config.iceServers).toEqual(fromWs.payload.iceServers);
    expect(state().toasts).toEqual([]);
  });

  it("a rejoin after a long disconnection uses the fresh credentials at once and reschedules the refresh", async () => {
    setup();
    await joinRoom();
    const [pc] = pcs();
    if (!pc) throw new Error("no pc");
    expect(tokenCalls()).toHaveLength(1);

    // Hours later (the laptop slept): the WebSocket reconnects before any /api/config refresh.
    sig().status({ state: "reconnecting", attempt: 1, delayMs: 1000 });
    const later = NOW_S + 10 * TTL_S;
    f.deps.now = () => later * 1000;
    const fresh = iceServersEvent(later + 2 * TTL_S);
    sig().emit(fresh);
    expect(tokenCalls()).toHaveLength(1); // no REST round trip needed
    // Open connections and new ones get them.
    expect(pc.configurations).toHaveLength(1);
    expect(pc.getConfiguration()).toMatchObject({ iceServers: fresh.payload.iceServers, iceTransportPolicy: "all" });
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob, cleo]) });
    expect(pcs()[1]?.config.iceServers).toEqual(fresh.payload.iceServers);

    // The refresh now follows the new expiry: 80% of 2 TTLs, not the old 80% of one.
    await vi.advanceTimersByTimeAsync(1.6 * TTL_S * 1000 - 1);
    expect(tokenCalls()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(tokenCalls()).toHaveLength(2);
    expect(pc.getConfiguration().iceServers).toEqual(signedIn(NOW_S + 2 * TTL_S, 2).iceServers);

    actions().leave();
    expect(vi.getTimerCount()).toBe(0);
    sig().emit(iceServersEvent(later + 3 * TTL_S)); // after the end: ignored
    expect(vi.getTimerCount()).toBe(0);
  });

  it("STUN only (no TURN on the server): applied, and no refresh is scheduled", async () => {
    setup({ turn: false });
    await joinRoom();
    const [pc] = pcs();
    sig().emit(iceServersEvent(null));
    expect(pc?.getConfiguration().iceServers).toEqual(CONFIG.iceServers);
    await vi.advanceTimersByTimeAsync(10 * TTL_S * 1000);
    expect(tokenCalls()).toHaveLength(1);
  });

  it("replaces a pending retry of a failed refresh", async () => {
    setup();
    await actions().prepare("room-1");
    f.api.getConfig.mockRejectedValueOnce(new Error("offline"));
    await actions().join({ displayName: "Ann", audio: false, video: false });
    expect(tokenCalls()).toHaveLength(1); // failed: a retry is due in ICE_REFRESH_RETRY_MS
    const fresh = iceServersEvent(NOW_S + TTL_S);
    sig().emit(fresh);
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob]) });
    expect(pcs()[0]?.config.iceServers).toEqual(fresh.payload.iceServers);
    await vi.advanceTimersByTimeAsync(ICE_REFRESH_RETRY_MS);
    expect(tokenCalls()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(0.8 * TTL_S * 1000 - ICE_REFRESH_RETRY_MS);
    expect(tokenCalls()).toHaveLength(2);
  });

  it("ignores a payload without a list of servers", async () => {
    setup();
    await joinRoom();
    const [pc] = pcs();
    sig().emit({ event: "ice_servers", payload: { expiresAt: NOW_S + 5 * TTL_S } });
    expect(pc?.configurations).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_880_000);
    expect(tokenCalls()).toHaveLength(2); // the refresh /api/config gave still stands
  });
});

describe("call store: relay-only mode", () => {
  it("?relay=1 makes every peer connection relay-only", async () => {
    setup({ search: "?relay=1" });
    await joinRoom([bob, cleo]);
    expect(state().relayOnly).toBe(true);
    expect(pcs()).toHaveLength(2);
    for (const pc of pcs()) expect(pc.config.iceTransportPolicy).toBe("relay");
    expect(state().toasts).toEqual([]);

    // A refresh keeps the policy.
    await vi.advanceTimersByTimeAsync(2_880_000);
    expect(pcs()[0]?.getConfiguration().iceTransportPolicy).toBe("relay");
  });

  it("without ?relay the connections use every path", async () => {
    setup({ search: "?name=Ann" });
    await joinRoom();
    expect(state().relayOnly).toBe(false);
    expect(pcs()[0]?.config.iceTransportPolicy).toBeUndefined();
  });

  it("warns when relay-only is on but the server has no TURN", async () => {
    setup({ search: "?relay=1", turn: false });
    await joinRoom();
    expect(pcs()[0]?.config.iceTransportPolicy).toBe("relay");
    expect(state().toasts).toMatchObject([{ kind: "warning", text: RELAY_WITHOUT_TURN }]);
  });

  it("the setting switches open connections and new ones", async () => {
    setup({ turn: false });
    await joinRoom();
    const [pc] = pcs();
    actions().setRelayOnly(true);
    expect(state().relayOnly).toBe(true);
    expect(pc?.getConfiguration().iceTransportPolicy).toBe("relay");
    expect(state().toasts.map((t) => t.text)).toEqual([RELAY_WITHOUT_TURN]);
    sig().emit({ event: "room_state", payload: roomState(ann, "participant", [ann, bob, cleo]) });
    expect(pcs()[1]?.config.iceTransportPolicy).toBe("relay");
    actions().setRelayOnly(false);
    expect(pc?.getConfiguration().iceTransportPolicy).toBe("all");
  });

  it("the setting survives preparing another room unless the URL says otherwise", async () => {
    setup();
    await actions().prepare("room-1");
    actions().setRelayOnly(true);
    await actions().prepare("room-2");
    expect(state().relayOnly).toBe(true);
  });
});

describe("PeerMesh: configuration updates", () => {
  it("passes servers and policy to new connections, updates open ones and restarts ICE on a policy change", async () => {
    vi.useRealTimers();
    const net = new Net();
    const turn = signedIn(NOW_S + TTL_S, 1).iceServers;
    const a = net.mesh("g_a", {}, { iceServers: turn, iceTransportPolicy: "relay" });
    const b = net.mesh("g_b");
    a.sync(["g_a", "g_b"]);
    b.sync(["g_a", "g_b"]);
    await net.flush();
    const pa = fakePc(a, "g_b");
    expect(pa.config).toEqual({ iceServers: turn, iceTransportPolicy: "relay" });
    expect(pa.signalingState).toBe("stable");

    const fresh = signedIn(NOW_S + 2 * TTL_S, 2).iceServers;
    a.updateConfiguration({ iceServers: fresh });
    expect(pa.getConfiguration()).toMatchObject({ iceServers: fresh, iceTransportPolicy: "relay" });
    expect(pa.iceRestarts).toBe(0); // new credentials: used at the next restart, none forced

    a.updateConfiguration({ iceTransportPolicy: "all" });
    expect(pa.getConfiguration()).toMatchObject({ iceServers: fresh, iceTransportPolicy: "all" });
    expect(pa.iceRestarts).toBe(1);
    await net.flush();
    expect(pa.signalingState).toBe("stable");
  });
});
