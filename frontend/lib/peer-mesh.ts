// The full mesh: one Peer (RTCPeerConnection) per other admitted member.
//
// - sync(ids) follows room_state.participants: a peer is created for each new member and
//   closed for each member who is gone. A gone member whose connection is still "connected"
//   lingers (hidden from peerConnections/views) for up to `lingerMs`: when only their
//   signaling dropped, they come back with the same page and the media never stopped.
// - Each peer created by sync() sends `renegotiate` {reason: "reset"} first (the protocol's
//   convention for "I start afresh"): a receiver whose connection to us has already seen a
//   remote description is talking to a page of ours that no longer exists, so it replaces
//   that connection. A fresh connection ignores the reset. Messages from one member arrive
//   in order, so the reset always precedes the new connection's own offers and answers.
// - An offer from a new peer connection of the other side (its SDP session id changed) or
//   one that fails to apply replaces our connection too; an answer that fails to apply
//   replaces it and sends a reset.

import { createLogger } from "./logger";
import { isPolite, shouldInitiate } from "./negotiation";
import { Peer, type LocalMedia, type PeerEnvironment, type SignalSend, type Timers } from "./peer";
import type { ServerMessage } from "./protocol";

const log = createLogger("mesh");

export interface PeerView {
  connectionState: RTCPeerConnectionState;
  stream: MediaStream | null;
  screenStream: MediaStream | null;
}

export interface PeerMeshOptions {
  selfId: string;
  iceServers: RTCIceServer[];
  /** "relay": media only through a TURN server (relay-only diagnosis). Default "all". */
  iceTransportPolicy?: RTCIceTransportPolicy;
  send: SignalSend;
  /** Called when any peer's state or streams changed. */
  onChange?: () => void;
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection;
  createMediaStream?: (tracks: MediaStreamTrack[]) => MediaStream;
  timers?: Timers;
  /** How long a gone member's still-connected peer connection is kept (the reconnect grace). */
  lingerMs?: number;
  local?: Partial<LocalMedia>;
}

export const DEFAULT_LINGER_MS = 30_000;

export class PeerMesh {
  readonly selfId: string;
  private readonly peers = new Map<string, Peer>();
  private readonly lingering = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly local: LocalMedia;
  private readonly env: PeerEnvironment;
  private readonly lingerMs: number;
  /** Peers created to answer an offer that failed on their predecessor: not retried again. */
  private readonly retries = new WeakSet<Peer>();
  private closed = false;

  constructor(options: PeerMeshOptions) {
    this.selfId = options.selfId;
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.local = { audio: null, video: null, screen: null, ...options.local };
    const timers: Timers = options.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
    };
    this.env = {
      iceServers: options.iceServers,
      iceTransportPolicy: options.iceTransportPolicy ?? "all",
      local: this.local,
      send: options.send,
      timers,
      createPeerConnection: options.createPeerConnection ?? ((config) => new RTCPeerConnection(config)),
      createMediaStream: options.createMediaStream ?? ((tracks) => new MediaStream(tracks)),
      onChange: (peer) => this.onPeerChange(peer),
      onBroken: (peer, why, description) => this.replace(peer, why, description),
    };
    this.notify = options.onChange ?? (() => undefined);
  }

  private readonly notify: () => void;

  /** Follows room_state.participants (other members only; our own id is skipped). */
  sync(memberIds: readonly string[]): void {
    if (this.closed) return;
    const wanted = new Set(memberIds.filter((id) => id !== this.selfId));
    for (const [id, peer] of [...this.peers]) {
      if (wanted.has(id) || this.lingering.has(id)) continue;
      if (peer.pc.connectionState === "connected") {
        log.debug(id, "gone, lingering");
        this.lingering.set(id, this.env.timers.setTimeout(() => this.drop(id), this.lingerMs));
      } else {
        this.drop(id);
      }
    }
    for (const id of wanted) {
      const timer = this.lingering.get(id);
      if (timer !== undefined) {
        log.debug(id, "back, keeping the connection");
        this.env.timers.clearTimeout(timer);
        this.lingering.delete(id);
      } else if (!this.peers.has(id)) {
        this.create(id, shouldInitiate(this.selfId, id));
        this.env.send("renegotiate", { targetClientId: id, reason: "reset" });
      }
    }
    this.notify();
  }

  /** Relayed offer / answer / candidate / renegotiate; false for other events. */
  handleSignal(message: ServerMessage): boolean {
    if (this.closed) return false;
    switch (message.event) {
      case "offer":
      case "answer": {
        const { clientId, sdp, type } = message.payload;
        let peer = this.peers.get(clientId);
        if (!peer) {
          if (type !== "offer") return true;
          // An offer can only come from an admitted member: answer it, sync() will confirm.
          peer = this.create(clientId, false);
        }
        void peer.handleDescription({ type, sdp });
        return true;
      }
      case "candidate": {
        void this.peers.get(message.payload.clientId)?.handleCandidate(message.payload);
        return true;
      }
      case "renegotiate": {
        const { clientId, reason } = message.payload;
        const peer = this.peers.get(clientId);
        if (!peer) return true;
        if (reason === "reset" && peer.pc.remoteDescription) {
          log.info(clientId, "peer started afresh, replacing the connection");
          this.replace(peer, "reset");
        } else if (reason !== "reset") {
          peer.handleRenegotiate();
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** Sets the microphone or camera track sent to everyone (replaceTrack, no renegotiation). */
  setLocalTrack(kind: "audio" | "video", track: MediaStreamTrack | null): void {
    this.local[kind] = track;
    for (const peer of this.peers.values()) peer.replaceTrack(kind, track);
  }

  /** Starts (track) or stops (null) sending our screen to everyone (renegotiates). */
  setScreenTrack(track: MediaStreamTrack | null): void {
    this.local.screen = track;
    for (const peer of this.peers.values()) peer.applyScreen();
  }

  /**
   * New ICE servers (fresh TURN credentials) and/or transport policy, for the connections
   * created from now on and, through `setConfiguration`, for every open one: a later ICE
   * restart then authenticates with the new credentials. Changing the policy restarts ICE
   * so that it takes effect on the candidates already gathered.
   */
  updateConfiguration(update: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy }): void {
    if (this.closed) return;
    const policyChanged =
      update.iceTransportPolicy !== undefined && update.iceTransportPolicy !== this.env.iceTransportPolicy;
    if (update.iceServers) this.env.iceServers = update.iceServers;
    if (update.iceTransportPolicy) this.env.iceTransportPolicy = update.iceTransportPolicy;
    for (const [id, peer] of this.peers) {
      try {
        peer.pc.setConfiguration({
          ...peer.pc.getConfiguration(),
          ...(update.iceServers ? { iceServers: update.iceServers } : {}),
          ...(update.iceTransportPolicy ? { iceTransportPolicy: update.iceTransportPolicy } : {}),
        });
        if (policyChanged && peer.pc.remoteDescription) peer.pc.restartIce();
      } catch (err) {
        log.warn(id, "could not update the peer connection's configuration", err);
      }
    }
  }

  /** After a signaling outage: re-send offers that may have been dropped. */
  resendPending(): void {
    for (const peer of this.peers.values()) peer.resendPending();
  }

  /** Live peer connections by clientId (lingering ones excluded). */
  peerConnections(): Record<string, RTCPeerConnection> {
    const out: Record<string, RTCPeerConnection> = {};
    for (const [id, peer] of this.peers) if (!this.lingering.has(id)) out[id] = peer.pc;
    return out;
  }

  views(): Record<string, PeerView> {
    const out: Record<string, PeerView> = {};
    for (const [id, peer] of this.peers) {
      if (this.lingering.has(id)) continue;
      out[id] = { connectionState: peer.connectionState, stream: peer.stream, screenStream: peer.screenStream };
    }
    return out;
  }

  has(clientId: string): boolean {
    return this.peers.has(clientId) && !this.lingering.has(clientId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.peers.keys()]) this.drop(id);
  }

  // ------------------------------------------------------------------ internals

  private create(id: string, initiate: boolean): Peer {
    log.debug(id, initiate ? "new peer, we offer" : "new peer, waiting for an offer");
    const peer = new Peer(id, isPolite(this.selfId, id), initiate, this.env);
    this.peers.set(id, peer);
    return peer;
  }

  private drop(id: string): void {
    const timer = this.lingering.get(id);
    if (timer !== undefined) this.env.timers.clearTimeout(timer);
    this.lingering.delete(id);
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.close();
    if (!this.closed) this.notify();
  }

  /** Replaces a peer's connection with a new one; re-applies the offer that revealed the need. */
  private replace(
    peer: Peer,
    why: "reset" | "remote-restart" | "offer-failed" | "answer-failed",
    description?: RTCSessionDescriptionInit,
  ): void {
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    if (why === "offer-failed" && this.retries.has(peer)) {
      log.warn(peer.id, "the offer failed on a fresh connection too; waiting for the peer to reset");
      return;
    }
    const wasLingering = this.lingering.has(peer.id);
    this.drop(peer.id);
    if (wasLingering) return;
    // A fresh remote offer is answered by a connection that has made no offer of its own.
    const answering = why === "remote-restart" || why === "offer-failed";
    const fresh = this.create(peer.id, !answering && shouldInitiate(this.selfId, peer.id));
    if (answering && description?.type === "offer" && description.sdp) {
      if (why === "offer-failed") this.retries.add(fresh);
      void fresh.handleDescription({ type: "offer", sdp: description.sdp });
    }
    if (why === "answer-failed") this.env.send("renegotiate", { targetClientId: peer.id, reason: "reset" });
    this.notify();
  }

  private onPeerChange(peer: Peer): void {
    if (this.peers.get(peer.id) !== peer) return;
    if (this.lingering.has(peer.id) && peer.pc.connectionState !== "connected") {
      this.drop(peer.id);
      return;
    }
    this.notify();
  }
}
