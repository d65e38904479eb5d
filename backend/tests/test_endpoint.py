"""The endpoint's own WebSocket path, byte for byte over a real socket: the upgrade's answer,
a head that comes in pieces, frames behind it, control frames, and what it hands to aiohttp."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct
from collections.abc import AsyncIterator

import orjson
import pytest
from conftest import Server

import videoconf.endpoint

KEY = base64.b64encode(b"0123456789abcdef").decode()
ACCEPT = base64.b64encode(
    hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()  # noqa: S324
).decode()


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(event: str, payload: dict[str, object] | None = None) -> bytes:
    return masked(0x1, orjson.dumps({"event": event, "payload": payload or {}}))


def upgrade_head(server: Server, path: str, *extra: str) -> bytes:
    port = server.url.rsplit(":", 1)[1]
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {KEY}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Raw:
    """A bare TCP connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: Server) -> Raw:
        port = int(server.url.rsplit(":", 1)[1])
        raw = cls(*await asyncio.open_connection("127.0.0.1", port))
        OPEN.append(raw)
        return raw

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str]]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status_line, *lines = raw.decode("latin-1").strip().split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(" ")[1]), headers

    async def body(self, headers: dict[str, str]) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), 5)

    async def frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        size = second & 0x7F
        assert not second & 0x80, "a server frame is never masked"
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await asyncio.wait_for(self.reader.readexactly(size), 5)

    async def event(self) -> dict[str, object]:
        opcode, data = await self.frame()
        assert opcode == 0x1, (opcode, data)
        message: dict[str, object] = orjson.loads(data)
        return message

    async def events_until(self, name: str) -> list[str]:
        seen: list[str] = []
        while not seen or seen[-1] != name:
            seen.append(str((await self.event())["event"]))
        return seen

    async def control(self) -> tuple[int, bytes]:
        """The next control frame (text frames before it skipped)."""
        while True:
            opcode, data = await self.frame()
            if opcode != 0x1:
                return opcode, data

    async def eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    def close(self) -> None:
        self.writer.close()


OPEN: list[Raw] = []


async def joined(server: Server, name: str) -> Raw:
    """A raw connection signed in as `name`, upgraded, past its first room_state."""
    token = (await server.guest(name))["token"]
    raw = await Raw.open(server)
    await raw.send(upgrade_head(server, f"/ws/hub/raw-room?token={token}"))
    assert (await raw.head())[0] == 101
    await raw.events_until("room_state")
    return raw


@pytest.fixture(autouse=True)
async def close_raw_connections() -> AsyncIterator[None]:
    yield
    while OPEN:
        raw = OPEN.pop()
        raw.writer.close()
        with contextlib.suppress(ConnectionError):
            await raw.writer.wait_closed()


async def test_the_upgrade_is_answered_here_then_ice_servers_then_room_state(
    server: Server,
) -> None:
    token = (await server.guest("Raw"))["token"]
    raw = await Raw.open(server)
    await raw.send(
        upgrade_head(
            server, f"/ws/hub/raw-room?token={token}", "Sec-WebSocket-Protocol: videoconf.v1"
        )
    )
    status, headers = await raw.head()
    assert status == 101
    assert headers["sec-websocket-accept"] == ACCEPT
    assert headers["upgrade"].lower() == "websocket"
    assert headers["sec-websocket-protocol"] == "videoconf.v1"
    assert "sec-websocket-extensions" not in headers  # no compression, whatever is offered
    assert await raw.events_until("room_state") == ["ice_servers", "room_state"]
    raw.close()
    # Not offered, not chosen: the answer names no subprotocol.
    raw = await Raw.open(server)
    await raw.send(upgrade_head(server, f"/ws/hub/raw-room?token={token}"))
    status, headers = await raw.head()
    assert status == 101
    assert "sec-websocket-protocol" not in headers
    raw.close()


async def test_a_head_in_pieces_with_frames_right_behind_it(server: Server) -> None:
    token = (await server.guest("Slow"))["token"]
    raw = await Raw.open(server)
    data = upgrade_head(server, f"/ws/hub/raw-room?token={token}") + text("ping", {"timestamp": 7})
    for start in range(0, len(data), 5):
        await raw.send(data[start : start + 5])
        await asyncio.sleep(0)
    status, _ = await raw.head()
    assert status == 101
    seen = await raw.events_until("pong")
    assert seen[:2] == ["ice_servers", "room_state"]


async def test_an_upgrade_on_a_kept_alive_connection_goes_through_aiohttp(server: Server) -> None:
    """Not a browser's way (it opens a connection per WebSocket), but a client may: the
    endpoint handed the connection to aiohttp with its first request, and aiohttp's own
    handler serves the upgrade the same way."""
    token = (await server.guest("Kept"))["token"]
    raw = await Raw.open(server)
    port = server.url.rsplit(":", 1)[1]
    await raw.send(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    status, headers = await raw.head()
    assert status == 200
    assert orjson.loads(await raw.body(headers)) == {"status": "healthy"}
    await raw.send(upgrade_head(server, f"/ws/hub/raw-room?token={token}"))
    status, headers = await raw.head()
    assert status == 101
    assert headers["sec-websocket-accept"] == ACCEPT
    assert await raw.events_until("room_state") == ["ice_servers", "room_state"]
    await raw.send(text("ping", {"timestamp": 8}))
    await raw.events_until("pong")


async def test_control_frames_ping_answered_close_echoed(server: Server) -> None:
    raw = await joined(server, "Ctl")
    await raw.send(masked(0x9, b"are you there"))
    assert await raw.control() == (0xA, b"are you there")
    await raw.send(masked(0x8, struct.pack("!H", 1000) + b"bye"))
    assert await raw.control() == (0x8, struct.pack("!H", 1000))
    assert await raw.eof()


async def test_a_broken_frame_closes_1002_and_the_room_carries_on(server: Server) -> None:
    host = await server.connect("raw-room", "Host")
    await host.state()
    raw = await joined(server, "Broken")
    await raw.send(masked(0x3, b"reserved opcode"))
    opcode, data = await raw.control()
    assert (opcode, struct.unpack("!H", data[:2])[0]) == (0x8, 1002)
    assert await raw.eof()
    await host.send("ping", {"timestamp": 1})
    assert (await host.expect("pong"))["timestamp"] == 1


async def test_a_connection_that_never_finishes_its_head_is_closed(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow-loris client (a few bytes, then nothing) cannot hold a socket for ever; one
    that sends its whole head in time is not affected."""
    monkeypatch.setattr(videoconf.endpoint, "HEAD_TIMEOUT", 0.3)
    trickle = await Raw.open(server)
    await trickle.send(b"GET /ws/hub/raw-ro")
    silent = await Raw.open(server)
    assert await trickle.eof()
    assert await silent.eof()
    raw = await joined(server, "Prompt")
    await asyncio.sleep(0.5)  # past the timeout: the upgraded socket stays
    await raw.send(text("ping", {"timestamp": 9}))
    await raw.events_until("pong")


async def test_what_is_not_a_plain_upgrade_gets_aiohttps_answer(server: Server) -> None:
    token = (await server.guest("Plain"))["token"]
    cases = [
        # No upgrade headers: the handler checks it all, then says why.
        (
            f"GET /ws/hub/raw-room?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            400,
            "not_a_websocket",
        ),
        # A refused upgrade: the same JSON error as ever.
        (upgrade_head(server, "/ws/hub/raw-room?token=not.a.jwt"), 401, "invalid_token"),
        (upgrade_head(server, "/ws/hub/raw-room"), 401, "missing_token"),
        (upgrade_head(server, f"/ws/hub/no!?token={token}"), 400, "invalid_room_id"),
    ]
    for head, status, code in cases:
        raw = await Raw.open(server)
        await raw.send(head)
        got, headers = await raw.head()
        body = orjson.loads(await raw.body(headers))
        assert (got, body["error"]["code"]) == (status, code), body
        raw.close()
