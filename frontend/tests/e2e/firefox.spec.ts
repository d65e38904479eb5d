// A real two-person call across browsers: Chromium (Playwright) hosts, Firefox joins. Playwright
// cannot drive Debian's Firefox (it needs its own patched build), so Firefox ESR from Debian is
// driven by puppeteer-core over WebDriver BiDi, inside this Playwright test. Fake camera and
// microphone, loopback-only ICE, against the real backend and the production build.
import { existsSync } from "node:fs";
import puppeteer, { type Browser as FirefoxBrowser, type Page as FirefoxPage } from "puppeteer-core";
import { createRoom, errorsOf, expect, expectMediaFrom, openParticipants, person, test } from "./platform";

const firefox =
  process.env.FIREFOX_PATH ?? ["/usr/bin/firefox-esr", "/usr/bin/firefox"].find((path) => existsSync(path));

interface Inbound {
  peers: number;
  connected: number;
  videoWidth: number;
  videoGrowth: number;
  audioGrowth: number;
}

/** Runs in the page: decoded size of remote video and inbound-rtp bytes grown over `windowMs`. */
async function inboundInPage(windowMs: number): Promise<Inbound> {
  type Handle = { peerConnections(): Record<string, RTCPeerConnection> };
  const handle = (window as unknown as { __videoconf?: Handle }).__videoconf;
  const pcs = Object.values(handle?.peerConnections() ?? {});
  const sample = async () => {
    let video = 0;
    let audio = 0;
    for (const pc of pcs) {
      (await pc.getStats()).forEach((report: { type: string; kind?: string; bytesReceived?: number }) => {
        if (report.type !== "inbound-rtp") return;
        if (report.kind === "video") video += report.bytesReceived ?? 0;
        if (report.kind === "audio") audio += report.bytesReceived ?? 0;
      });
    }
    return { video, audio };
  };
  const before = await sample();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const after = await sample();
  const widths = Array.from(
    document.querySelectorAll<HTMLVideoElement>('[data-testid="video-tile"]:not([data-self]) video'),
  ).map((video) => video.videoWidth);
  return {
    peers: pcs.length,
    connected: pcs.filter((pc) => pc.connectionState === "connected").length,
    videoWidth: Math.max(0, ...widths),
    videoGrowth: after.video - before.video,
    audioGrowth: after.audio - before.audio,
  };
}

async function launchFirefox(): Promise<FirefoxBrowser> {
  return puppeteer.launch({
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath: firefox,
    headless: true,
    timeout: 30_000,
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      // Count the fake devices as capturing: otherwise Firefox offers only the default route's
      // address as an ICE candidate, and the loopback-only namespace has no default route.
      "media.navigator.permission.fake": true,
      "media.peerconnection.ice.loopback": true,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
    },
  });
}

test("Firefox joins a Chromium host's call; each gets the other's media", async ({ browser, platform }) => {
  test.skip(!firefox && process.env.CI !== "true", "Firefox not installed: apt-get install firefox-esr");
  // Under CI=true a missing browser is a failure, never a skip.
  if (!firefox) throw new Error("Firefox not found: apt-get install firefox-esr (or set FIREFOX_PATH)");
  test.setTimeout(60_000);

  const ada = await person(browser, "Ada");
  const firefoxBrowser = await launchFirefox();
  try {
    const page: FirefoxPage = await firefoxBrowser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(`pageerror: ${String(error)}`));
    page.on("console", (message) => errors.push(`console.${message.type()}: ${message.text()}`));

    const roomId = await createRoom(platform, ada);
    await expect(ada.page.locator('[data-testid="video-tile"][data-self="true"]')).toBeVisible();

    // Firefox opens the room link with ?name= and presses Join.
    await page.goto(`${platform.url}/${roomId}?name=Fox`);
    await page.locator('form button[type="submit"]::-p-text(Join)').setTimeout(20_000).click();
    await page.locator("::-p-text(Waiting for the host to let you in)").setTimeout(20_000).wait();
    await openParticipants(ada);
    await ada.page.getByRole("button", { name: "Admit Fox" }).click();

    await expect(ada.page.locator('[data-testid="video-tile"]')).toHaveCount(2);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="video-tile"]').length === 2, {
      timeout: 20_000,
    });

    // Firefox receives the host's video and sound (the diff shows the last sample on failure).
    await expect
      .poll(
        async () => {
          const media = await page.evaluate(inboundInPage, 1000);
          return {
            peers: media.peers,
            connected: media.connected,
            videoDecoded: media.videoWidth > 0,
            videoFlowing: media.videoGrowth > 0,
            audioFlowing: media.audioGrowth > 0,
          };
        },
        { timeout: 20_000, intervals: [500] },
      )
      .toEqual({ peers: 1, connected: 1, videoDecoded: true, videoFlowing: true, audioFlowing: true });
    // ...and the host receives Firefox's.
    await expectMediaFrom(ada, 1, 20_000);

    expect(errors, "Firefox's console").toEqual([]);
    expect(errorsOf(ada), "Ada's console").toEqual([]);
  } finally {
    await firefoxBrowser.close();
    await ada.context.close();
  }
});
