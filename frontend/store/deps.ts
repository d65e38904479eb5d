// What the store needs from the outside world; tests pass fakes (createCallStore(deps)).

import { createApi, type Api, type LocationLike } from "@/lib/api";
import { startAudioMeter, type AudioMeter } from "@/lib/audio-meter";
import {
  captureScreen,
  captureUserMedia,
  listDevices,
  type CaptureRequest,
  type CaptureResult,
  type DeviceLists,
} from "@/lib/media";
import { PeerMesh, type PeerMeshOptions } from "@/lib/peer-mesh";
import type { ClientEventName, ClientEvents, ServerMessage } from "@/lib/protocol";
import { SignalingClient, type SignalingStatus } from "@/lib/signaling";
import { sessionStore, type KeyValueStorage } from "@/lib/storage";

export interface SignalingLike {
  connect(): void;
  send<K extends ClientEventName>(event: K, payload: ClientEvents[K]): boolean;
  onMessage(handler: (message: ServerMessage) => void): () => void;
  onStatus(handler: (status: SignalingStatus) => void): () => void;
  leave(): void;
  close(): void;
}

export interface SignalingFactoryOptions {
  roomId: string;
  url: string;
  getToken: () => Promise<string>;
}

export type MeshLike = Pick<
  PeerMesh,
  | "selfId"
  | "sync"
  | "handleSignal"
  | "setLocalTrack"
  | "setScreenTrack"
  | "resendPending"
  | "updateConfiguration"
  | "peerConnections"
  | "views"
  | "close"
>;

export type MeshFactoryOptions = Pick<
  PeerMeshOptions,
  "selfId" | "iceServers" | "iceTransportPolicy" | "send" | "onChange" | "lingerMs"
>;

export interface MediaDeps {
  capture(request: CaptureRequest): Promise<CaptureResult>;
  listDevices(): Promise<DeviceLists>;
  captureScreen(): Promise<MediaStream>;
  createStream(tracks: MediaStreamTrack[]): MediaStream;
  startMeter(stream: MediaStream, onSpeaking: (speaking: boolean) => void): AudioMeter | null;
}

export interface CallDeps {
  api: Api;
  storage: KeyValueStorage;
  media: MediaDeps;
  createSignaling(options: SignalingFactoryOptions): SignalingLike;
  createMesh(options: MeshFactoryOptions): MeshLike;
  location(): LocationLike;
  now(): number;
}

export function defaultDeps(): CallDeps {
  return {
    api: createApi(),
    storage: sessionStore(),
    media: {
      capture: (request) => captureUserMedia(request),
      listDevices: () => listDevices(),
      captureScreen: () => captureScreen(),
      createStream: (tracks) => new MediaStream(tracks),
      startMeter: startAudioMeter,
    },
    createSignaling: (options) => new SignalingClient(options),
    createMesh: (options) => new PeerMesh(options),
    location: () =>
      typeof window === "undefined" ? { protocol: "http:", hostname: "localhost" } : window.location,
    now: () => Date.now(),
  };
}
