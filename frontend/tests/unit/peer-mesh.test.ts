import { beforeEach, describe, expect, it } from "vitest";
import type { ServerMessage } from "@/lib/protocol";
import { FakePeerConnection, FakeTrack } from "./fake-rtc";
import { fakePc, Net } from "./mesh-harness";

// "g_a" < "g_b": A is polite and waits, B is impolite and makes the first offer.
const A = "g_a";
const B = "g_b";

async function connectedPair(net: Net) {
  const a = net.mesh(A);
  const b = net.mesh(B);
  a.sync([A, B]);
  b.sync([A, B]);
  await net.flush();
  return { a, b };
}

beforeEach(() => {
  FakePeerConnection.instances = [];
});

describe("PeerMesh: first negotiation", () => {
  it("creates one connection per other member; only the impolite side offers", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    const pa = fakePc(a, B);
    const pb = fakePc(b, A);
    expect(Object.keys(a.peerConnections())).toEqual([B]);
    expect(pa.config.iceServers).toEqual([{ urls: "stun:stun.example.org" }]);
    expect([pa.signalingState, pb.signalingState]).toEqual(["stable", "stable"]);
    expect(net.count(B, "offer")).toBe(1);
    expect(net.count(A, "offer")).toBe(0);
    expect(net.count(A, "answer")).toBe(1);
    // Both announced a fresh start; neither replaced its (fresh) connection because of it.
    expect(net.count(A, "renegotiate") + net.count(B, "renegotiate")).toBe(2);
    expect(FakePeerConnection.instances).toHaveLength(2);
  });

  it("sends camera and microphone both ways on the first two transceivers", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    for (const [mesh, peer] of [
      [a, B],
      [b, A],
    ] as const) {
      const ts = fakePc(mesh, peer).getTransceivers();
      expect(ts.map((t) => [t.receiver.track.kind, t.currentDirection])).toEqual([
        ["audio", "sendrecv"],
        ["video", "sendrecv"],
      ]);
      expect(ts.every((t) => t.sender.track !== null)).toBe(true);
      const view = mesh.views()[peer];
      expect(view.stream?.getTracks()).toHaveLength(2);
      expect(view.screenStream).toBeNull();
    }
  });

  it("replaces a device track without renegotiating", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const offersBefore = net.sent.filter((s) => s.event === "offer").length;
    const mic = new FakeTrack("audio");
    a.setLocalTrack("audio", mic as unknown as MediaStreamTrack);
    await net.flush();
    expect(fakePc(a, B).getTransceivers()[0].sender.track).toBe(mic);
    expect(net.sent.filter((s) => s.event === "offer").length).toBe(offersBefore);
  });

  it("trickles candidates and skips the end-of-candidates signal", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    fakePc(a, B).emitCandidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host");
    fakePc(a, B).emitCandidate("");
    await net.flush();
    const sent = net.sent.filter((s) => s.event === "candidate");
    expect(sent).toEqual([
      {
        from: A,
        event: "candidate",
        payload: {
          targetClientId: B,
          candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
          sdpMid: "0",
          sdpMLineIndex: 0,
          usernameFragment: "u",
        },
      },
    ]);
    expect(fakePc(b, A).candidates).toHaveLength(1);
  });

  it("reminds the initiator when its first offer never arrives", async () => {
    const net = new Net();
    const a = net.mesh(A);
    const b = net.mesh(B);
    a.sync([A, B]);
    b.sync([A, B]);
    await new Promise((r) => setTimeout(r, 0));
    net.take(A); // B's reset and offer are lost
    net.timers.fire(); // A's reminder
    await net.flush();
    expect(net.sent.some((s) => s.from === A && s.event === "renegotiate" && s.payload.reason === "no-offer")).toBe(true);
    expect(fakePc(a, B).signalingState).toBe("stable");
    expect(fakePc(a, B).remoteDescription).not.toBeNull();
  });
});

describe("PeerMesh: glare", () => {
  it("polite accepts a colliding offer, impolite ignores it", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    net.paused = true;
    a.setScreenTrack(new FakeTrack("video") as unknown as MediaStreamTrack);
    b.setScreenTrack(new FakeTrack("video") as unknown as MediaStreamTrack);
    await net.flush(3);
    expect(fakePc(a, B).signalingState).toBe("have-local-offer");
    expect(fakePc(b, A).signalingState).toBe("have-local-offer");
    // Each receives the other's offer.
    const toA = net.take(A);
    const toB = net.take(B);
    for (const m of toB) b.handleSignal(m);
    await new Promise((r) => setTimeout(r, 0));
    expect(fakePc(b, A).signalingState).toBe("have-local-offer"); // impolite: ignored
    for (const m of toA) a.handleSignal(m);
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(net.count(A, "answer")).toBe(2); // polite: rolled back and answered
    net.paused = false;
    await net.flush();
    // In the end both see each other's screen, on one extra transceiver each way.
    expect(a.views()[B].screenStream?.getVideoTracks()).toHaveLength(1);
    expect(b.views()[A].screenStream?.getVideoTracks()).toHaveLength(1);
    expect(fakePc(a, B).signalingState).toBe("stable");
    expect(fakePc(b, A).signalingState).toBe("stable");
    expect(fakePc(a, B).getTransceivers()).toHaveLength(4);
  });

  it("shows a screen share to the other side and removes it when stopped", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    const screen = new FakeTrack("video");
    a.setScreenTrack(screen as unknown as MediaStreamTrack);
    await net.flush();
    expect(b.views()[A].screenStream?.getVideoTracks()[0]).toBe(fakePc(b, A).getTransceivers()[2].receiver.track);
    expect(b.views()[A].stream?.getVideoTracks()[0]).toBe(fakePc(b, A).getTransceivers()[1].receiver.track);
    a.setScreenTrack(null);
    await net.flush();
    expect(b.views()[A].screenStream).toBeNull();
    // Sharing again reuses the same transceiver.
    a.setScreenTrack(screen as unknown as MediaStreamTrack);
    await net.flush();
    expect(b.views()[A].screenStream).not.toBeNull();
    expect(fakePc(a, B).getTransceivers()).toHaveLength(3);
  });
});

describe("PeerMesh: membership", () => {
  it("closes the connection of a member who is gone", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const pa = fakePc(a, B);
    a.sync([A]);
    expect(pa.closed).toBe(true);
    expect(a.peerConnections()).toEqual({});
  });

  it("keeps a still-connected connection for a while, and again when they come back", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const pa = fakePc(a, B);
    pa.setConnectionState("connected");
    a.sync([A]);
    expect(pa.closed).toBe(false);
    expect(a.peerConnections()).toEqual({});
    a.sync([A, B]);
    expect(a.peerConnections()[B]).toBe(pa as unknown as RTCPeerConnection);
    a.sync([A]);
    net.timers.fire();
    expect(pa.closed).toBe(true);
  });

  it("replaces the connection when the other side starts afresh (reload)", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    const old = fakePc(a, B);
    b.close();
    const b2 = net.mesh(B);
    b2.sync([A, B]);
    await net.flush();
    const fresh = fakePc(a, B);
    expect(fresh).not.toBe(old);
    expect(old.closed).toBe(true);
    expect(fresh.signalingState).toBe("stable");
    expect(fresh.remoteDescription?.sdp).toContain(`o=- ${fakePc(b2, A).session} `);
  });

  it("replaces the connection when an offer comes from a new peer connection", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const old = fakePc(a, B);
    // Another page of B's offers without announcing a reset first.
    const other = new Net();
    const b2 = other.mesh(B);
    b2.sync([A, B]);
    other.paused = true;
    await other.flush(3);
    const offer = other.take(A).find((m) => m.event === "offer");
    expect(offer).toBeDefined();
    a.handleSignal(offer as ServerMessage);
    await net.flush();
    expect(old.closed).toBe(true);
    expect(fakePc(a, B).remoteDescription?.sdp).toBe((offer as Extract<ServerMessage, { event: "offer" }>).payload.sdp);
    expect(net.count(A, "answer")).toBe(2);
  });

  it("retries an offer that fails to apply on a fresh connection", async () => {
    const net = new Net();
    const { a, b } = await connectedPair(net);
    const old = fakePc(a, B);
    old.failNextRemote = true;
    fakePc(b, A).restartIce();
    await net.flush();
    expect(old.closed).toBe(true);
    expect(fakePc(a, B).signalingState).toBe("stable");
    expect(fakePc(b, A).signalingState).toBe("stable");
  });
});

describe("PeerMesh: connection outcome", () => {
  it("reports connected/failed once per change, with relayed from the stats", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const pa = fakePc(a, B);
    pa.stats = new Map<string, unknown>([
      ["T", { id: "T", type: "transport", selectedCandidatePairId: "P" }],
      ["P", { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R" }],
      ["L", { id: "L", type: "local-candidate", candidateType: "relay" }],
      ["R", { id: "R", type: "remote-candidate", candidateType: "host" }],
    ]);
    pa.setConnectionState("connected");
    pa.setConnectionState("connected");
    await net.flush();
    pa.stats = new Map();
    pa.setConnectionState("failed");
    await net.flush();
    const reports = net.sent.filter((s) => s.event === "connection_state").map((s) => s.payload);
    expect(reports).toEqual([
      { peerClientId: B, state: "connected", relayed: true },
      { peerClientId: B, state: "failed", relayed: false },
    ]);
    expect(a.views()[B].connectionState).toBe("failed");
  });

  it("restarts ICE when the connection fails", async () => {
    const net = new Net();
    const { a } = await connectedPair(net);
    const before = net.count(A, "offer");
    fakePc(a, B).setConnectionState("failed");
    await net.flush();
    expect(net.count(A, "offer")).toBe(before + 1);
    expect(fakePc(a, B).signalingState).toBe("stable");
  });
});
