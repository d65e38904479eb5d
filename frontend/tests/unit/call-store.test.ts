import { beforeEach, describe, expect, it } from "vitest";
import { createCallStore, ENDED_MESSAGES, type CallStore } from "@/store/call-store";
import { FakeStream, FakeTrack } from "./fake-rtc";
import { fakeDeps, member, roomState, type FakeMesh, type FakeSignaling } from "./fake-deps";

const ann = member("Ann");
const bob = member("Bob");
const cleo = member("Cleo");

let f: ReturnType<typeof fakeDeps>;
let store: CallStore;

const state = () => store.getState();
const actions = () => store.getState().actions;
const sig = (): FakeSignaling => {
  const s = f.signalings[f.signalings.length - 1];
  if (!s) throw new Error("no signaling");
  return s;
};
const mesh = (): FakeMesh => {
  const m = f.meshes[f.meshes.length - 1];
  if (!m) throw new Error("no mesh");
  return m;
};
const texts = () => state().toasts.map((t) => t.text);

async function joined(opts = { audio: true, video: false }) {
  await actions().prepare("room-1");
  await actions().startPreview({ audio: true, video: true });
  await actions().join({ displayName: "Ann", ...opts });
}

function push(event: string, payload: unknown) {
  sig().emit({ event, payload });
}

beforeEach(() => {
  f = fakeDeps();
  store = createCallStore(f.deps);
});

describe("prepare and join", () => {
  it("loads the config and goes to prejoin", async () => {
    expect(state().phase).toBe("idle");
    await actions().prepare("room-1");
    expect(state()).toMatchObject({ phase: "prejoin", roomId: "room-1" });
    expect(f.api.getConfig).toHaveBeenCalledTimes(1);
    await actions().prepare("room-1"); // idempotent (StrictMode double effects)
    expect(f.api.getConfig).toHaveBeenCalledTimes(1);
  });

  it("ends with an error for an invalid room id or an unreachable server", async () => {
    await actions().prepare("no");
    expect(state()).toMatchObject({ phase: "ended", ended: { reason: "error", message: "This room link is not valid" } });
    f.api.getConfig.mockRejectedValueOnce(new Error("offline"));
    await actions().prepare("room-2");
    expect(state().phase).toBe("ended");
    expect(state().ended?.message).toContain("Could not reach the server");
  });

  it("previews camera and microphone", async () => {
    await actions().prepare("room-1");
    await actions().startPreview({ audio: true, video: false });
    expect(state().localStream?.getAudioTracks()).toHaveLength(1);
    expect(state()).toMatchObject({ audioEnabled: true, videoEnabled: false, mediaError: null });
  });

  it("records why there is no preview", async () => {
    f.media.capture.mockResolvedValueOnce({ stream: null, error: "denied" });
    await actions().prepare("room-1");
    await actions().startPreview({ audio: true, video: true });
    expect(state()).toMatchObject({ localStream: null, mediaError: "denied", audioEnabled: false, videoEnabled: false });
  });

  it("signs in, opens signaling for the room and sends what it captures to the mesh", async () => {
    await joined();
    expect(state().phase).toBe("connecting");
    expect(f.api.guestSignIn).toHaveBeenCalledWith("Ann");
    expect(sig().options.url).toBe("ws://localhost:8080/ws/hub/room-1?room=room-1");
    expect(sig().connected).toBe(true);
    await expect(sig().options.getToken()).resolves.toBe("tok1");
    expect(f.api.guestSignIn).toHaveBeenCalledTimes(1); // the tab keeps its identity
    expect(mesh().selfId).toBe("g_ann");
    expect(mesh().options.iceServers).toEqual([{ urls: "stun:stun.example.org" }]);
    expect(mesh().tracks.map((t) => t.kind)).toEqual(["audio", "video"]);
    // join({video: false}) keeps the camera track but disabled
    expect(state().localStream?.getVideoTracks()[0]?.enabled).toBe(false);
    expect(state()).toMatchObject({ audioEnabled: true, videoEnabled: false });
  });
});

describe("room_state", () => {
  it("waiting → in-room, and announces media state once admitted", async () => {
    await joined();
    push("room_state", roomState(ann, "waiting", []));
    expect(state().phase).toBe("waiting");
    expect(state().self).toEqual({ ...ann, role: "waiting" });
    expect(sig().sent).toEqual([]);
    expect(mesh().syncs).toEqual([[]]);
    push("accept_waiting", ann);
    push("room_state", roomState(ann, "participant", [bob, ann]));
    expect(state().phase).toBe("in-room");
    expect(sig().sent).toEqual([
      { event: "toggle_audio", payload: { enabled: true } },
      { event: "toggle_video", payload: { enabled: false } },
    ]);
    expect(mesh().syncs[1]).toEqual([bob.clientId, ann.clientId]);
    push("room_state", roomState(ann, "participant", [bob, ann]));
    expect(sig().sent).toHaveLength(2); // not again
  });

  it("toasts who joined and left, but not on the first state", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    expect(state().toasts).toEqual([]);
    push("room_state", roomState(ann, "host", [ann, bob, cleo]));
    push("room_state", roomState(ann, "host", [ann, cleo]));
    expect(texts()).toEqual(["Cleo joined", "Bob left"]);
  });

  it("does not toast everyone as joined when admitted from the waiting room", async () => {
    await joined();
    push("room_state", roomState(ann, "waiting", []));
    push("room_state", roomState(ann, "participant", [bob, cleo, ann]));
    expect(state().toasts).toEqual([]);
  });

  it("builds one peer view per other member from the mesh", async () => {
    await joined();
    const stream = new FakeStream([new FakeTrack("audio")]) as unknown as MediaStream;
    push("room_state", roomState(ann, "host", [ann, bob, cleo]));
    mesh().viewMap = { [bob.clientId]: { connectionState: "connected", stream, screenStream: null } };
    mesh().options.onChange?.();
    expect(state().peers).toEqual({
      [bob.clientId]: { ...bob, connectionState: "connected", stream, screenStream: null },
      [cleo.clientId]: { ...cleo, connectionState: "new", stream: null, screenStream: null },
    });
    expect(f.media.startMeter).toHaveBeenCalledWith(stream, expect.any(Function));
  });

  it("tracks speaking from the audio meters", async () => {
    await joined();
    const calls = f.media.startMeter.mock.calls;
    const [, onSpeaking] = calls[calls.length - 1];
    onSpeaking(true);
    expect(state().speaking).toEqual({ g_ann: true });
    onSpeaking(false);
    expect(state().speaking).toEqual({ g_ann: false });
  });

  it("toasts becoming host", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    push("room_state", roomState(ann, "host", [ann]));
    expect(texts()).toContain("You are now a host");
  });
});

describe("chat", () => {
  const msg = (id: string, text: string) => ({ chatId: id, ...bob, chatContent: text, timestamp: 1, clientMessageId: null });

  it("replaces with history, appends, dedupes and deletes", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    push("recents_chat", { messages: [msg("c1", "one"), msg("c2", "two")] });
    push("add_chat", msg("c3", "three"));
    push("add_chat", msg("c3", "three"));
    push("delete_chat", { chatId: "c2", clientId: ann.clientId });
    expect(state().chat.map((m) => m.chatId)).toEqual(["c1", "c3"]);
    push("recents_chat", { messages: [msg("c9", "nine")] });
    expect(state().chat.map((m) => m.chatId)).toEqual(["c9"]);
  });

  it("sends trimmed chat and refuses empty or too long text", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann]));
    sig().sent = [];
    actions().sendChat("  hi  ");
    actions().sendChat("   ");
    actions().sendChat("x".repeat(1001));
    expect(sig().sent).toEqual([{ event: "add_chat", payload: { chatContent: "hi", clientMessageId: expect.any(String) } }]);
    expect(texts()).toEqual(["Messages can be at most 1000 characters long"]);
  });
});

describe("chat delivery (clientMessageId)", () => {
  type Sent = { chatContent: string; clientMessageId: string };
  const sentChats = () => sig().events("add_chat") as Sent[];
  let next = 0;
  const echo = (sent: Sent, chatId = `c${++next}`, author = ann) => ({
    chatId,
    ...author,
    chatContent: sent.chatContent,
    timestamp: 1,
    clientMessageId: sent.clientMessageId,
  });
  const ids = () => state().chat.map((m) => m.chatContent);

  async function inRoom() {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    sig().sent = [];
  }
  function reconnect() {
    sig().status({ state: "reconnecting", attempt: 1, delayMs: 250 });
    sig().open = false;
  }
  function reconnected() {
    sig().open = true;
    sig().status({ state: "open" });
    push("room_state", roomState(ann, "host", [ann, bob]));
  }

  it("sends a unique id per message and keeps it pending until its own echo", async () => {
    await inRoom();
    actions().sendChat("one");
    actions().sendChat("two");
    const [one, two] = sentChats();
    expect(one.clientMessageId).toMatch(/^.{1,64}$/);
    expect(two.clientMessageId).not.toBe(one.clientMessageId);
    // Someone else's message carrying the same id acknowledges nothing.
    push("add_chat", echo(one, "c1", bob));
    push("add_chat", echo(one, "c2"));
    reconnect();
    reconnected();
    expect(sentChats().slice(2)).toEqual([two]);
    expect(ids()).toEqual(["one", "one"]);
  });

  it("resends every pending message after a reconnect, in order, with the same ids", async () => {
    await inRoom();
    actions().sendChat("one"); // sent, echo lost with the connection
    reconnect();
    actions().sendChat("two"); // cannot go out while disconnected
    actions().sendChat("three");
    expect(sentChats()).toHaveLength(1);
    const first = sentChats()[0];
    sig().open = true;
    sig().status({ state: "open" });
    actions().sendChat("four"); // socket back, room_state not yet: waits for the resend, keeps order
    expect(sentChats()).toHaveLength(1);
    push("room_state", roomState(ann, "host", [ann, bob]));
    const resent = sentChats().slice(1);
    expect(resent.map((p) => p.chatContent)).toEqual(["one", "two", "three", "four"]);
    expect(resent[0]).toEqual(first);
    // Another room_state in the same connection sends nothing again.
    push("room_state", roomState(ann, "host", [ann, bob, cleo]));
    expect(sentChats()).toHaveLength(5);
    // Acknowledged ones are not resent after the next reconnect.
    push("add_chat", echo(resent[0]));
    push("add_chat", echo(resent[2]));
    reconnect();
    reconnected();
    expect(sentChats().slice(5)).toEqual([resent[1], resent[3]]);
  });

  it("keeps messages sent before admission pending and sends them once admitted", async () => {
    await joined();
    push("room_state", roomState(ann, "waiting", []));
    actions().sendChat("hello");
    expect(sentChats()).toEqual([]);
    push("room_state", roomState(ann, "participant", [bob, ann]));
    expect(sentChats().map((p) => p.chatContent)).toEqual(["hello"]);
  });

  it("shows a message once when its echo comes twice (the ack of a resend)", async () => {
    await inRoom();
    actions().sendChat("hi");
    const [sent] = sentChats();
    push("add_chat", echo(sent, "c7")); // posted; the connection drops before we notice
    reconnect();
    reconnected();
    push("add_chat", echo(sent, "c7")); // nothing new: the server only echoes the original to us
    expect(state().chat.map((m) => m.chatId)).toEqual(["c7"]);
    reconnect();
    reconnected();
    expect(sentChats()).toHaveLength(1); // acknowledged, not resent again
  });

  it("takes a recents_chat holding our message as its acknowledgement, and dedupes by chatId", async () => {
    await inRoom();
    actions().sendChat("one");
    actions().sendChat("two");
    const [one, two] = sentChats();
    reconnect();
    sig().open = true;
    sig().status({ state: "open" });
    push("room_state", roomState(ann, "host", [ann, bob])); // resends both
    push("recents_chat", { messages: [echo(one, "c3"), echo(one, "c3")] }); // history has "one" only
    expect(state().chat.map((m) => m.chatId)).toEqual(["c3"]);
    push("add_chat", echo(two, "c4"));
    reconnect();
    reconnected();
    expect(sentChats()).toHaveLength(4); // 2 sent + 2 resent; "one" was acknowledged by the history
    push("add_chat", echo(one, "c3")); // the late ack of the resend: no duplicate
    expect(ids()).toEqual(["one", "two"]);
  });

  it("forgets pending messages when the call ends", async () => {
    await inRoom();
    actions().sendChat("bye");
    actions().leave();
    actions().sendChat("after the end");
    await actions().prepare("room-1");
    await actions().join({ displayName: "Ann", audio: false, video: false });
    push("room_state", roomState(ann, "host", [ann]));
    expect(sentChats()).toEqual([]);
  });
});

describe("notices", () => {
  it("shows waiting_request and request_screenshare to hosts only", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    push("waiting_request", cleo);
    push("request_screenshare", cleo);
    expect(state().toasts).toEqual([]);
    push("room_state", roomState(ann, "host", [ann, bob]));
    push("waiting_request", cleo);
    push("request_screenshare", bob);
    expect(texts()).toEqual(["You are now a host", "Cleo is waiting to join", "Bob asks to share their screen"]);
  });

  it("asks to mute without muting; the toast's action mutes", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    sig().sent = [];
    push("mute_request", bob);
    const t = state().toasts[0];
    expect(t).toMatchObject({ kind: "warning", text: "Bob asks you to mute" });
    expect(state().audioEnabled).toBe(true);
    expect(sig().sent).toEqual([]);
    t.action?.run();
    expect(state().audioEnabled).toBe(false);
    expect(state().localStream?.getAudioTracks()[0]?.enabled).toBe(false);
    expect(sig().sent).toEqual([{ event: "toggle_audio", payload: { enabled: false } }]);
  });

  it("toasts server errors, except the expected ones", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    push("error", { code: "forbidden", message: "kick needs the host role", event: "kick" });
    push("error", { code: "not_found", message: "no such peer", event: "offer" });
    push("error", { code: "room_full", message: "room is full", event: null });
    push("error", { code: "not_found", message: "no such message", event: "delete_chat" });
    expect(state().toasts.map((t) => [t.kind, t.text])).toEqual([
      ["error", "kick needs the host role"],
      ["error", "no such message"],
    ]);
  });

  it("keeps at most a handful of toasts and dismisses by id", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann]));
    for (let i = 0; i < 10; i += 1) push("waiting_request", member(`P${i}`));
    expect(state().toasts).toHaveLength(6);
    const first = state().toasts[0];
    actions().dismissToast(first.id);
    expect(state().toasts.map((t) => t.id)).not.toContain(first.id);
  });

  it("hands relayed signaling to the mesh", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    push("offer", { targetClientId: ann.clientId, sdp: "v=0", type: "offer", ...bob });
    push("candidate", { targetClientId: ann.clientId, candidate: "", ...bob });
    expect(mesh().signals.map((m) => m.event)).toEqual(["offer", "candidate"]);
  });
});

describe("screen sharing", () => {
  it("requests, gets the grant, shares and stops", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    sig().sent = [];
    actions().requestScreenshare();
    expect(state().screenshareRequested).toBe(true);
    push("accept_screenshare", ann);
    push("room_state", roomState(ann, "screenshare", [bob, ann]));
    expect(state().screenshareRequested).toBe(false);
    await actions().startScreenshare();
    expect(state().sharing).toBe(true);
    expect(mesh().screens).toHaveLength(1);
    actions().stopScreenshare();
    expect(state()).toMatchObject({ sharing: false, screenStream: null });
    expect(mesh().screens[1]).toBeNull();
    expect(sig().sent.map((s) => s.event)).toEqual(["request_screenshare", "toggle_screenshare", "toggle_screenshare"]);
    expect(sig().events("toggle_screenshare")).toEqual([{ enabled: true }, { enabled: false }]);
  });

  it("stops sharing without announcing when the grant is taken back", async () => {
    await joined();
    push("room_state", roomState(ann, "screenshare", [bob, ann]));
    await actions().startScreenshare();
    sig().sent = [];
    push("deny_screenshare", ann);
    expect(state().sharing).toBe(false);
    expect(f.screen.getTracks()[0].readyState).toBe("ended");
    expect(sig().sent).toEqual([]);
  });

  it("refuses to share without the role", async () => {
    await joined();
    push("room_state", roomState(ann, "participant", [bob, ann]));
    await actions().startScreenshare();
    expect(state().sharing).toBe(false);
    expect(f.media.captureScreen).not.toHaveBeenCalled();
  });
});

describe("reconnecting", () => {
  it("keeps peers and media through a signaling outage, then re-syncs", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    sig().sent = [];
    sig().status({ state: "reconnecting", attempt: 1, delayMs: 250 });
    expect(state().phase).toBe("reconnecting");
    expect(mesh().closed).toBe(false);
    expect(state().localStream?.getAudioTracks()[0]?.readyState).toBe("live");
    sig().status({ state: "connecting", attempt: 1 });
    sig().status({ state: "open" });
    push("room_state", roomState(ann, "host", [ann, cleo]));
    expect(state().phase).toBe("in-room");
    expect(sig().sent).toEqual([
      { event: "toggle_audio", payload: { enabled: true } },
      { event: "toggle_video", payload: { enabled: false } },
    ]);
    expect(mesh().syncs[mesh().syncs.length - 1]).toEqual([ann.clientId, cleo.clientId]);
    expect(mesh().resends).toBe(1);
    expect(f.meshes).toHaveLength(1);
  });

  it("stays connecting while the first connection keeps failing", async () => {
    await joined();
    sig().status({ state: "reconnecting", attempt: 1, delayMs: 250 });
    expect(state().phase).toBe("connecting");
  });

  it("starts a new mesh when the identity changed meanwhile", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    const first = mesh();
    sig().status({ state: "reconnecting", attempt: 1, delayMs: 250 });
    push("room_state", roomState({ ...ann, clientId: "g_ann2" }, "host", [{ ...ann, clientId: "g_ann2" }, bob]));
    expect(first.closed).toBe(true);
    expect(mesh().selfId).toBe("g_ann2");
  });
});

describe("the end", () => {
  for (const reason of ["kicked", "denied", "replaced", "room_full", "policy_violation"] as const) {
    it(`ends on ${reason}: media stopped, peers closed, the reason's message`, async () => {
      await joined();
      push("room_state", roomState(ann, "participant", [bob, ann]));
      const tracks = state().localStream?.getTracks() ?? [];
      sig().status({ state: "closed", reason });
      expect(state().phase).toBe("ended");
      expect(state().ended).toEqual({ reason, message: ENDED_MESSAGES[reason] });
      expect(tracks.every((t) => t.readyState === "ended")).toBe(true);
      expect(mesh().closed).toBe(true);
      expect(state()).toMatchObject({ peers: {}, localStream: null });
      expect(sig().listeners).toBe(0);
    });
  }

  it("uses the contract's texts", () => {
    expect(ENDED_MESSAGES).toMatchObject({
      denied: "The host did not let you in",
      kicked: "You were removed from the room",
      replaced: "You joined from another tab or device",
      room_full: "This room is full",
      left: "You left the room",
    });
  });

  it("leave() sends the goodbye through signaling and ends with reason left", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann, bob]));
    actions().leave();
    expect(sig().left).toBe(true);
    expect(sig().closed).toBe(false);
    expect(state().ended).toEqual({ reason: "left", message: "You left the room" });
    push("room_state", roomState(ann, "host", [ann])); // late messages change nothing
    expect(state().phase).toBe("ended");
  });

  it("can join again after the end", async () => {
    await joined();
    push("room_state", roomState(ann, "host", [ann]));
    sig().status({ state: "closed", reason: "kicked" });
    await actions().prepare("room-1");
    expect(state()).toMatchObject({ phase: "prejoin", ended: null, room: null, chat: [] });
    await actions().join({ displayName: "Ann", audio: false, video: false });
    expect(f.signalings).toHaveLength(2);
    expect(state().phase).toBe("connecting");
  });
});

describe("switching rooms before joining", () => {
  it("keeps the running preview", async () => {
    await actions().prepare("room-1");
    await actions().startPreview({ audio: true, video: true });
    const stream = state().localStream;
    await actions().prepare("room-2");
    expect(state()).toMatchObject({ phase: "prejoin", roomId: "room-2", localStream: stream });
    expect(stream?.getTracks().every((t) => t.readyState === "live")).toBe(true);
  });
});
