"""Bad input over a real socket: each gets an error a client can show; the room stays whole."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import struct
import time
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from conftest import Client, Server, ServerFactory

import videoconf.room
from videoconf.api import settings_key
from videoconf.auth import GUEST_AUDIENCE, GUEST_ISSUER


async def host_and_guest(server: Server, room: str) -> tuple[Client, Client]:
    host = await server.connect(room, "Host")
    await host.state()
    guest = await server.connect(room, "Guest")
    await guest.state()
    await host.expect("waiting_request")
    await host.send("accept_waiting", {"clientId": guest.client_id})
    await guest.state(lambda s: s["you"]["role"] == "participant")
    await host.send("add_chat", {"chatContent": "keep me"})
    for client in (host, guest):
        await client.expect("add_chat")
        await client.settle()
    return host, guest


async def assert_room_intact(server: Server, host: Client, guest: Client) -> None:
    """Both still in, with the chat history untouched, and the room still working."""
    await host.send("recents_chat")
    history = await host.expect("recents_chat")
    assert [m["chatContent"] for m in history["messages"]] == ["keep me"]
    await host.send("offer", {"targetClientId": guest.client_id, "sdp": "v=0\r\n"})
    assert (await guest.expect("offer"))["clientId"] == host.client_id
    async with server.session.get(f"{server.url}/api/rooms/guard-room") as response:
        assert (await response.json())["participantCount"] == 2


def raw_token(server: Server, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": "g_test",
        "name": "T",
        "iss": GUEST_ISSUER,
        "aud": GUEST_AUDIENCE,
        "iat": now,
        "exp": now + 60,
        "kind": "guest",
        **claims,
    }
    return jwt.encode(body, server.app[settings_key].jwt_secret, algorithm="HS256")


async def upgrade_status(server: Server, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.session.ws_connect(f"{server.ws_url}{path}", **kwargs)
    async with server.session.get(f"{server.url}{path}", **kwargs) as response:
        body = await response.json()
    return refused.value.status, body


async def test_refused_before_upgrade(server: Server) -> None:
    status, body = await upgrade_status(server, "/ws/hub/guard-room")
    assert (status, body["error"]["code"]) == (401, "missing_token")
    status, body = await upgrade_status(server, "/ws/hub/guard-room?token=not.a.jwt")
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    expired = raw_token(server, exp=int(time.time()) - 3600)
    status, body = await upgrade_status(server, f"/ws/hub/guard-room?token={expired}")
    assert (status, body["error"]["code"]) == (401, "expired_token")
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = (
        base64.urlsafe_b64encode(
            orjson.dumps(
                {
                    "sub": "g_x",
                    "iss": GUEST_ISSUER,
                    "aud": GUEST_AUDIENCE,
                    "kind": "guest",
                    "exp": int(time.time()) + 60,
                }
            )
        )
        .rstrip(b"=")
        .decode()
    )
    status, body = await upgrade_status(server, f"/ws/hub/guard-room?token={header}.{claims}.")
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    token = (await server.guest("Ok"))["token"]
    status, body = await upgrade_status(server, f"/ws/hub/no!?token={token}")
    assert (status, body["error"]["code"]) == (400, "invalid_room_id")
    status, body = await upgrade_status(
        server, f"/ws/hub/guard-room?token={token}", headers={"Origin": "https://evil.example"}
    )
    assert (status, body["error"]["code"]) == (403, "origin_not_allowed")


async def test_token_as_subprotocol_and_origins(make_server: ServerFactory) -> None:
    server = await make_server(allowed_origins=("https://meet.example",))
    token = (await server.guest("Proto"))["token"]
    ws = await server.session.ws_connect(
        f"{server.ws_url}/ws/hub/proto-room",
        protocols=("videoconf.v1", token),
        headers={"Origin": "https://meet.example"},
    )
    assert ws.protocol == "videoconf.v1"
    client = Client(ws, token)
    assert (await client.state())["you"]["displayName"] == "Proto"
    status, _ = await upgrade_status(
        server, f"/ws/hub/proto-room?token={token}", headers={"Origin": "http://localhost:3000"}
    )
    assert status == 403  # once origins are configured, only those may connect
    await ws.close()


async def test_malformed_messages_get_errors(server: Server) -> None:
    host, guest = await host_and_guest(server, "guard-room")
    cases: list[tuple[str, str, str | None]] = [
        ("{not json", "bad_json", None),
        ("[1, 2]", "bad_envelope", None),
        ('{"payload": {}}', "bad_envelope", None),
        ('{"event": "fly", "payload": {}}', "unknown_event", "fly"),
        ('{"event": "add_chat", "payload": {}}', "invalid_payload", "add_chat"),
        ('{"event": "add_chat", "payload": {"chatContent": 5}}', "invalid_payload", "add_chat"),
        ('{"event": "add_chat", "payload": {"chatContent": "   "}}', "invalid_payload", "add_chat"),
        ('{"event": "offer", "payload": {"sdp": "v=0"}}', "invalid_payload", "offer"),
        (
            '{"event": "toggle_audio", "payload": {"enabled": "yes"}}',
            "invalid_payload",
            "toggle_audio",
        ),
        ('{"event": "kick", "payload": {"clientId": "has space"}}', "invalid_payload", "kick"),
        ('{"event": "kick", "payload": {"clientId": ""}}', "invalid_payload", "kick"),
        (
            '{"event": "lower_hand", "payload": {"clientId": "t\\u00e9"}}',
            "invalid_payload",
            "lower_hand",
        ),
        (
            '{"event": "candidate", "payload": {"targetClientId": "a\\u0007", "candidate": ""}}',
            "invalid_payload",
            "candidate",
        ),
        (
            '{"event": "connection_state", "payload": {"peerClientId": "%s", "state": "failed"}}'
            % ("x" * 129),
            "invalid_payload",
            "connection_state",
        ),
        ('{"event": "delete_chat", "payload": {"chatId": "nope"}}', "not_found", "delete_chat"),
        (
            '{"event": "accept_waiting", "payload": {"clientId": "ghost"}}',
            "not_found",
            "accept_waiting",
        ),
    ]
    long_chat = orjson.dumps({"event": "add_chat", "payload": {"chatContent": "x" * 1001}})
    cases.append((long_chat.decode(), "invalid_payload", "add_chat"))
    for text, code, event in cases:
        await host.send_text(text)
        error = await host.expect("error")
        assert (error["code"], error["event"]) == (code, event), text
        assert error["message"]
    await host.ws.send_bytes(b'{"event": "ping", "payload": {}}')
    assert (await host.expect("error"))["code"] == "binary_frame"
    # A message over the limit is refused; the connection stays.
    big = orjson.dumps({"event": "add_chat", "payload": {"chatContent": "y" * 70_000}})
    await host.send_text(big.decode())
    assert (await host.expect("error"))["code"] == "message_too_large"
    # An exact 1000-character message is fine.
    await guest.send("add_chat", {"chatContent": "z" * 1000})
    assert len((await host.expect("add_chat"))["chatContent"]) == 1000
    await host.send("delete_chat", {"chatId": (await guest.expect("add_chat"))["chatId"]})
    await guest.expect("delete_chat")
    await assert_room_intact(server, host, guest)


async def test_an_sdp_is_checked_and_relayed_as_sent(server: Server) -> None:
    """SDPs are relayed as the JSON text they came in (protocol.SdpText): what is not a
    string of 1 to 32768 characters in valid UTF-8 is refused, and what passes arrives
    intact, escapes and non-ASCII included."""
    host, guest = await host_and_guest(server, "guard-room")
    target = guest.client_id
    longest = "x" * 32000 + "\r\n" * 384  # 32768 characters, 33536 bytes as JSON text
    refused: list[bytes] = [
        orjson.dumps({"event": "offer", "payload": {"targetClientId": target, "sdp": ""}}),
        orjson.dumps({"event": "answer", "payload": {"targetClientId": target, "sdp": 7}}),
        orjson.dumps({"event": "offer", "payload": {"targetClientId": target, "sdp": None}}),
        orjson.dumps({"event": "offer", "payload": {"targetClientId": target, "sdp": ["v"]}}),
        # Invalid UTF-8 inside the string: relayed as is, it would break the recipient's
        # text frame (and with it the recipient's connection).
        b'{"event": "offer", "payload": {"targetClientId": "%s", "sdp": "v=0\xff\xfe"}}'
        % target.encode(),
        b'{"event": "offer", "payload": {"targetClientId": "%s", "sdp": "v=0\\q"}}'
        % target.encode(),
        # 32769 characters; as JSON, longer still (the escapes).
        orjson.dumps(
            {"event": "offer", "payload": {"targetClientId": target, "sdp": longest + "x"}}
        ),
    ]
    for data in refused:
        await host.ws.send_frame(data, aiohttp.WSMsgType.TEXT)
        error = await host.expect("error")
        assert error["code"] in ("invalid_payload", "bad_json"), data[:80]
        assert error["message"]
    assert [m for m in await guest.quiet() if m["event"] in ("offer", "answer")] == []
    # Escapes, non-ASCII and the longest SDP allowed (32768 characters, more bytes as JSON).
    for sdp in ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", 'a="quoted" \\ \t é 日本 🎥', longest):
        await host.send("offer", {"targetClientId": target, "sdp": sdp})
        offer = await guest.expect("offer")
        assert offer["sdp"] == sdp
        assert (offer["clientId"], offer["displayName"], offer["type"]) == (
            host.client_id,
            "Host",
            "offer",
        )
    await assert_room_intact(server, host, guest)


async def test_the_heartbeat_keeps_live_peers_and_drops_silent_ones(
    make_server: ServerFactory,
) -> None:
    """Every half WS_HEARTBEAT_SECONDS the hub pings peers that sent nothing since the last
    check and cuts those still silent at the next; a peer that answers pings stays."""
    server = await make_server(ws_heartbeat=0.4)
    live = await server.connect("beat-room", "Live")
    await live.state()

    async def read_all_along() -> None:  # as a browser does; aiohttp answers pings as it reads
        while True:
            live.inbox.append(await live.next_message(timeout=30))

    listening = asyncio.create_task(read_all_along())
    token = (await server.guest("Gone"))["token"]
    ws = await server.session.ws_connect(
        f"{server.ws_url}/ws/hub/beat-room", params={"token": token}, autoping=False
    )
    kinds = []
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            kinds.append(message.type)
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    assert aiohttp.WSMsgType.PING in kinds  # asked first, then cut
    assert ws.closed
    await asyncio.sleep(1.0)  # a few more sweeps: the one that answers is still there
    listening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listening
    await live.send("ping", {"timestamp": 1})
    assert (await live.expect("pong"))["timestamp"] == 1
    gauge = [
        line
        for line in (await server.metrics()).splitlines()
        if line.startswith("websocket_connections_total ")
    ]
    assert gauge == ["websocket_connections_total 1.0"]


async def test_a_client_gone_during_the_upgrade_is_not_an_error(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Phones lose the network mid-handshake: the upgrade fails quietly (no ERROR with a
    traceback in the logs), nobody joins, and the room carries on."""
    host, guest = await host_and_guest(server, "guard-room")
    token = (await server.guest("Flaky"))["token"]
    port = int(server.url.rsplit(":", 1)[1])
    request = (
        f"GET /ws/hub/guard-room?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                # Reset, not closed: the request and the RST arrive together.
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.sendall(request)
        await asyncio.sleep(0.5)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await assert_room_intact(server, host, guest)


async def test_frame_over_the_hard_cap_closes_1009(server: Server) -> None:
    host, guest = await host_and_guest(server, "guard-room")
    await guest.send_text("x" * (65536 * 4 + 10))
    code, _ = await guest.closed()
    assert code == 1009
    await host.state(lambda s: len(s["participants"]) == 1)


async def test_rate_limit_then_policy_close(make_server: ServerFactory) -> None:
    server = await make_server(ws_rate_limit=5.0, ws_rate_burst=5)
    host, guest = await host_and_guest(server, "guard-room")
    for _ in range(10):
        await guest.send("raise_hand")
    errors = [m for m in await guest.quiet() if m["event"] == "error"]
    # One notice, the rest dropped.
    assert [e["payload"]["code"] for e in errors] == ["rate_limited"]
    await asyncio.sleep(1.0)  # the bucket refills; the client is welcome again
    await guest.send("lower_hand")
    await guest.state(lambda s: s["handsRaised"] == [])
    # Still flooding after about five notices (one a second): closed.
    started = time.monotonic()
    closing = asyncio.create_task(guest.closed(timeout=15))
    while not closing.done() and time.monotonic() - started < 15:
        with contextlib.suppress(ConnectionResetError):
            await guest.send("ping")
        await asyncio.sleep(0.01)
    code, seen = await closing
    assert 4 < time.monotonic() - started < 10
    assert code == 1008
    assert seen[-1]["payload"] == {"reason": "policy_violation", "reconnect": False}
    state = await host.state(lambda s: len(s["participants"]) == 1)
    assert state["you"]["role"] == "host"


async def test_rate_limit_zero_turns_it_off(make_server: ServerFactory) -> None:
    server = await make_server(ws_rate_limit=0.0, ws_rate_burst=1)
    host, guest = await host_and_guest(server, "guard-room")
    for index in range(300):
        await guest.send("add_chat", {"chatContent": f"m{index}"})
    for index in range(300):
        assert (await host.expect("add_chat"))["chatContent"] == f"m{index}"


async def test_slow_consumer_is_cut_off_without_stalling_the_room(
    make_server: ServerFactory,
) -> None:
    server = await make_server(ws_rate_limit=0.0, ws_send_queue=16)
    host, guest = await host_and_guest(server, "guard-room")
    token = (await server.guest("Sloth"))["token"]
    # A raw client with a tiny receive buffer that never reads after the handshake.
    port = int(server.url.rsplit(":", 1)[1])
    sloth = socket.socket()
    sloth.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sloth.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sloth, ("127.0.0.1", port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    request = (
        f"GET /ws/hub/guard-room?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sloth, request.encode())
    assert b" 101 " in await loop.sock_recv(sloth, 1024)
    await host.expect("waiting_request")
    await host.send(
        "accept_waiting",
        {
            "clientId": (await host.state(lambda s: len(s["waitingUsers"]) == 1))["waitingUsers"][
                0
            ]["clientId"]
        },
    )
    await guest.state(lambda s: len(s["participants"]) == 3)
    started = time.monotonic()
    for batch in range(300):  # about 3 MB towards the sloth, read promptly by the guest
        for index in range(batch * 10, batch * 10 + 10):
            await host.send("add_chat", {"chatContent": f"{index:04d}" + "." * 900})
        for index in range(batch * 10, batch * 10 + 10):
            message = await guest.expect("add_chat")
            assert message["chatContent"].startswith(f"{index:04d}")
    # The room kept flowing for the guest, and the sloth was removed.
    await guest.state(
        lambda s: len(s["participants"]) == 2,
    )
    assert time.monotonic() - started < 30
    sloth.close()


async def test_a_server_bug_costs_one_message_not_the_room(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, guest = await host_and_guest(server, "guard-room")

    def broken(*_: Any) -> list[Any]:
        raise RuntimeError("injected fault")

    monkeypatch.setitem(videoconf.room._HANDLERS, "raise_hand", broken)
    await guest.send("raise_hand")
    error = await guest.expect("error")
    assert (error["code"], error["event"]) == ("internal_error", "raise_hand")
    await assert_room_intact(server, host, guest)
