// A small RTCPeerConnection stand-in with the behaviour perfect negotiation depends on:
// signaling states, implicit offer/answer/rollback, transceivers with mids and
// directions, negotiationneeded, ontrack. The SDP is a toy format:
//   o=- <session> <version>, then one "m=<kind> <direction>" line per m-section.

type Dir = RTCRtpTransceiverDirection;

const reverse = (d: Dir): Dir => (d === "sendonly" ? "recvonly" : d === "recvonly" ? "sendonly" : d);
const sends = (d: Dir | null | undefined) => d === "sendrecv" || d === "sendonly";
const recvs = (d: Dir | null | undefined) => d === "sendrecv" || d === "recvonly";
function dirOf(send: boolean, recv: boolean): Dir {
  return send && recv ? "sendrecv" : send ? "sendonly" : recv ? "recvonly" : "inactive";
}
const intersect = (a: Dir, b: Dir): Dir => dirOf(sends(a) && sends(b), recvs(a) && recvs(b));

export class FakeTrack {
  enabled = true;
  readyState: MediaStreamTrackState = "live";
  constructor(
    readonly kind: "audio" | "video",
    readonly id = `${kind}-${Math.random().toString(36).slice(2, 8)}`,
  ) {}
  stop(): void {
    this.readyState = "ended";
  }
  getSettings(): MediaTrackSettings {
    return { deviceId: `dev-${this.id}` };
  }
  addEventListener(): void {}
}

export class FakeStream {
  readonly id = `stream-${Math.random().toString(36).slice(2, 8)}`;
  constructor(readonly tracks: FakeTrack[] = []) {}
  getTracks(): FakeTrack[] {
    return [...this.tracks];
  }
  getAudioTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "audio");
  }
  getVideoTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "video");
  }
}

export class FakeTransceiver {
  mid: string | null = null;
  currentDirection: Dir | null = null;
  /** The direction of the last local description that carried this transceiver. */
  lastDirection: Dir | null = null;
  remoteSending = false;
  readonly receiver: { track: FakeTrack };
  readonly sender: { track: FakeTrack | null; replaceTrack(track: FakeTrack | null): Promise<void> };
  private dir: Dir;

  constructor(
    private readonly pc: FakePeerConnection,
    kind: "audio" | "video",
    direction: Dir,
    track: FakeTrack | null,
  ) {
    this.dir = direction;
    this.receiver = { track: new FakeTrack(kind) };
    const sender = {
      track,
      replaceTrack: async (t: FakeTrack | null) => {
        sender.track = t;
      },
    };
    this.sender = sender;
  }

  get direction(): Dir {
    return this.dir;
  }
  set direction(d: Dir) {
    if (d === this.dir) return;
    this.dir = d;
    this.pc.updateNegotiationNeeded();
  }
}

let sessions = 1000;

export class FakePeerConnection {
  static instances: FakePeerConnection[] = [];
  signalingState: RTCSignalingState = "stable";
  connectionState: RTCPeerConnectionState = "new";
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  remoteDescription: { type: RTCSdpType; sdp: string } | null = null;
  closed = false;
  /** Makes the next setRemoteDescription reject (a DTLS or m-line mismatch in real life). */
  failNextRemote = false;
  stats = new Map<string, unknown>();
  sentOffers = 0;
  onnegotiationneeded: (() => void) | null = null;
  onicecandidate: ((ev: { candidate: unknown }) => void) | null = null;
  ontrack: ((ev: unknown) => void) | null = null;
  onsignalingstatechange: (() => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  readonly session = String(sessions++);
  private version = 1;
  private readonly transceivers: FakeTransceiver[] = [];
  private iceRestart = false;
  private negotiationQueued = false;
  private pendingMids: FakeTransceiver[] = [];
  private stableLocal: { type: RTCSdpType; sdp: string } | null = null;

  /** Every configuration passed to setConfiguration, in order. */
  configurations: RTCConfiguration[] = [];
  iceRestarts = 0;
  private current: RTCConfiguration;

  constructor(readonly config: RTCConfiguration) {
    FakePeerConnection.instances.push(this);
    this.current = { iceTransportPolicy: "all", ...config };
  }

  getConfiguration(): RTCConfiguration {
    return { ...this.current };
  }

  setConfiguration(config: RTCConfiguration): void {
    if (this.closed) throw new Error("InvalidStateError: closed");
    this.current = { ...config };
    this.configurations.push({ ...config });
  }

  addTransceiver(trackOrKind: FakeTrack | "audio" | "video", init: { direction?: Dir } = {}): FakeTransceiver {
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const kind = typeof trackOrKind === "string" ? trackOrKind : trackOrKind.kind;
    const t = new FakeTransceiver(this, kind, init.direction ?? "sendrecv", track);
    this.transceivers.push(t);
    this.updateNegotiationNeeded();
    return t;
  }

  getTransceivers(): FakeTransceiver[] {
    return [...this.transceivers];
  }

  removeTrack(sender: FakeTransceiver["sender"]): void {
    const t = this.transceivers.find((x) => x.sender === sender);
    if (!t) return;
    sender.track = null;
    t.direction = sends(t.direction) ? dirOf(false, recvs(t.direction)) : t.direction;
  }

  restartIce(): void {
    this.iceRestarts += 1;
    this.iceRestart = true;
    this.updateNegotiationNeeded();
  }

  needsNegotiation(): boolean {
    return this.iceRestart || this.transceivers.some((t) => t.mid === null || t.direction !== t.lastDirection);
  }

  updateNegotiationNeeded(): void {
    if (this.closed || this.negotiationQueued) return;
    this.negotiationQueued = true;
    queueMicrotask(() => {
      this.negotiationQueued = false;
      if (!this.closed && this.signalingState === "stable" && this.needsNegotiation()) this.onnegotiationneeded?.();
    });
  }

  async setLocalDescription(): Promise<void> {
    await Promise.resolve();
    if (this.closed) throw new Error("InvalidStateError: closed");
    if (this.signalingState === "have-remote-offer") {
      const offer = parse(this.remoteDescription?.sdp ?? "");
      const lines = offer.lines.map((line, i) => {
        const t = this.byMid(String(i));
        if (!t) return `m=${line.kind} inactive`;
        const d = intersect(t.direction, reverse(line.dir));
        t.lastDirection = t.direction;
        t.currentDirection = d;
        return `m=${line.kind} ${d}`;
      });
      this.localDescription = { type: "answer", sdp: this.sdp(lines) };
      this.stableLocal = this.localDescription;
      this.setState("stable");
      return;
    }
    const ordered = this.transceivers.filter((t) => t.mid !== null).sort((a, b) => Number(a.mid) - Number(b.mid));
    this.pendingMids = [];
    for (const t of this.transceivers) {
      if (t.mid === null) {
        t.mid = String(ordered.length);
        ordered.push(t);
        this.pendingMids.push(t);
      }
    }
    for (const t of ordered) t.lastDirection = t.direction;
    this.iceRestart = false;
    this.localDescription = { type: "offer", sdp: this.sdp(ordered.map((t) => `m=${t.receiver.track.kind} ${t.direction}`)) };
    this.sentOffers += 1;
    this.setState("have-local-offer");
  }

  async setRemoteDescription(desc: { type: RTCSdpType; sdp: string }): Promise<void> {
    await Promise.resolve();
    if (this.closed) throw new Error("InvalidStateError: closed");
    if (this.failNextRemote) {
      this.failNextRemote = false;
      throw new Error("OperationError: failed to apply");
    }
    const { lines } = parse(desc.sdp);
    if (desc.type === "offer") {
      if (this.signalingState === "have-local-offer") this.rollback();
      else if (this.signalingState !== "stable") throw new Error(`InvalidStateError: offer in ${this.signalingState}`);
      lines.forEach((line, i) => {
        let t = this.byMid(String(i));
        if (!t) {
          t = new FakeTransceiver(this, line.kind, "recvonly", null);
          t.mid = String(i);
          this.transceivers.push(t);
        }
        this.noteRemote(t, sends(line.dir));
      });
      this.remoteDescription = desc;
      this.setState("have-remote-offer");
    } else {
      if (this.signalingState !== "have-local-offer") throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
      lines.forEach((line, i) => {
        const t = this.byMid(String(i));
        if (!t) return;
        t.currentDirection = reverse(line.dir);
        this.noteRemote(t, sends(line.dir));
      });
      this.remoteDescription = desc;
      this.stableLocal = this.localDescription;
      this.pendingMids = [];
      this.setState("stable");
    }
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    await Promise.resolve();
    if (!this.remoteDescription) throw new Error("InvalidStateError: no remote description");
    this.candidates.push(candidate);
  }
  candidates: RTCIceCandidateInit[] = [];

  async getStats(): Promise<Map<string, unknown>> {
    return this.stats;
  }

  close(): void {
    this.closed = true;
    this.signalingState = "closed";
    this.connectionState = "closed";
  }

  // ---- driven by tests
  setConnectionState(state: RTCPeerConnectionState): void {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }

  emitCandidate(candidate: string): void {
    this.onicecandidate?.({
      candidate: { candidate, sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "u" },
    });
  }

  // ---- internals
  private byMid(mid: string): FakeTransceiver | undefined {
    return this.transceivers.find((t) => t.mid === mid);
  }

  private noteRemote(t: FakeTransceiver, sending: boolean): void {
    if (sending && !t.remoteSending) {
      t.remoteSending = true;
      this.ontrack?.({ track: t.receiver.track, transceiver: t });
    } else if (!sending) {
      t.remoteSending = false;
    }
  }

  private rollback(): void {
    for (const t of this.pendingMids) t.mid = null;
    this.pendingMids = [];
    this.localDescription = this.stableLocal;
    this.signalingState = "stable";
  }

  private sdp(lines: string[]): string {
    return [`v=0`, `o=- ${this.session} ${this.version++} IN IP4 0.0.0.0`, ...lines].join("\r\n") + "\r\n";
  }

  private setState(state: RTCSignalingState): void {
    this.signalingState = state;
    this.onsignalingstatechange?.();
    if (state === "stable") this.updateNegotiationNeeded();
  }
}

function parse(sdp: string): { lines: { kind: "audio" | "video"; dir: Dir }[] } {
  const lines = sdp
    .split("\r\n")
    .filter((l) => l.startsWith("m="))
    .map((l) => {
      const [kind, dir] = l.slice(2).split(" ");
      return { kind: kind as "audio" | "video", dir: dir as Dir };
    });
  return { lines };
}
