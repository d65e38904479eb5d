// Real calls in headless Chromium with fake camera and microphone, against the real backend
// and the production build of the web app, inside a loopback-only network namespace.
import {
  admit,
  createRoom,
  errorsOf,
  expect,
  expectMediaFrom,
  inboundMedia,
  joinRoom,
  openParticipants,
  type Person,
  person,
  roleOf,
  test,
} from "./platform";

async function closeAll(people: Person[]): Promise<void> {
  for (const who of people) await who.context.close();
}

test("three people see and hear each other; chat, hands and history work", async ({ browser, platform }, testInfo) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  const cy = await person(browser, "Cy");
  const roomId = await createRoom(platform, ada);
  await expect(ada.page.locator('[data-testid="video-tile"][data-self="true"]')).toBeVisible();

  await joinRoom(platform, bob, roomId);
  await expect(bob.page.getByText("Waiting for the host to let you in")).toBeVisible();
  await admit(ada, bob);

  // Chat before Cy arrives: Cy must find it in the history.
  await ada.page.getByRole("button", { name: "Chat" }).click();
  await ada.page.getByRole("textbox", { name: /message/i }).fill("Welcome, everyone");
  await ada.page.getByRole("button", { name: "Send" }).click();

  await joinRoom(platform, cy, roomId);
  await expect(cy.page.getByText("Waiting for the host to let you in")).toBeVisible();
  await admit(ada, cy);

  for (const who of [ada, bob, cy]) {
    await expect(who.page.locator('[data-testid="video-tile"]')).toHaveCount(3);
  }
  for (const who of [ada, bob, cy]) await expectMediaFrom(who, 2);
  await ada.page.screenshot({ path: testInfo.outputPath("three-person-call.png"), fullPage: true });

  await cy.page.getByRole("button", { name: "Chat" }).click();
  const cyMessages = cy.page.getByRole("list", { name: "Chat messages" });
  await expect(cyMessages.getByTestId("chat-message").filter({ hasText: "Welcome, everyone" })).toHaveCount(1);
  await cy.page.getByRole("textbox", { name: /message/i }).fill("Hi from Cy");
  await cy.page.getByRole("button", { name: "Send" }).click();
  await expect(
    ada.page.getByRole("list", { name: "Chat messages" }).getByTestId("chat-message").filter({ hasText: "Hi from Cy" }),
  ).toHaveCount(1);

  await bob.page.getByRole("button", { name: "Raise hand" }).click();
  for (const who of [ada, bob, cy]) {
    await expect(
      who.page.locator('[data-testid="video-tile"]').filter({ hasText: "Bob" }).getByLabel("Hand raised"),
    ).toBeVisible();
  }
  await bob.page.getByRole("button", { name: "Lower hand" }).click();
  await expect(cy.page.getByLabel("Hand raised")).toHaveCount(0);

  for (const who of [ada, bob, cy]) expect(errorsOf(who), `${who.name}'s console`).toEqual([]);
  await closeAll([ada, bob, cy]);
});

test("a denied person is told so; an admitted one gets media", async ({ browser, platform }) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  const eve = await person(browser, "Eve");
  const roomId = await createRoom(platform, ada);
  await joinRoom(platform, eve, roomId);
  await expect(eve.page.getByText("Waiting for the host to let you in")).toBeVisible();
  await openParticipants(ada);
  await ada.page.getByRole("button", { name: "Deny Eve" }).click();
  await expect(eve.page.getByText("The host did not let you in")).toBeVisible();

  await joinRoom(platform, bob, roomId);
  await admit(ada, bob);
  await expectMediaFrom(bob, 1);
  await expectMediaFrom(ada, 1);
  await closeAll([ada, bob, eve]);
});

test("screen share: request, grant, and the others see the shared screen", async ({ browser, platform }) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  const roomId = await createRoom(platform, ada);
  await joinRoom(platform, bob, roomId);
  await admit(ada, bob);
  await expectMediaFrom(ada, 1);

  await bob.page.getByRole("button", { name: "Request to share screen" }).click();
  await openParticipants(ada);
  await ada.page.getByRole("button", { name: "Allow Bob to share screen" }).click();
  await bob.page.getByRole("button", { name: "Share screen", exact: true }).click();
  const shared = ada.page.getByTestId("screen-share");
  await expect(shared).toBeVisible();
  await expect
    .poll(() => shared.locator("video").evaluate((video: HTMLVideoElement) => video.videoWidth), {
      timeout: 30_000,
    })
    .toBeGreaterThan(0);
  await bob.page.getByRole("button", { name: "Stop sharing" }).click();
  await expect(ada.page.getByTestId("screen-share")).toHaveCount(0);
  await closeAll([ada, bob]);
});

test("a backend restart mid-call: media keeps flowing, everyone comes back with their role", async ({
  browser,
  platform,
}) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  const cy = await person(browser, "Cy");
  const roomId = await createRoom(platform, ada);
  for (const guest of [bob, cy]) {
    await joinRoom(platform, guest, roomId);
    await admit(ada, guest);
  }
  for (const who of [ada, bob, cy]) await expectMediaFrom(who, 2);

  await platform.killBackend();
  for (const who of [ada, bob, cy]) {
    await expect(who.page.getByRole("status").filter({ hasText: "Reconnecting" })).toBeVisible();
  }
  // Peer to peer: the call goes on while signaling is down.
  for (const who of [ada, bob, cy]) {
    const media = Object.values(await inboundMedia(who));
    expect(media.length).toBe(2);
    for (const peer of media) {
      expect(peer.videoGrowth).toBeGreaterThan(0);
      expect(peer.audioGrowth).toBeGreaterThan(0);
    }
  }

  await platform.startBackend();
  for (const who of [ada, bob, cy]) {
    await expect(who.page.getByRole("status").filter({ hasText: "Reconnecting" })).toHaveCount(0, {
      timeout: 30_000,
    });
    await expect(who.page.getByText("Waiting for the host to let you in")).toHaveCount(0);
  }
  expect(await roleOf(ada)).toBe("host");
  expect(await roleOf(bob)).toMatch(/^(participant|host)$/);
  expect(await roleOf(cy)).toMatch(/^(participant|host)$/);
  for (const who of [ada, bob, cy]) {
    await expect(who.page.locator('[data-testid="video-tile"]')).toHaveCount(3);
    await expectMediaFrom(who, 2);
  }
  await closeAll([ada, bob, cy]);
});

test("host controls: mute request, make host, remove; chat delete; peer outcomes reach the metrics", async ({
  browser,
  platform,
}) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  const roomId = await createRoom(platform, ada);
  await joinRoom(platform, bob, roomId);
  await admit(ada, bob);
  await expectMediaFrom(ada, 1);
  await expectMediaFrom(bob, 1);

  // Mute: Bob mutes himself and everyone sees the badge.
  const bobTileAtAda = ada.page.locator('[data-testid="video-tile"]').filter({ hasText: "Bob" });
  await bob.page.getByRole("button", { name: "Mute", exact: true }).click();
  await expect(bobTileAtAda.getByLabel("Muted")).toBeVisible();
  await bob.page.getByRole("button", { name: "Unmute", exact: true }).click();
  await expect(bobTileAtAda.getByLabel("Muted")).toHaveCount(0);

  // Ask to mute reaches Bob as a notification he can act on; nothing is muted for him.
  await openParticipants(ada);
  await ada.page.getByRole("button", { name: "Ask Bob to mute" }).click();
  await expect(bob.page.getByText("Ada asks you to mute")).toBeVisible();

  // Chat: Bob deletes his own message; it disappears for Ada too.
  await bob.page.getByRole("button", { name: "Chat" }).click();
  await bob.page.getByRole("textbox", { name: /message/i }).fill("oops, wrong room");
  await bob.page.getByRole("button", { name: "Send" }).click();
  await ada.page.getByRole("button", { name: "Chat" }).click();
  const adaChat = ada.page.getByRole("list", { name: "Chat messages" }).getByTestId("chat-message");
  await expect(adaChat.filter({ hasText: "oops, wrong room" })).toHaveCount(1);
  await bob.page
    .getByRole("list", { name: "Chat messages" })
    .getByTestId("chat-message")
    .filter({ hasText: "oops, wrong room" })
    .getByRole("button", { name: "Delete message" })
    .click();
  await expect(adaChat.filter({ hasText: "oops, wrong room" })).toHaveCount(0);

  // Make Bob host, then Bob removes Ada.
  await ada.page.getByRole("button", { name: "Make Bob host" }).click();
  await expect.poll(() => roleOf(bob)).toBe("host");
  await openParticipants(bob);
  await bob.page.getByRole("button", { name: "Remove Ada" }).click();
  await expect(ada.page.getByText("You were removed from the room")).toBeVisible();

  // Each side reported its peer connection's outcome once.
  const metrics = await (await fetch(`${platform.backendUrl}/metrics`)).text();
  expect(metrics).toContain('webrtc_connection_success_rate_total{relayed="false",status="success"} 2.0');
  await closeAll([ada, bob]);
});

test("blocked camera and microphone: a clear message, and joining without media works", async ({
  browser,
  platform,
}) => {
  const ada = await person(browser, "Ada");
  const bob = await person(browser, "Bob");
  await bob.context.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () =>
      Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  });
  const roomId = await createRoom(platform, ada);
  await bob.page.goto(`${platform.url}/${roomId}?name=Bob`);
  await expect(bob.page.getByText("Camera and microphone are blocked")).toBeVisible();
  await bob.page.getByRole("button", { name: "Join", exact: true }).click();
  await admit(ada, bob);
  await expect(bob.page.locator('[data-testid="video-tile"]')).toHaveCount(2);
  // Bob still receives Ada's media; Ada sees Bob's tile with the camera off.
  await expectMediaFrom(bob, 1);
  await expect(
    ada.page.locator('[data-testid="video-tile"]').filter({ hasText: "Bob" }).getByLabel("Camera off"),
  ).toBeVisible();
  await closeAll([ada, bob]);
});
