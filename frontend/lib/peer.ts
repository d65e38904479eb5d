// One RTCPeerConnection to one remote member, negotiated with "perfect negotiation"
// (MDN). Decisions live in ./negotiation; the mesh (./peer-mesh) owns the set of peers.
//
// Media layout (which transceiver carries what): see ./media-layout.

import { createLogger } from "./logger";
import { cameraTransceiver, holdsExactly, remoteCameraTracks, remoteScreenTrack } from "./media-layout";
import { isOfferCollision, isRemoteRestart, shouldIgnoreOffer } from "./negotiation";
import type { CandidatePayload, ClientEvents } from "./protocol";
import { isRelayed } from "./rtc-stats";

const log = createLogger("peer");

export type SignalEvent = "offer" | "answer" | "candidate" | "renegotiate" | "connection_state";
export type SignalSend = <K extends SignalEvent>(event: K, payload: ClientEvents[K]) => void;

/** What we send: shared by all peers of a mesh, read when attaching. */
export interface LocalMedia {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>;
  clearTimeout(id: ReturnType<typeof setTimeout>): void;
}

export interface PeerEnvironment {
  /** For new connections; the mesh updates it when fresh TURN credentials arrive. */
  iceServers: RTCIceServer[];
  /** "relay" forces every path through a TURN server (relay-only diagnosis); default "all". */
  iceTransportPolicy?: RTCIceTransportPolicy;
  local: LocalMedia;
  send: SignalSend;
  timers: Timers;
  createPeerConnection(config: RTCConfiguration): RTCPeerConnection;
  createMediaStream(tracks: MediaStreamTrack[]): MediaStream;
  onChange(peer: Peer): void;
  /** The remote side is a new peer connection (restart) or ours broke: replace this peer. */
  onBroken(peer: Peer, why: "remote-restart" | "offer-failed" | "answer-failed", description?: RTCSessionDescriptionInit): void;
}

/** How long the polite side waits for the first offer before reminding the other side. */
export const OFFER_REMINDER_MS = 5_000;
/** How long "disconnected" may last before we restart ICE. */
export const DISCONNECTED_RESTART_MS = 5_000;

export class Peer {
  readonly pc: RTCPeerConnection;
  stream: MediaStream | null = null;
  screenStream: MediaStream | null = null;
  connectionState: RTCPeerConnectionState = "new";
  closed = false;
  private makingOffer = false;
  private ignoreOffer = false;
  private cameraReady = false;
  private screenTransceiver: RTCRtpTransceiver | null = null;
  private queue: Promise<void> = Promise.resolve();
  private reported: "connected" | "failed" | null = null;
  private reminder: ReturnType<typeof setTimeout> | null = null;
  private disconnectedTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly id: string,
    readonly polite: boolean,
    initiate: boolean,
    private readonly env: PeerEnvironment,
  ) {
    this.pc = env.createPeerConnection(
      env.iceTransportPolicy === "relay"
        ? { iceServers: env.iceServers, iceTransportPolicy: "relay" }
        : { iceServers: env.iceServers },
    );
    this.pc.onnegotiationneeded = () => void this.negotiate();
    this.pc.onicecandidate = (ev) => this.sendCandidate(ev.candidate);
    this.pc.ontrack = () => this.refreshStreams();
    this.pc.onsignalingstatechange = () => {
      if (this.pc.signalingState === "stable") this.refreshStreams();
    };
    this.pc.onconnectionstatechange = () => this.onConnectionState();
    if (initiate) {
      this.pc.addTransceiver(env.local.audio ?? "audio", { direction: "sendrecv" });
      this.pc.addTransceiver(env.local.video ?? "video", { direction: "sendrecv" });
      this.cameraReady = true;
      this.applyScreen();
    } else {
      this.scheduleReminder(OFFER_REMINDER_MS);
    }
  }

  /** An offer or answer relayed from the peer. */
  handleDescription(description: { type: RTCSdpType; sdp: string }): Promise<void> {
    return this.enqueue(() => this.applyDescription(description));
  }

  handleCandidate(payload: CandidatePayload): Promise<void> {
    return this.enqueue(async () => {
      if (!payload.candidate) return; // end-of-candidates: nothing to do
      try {
        await this.pc.addIceCandidate({
          candidate: payload.candidate,
          sdpMid: payload.sdpMid ?? null,
          sdpMLineIndex: payload.sdpMLineIndex ?? null,
          usernameFragment: payload.usernameFragment ?? null,
        });
      } catch (err) {
        if (!this.ignoreOffer) log.warn(this.id, "addIceCandidate failed", err);
      }
    });
  }

  /** The peer asks for a fresh negotiation (after an ICE failure on its side, or a lost offer). */
  handleRenegotiate(): void {
    if (this.closed) return;
    const pc = this.pc;
    if (pc.signalingState === "have-local-offer" && pc.localDescription) {
      this.env.send("offer", { targetClientId: this.id, type: "offer", sdp: pc.localDescription.sdp });
    } else if (pc.localDescription && pc.remoteDescription) {
      pc.restartIce();
    } else if (this.cameraReady) {
      void this.negotiate();
    }
  }

  /** Re-sends what a signaling outage may have swallowed: our pending offer. */
  resendPending(): void {
    if (!this.closed && this.pc.signalingState === "have-local-offer" && this.pc.localDescription) {
      this.env.send("offer", { targetClientId: this.id, type: "offer", sdp: this.pc.localDescription.sdp });
    }
  }

  /** Replaces the camera or microphone track we send, without renegotiation. */
  replaceTrack(kind: "audio" | "video", track: MediaStreamTrack | null): void {
    const transceiver = this.cameraTransceiver(kind);
    if (!this.cameraReady || !transceiver) return; // attached when the first offer arrives
    void transceiver.sender.replaceTrack(track).catch((err: unknown) => log.warn(this.id, "replaceTrack failed", err));
  }

  /** Adds, swaps or removes our screen track per env.local.screen. */
  applyScreen(): void {
    if (this.closed || !this.cameraReady) return;
    const track = this.env.local.screen;
    const t = this.screenTransceiver;
    if (track) {
      if (t && t.currentDirection !== "stopped") {
        if (t.sender.track !== track) void t.sender.replaceTrack(track).catch(() => undefined);
        if (t.direction !== "sendonly") t.direction = "sendonly";
      } else {
        this.screenTransceiver = this.pc.addTransceiver(track, { direction: "sendonly" });
      }
    } else if (t && t.sender.track) {
      this.pc.removeTrack(t.sender);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer("reminder");
    this.clearTimer("disconnectedTimer");
    const pc = this.pc;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = null;
    pc.onsignalingstatechange = pc.onconnectionstatechange = null;
    try {
      pc.close();
    } catch {
      // Already closed.
    }
  }

  // ------------------------------------------------------------------ internals

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(task).catch((err: unknown) => log.error(this.id, "signal handling failed", err));
    return this.queue;
  }

  private async negotiate(): Promise<void> {
    if (this.closed || !this.cameraReady || this.pc.signalingState !== "stable") return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription;
      if (!this.closed && local && local.type === "offer") {
        this.env.send("offer", { targetClientId: this.id, type: "offer", sdp: local.sdp });
      }
    } catch (err) {
      log.warn(this.id, "creating an offer failed", err);
    } finally {
      this.makingOffer = false;
    }
  }

  private async applyDescription({ type, sdp }: { type: RTCSdpType; sdp: string }): Promise<void> {
    if (this.closed) return;
    const pc = this.pc;
    if (type === "offer" && isRemoteRestart(pc.remoteDescription?.sdp, sdp)) {
      this.env.onBroken(this, "remote-restart", { type, sdp });
      return;
    }
    const collision = { descriptionType: type, makingOffer: this.makingOffer, signalingState: pc.signalingState };
    this.ignoreOffer = shouldIgnoreOffer({ ...collision, polite: this.polite });
    if (this.ignoreOffer) {
      log.debug(this.id, "ignoring a colliding offer (impolite)");
      return;
    }
    if (type === "answer" && pc.signalingState !== "have-local-offer") {
      log.debug(this.id, "ignoring an answer in state", pc.signalingState);
      return;
    }
    if (isOfferCollision(collision)) log.debug(this.id, "accepting a colliding offer (polite, rollback)");
    try {
      await pc.setRemoteDescription({ type, sdp });
    } catch (err) {
      log.warn(this.id, `applying the ${type} failed`, err);
      this.env.onBroken(this, type === "offer" ? "offer-failed" : "answer-failed", { type, sdp });
      return;
    }
    this.clearTimer("reminder");
    if (type === "offer") {
      await this.attachCamera();
      await pc.setLocalDescription();
      const local = pc.localDescription;
      if (!this.closed && local) {
        this.env.send("answer", { targetClientId: this.id, type: "answer", sdp: local.sdp });
      }
    }
    this.refreshStreams();
  }

  /** Polite side, first offer: send our camera and microphone on the offered transceivers. */
  private async attachCamera(): Promise<void> {
    if (this.cameraReady) return;
    for (const kind of ["audio", "video"] as const) {
      const transceiver = this.cameraTransceiver(kind);
      if (!transceiver) continue;
      transceiver.direction = "sendrecv";
      const track = this.env.local[kind];
      if (track) await transceiver.sender.replaceTrack(track).catch((err: unknown) => log.warn(this.id, err));
    }
    this.cameraReady = true;
    this.applyScreen(); // negotiationneeded fires once this answer is through
  }

  private cameraTransceiver(kind: "audio" | "video"): RTCRtpTransceiver | undefined {
    return cameraTransceiver(this.pc.getTransceivers(), kind);
  }

  private refreshStreams(): void {
    if (this.closed) return;
    const transceivers = this.pc.getTransceivers();
    let changed = false;
    const camera = remoteCameraTracks(transceivers);
    if (camera.length > 0 && !holdsExactly(this.stream, camera)) {
      this.stream = this.env.createMediaStream(camera);
      changed = true;
    }
    const screen = remoteScreenTrack(transceivers);
    if (!holdsExactly(this.screenStream, screen ? [screen] : [])) {
      this.screenStream = screen ? this.env.createMediaStream([screen]) : null;
      changed = true;
    }
    if (changed) this.env.onChange(this);
  }

  private sendCandidate(candidate: RTCIceCandidate | null): void {
    if (!candidate || !candidate.candidate || this.closed) return;
    this.env.send("candidate", {
      targetClientId: this.id,
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? null,
      sdpMLineIndex: candidate.sdpMLineIndex ?? null,
      usernameFragment: candidate.usernameFragment ?? null,
    });
  }

  private onConnectionState(): void {
    if (this.closed) return;
    const state = this.pc.connectionState;
    this.connectionState = state;
    this.clearTimer("disconnectedTimer");
    if (state === "connected" || state === "failed") void this.report(state);
    if (state === "failed") {
      log.info(this.id, "connection failed, restarting ICE");
      this.pc.restartIce();
    } else if (state === "disconnected") {
      this.disconnectedTimer = this.env.timers.setTimeout(() => {
        this.disconnectedTimer = null;
        if (!this.closed && this.pc.connectionState === "disconnected") this.pc.restartIce();
      }, DISCONNECTED_RESTART_MS);
    }
    this.env.onChange(this);
  }

  /** connection_state, once per change of outcome. */
  private async report(state: "connected" | "failed"): Promise<void> {
    if (this.reported === state) return;
    this.reported = state;
    let relayed = false;
    try {
      relayed = isRelayed(await this.pc.getStats());
    } catch {
      // No stats: report as direct.
    }
    if (!this.closed) this.env.send("connection_state", { peerClientId: this.id, state, relayed });
  }

  private scheduleReminder(ms: number): void {
    this.reminder = this.env.timers.setTimeout(() => {
      this.reminder = null;
      if (this.closed || this.pc.remoteDescription) return;
      this.env.send("renegotiate", { targetClientId: this.id, reason: "no-offer" });
      this.scheduleReminder(Math.min(ms * 2, 30_000));
    }, ms);
  }

  private clearTimer(which: "reminder" | "disconnectedTimer"): void {
    const id = this[which];
    if (id !== null) this.env.timers.clearTimeout(id);
    this[which] = null;
  }
}
