// The platform under test: the real backend (`videoconf serve`) and the production build of
// the web app (Next.js standalone server), each on a free loopback port, started per test.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
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
