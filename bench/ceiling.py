"""The ceiling of our stack: a WebSocket relay with no room logic at all (no sign-in, no
validation, no permissions, no metrics, no send queues) on what the backend's WebSocket
endpoint is made of: a bare asyncio protocol (uvloop) with aiohttp's compiled frame reader
and orjson, no request object, no handler task, no coroutine per connection, and the
backend's own frame writer (`videoconf.wsio.FrameWriter`), which sends each socket's frames
of one turn of the loop in one write. Without that last part the backend, logic and all,
outran its "ceiling" at saturation.

It speaks our envelope so the load generator drives it like the backend (`--target relay`):
a message with `payload.targetClientId` goes to that client with the sender's id added;
`add_chat` goes to everyone in the room, the sender included. Connect to
`/ws/hub/{room}?id={clientId}`.

The upgrade is read by hand: enough for the load generator (one GET with a
`Sec-WebSocket-Key`, no extensions), not a general HTTP server.

    python bench/ceiling.py --port 18081
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvloop
from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from videoconf.wsio import FrameWriter, Outbox, frame_header

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 16 * 1024
MAX_MESSAGE = 4 * 1024 * 1024

clients: dict[str, Relay] = {}
rooms: dict[str, dict[str, Relay]] = {}
outbox = Outbox()


class Frames(WebSocketDataQueue):
    """The reader's output, handled as it is parsed."""

    __slots__ = ("relay",)

    def __init__(self, relay: Relay, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(relay, 2**16, loop=loop)
        self.relay = relay

    def feed_data(self, data: Any, size: int) -> None:
        kind, transport = data[0], self.relay.transport
        if kind is WSMsgType.TEXT:
            self.relay.text(data[1])
        elif kind is WSMsgType.PING:
            transport.write(b"\x8a\x00")
        elif kind is WSMsgType.CLOSE:
            transport.write(b"\x88\x02\x03\xe8")  # 1000
            transport.close()


class Relay(asyncio.Protocol):
    __slots__ = ("client_id", "head", "reader", "room_id", "transport", "writer")

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.writer = FrameWriter(transport, outbox)
        self.head: bytes | None = b""
        self.reader: WebSocketReader | None = None

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed_data(data)
            return
        assert self.head is not None
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_HEAD:
                self.transport.close()
            return
        lines = self.head[:end].decode("latin-1").split("\r\n")
        rest, self.head = self.head[end + 4 :], None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path, _, query = lines[0].split(" ")[1].partition("?")
        self.room_id = path.rsplit("/", 1)[-1]
        self.client_id = parse_qs(query)["id"][0]
        key = headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())  # noqa: S324
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        loop = asyncio.get_running_loop()
        self.reader = WebSocketReader(
            Frames(self, loop), MAX_MESSAGE, compress=False, decode_text=False
        )
        rooms.setdefault(self.room_id, {})[self.client_id] = self
        clients[self.client_id] = self
        if rest:
            self.reader.feed_data(rest)

    def text(self, data: bytes) -> None:
        message = orjson.loads(data)
        payload = message["payload"]
        payload["clientId"] = self.client_id
        data = orjson.dumps(message)
        if message["event"] == "add_chat":
            for other in rooms.get(self.room_id, {}).values():
                other.send(data)
        else:
            target = clients.get(payload["targetClientId"])
            if target is not None:
                target.send(data)

    def send(self, data: bytes) -> None:
        if not self.writer(data) and not self.transport.is_closing():
            # Past the high-water mark: write it now (the writer sent what it held first).
            self.transport.write(frame_header(0x81, len(data)) + data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reader is None:
            return
        room = rooms.get(self.room_id, {})
        if room.get(self.client_id) is self:
            del room[self.client_id]
        if clients.get(self.client_id) is self:
            del clients[self.client_id]
        if not room:
            rooms.pop(self.room_id, None)

    # The reader's queue pauses the protocol when it fills; this one never holds frames.
    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Relay, host, port, backlog=4096)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18084)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
