import { existsSync } from "node:fs";
import { defineConfig } from "@playwright/test";

// Debian's Chromium, never a browser download. The wrapper in /usr/bin is a shell script;
// Playwright wants the binary itself.
const chromium =
  process.env.CHROMIUM_PATH ??
  ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].find((path) => existsSync(path));

if (!chromium) {
  // Under CI=true a missing browser is a failure, never a skip.
  throw new Error("Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)");
}

export default defineConfig({
  testDir: "tests/e2e",
  outputDir: "test-results",
  fullyParallel: false,
  workers: 1, // 2 cores: one call at a time, each with several pages
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: chromium,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
      ],
    },
    permissions: ["camera", "microphone"],
    trace: "off",
  },
});
