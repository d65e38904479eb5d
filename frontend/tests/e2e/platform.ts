// The platform under test: the real backend (`videoconf serve`) and the production build of
// the web app (Next.js standalone server), each on a free loopback port, started per test.
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test as base, type Browser, type BrowserContext, expect, type Page } from "@playwright/test";

const frontendRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const repoRoot = path.resolve(frontendRoot, "..");
const backendCommand = process.env.BACKEND_COMMAND ?? path.join(repoRoot, ".venv/bin/videoconf");
const standaloneServer = path.join(frontendRoot, ".next/standalone/server.js");

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

function stopProcess(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export class Platform {
  backend: ChildProcess | null = null;
  frontend: ChildProcess | null = null;
  readonly secret = `e2e-secret-${"s".repeat(40)}`;

  constructor(
    readonly backendPort: number,
    readonly frontendPort: number,
    /** Extra environment for `videoconf serve` (e.g. TURN_URLS, TURN_SECRET). */
    readonly backendEnv: Record<string, string> = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.frontendPort}`;
  }

  get backendUrl(): string {
    return `http://127.0.0.1:${this.backendPort}`;
  }

  async startBackend(): Promise<void> {
    if (!existsSync(backendCommand)) throw new Error(`backend not installed: ${backendCommand}`);
    this.backend = spawn(backendCommand, ["serve"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOST: "127.0.0.1",
        PORT: String(this.backendPort),
        JWT_SECRET: this.secret,
        PUBLIC_WS_URL: `ws://127.0.0.1:${this.backendPort}`,
        ALLOWED_ORIGINS: this.url,
        LOG_LEVEL: "WARNING",
        RECONNECT_GRACE_SECONDS: "30",
        NODE_ENV: "production",
        ...this.backendEnv,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitForHttp(`${this.backendUrl}/health`, 15_000);
  }

  /** No goodbye, no drain: the process and every room it held are simply gone. */
  async killBackend(): Promise<void> {
    await stopProcess(this.backend, "SIGKILL");
    this.backend = null;
  }

  async startFrontend(): Promise<void> {
    if (!existsSync(standaloneServer)) {
      throw new Error("the production build is missing: run `npm run build` in frontend/");
    }
    this.frontend = spawn(process.execPath, [standaloneServer], {
      cwd: path.dirname(standaloneServer),
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        NODE_ENV: "production",
        NEXT_TELEMETRY_DISABLED: "1",
        PORT: String(this.frontendPort),
        HOSTNAME: "127.0.0.1",
        BACKEND_URL: this.backendUrl,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    await waitForHttp(`${this.url}/api/health`, 20_000);
  }

  async stop(): Promise<void> {
    await Promise.all([stopProcess(this.frontend, "SIGTERM"), stopProcess(this.backend, "SIGTERM")]);
  }
}

/** Whether `port` can be bound on 127.0.0.1 for UDP (and for TCP too when `tcp`). */
async function portFree(port: number, tcp: boolean): Promise<boolean> {
  const udpFree = await new Promise<boolean>((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
  if (!udpFree || !tcp) return udpFree;
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A real coturn (Debian's `turnserver`) on 127.0.0.1 with `use-auth-secret`, for relay tests. */
export class TurnServer {
  process: ChildProcess | null = null;
  readonly secret = `e2e-turn-secret-${"t".repeat(32)}`;
  readonly realm = "videoconf.test";
  private readonly dir = mkdtempSync(path.join(tmpdir(), "videoconf-turn-"));

  constructor(
    readonly port: number,
    readonly minRelayPort: number,
    readonly relayPorts: number,
  ) {}

  /** The binary, or null when coturn is not installed. */
  static binary(): string | null {
    for (const candidate of ["/usr/bin/turnserver", "/usr/sbin/turnserver"]) {
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not there
      }
    }
    return null;
  }

  /** A port free for UDP and TCP and a run of free UDP relay ports, all on 127.0.0.1. */
  static async onFreePorts(relayPorts = 20): Promise<TurnServer> {
    let port = 0;
    for (let i = 0; i < 50 && port === 0; i += 1) {
      const candidate = await freePort();
      if (await portFree(candidate, true)) port = candidate;
    }
    for (let i = 0; i < 50; i += 1) {
      const first = 40_000 + Math.floor(Math.random() * (20_000 - relayPorts));
      let free = true;
      for (let p = first; p < first + relayPorts && free; p += 1) free = await portFree(p, false);
      if (free && port !== 0 && (port < first || port >= first + relayPorts)) {
        return new TurnServer(port, first, relayPorts);
      }
    }
    throw new Error("no free ports for turnserver");
  }

  /** The backend settings that hand out credentials for this server. */
  backendEnv(ttlSeconds = 600): Record<string, string> {
    return {
      TURN_URLS: `turn:127.0.0.1:${this.port}?transport=udp`,
      TURN_SECRET: this.secret,
      TURN_TTL: String(ttlSeconds),
    };
  }

  async start(): Promise<void> {
    const binary = TurnServer.binary();
    if (!binary) throw new Error("turnserver is not installed (apt-get install coturn)");
    // The flags backend/tests/e2e/test_coturn.py uses: no config file, no TLS, no CLI.
    this.process = spawn(
      binary,
      [
        "-n",
        "--listening-ip=127.0.0.1",
        `--listening-port=${this.port}`,
        "--relay-ip=127.0.0.1",
        `--min-port=${this.minRelayPort}`,
        `--max-port=${this.minRelayPort + this.relayPorts - 1}`,
        "--use-auth-secret",
        `--static-auth-secret=${this.secret}`,
        `--realm=${this.realm}`,
        "--allow-loopback-peers", // both relays are on 127.0.0.1
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",
        "--no-software-attribute",
        "--log-file=stdout",
        "--simple-log",
        `--pidfile=${path.join(this.dir, "turnserver.pid")}`,
        `--userdb=${path.join(this.dir, "turndb")}`,
      ],
      // Its stderr only complains about IPv6 inside the loopback-only namespace; kept for failures.
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    this.process.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    // Listening once the TCP port accepts connections.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.process.exitCode !== null) {
        throw new Error(`turnserver exited with ${this.process.exitCode}: ${stderr}`);
      }
      if (!(await portFree(this.port, true))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`turnserver did not listen on ${this.port} within 20 s`);
  }

  async stop(): Promise<void> {
    await stopProcess(this.process, "SIGTERM");
    this.process = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const test = base.extend<{ platform: Platform }>({
  platform: async ({}, use) => {
    const platform = new Platform(await freePort(), await freePort());
    await platform.startBackend();
    await platform.startFrontend();
    await use(platform);
    await platform.stop();
  },
});

export { expect };

/** A person in the call: one browser context (its own storage and identity), one page. */
export interface Person {
  name: string;
  context: BrowserContext;
  page: Page;
}

export async function person(browser: Browser, name: string): Promise<Person> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // Quiet in production: the console stays silent; anything printed is a defect.
  page.on("console", (message) => errors.push(`console.${message.type()}: ${message.text()}`));
  (page as Page & { errorsSeen: string[] }).errorsSeen = errors;
  return { name, context, page };
}

export function errorsOf(who: Person): string[] {
  return (who.page as Page & { errorsSeen: string[] }).errorsSeen;
}

/** Open the room link with ?name=, keep the pre-filled name, and press Join. */
export async function joinRoom(platform: Platform, who: Person, roomId: string): Promise<void> {
  await who.page.goto(`${platform.url}/${roomId}?name=${encodeURIComponent(who.name)}`);
  await who.page.getByRole("button", { name: "Join", exact: true }).click();
}

export async function createRoom(platform: Platform, host: Person): Promise<string> {
  await host.page.goto(platform.url);
  await host.page.getByLabel("Your name").fill(host.name);
  await host.page.getByRole("button", { name: "Create room" }).click();
  await host.page.waitForURL((url) => /^\/[A-Za-z0-9_-]{3,64}$/.test(url.pathname), {
    timeout: 20_000,
  });
  const roomId = new URL(host.page.url()).pathname.slice(1);
  await host.page.getByRole("button", { name: "Join", exact: true }).click();
  return roomId;
}

export async function openParticipants(who: Person): Promise<void> {
  const button = who.page.getByRole("button", { name: "Participants" });
  if ((await button.getAttribute("aria-pressed")) !== "true" && (await button.getAttribute("aria-expanded")) !== "true") {
    await button.click();
  }
}

export async function admit(host: Person, guest: Person): Promise<void> {
  await openParticipants(host);
  await host.page.getByRole("button", { name: `Admit ${guest.name}` }).click();
}

/** The role the page's store holds for itself. */
export async function roleOf(who: Person): Promise<string | null> {
  return who.page.evaluate(() => {
    const handle = (window as unknown as { __videoconf?: { state(): { self: { role: string } | null } } })
      .__videoconf;
    return handle?.state().self?.role ?? null;
  });
}

/**
 * Inbound media per remote peer, measured twice `windowMs` apart: decoded video size and
 * bytes received for video and audio (growing bytes prove media is flowing now).
 */
export async function inboundMedia(
  who: Person,
  windowMs = 2000,
): Promise<Record<string, { videoWidth: number; videoGrowth: number; audioGrowth: number; state: string }>> {
  return who.page.evaluate(async (windowMs) => {
    type Handle = { peerConnections(): Record<string, RTCPeerConnection> };
    const handle = (window as unknown as { __videoconf: Handle }).__videoconf;
    const sample = async () => {
      const result: Record<string, { video: number; audio: number }> = {};
      for (const [peerId, pc] of Object.entries(handle.peerConnections())) {
        let video = 0;
        let audio = 0;
        (await pc.getStats()).forEach((report: { type: string; kind?: string; bytesReceived?: number }) => {
          if (report.type !== "inbound-rtp") return;
          if (report.kind === "video") video += report.bytesReceived ?? 0;
          if (report.kind === "audio") audio += report.bytesReceived ?? 0;
        });
        result[peerId] = { video, audio };
      }
      return result;
    };
    const before = await sample();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = await sample();
    const out: Record<string, { videoWidth: number; videoGrowth: number; audioGrowth: number; state: string }> = {};
    for (const [peerId, pc] of Object.entries(handle.peerConnections())) {
      const tile = document.querySelector(`[data-testid="video-tile"][data-client-id="${peerId}"] video`);
      out[peerId] = {
        videoWidth: tile instanceof HTMLVideoElement ? tile.videoWidth : 0,
        videoGrowth: (after[peerId]?.video ?? 0) - (before[peerId]?.video ?? 0),
        audioGrowth: (after[peerId]?.audio ?? 0) - (before[peerId]?.audio ?? 0),
        state: pc.connectionState,
      };
    }
    return out;
  }, windowMs);
}

/** Wait until `who` receives live video and audio from exactly `peers` other people. */
export async function expectMediaFrom(who: Person, peers: number, timeoutMs = 45_000): Promise<void> {
  await expect
    .poll(
      async () => {
        const media = Object.values(await inboundMedia(who, 1000));
        return media.filter((m) => m.state === "connected" && m.videoWidth > 0 && m.videoGrowth > 0 && m.audioGrowth > 0)
          .length;
      },
      { timeout: timeoutMs, intervals: [500] },
    )
    .toBe(peers);
}
