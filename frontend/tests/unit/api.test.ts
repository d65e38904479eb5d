import { describe, expect, it, vi } from "vitest";
import { ApiError, createApi, isValidRoomId, websocketUrl } from "@/lib/api";
import { ensureIdentity, IDENTITY_KEY, loadIdentity, normalizeDisplayName } from "@/lib/identity";
import { memoryStorage } from "@/lib/storage";
import type { ClientConfig, GuestToken } from "@/lib/protocol";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

describe("REST client", () => {
  it("calls the endpoints with JSON and Bearer tokens", async () => {
    const fetchFn = vi.fn(async (_url: string, _init?: RequestInit) => json(200, { ok: true }));
    const api = createApi(fetchFn);
    await api.getConfig();
    await api.guestSignIn("Ann");
    await api.refresh("tok");
    await api.createRoom("tok");
    await api.roomInfo("a b");
    const calls = fetchFn.mock.calls.map(([url, init]) => ({
      url,
      method: init?.method,
      auth: (init?.headers as Record<string, string>).Authorization,
      body: init?.body,
    }));
    expect(calls).toEqual([
      { url: "/api/config", method: "GET", auth: undefined, body: undefined },
      { url: "/api/auth/guest", method: "POST", auth: undefined, body: JSON.stringify({ displayName: "Ann" }) },
      { url: "/api/auth/refresh", method: "POST", auth: "Bearer tok", body: undefined },
      { url: "/api/rooms", method: "POST", auth: "Bearer tok", body: undefined },
      { url: "/api/rooms/a%20b", method: "GET", auth: undefined, body: undefined },
    ]);
  });

  it("turns the server's error body into a typed ApiError", async () => {
    const api = createApi(async () => json(403, { error: { code: "guest_auth_disabled", message: "no guests" } }));
    const err: unknown = await api.guestSignIn("Ann").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, code: "guest_auth_disabled", message: "no guests" });
  });

  it("copes with non-JSON errors and network failures", async () => {
    const html = createApi(async () => new Response("<h1>bad gateway</h1>", { status: 502, statusText: "Bad Gateway" }));
    await expect(html.getConfig()).rejects.toMatchObject({ status: 502, code: "http_502" });
    const down = createApi(async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(down.getConfig()).rejects.toMatchObject({ status: 0, code: "network_error" });
  });
});

describe("websocketUrl", () => {
  const config = (url?: string | null): Pick<ClientConfig, "websocket"> => ({
    websocket: { path: "/ws/hub/{roomId}", subprotocol: "videoconf.v1", url },
  });

  it("uses the configured base when set", () => {
    expect(websocketUrl(config("wss://media.example.com:8443/"), "room-1", { protocol: "https:", hostname: "x" })).toBe(
      "wss://media.example.com:8443/ws/hub/room-1?room=room-1",
    );
  });

  it("falls back to the page's host on port 8080, ws or wss by page protocol", () => {
    expect(websocketUrl(config(null), "abc", { protocol: "http:", hostname: "localhost" })).toBe("ws://localhost:8080/ws/hub/abc?room=abc");
    expect(websocketUrl(config(), "abc", { protocol: "https:", hostname: "meet.example.com" })).toBe(
      "wss://meet.example.com:8080/ws/hub/abc?room=abc",
    );
  });

  it("encodes the room id", () => {
    expect(websocketUrl(config(null), "a/b?c", { protocol: "http:", hostname: "h" })).toBe("ws://h:8080/ws/hub/a%2Fb%3Fc?room=a%2Fb%3Fc");
  });

  it("knows valid room ids", () => {
    expect(isValidRoomId("standup-42")).toBe(true);
    expect(isValidRoomId("ab")).toBe(false);
    expect(isValidRoomId("room\n")).toBe(false);
  });
});

describe("tab identity", () => {
  const HOUR = 3600;
  const token = (name: string, id: string, expiresAt: number, tok = `t.${id}.${expiresAt}`): GuestToken => ({
    token: tok,
    clientId: id,
    displayName: name,
    expiresAt,
  });

  function deps(now: number) {
    const storage = memoryStorage();
    const api = {
      guestSignIn: vi.fn(async (name: string) => token(name, `g_new_${name}`, now / 1000 + 4 * HOUR)),
      refresh: vi.fn(async (_t: string) => token("Ann", "g_ann", now / 1000 + 4 * HOUR, "refreshed")),
    };
    return { storage, api, now: () => now };
  }

  it("signs in once and reuses the identity (same clientId on reload)", async () => {
    const d = deps(1_000_000_000);
    const first = await ensureIdentity(d, "  Ann   Lee ");
    expect(d.api.guestSignIn).toHaveBeenCalledWith("Ann Lee");
    const again = await ensureIdentity(d, "Ann Lee");
    expect(again.clientId).toBe(first.clientId);
    expect(d.api.guestSignIn).toHaveBeenCalledTimes(1);
    expect(loadIdentity(d.storage)?.clientId).toBe(first.clientId);
    expect(await ensureIdentity(d)).toEqual(first); // reconnects pass no name
  });

  it("refreshes a token within 10 minutes of expiry", async () => {
    const now = 1_000_000_000;
    const d = deps(now);
    d.storage.setItem(IDENTITY_KEY, JSON.stringify(token("Ann", "g_ann", now / 1000 + 9 * 60)));
    const id = await ensureIdentity(d, "Ann");
    expect(d.api.refresh).toHaveBeenCalledTimes(1);
    expect(id.token).toBe("refreshed");
    expect(id.clientId).toBe("g_ann");
  });

  it("does not refresh a token with more than 10 minutes left", async () => {
    const now = 1_000_000_000;
    const d = deps(now);
    d.storage.setItem(IDENTITY_KEY, JSON.stringify(token("Ann", "g_ann", now / 1000 + 11 * 60)));
    await ensureIdentity(d, "Ann");
    expect(d.api.refresh).not.toHaveBeenCalled();
  });

  it("signs in again when the refresh is refused, keeps the token on network errors", async () => {
    const now = 1_000_000_000;
    const d = deps(now);
    d.storage.setItem(IDENTITY_KEY, JSON.stringify(token("Ann", "g_ann", now / 1000 + 60)));
    d.api.refresh.mockRejectedValueOnce(new ApiError(0, "network_error", "offline"));
    expect((await ensureIdentity(d, "Ann")).clientId).toBe("g_ann");
    d.api.refresh.mockRejectedValueOnce(new ApiError(401, "expired_token", "expired"));
    expect((await ensureIdentity(d, "Ann")).clientId).toBe("g_new_Ann");
  });

  it("takes a new identity for a different display name and ignores garbage", async () => {
    const d = deps(1_000_000_000);
    d.storage.setItem(IDENTITY_KEY, "{not json");
    await ensureIdentity(d, "Ann");
    await ensureIdentity(d, "Bob");
    expect(d.api.guestSignIn.mock.calls.map(([n]) => n)).toEqual(["Ann", "Bob"]);
    expect(normalizeDisplayName("\tA  B\n")).toBe("A B");
  });
});
