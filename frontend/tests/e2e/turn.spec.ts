// Relay-only calls through a real coturn: two Chromium pages join with ?relay=1, media flows,
// and the selected ICE candidate pair is a relay on both ends (docs: README "Calls across NATs").
import { test as base } from "@playwright/test";
import {
  admit,
  errorsOf,
  expect,
  expectMediaFrom,
  freePort,
  person,
  Platform,
  TurnServer,
  type Person,
} from "./platform";

const test = base.extend<{ turn: TurnServer; platform: Platform }>({
  turn: async ({}, use) => {
    if (!TurnServer.binary()) {
      if (process.env.CI === "true") throw new Error("turnserver is not installed; CI must install coturn");
      base.skip(true, "turnserver is not installed (apt-get install coturn): relay call not tried");
    }
    const turn = await TurnServer.onFreePorts();
    await turn.start();
    await use(turn);
    await turn.stop();
  },
  platform: async ({ turn }, use) => {
    const platform = new Platform(await freePort(), await freePort(), turn.backendEnv());
    await platform.startBackend();
    await platform.startFrontend();
    await use(platform);
    await platform.stop();
  },
});

interface PairInfo {
  policy: string | undefined;
  turnUrls: string[];
  local: string | undefined;
  remote: string | undefined;
  localAddress: string | undefined;
}

/** Per peer: the connection's policy and TURN URLs, and the selected pair's candidate types. */
async function selectedPairs(who: Person): Promise<Record<string, PairInfo>> {
  return who.page.evaluate(async () => {
    type Handle = { peerConnections(): Record<string, RTCPeerConnection> };
    type Report = Record<string, unknown> & { id: string; type: string };
    const handle = (window as unknown as { __videoconf: Handle }).__videoconf;
    const out: Record<string, PairInfo> = {};
    for (const [peerId, pc] of Object.entries(handle.peerConnections())) {
      const reports = new Map<string, Report>();
      (await pc.getStats()).forEach((r: Report) => reports.set(r.id, r));
      const all = [...reports.values()];
      const transport = all.find((r) => r.type === "transport" && typeof r.selectedCandidatePairId === "string");
      let pair = transport ? reports.get(transport.selectedCandidatePairId as string) : undefined;
      pair ??= all.find(
        (r) => r.type === "candidate-pair" && (r.selected === true || r.nominated === true) && r.state === "succeeded",
      );
      const local = pair ? reports.get(pair.localCandidateId as string) : undefined;
      const remote = pair ? reports.get(pair.remoteCandidateId as string) : undefined;
      const config = pc.getConfiguration();
      out[peerId] = {
        policy: config.iceTransportPolicy,
        turnUrls: (config.iceServers ?? [])
          .flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]))
          .filter((u) => u.startsWith("turn")),
        local: local?.candidateType as string | undefined,
        remote: remote?.candidateType as string | undefined,
        localAddress: (local?.address ?? local?.ip) as string | undefined,
      };
    }
    return out;
  });
}

test("a relay-only call (?relay=1) goes through the TURN server", async ({ browser, platform, turn }) => {
  const ann = await person(browser, "Ann");
  const ben = await person(browser, "Ben");
  const roomId = `relay-${Date.now().toString(36)}`;

  await ann.page.goto(`${platform.url}/${roomId}?name=Ann&relay=1`);
  await ann.page.getByRole("button", { name: "Join", exact: true }).click();
  await expect(ann.page.locator('[data-testid="video-tile"][data-self="true"]')).toBeVisible();

  await ben.page.goto(`${platform.url}/${roomId}?name=Ben&relay=1`);
  await ben.page.getByRole("button", { name: "Join", exact: true }).click();
  await expect(ben.page.getByText("Waiting for the host to let you in")).toBeVisible();
  await admit(ann, ben);

  await expectMediaFrom(ann, 1);
  await expectMediaFrom(ben, 1);

  for (const who of [ann, ben]) {
    const pairs = Object.values(await selectedPairs(who));
    expect(pairs, `${who.name}'s peer connections`).toHaveLength(1);
    expect(pairs[0], `${who.name}'s selected pair`).toMatchObject({
      policy: "relay",
      turnUrls: [`turn:127.0.0.1:${turn.port}?transport=udp`],
      local: "relay",
      remote: "relay",
    });
    expect(errorsOf(who), `${who.name}'s console`).toEqual([]);
  }

  // The setting reflects ?relay=1.
  await ann.page.getByRole("button", { name: "Settings" }).click();
  await expect(ann.page.getByRole("checkbox", { name: "Relay all media through the TURN server" })).toBeChecked();

  await ann.context.close();
  await ben.context.close();
});
