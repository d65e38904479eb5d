// The signaling WebSocket (docs/protocol.md): JSON envelopes, typed events, admission
// tickets, and the reconnect policy of "Disconnects and close codes".

import { backoffDelay } from "./backoff";
import { createLogger } from "./logger";
import {
  type ClientEventName,
  type ClientEvents,
  type DisconnectReason,
  type ServerEventName,
  type ServerEvents,
  type ServerMessage,
} from "./protocol";
import { sessionStore, type KeyValueStorage } from "./storage";
import { decodeServerMessage, encodeClientMessage } from "./envelope";
import { decideOnClose, DROP_TICKET_REASONS } from "./reconnect-policy";
import { clearTicket, loadTicket, saveTicket, withTicket } from "./tickets";

const log = createLogger("signaling");

export const STABLE_CONNECTION_MS = 10_000;
export const CONNECT_TIMEOUT_MS = 15_000;
export const LEAVE_TIMEOUT_MS = 1_000;

export type SignalingStatus =
  | { state: "idle" }
  | { state: "connecting"; attempt: number }
  | { state: "open" }
  | { state: "reconnecting"; attempt: number; delayMs: number }
  | { state: "closed"; reason: DisconnectReason | "client" };

/** The part of the browser WebSocket we use. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export type TimerId = ReturnType<typeof setTimeout>;

export interface SignalingOptions {
  roomId: string;
  /** ws(s)://host/ws/hub/<roomId>, without a ticket. */
  url: string;
  /** A valid token for each (re)connection; refresh it here when it is close to expiry. */
  getToken: () => Promise<string>;
  subprotocol?: string;
  WebSocketImpl?: WebSocketConstructor;
  setTimeout?: (fn: () => void, ms: number) => TimerId;
  clearTimeout?: (id: TimerId) => void;
  now?: () => number;
  random?: () => number;
  storage?: KeyValueStorage;
}

const OPEN = 1;
const CONNECTING = 0;

type AnyHandler = (payload: never) => void;

export class SignalingClient {
  private readonly opts: Required<Omit<SignalingOptions, "WebSocketImpl">> & { WebSocketImpl: WebSocketConstructor };
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private openedAt: number | null = null;
  private generation = 0;
  private wanted = false;
  private leaving = false;
  private lastDisconnect: ServerEvents["disconnect"] | null = null;
  private retryTimer: TimerId | null = null;
  private connectTimer: TimerId | null = null;
  private leaveTimer: TimerId | null = null;
  private currentStatus: SignalingStatus = { state: "idle" };
  private readonly handlers = new Map<ServerEventName, Set<AnyHandler>>();
  private readonly messageHandlers = new Set<(message: ServerMessage) => void>();
  private readonly statusHandlers = new Set<(status: SignalingStatus) => void>();

  constructor(options: SignalingOptions) {
    const WebSocketImpl = options.WebSocketImpl ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined);
    if (!WebSocketImpl) throw new Error("no WebSocket implementation available");
    this.opts = {
      subprotocol: "videoconf.v1",
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
      random: Math.random,
      storage: options.storage ?? sessionStore(),
      ...options,
      WebSocketImpl,
    };
  }

  get status(): SignalingStatus {
    return this.currentStatus;
  }

  get isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === OPEN && this.currentStatus.state === "open";
  }

  /** Starts connecting (and keeps reconnecting per the policy) until close() or leave(). */
  connect(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.leaving = false;
    this.attempt = 0;
    this.generation += 1;
    void this.openSocket();
  }

  on<K extends ServerEventName>(event: K, handler: (payload: ServerEvents[K]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    const h = handler as AnyHandler;
    set.add(h);
    return () => void set.delete(h);
  }

  /** Every decoded server message, in order. */
  onMessage(handler: (message: ServerMessage) => void): () => void {
    this.messageHandlers.add(handler);
    return () => void this.messageHandlers.delete(handler);
  }

  onStatus(handler: (status: SignalingStatus) => void): () => void {
    this.statusHandlers.add(handler);
    return () => void this.statusHandlers.delete(handler);
  }

  /** Sends one event; dropped (false) while the socket is not open. */
  send<K extends ClientEventName>(event: K, payload: ClientEvents[K]): boolean {
    if (!this.ws || this.ws.readyState !== OPEN || this.currentStatus.state !== "open") {
      log.debug("not open, dropping", event);
      return false;
    }
    try {
      this.ws.send(encodeClientMessage(event, payload));
      return true;
    } catch (err) {
      log.warn("send failed", event, err);
      return false;
    }
  }

  /** Leaves the room on purpose: `disconnect`, then the server closes (or we do after 1 s). */
  leave(): void {
    this.wanted = false;
    this.generation += 1;
    this.leaving = true;
    this.clearTimers();
    clearTicket(this.opts.storage, this.opts.roomId);
    const ws = this.ws;
    if (ws && ws.readyState === OPEN && this.send("disconnect", {})) {
      this.leaveTimer = this.opts.setTimeout(() => this.finish("left"), LEAVE_TIMEOUT_MS);
      return;
    }
    this.finish("left");
  }

  /** Stops for good without a `disconnect` event. */
  close(): void {
    this.wanted = false;
    this.generation += 1;
    this.clearTimers();
    this.finish("client");
  }

  // ------------------------------------------------------------------ internals

  private setStatus(status: SignalingStatus): void {
    this.currentStatus = status;
    for (const handler of [...this.statusHandlers]) {
      try {
        handler(status);
      } catch (err) {
        log.error("status handler failed", err);
      }
    }
  }

  private clearTimers(): void {
    for (const timer of [this.retryTimer, this.connectTimer, this.leaveTimer]) {
      if (timer !== null) this.opts.clearTimeout(timer);
    }
    this.retryTimer = this.connectTimer = this.leaveTimer = null;
  }

  private finish(reason: DisconnectReason | "client"): void {
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      this.detach(ws);
      if (ws.readyState === OPEN || ws.readyState === CONNECTING) {
        try {
          ws.close(1000);
        } catch {
          // Already closing.
        }
      }
    }
    if (this.currentStatus.state !== "closed") this.setStatus({ state: "closed", reason });
  }

  private detach(ws: WebSocketLike): void {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  private async openSocket(): Promise<void> {
    const generation = this.generation;
    this.retryTimer = null;
    this.lastDisconnect = null;
    this.setStatus({ state: "connecting", attempt: this.attempt });
    let token: string;
    try {
      token = await this.opts.getToken();
    } catch (err) {
      log.warn("no token for connecting", err);
      if (this.wanted && generation === this.generation) this.scheduleReconnect();
      return;
    }
    if (!this.wanted || generation !== this.generation) return;
    const ticket = loadTicket(this.opts.storage, this.opts.roomId, this.opts.now());
    const url = ticket ? withTicket(this.opts.url, ticket) : this.opts.url;
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocketImpl(url, [this.opts.subprotocol, token]);
    } catch (err) {
      log.error("cannot create WebSocket", err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.connectTimer = this.opts.setTimeout(() => {
      if (this.ws !== ws || ws.readyState === OPEN) return;
      log.warn("connect timed out");
      this.onSocketClosed(ws, 1006);
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (this.connectTimer !== null) this.opts.clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.openedAt = this.opts.now();
      this.setStatus({ state: "open" });
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onData(ev.data);
    };
    ws.onerror = () => log.debug("socket error");
    ws.onclose = (ev) => this.onSocketClosed(ws, ev.code);
  }

  private onData(data: unknown): void {
    const message = decodeServerMessage(data);
    if (!message) {
      log.warn("dropping an undecodable message");
      return;
    }
    if (message.event === "room_state") this.attempt = 0;
    else if (message.event === "ticket") saveTicket(this.opts.storage, this.opts.roomId, message.payload);
    else if (message.event === "disconnect") {
      this.lastDisconnect = message.payload;
      if (DROP_TICKET_REASONS.has(message.payload.reason)) clearTicket(this.opts.storage, this.opts.roomId);
    }
    for (const handler of [...this.messageHandlers]) this.safely(() => handler(message));
    const set = this.handlers.get(message.event);
    if (set) {
      for (const handler of [...set]) {
        this.safely(() => (handler as (payload: ServerMessage["payload"]) => void)(message.payload));
      }
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      log.error("handler failed", err);
    }
  }

  private onSocketClosed(ws: WebSocketLike, code: number): void {
    if (this.ws !== ws) return;
    this.detach(ws);
    try {
      ws.close();
    } catch {
      // Already closed.
    }
    this.ws = null;
    if (this.connectTimer !== null) this.opts.clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.leaving) {
      this.finish("left");
      return;
    }
    if (!this.wanted) return;
    const decision = decideOnClose(this.lastDisconnect, code);
    log.info("socket closed", code, decision.reconnect ? "reconnecting" : `stopping: ${decision.reason}`);
    if (!decision.reconnect) {
      this.wanted = false;
      this.finish(decision.reason);
      return;
    }
    if (this.openedAt !== null && this.opts.now() - this.openedAt > STABLE_CONNECTION_MS) this.attempt = 0;
    this.openedAt = null;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.wanted) return;
    const delayMs = backoffDelay(this.attempt, { random: this.opts.random });
    this.attempt += 1;
    this.setStatus({ state: "reconnecting", attempt: this.attempt, delayMs });
    this.retryTimer = this.opts.setTimeout(() => void this.openSocket(), delayMs);
  }
}
