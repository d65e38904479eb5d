// Fake dependencies for the call store: signaling, mesh, media and REST, all in memory.

import { vi } from "vitest";
import type { Api } from "@/lib/api";
import type { CaptureRequest, CaptureResult } from "@/lib/media";
import type { PeerView as MeshPeerView } from "@/lib/peer-mesh";
import type { ClientConfig, ClientEventName, ClientEvents, GuestToken, Member, RoomState, Role, ServerMessage } from "@/lib/protocol";
import type { SignalingStatus } from "@/lib/signaling";
import { memoryStorage } from "@/lib/storage";
import type { CallDeps, MeshFactoryOptions, MeshLike, SignalingFactoryOptions, SignalingLike } from "@/store/deps";
import { FakeStream, FakeTrack } from "./fake-rtc";

export const CONFIG: ClientConfig = {
  auth: { guest: true, auth0: null },
  iceServers: [{ urls: "stun:stun.example.org" }],
  iceServersExpiresAt: null,
  websocket: { path: "/ws/hub/{roomId}", subprotocol: "videoconf.v1", url: null },
  limits: {
    maxChatLength: 1000,
    maxMessageBytes: 65536,
    rateLimit: 50,
    rateBurst: 200,
    maxRoomSize: 50,
    chatHistory: 200,
    reconnectGraceSeconds: 30,
  },
};

export class FakeSignaling implements SignalingLike {
  sent: { event: string; payload: unknown }[] = [];
  connected = false;
  left = false;
  closed = false;
  open = true;
  private messageHandlers = new Set<(m: ServerMessage) => void>();
  private statusHandlers = new Set<(s: SignalingStatus) => void>();
  constructor(readonly options: SignalingFactoryOptions) {}
  connect(): void {
    this.connected = true;
  }
  send<K extends ClientEventName>(event: K, payload: ClientEvents[K]): boolean {
    if (!this.open) return false;
    this.sent.push({ event, payload });
    return true;
  }
  onMessage(handler: (m: ServerMessage) => void): () => void {
    this.messageHandlers.add(handler);
    return () => void this.messageHandlers.delete(handler);
  }
  onStatus(handler: (s: SignalingStatus) => void): () => void {
    this.statusHandlers.add(handler);
    return () => void this.statusHandlers.delete(handler);
  }
  leave(): void {
    this.left = true;
  }
  close(): void {
    this.closed = true;
  }
  // ---- driven by tests
  emit(message: { event: string; payload: unknown }): void {
    for (const h of [...this.messageHandlers]) h(message as ServerMessage);
  }
  status(status: SignalingStatus): void {
    for (const h of [...this.statusHandlers]) h(status);
  }
  events(name: string): unknown[] {
    return this.sent.filter((s) => s.event === name).map((s) => s.payload);
  }
  get listeners(): number {
    return this.messageHandlers.size + this.statusHandlers.size;
  }
}

export class FakeMesh implements MeshLike {
  syncs: string[][] = [];
  signals: ServerMessage[] = [];
  tracks: { kind: string; track: MediaStreamTrack | null }[] = [];
  screens: (MediaStreamTrack | null)[] = [];
  resends = 0;
  updates: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy }[] = [];
  closed = false;
  viewMap: Record<string, MeshPeerView> = {};
  constructor(readonly options: MeshFactoryOptions) {}
  get selfId(): string {
    return this.options.selfId;
  }
  sync(ids: readonly string[]): void {
    this.syncs.push([...ids]);
  }
  handleSignal(message: ServerMessage): boolean {
    this.signals.push(message);
    return true;
  }
  setLocalTrack(kind: "audio" | "video", track: MediaStreamTrack | null): void {
    this.tracks.push({ kind, track });
  }
  setScreenTrack(track: MediaStreamTrack | null): void {
    this.screens.push(track);
  }
  resendPending(): void {
    this.resends += 1;
  }
  updateConfiguration(update: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy }): void {
    this.updates.push(update);
  }
  peerConnections(): Record<string, RTCPeerConnection> {
    return {};
  }
  views(): Record<string, MeshPeerView> {
    return this.viewMap;
  }
  close(): void {
    this.closed = true;
  }
}

export function member(name: string): Member {
  return { clientId: `g_${name.toLowerCase()}`, displayName: name };
}

export function roomState(you: Member, role: Role, participants: Member[], extra: Partial<RoomState> = {}): RoomState {
  return {
    roomId: "room-1",
    you: { ...you, role },
    hosts: [],
    participants: role === "waiting" ? [] : participants,
    screenshareAllowed: [],
    handsRaised: [],
    waitingUsers: [],
    screenshareRequests: [],
    sharingScreen: [],
    unmuted: [],
    cameraOn: [],
    ...extra,
  };
}

export function fakeDeps(options: { search?: string } = {}) {
  const signalings: FakeSignaling[] = [];
  const meshes: FakeMesh[] = [];
  let guestCount = 0;
  const api = {
    getConfig: vi.fn(async (_token?: string): Promise<ClientConfig> => CONFIG),
    guestSignIn: vi.fn(async (displayName: string): Promise<GuestToken> => {
      guestCount += 1;
      return { token: `tok${guestCount}`, clientId: `g_${displayName.toLowerCase()}`, displayName, expiresAt: 9e9 };
    }),
    refresh: vi.fn(async (token: string): Promise<GuestToken> => ({ token, clientId: "g_x", displayName: "X", expiresAt: 9e9 })),
    createRoom: vi.fn(async () => ({ roomId: "room-1", path: "/room-1" })),
    roomInfo: vi.fn(async (roomId: string) => ({ roomId, exists: true, participantCount: 0 })),
  } satisfies Api;
  const screen = new FakeStream([new FakeTrack("video")]);
  const media = {
    capture: vi.fn(async (request: CaptureRequest): Promise<CaptureResult> => {
      const tracks: FakeTrack[] = [];
      if (request.audio) tracks.push(new FakeTrack("audio"));
      if (request.video) tracks.push(new FakeTrack("video"));
      return { stream: new FakeStream(tracks) as unknown as MediaStream, error: null };
    }),
    listDevices: vi.fn(async () => ({ audioInputs: [], videoInputs: [] })),
    captureScreen: vi.fn(async () => screen as unknown as MediaStream),
    createStream: (tracks: MediaStreamTrack[]) => new FakeStream(tracks as unknown as FakeTrack[]) as unknown as MediaStream,
    startMeter: vi.fn((_stream: MediaStream, _on: (speaking: boolean) => void) => null),
  };
  const deps: CallDeps = {
    api,
    storage: memoryStorage(),
    media,
    createSignaling: (options) => {
      const s = new FakeSignaling(options);
      signalings.push(s);
      return s;
    },
    createMesh: (options) => {
      const m = new FakeMesh(options);
      meshes.push(m);
      return m;
    },
    location: () => ({ protocol: "http:", hostname: "localhost", search: options.search ?? "" }),
    now: () => 1_000_000,
  };
  return { deps, api, media, signalings, meshes, screen };
}
