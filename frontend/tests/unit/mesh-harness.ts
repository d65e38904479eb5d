// Wires PeerMeshes with fake peer connections through an in-memory "server" that relays
// signaling like the backend does (stamping the sender's clientId).

import { PeerMesh, type PeerMeshOptions } from "@/lib/peer-mesh";
import type { SignalSend, Timers } from "@/lib/peer";
import type { ServerMessage } from "@/lib/protocol";
import { FakePeerConnection, FakeStream, FakeTrack } from "./fake-rtc";

export interface Sent {
  from: string;
  event: string;
  payload: Record<string, unknown>;
}

export function manualTimers(): Timers & { fire(): void; pending(): number } {
  let next = 1;
  const timers = new Map<number, () => void>();
  return {
    setTimeout: (fn) => {
      const id = next++;
      timers.set(id, fn);
      return id as unknown as ReturnType<typeof setTimeout>;
    },
    clearTimeout: (id) => void timers.delete(id as unknown as number),
    fire: () => {
      const all = [...timers.values()];
      timers.clear();
      for (const fn of all) fn();
    },
    pending: () => timers.size,
  };
}

const RELAYED = new Set(["offer", "answer", "candidate", "renegotiate"]);

export class Net {
  readonly meshes = new Map<string, PeerMesh>();
  readonly sent: Sent[] = [];
  readonly timers = manualTimers();
  private queue: { to: string; message: ServerMessage }[] = [];
  /** Hold deliveries (they stay queued) while true. */
  paused = false;

  mesh(
    selfId: string,
    local: { audio?: FakeTrack; video?: FakeTrack } = {},
    extra: Pick<Partial<PeerMeshOptions>, "iceServers" | "iceTransportPolicy"> = {},
  ): PeerMesh {
    const mesh = new PeerMesh({
      selfId,
      iceServers: extra.iceServers ?? [{ urls: "stun:stun.example.org" }],
      iceTransportPolicy: extra.iceTransportPolicy,
      send: this.sender(selfId),
      createPeerConnection: (config) => new FakePeerConnection(config) as unknown as RTCPeerConnection,
      createMediaStream: (tracks) => new FakeStream(tracks as unknown as FakeTrack[]) as unknown as MediaStream,
      timers: this.timers,
      lingerMs: 30_000,
      local: {
        audio: (local.audio ?? new FakeTrack("audio")) as unknown as MediaStreamTrack,
        video: (local.video ?? new FakeTrack("video")) as unknown as MediaStreamTrack,
      },
    });
    this.meshes.set(selfId, mesh);
    return mesh;
  }

  sender(from: string): SignalSend {
    return (event, payload) => {
      const body = payload as unknown as Record<string, unknown>;
      this.sent.push({ from, event, payload: body });
      if (!RELAYED.has(event)) return;
      const to = String(body.targetClientId);
      const message = { event, payload: { type: event, ...body, clientId: from, displayName: from } };
      this.queue.push({ to, message: message as unknown as ServerMessage });
    };
  }

  /** Delivers queued messages (in order) until nothing moves any more. */
  async flush(rounds = 50): Promise<void> {
    for (let i = 0; i < rounds; i += 1) {
      await new Promise((r) => setTimeout(r, 0));
      if (this.paused) continue;
      const batch = this.queue;
      this.queue = [];
      for (const { to, message } of batch) this.meshes.get(to)?.handleSignal(message);
      if (batch.length === 0) {
        await new Promise((r) => setTimeout(r, 0));
        if (this.queue.length === 0) return;
      }
    }
  }

  /** Takes the queued messages for `to` out of the queue, for hand delivery. */
  take(to: string): ServerMessage[] {
    const mine = this.queue.filter((q) => q.to === to).map((q) => q.message);
    this.queue = this.queue.filter((q) => q.to !== to);
    return mine;
  }

  count(from: string, event: string): number {
    return this.sent.filter((s) => s.from === from && s.event === event).length;
  }
}

export function fakePc(mesh: PeerMesh, peerId: string): FakePeerConnection {
  const pc = mesh.peerConnections()[peerId];
  if (!pc) throw new Error(`no peer connection to ${peerId}`);
  return pc as unknown as FakePeerConnection;
}
