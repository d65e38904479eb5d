"""TURN credentials (the TURN REST scheme coturn's use-auth-secret checks) and ICE servers:
the scheme against known vectors, the TURN settings, and /api/config over a real server."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import os
import sys
import time
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import Client, Server, ServerFactory, test_settings

from videoconf.config import ConfigError, Settings
from videoconf.turn import ice_servers, turn_credential, turn_expiry, turn_username

SECRET = "turn-secret-0123456789-abcdefghijklmnop"  # 39 characters
STUN = ("stun:stun.example.com:3478",)
TURN = (
    "turn:turn.example.com:3478?transport=udp",
    "turn:turn.example.com:3478?transport=tcp",
    "turns:turn.example.com:5349?transport=tcp",
)


def independent_credential(secret: str, username: str) -> str:
    """The scheme written out again, without the code under test."""
    mac = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


# --------------------------------------------------------------------------- the scheme


def test_known_vector() -> None:
    # Computed once with Python's hmac and, independently, with
    # printf %s 1700000000:g_abc | openssl dgst -sha1 -hmac north -binary | base64
    assert turn_username("g_abc", 1_700_000_000) == "1700000000:g_abc"
    assert turn_credential("north", "1700000000:g_abc") == "rlk9banQquzBAGJD1F9w0x3Cpok="


@pytest.mark.parametrize(
    ("secret", "username"),
    [
        ("north", "1700000000:g_abc"),
        (SECRET, "1893456000:g_Q2x7LmTa9Vb4Rk1P"),
        ("s" * 64, "1893456000:auth0|5f1e2d3c4b5a"),
        ("ünïcödé-secret", "4102444800:google-oauth2|1234567890"),
    ],
)
def test_credential_matches_an_independent_computation(secret: str, username: str) -> None:
    credential = turn_credential(secret, username)
    assert credential == independent_credential(secret, username)
    assert len(base64.b64decode(credential, validate=True)) == 20  # SHA-1 digest size


def test_credential_depends_on_secret_and_username() -> None:
    one = turn_credential("north", "1700000000:g_abc")
    assert turn_credential("south", "1700000000:g_abc") != one
    assert turn_credential("north", "1700000001:g_abc") != one
    assert turn_credential("north", "1700000000:g_abd") != one


# --------------------------------------------------------------------------- ice_servers


def settings(**overrides: Any) -> Settings:
    return test_settings(**{"turn_urls": TURN, "turn_secret": SECRET, **overrides})


def test_authenticated_gets_stun_and_turn() -> None:
    now = 1_800_000_000.7
    config = settings(stun_urls=STUN, turn_ttl=600)
    servers = ice_servers(config, "g_abc", now)
    assert servers[0] == {"urls": list(STUN)}
    turn = servers[1]
    assert len(servers) == 2
    assert set(turn) == {"urls", "username", "credential"}
    assert turn["urls"] == list(TURN)
    assert turn["username"] == "1800000600:g_abc"  # floor(now) + TURN_TTL
    assert turn["credential"] == independent_credential(SECRET, "1800000600:g_abc")
    assert turn_expiry(config, "g_abc", now) == 1_800_000_600


def test_default_ttl_is_four_hours() -> None:
    config = settings()
    assert config.turn_ttl == 4 * 3600
    assert turn_expiry(config, "g_abc", 1000) == 1000 + 4 * 3600
    servers = ice_servers(config, "g_abc", 1000)
    assert servers == [
        {
            "urls": list(TURN),
            "username": f"{1000 + 4 * 3600}:g_abc",
            "credential": independent_credential(SECRET, f"{1000 + 4 * 3600}:g_abc"),
        }
    ]


def test_anonymous_gets_stun_only() -> None:
    config = settings(stun_urls=STUN)
    assert ice_servers(config, None, 1000) == [{"urls": list(STUN)}]
    assert turn_expiry(config, None, 1000) is None
    # No STUN either: nothing at all, and no TURN URL leaks without credentials.
    assert ice_servers(settings(), None, 1000) == []


def test_no_turn_configured() -> None:
    config = test_settings(stun_urls=STUN)
    assert ice_servers(config, "g_abc", 1000) == [{"urls": list(STUN)}]
    assert turn_expiry(config, "g_abc", 1000) is None
    assert ice_servers(test_settings(), "g_abc", 1000) == []


def test_lists_are_fresh_copies() -> None:
    config = settings(stun_urls=STUN)
    first = ice_servers(config, "g_abc", 1000)
    first[0]["urls"].append("stun:evil.example.com")
    assert ice_servers(config, "g_abc", 1000)[0]["urls"] == list(STUN)


# --------------------------------------------------------------------------- settings


def refused(env: dict[str, str], variable: str) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert variable in message, message
    assert "\n" not in message
    return message


def test_turn_settings_are_read() -> None:
    config = Settings.from_env(
        {"TURN_URLS": ",".join(TURN), "TURN_SECRET": SECRET, "TURN_TTL": "600"}
    )
    assert config.turn_urls == TURN
    assert config.turn_secret == SECRET
    assert config.turn_ttl == 600


def test_turn_defaults() -> None:
    config = Settings.from_env({})
    assert config.turn_urls == ()
    assert config.turn_secret is None
    assert config.turn_ttl == 4 * 3600
    # A secret without servers is harmless (the servers may come later): accepted, unused.
    assert Settings.from_env({"TURN_SECRET": SECRET}).turn_urls == ()


def test_turn_urls_need_a_secret() -> None:
    message = refused({"TURN_URLS": TURN[0]}, "TURN_SECRET")
    assert "TURN_URLS" in message
    refused({"TURN_URLS": TURN[0], "TURN_SECRET": ""}, "TURN_SECRET")
    with pytest.raises(ConfigError, match="TURN_SECRET"):
        dataclasses.replace(test_settings(), turn_urls=TURN).check()


@pytest.mark.parametrize("value", ["59", "0", "-1", "1.5", "four hours", "inf", "nan"])
def test_bad_turn_ttl(value: str) -> None:
    refused({"TURN_TTL": value}, "TURN_TTL")


def test_turn_ttl_minimum_is_a_minute() -> None:
    assert Settings.from_env({"TURN_TTL": "60"}).turn_ttl == 60
    with pytest.raises(ConfigError, match="TURN_TTL"):
        test_settings(turn_ttl=59).check()


PRODUCTION = {
    "APP_ENV": "production",
    "JWT_SECRET": "prod-secret-0123456789-abcdefghijklmnop",
    "GUEST_AUTH": "true",
    "ALLOWED_ORIGINS": "https://meet.example.com",
    "TURN_URLS": ",".join(TURN),
}


def test_production_turn_secret_length() -> None:
    refused({**PRODUCTION}, "TURN_SECRET")
    refused({**PRODUCTION, "TURN_SECRET": "t" * 31}, "TURN_SECRET")
    config = Settings.from_env({**PRODUCTION, "TURN_SECRET": "t" * 32})
    assert config.production
    assert config.turn_secret == "t" * 32
    # Without TURN servers, production needs no TURN secret.
    no_turn = {k: v for k, v in PRODUCTION.items() if k != "TURN_URLS"}
    assert Settings.from_env(no_turn).turn_secret is None
    # A short secret is fine for development.
    assert Settings.from_env({"TURN_URLS": TURN[0], "TURN_SECRET": "north"}).turn_secret


def test_turn_secret_is_not_in_repr() -> None:
    config = Settings.from_env({"TURN_URLS": TURN[0], "TURN_SECRET": SECRET})
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


# --------------------------------------------------------------------------- /api/config


async def get_config(server: Server, token: str | None = None) -> tuple[int, Any, str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with server.session.get(f"{server.url}/api/config", headers=headers) as response:
        body = await response.json()
        return response.status, body, response.headers.get("Cache-Control")


async def test_config_anonymous_gets_stun_only(make_server: ServerFactory) -> None:
    server = await make_server(stun_urls=STUN, turn_urls=TURN, turn_secret=SECRET)
    status, body, cache = await get_config(server)
    assert status == 200
    assert body["iceServers"] == [{"urls": list(STUN)}]
    assert body["iceServersExpiresAt"] is None
    assert cache == "no-store"
    text = orjson.dumps(body).decode()
    assert "turn" not in text, "no TURN URL, username or credential for strangers"


async def test_config_signed_in_gets_turn_credentials(make_server: ServerFactory) -> None:
    server = await make_server(stun_urls=STUN, turn_urls=TURN, turn_secret=SECRET, turn_ttl=900)
    guest = await server.guest("Ada")
    before = int(time.time())
    status, body, cache = await get_config(server, guest["token"])
    after = int(time.time())
    assert status == 200
    assert cache == "no-store"
    stun, turn = body["iceServers"]
    assert stun == {"urls": list(STUN)}
    assert turn["urls"] == list(TURN)
    expiry, _, client_id = turn["username"].partition(":")
    assert client_id == guest["clientId"]
    assert before + 900 <= int(expiry) <= after + 900
    assert body["iceServersExpiresAt"] == int(expiry)
    assert turn["credential"] == independent_credential(SECRET, turn["username"])
    # Everything else is the same as for an anonymous caller.
    _, anonymous, _ = await get_config(server)
    assert {k: v for k, v in body.items() if not k.startswith("iceServers")} == {
        k: v for k, v in anonymous.items() if not k.startswith("iceServers")
    }


async def test_config_credentials_are_per_participant(make_server: ServerFactory) -> None:
    server = await make_server(turn_urls=TURN, turn_secret=SECRET)
    ada, bob = await server.guest("Ada"), await server.guest("Bob")
    _, for_ada, _ = await get_config(server, ada["token"])
    _, for_bob, _ = await get_config(server, bob["token"])
    assert for_ada["iceServers"][0]["username"].endswith(":" + ada["clientId"])
    assert for_bob["iceServers"][0]["username"].endswith(":" + bob["clientId"])
    assert for_ada["iceServers"][0]["credential"] != for_bob["iceServers"][0]["credential"]


async def test_config_signed_in_without_turn(make_server: ServerFactory) -> None:
    server = await make_server(stun_urls=STUN)
    guest = await server.guest("Ada")
    status, body, _ = await get_config(server, guest["token"])
    assert status == 200
    assert body["iceServers"] == [{"urls": list(STUN)}]
    assert body["iceServersExpiresAt"] is None


@pytest.mark.parametrize("configured", [True, False], ids=["turn", "no-turn"])
async def test_config_refuses_a_bad_token(make_server: ServerFactory, configured: bool) -> None:
    turn: dict[str, Any] = {"turn_urls": TURN, "turn_secret": SECRET} if configured else {}
    server = await make_server(stun_urls=STUN, **turn)
    other = await make_server(jwt_secret="another-secret-" + "y" * 32)
    foreign = (await other.guest("Mallory"))["token"]
    for token in ("garbage", "a.b.c", foreign):
        status, body, _ = await get_config(server, token)
        assert status == 401, token
        assert body["error"]["code"] == "invalid_token", body
        assert "iceServers" not in body


async def test_serve_never_prints_the_turn_secret() -> None:
    """A real `videoconf serve`, logging at DEBUG, hands out credentials: no secret in output."""
    turn_secret = "turn-never-print-me-" + os.urandom(16).hex()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "DEBUG",
        "JWT_SECRET": "jwt-secret-" + "j" * 32,
        "TURN_URLS": TURN[0],
        "TURN_SECRET": turn_secret,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoconf",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:

        async def listening_port() -> int:
            assert process.stdout is not None
            while line := await process.stdout.readline():
                seen.append(line.decode())
                entry = orjson.loads(line)
                if entry.get("message") == "listening":
                    return int(entry["port"])
            raise AssertionError(f"the server exited before listening: {seen}")

        port = await asyncio.wait_for(listening_port(), 30)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/api/auth/guest", json={"displayName": "Ada"}) as r:
                token = (await r.json())["token"]
            async with session.get(
                f"{base}/api/config", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200
                assert (await r.json())["iceServers"][0]["credential"]
        process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "".join(seen) + out.decode() + err.decode()
    assert turn_secret not in output


# --------------------------------------------------------------------------- the WebSocket


async def first_message(server: Server, room: str, token: str) -> tuple[Client, dict[str, Any]]:
    """Connect with `token`; the connection and its first message."""
    client = await server.connect(room, token=token)
    return client, await client.next_message()


def check_turn_entry(
    entry: dict[str, Any], client_id: str, before: int, after: int, ttl: int
) -> int:
    """A TURN entry minted for `client_id` between `before` and `after`; its expiry."""
    assert set(entry) == {"urls", "username", "credential"}
    assert entry["urls"] == list(TURN)
    expiry, _, named = entry["username"].partition(":")
    assert named == client_id
    assert before + ttl <= int(expiry) <= after + ttl
    # Verifies as coturn verifies it: the HMAC of the username with the shared secret.
    assert entry["credential"] == independent_credential(SECRET, entry["username"])
    return int(expiry)


async def test_ws_join_sends_ice_servers_first(make_server: ServerFactory) -> None:
    """Admitted or waiting: each connection's first message holds its own TURN credentials."""
    server = await make_server(stun_urls=STUN, turn_urls=TURN, turn_secret=SECRET, turn_ttl=900)
    ada, bob = await server.guest("Ada"), await server.guest("Bob")

    before = int(time.time())
    host, message = await first_message(server, "ice-room", ada["token"])
    after = int(time.time())
    assert message["event"] == "ice_servers"
    assert set(message["payload"]) == {"iceServers", "expiresAt"}
    stun, turn = message["payload"]["iceServers"]
    assert stun == {"urls": list(STUN)}
    expiry = check_turn_entry(turn, ada["clientId"], before, after, 900)
    assert message["payload"]["expiresAt"] == expiry
    joined = await host.next_message()  # then the join, as before
    assert joined["event"] == "room_state" and joined["payload"]["you"]["role"] == "host"

    before = int(time.time())
    waiting, message = await first_message(server, "ice-room", bob["token"])
    after = int(time.time())
    assert message["event"] == "ice_servers"
    turn = message["payload"]["iceServers"][1]
    assert check_turn_entry(turn, bob["clientId"], before, after, 900)
    assert turn["credential"] != independent_credential(SECRET, f"{expiry}:{ada['clientId']}")
    assert (await waiting.state())["you"]["role"] == "waiting"
    # Sent once per connection: nothing more on either side.
    assert not [m for m in await waiting.quiet() if m["event"] == "ice_servers"]
    assert not [m for m in await host.quiet() if m["event"] == "ice_servers"]


async def test_ws_every_connection_gets_fresh_ice_servers(make_server: ServerFactory) -> None:
    """A reconnection (here one that replaces the old connection) gets them again, first."""
    server = await make_server(turn_urls=TURN, turn_secret=SECRET)
    ada = await server.guest("Ada")
    first, message = await first_message(server, "again-room", ada["token"])
    assert message["event"] == "ice_servers"
    await first.state()
    before = int(time.time())
    second, message = await first_message(server, "again-room", ada["token"])
    after = int(time.time())
    assert message["event"] == "ice_servers"
    [turn] = message["payload"]["iceServers"]  # no STUN configured: TURN only
    check_turn_entry(turn, ada["clientId"], before, after, 4 * 3600)
    assert (await second.state())["you"]["role"] == "host"
    code, _ = await first.closed()
    assert code == 4000


@pytest.mark.parametrize("stun", [STUN, ()], ids=["stun", "nothing"])
async def test_ws_ice_servers_without_turn(
    make_server: ServerFactory, stun: tuple[str, ...]
) -> None:
    server = await make_server(stun_urls=stun)
    ada = await server.guest("Ada")
    client, message = await first_message(server, "stun-room", ada["token"])
    assert message == {
        "event": "ice_servers",
        "payload": {"iceServers": [{"urls": list(stun)}] if stun else [], "expiresAt": None},
    }
    assert (await client.state())["you"]["role"] == "host"


async def test_ws_full_room_still_sends_ice_servers_first(make_server: ServerFactory) -> None:
    server = await make_server(turn_urls=TURN, turn_secret=SECRET, max_room_size=1)
    host, _ = await first_message(server, "full-room", (await server.guest("Ada"))["token"])
    await host.state()
    late = await server.connect("full-room", "Bob")
    code, seen = await late.closed()
    assert code == 4003
    assert [m["event"] for m in seen] == ["ice_servers", "error", "disconnect"]
