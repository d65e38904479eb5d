"""The listening socket: WebSocket upgrades to `/ws/hub/{room}` are taken here; every other
request goes to aiohttp with the bytes already read.

Why: on aiohttp's request path an idle WebSocket keeps a request object (with its headers,
the token among them), a handler task and its chain of coroutines: about 15 KiB per
connection before any room logic (bench/RESULTS.md, "aiohttp ceiling"). Here a connection is
one protocol object, aiohttp's compiled frame reader and the hub's `Connection`; the
upgrade's checks run in a task that ends with the upgrade.

A connection's first request is looked at. When it is a plain `GET /ws/hub/{room}` upgrade
(HTTP/1.1, version 13, no body) it is checked by `api.admit`, answered `101`, and served
here. Anything else, and any upgrade that `admit` turns down or that belongs to a room
another replica owns, goes to aiohttp as it came: aiohttp's `websocket` handler checks it
again and gives the answer (the JSON error, or the forwarding), so each answer has one
source.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import struct
from collections.abc import Callable
from typing import Any, Final, cast
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

from .api import (
    ROOM_ID,
    SUBPROTOCOL,
    Refused,
    admit,
    hub_key,
    ice_servers_message,
    settings_key,
)
from .auth import AuthError
from .hub import Connection
from .protocol import sendable
from .wsio import FrameWriter, frame_header, heartbeat

log = logging.getLogger(__name__)

PREFIX: Final = b"GET /ws/hub/"
# The longest request head taken here; a longer one goes to aiohttp (which answers it).
HEAD_LIMIT: Final = 16 * 1024
# Seconds a new connection has to send its first request head (or what shows it is not an
# upgrade); one that trickles bytes or sends nothing is closed, so it cannot hold a socket.
HEAD_TIMEOUT = 30.0
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_PING: Final = WSMsgType.PING
_CLOSE: Final = WSMsgType.CLOSE
_CODE = struct.Struct("!H").pack


def frame(opcode: int, data: bytes) -> bytes:
    """One final, unmasked frame (server to client)."""
    return frame_header(0x80 | opcode, len(data)) + data


class Endpoint:
    """Makes the protocol of each accepted connection (give it to `loop.create_server`)."""

    def __init__(self, app: web.Application, http: Callable[[], asyncio.Protocol]) -> None:
        self.app = app
        self.http = http  # aiohttp's protocol factory (AppRunner.server)
        self.hub = app[hub_key]
        self.settings = app[settings_key]
        self.admissions: set[asyncio.Task[None]] = set()

    def __call__(self) -> Front:
        return Front(self)

    def close(self) -> None:
        """Shutting down, after the drain: upgrades under way stop, sockets still open go."""
        for task in list(self.admissions):
            task.cancel()
        for connection in list(self.hub.connections.values()):
            if isinstance(connection.socket, Front) and connection.abort is not None:
                connection.abort()


async def listen(
    app: web.Application, runner: web.AppRunner, host: str, port: int
) -> tuple[asyncio.Server, Endpoint]:
    """Serve `app` (its runner set up) on host:port through an `Endpoint`. At shutdown:
    close the server, then `Endpoint.close`, then clean the runner up."""
    assert runner.server is not None, "call runner.setup() first"
    endpoint = Endpoint(app, runner.server)
    server = await asyncio.get_running_loop().create_server(
        endpoint, host, port, backlog=1024, reuse_address=True
    )
    return server, endpoint


class Inbox(WebSocketDataQueue):
    """Where aiohttp's frame reader puts what it parses: straight to the `Front`."""

    __slots__ = ("front",)

    def __init__(self, front: Front, loop: asyncio.AbstractEventLoop) -> None:
        # aiohttp types the protocol as its own; the queue only pauses and resumes it.
        super().__init__(front, 2**16, loop=loop)  # type: ignore[arg-type]
        self.front = front

    def feed_data(self, data: Any, size: int) -> None:
        kind = data[0]
        if kind is _TEXT:
            self.front.received(data[1])
        elif kind is _BINARY:
            self.front.received(None)
        elif kind is _PING:
            self.front.pong(data[1])
        elif kind is _CLOSE:
            self.front.peer_closed(data[1])

    def set_exception(self, exc: BaseException, exc_cause: Any = None) -> None:
        """The reader found a broken frame (or one past the size limit): close with the
        code it gives."""
        self.front.broken(getattr(exc, "code", 1002))


class Front(asyncio.Protocol):
    """One TCP connection: its first request head, then (when it is ours) its WebSocket.

    It is also the hub's `Socket` for the connection: `send_frame` and `close` wait for
    the peer; `heartbeat` is the hub's sweep (wsio.heartbeat)."""

    __slots__ = (
        "admission",
        "closing",
        "connection",
        "drained",
        "endpoint",
        "head",
        "late",
        "peer_gone",
        "quiet",
        "reader",
        "transport",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = b""  # the request head so far; None once upgraded
        self.admission: asyncio.Task[None] | None = None
        self.late: asyncio.TimerHandle | None = None  # HEAD_TIMEOUT, while the head is read
        self.reader: WebSocketReader | None = None
        self.connection: Connection | None = None
        self.quiet = 0  # heartbeat sweeps since the peer last sent anything
        self.closing = False  # our close frame is sent
        # Waiters: the socket's buffer drained, the peer's close frame came.
        self.drained: asyncio.Future[None] | None = None
        self.peer_gone: asyncio.Future[None] | None = None

    # -- the request head -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.late = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, self._head_too_late)

    def _head_too_late(self) -> None:
        self.late = None
        if self.head is not None and self.admission is None and self.transport is not None:
            self.transport.close()

    def _head_done(self) -> None:
        self.head = None
        if self.late is not None:
            self.late.cancel()
            self.late = None

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is not None:
            self.quiet = 0
            reader.feed_data(data)
            return
        head = self.head
        if head is None:
            return  # the connection is gone
        head += data
        if self.admission is not None:
            # Nothing should come before our answer; keep it for whoever answers, bounded.
            if len(head) > HEAD_LIMIT and self.transport is not None:
                self.transport.abort()
            self.head = head
            return
        if len(head) < len(PREFIX):
            if PREFIX.startswith(head):
                self.head = head
            else:
                self._hand_over(head)
            return
        if not head.startswith(PREFIX):
            self._hand_over(head)
            return
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > HEAD_LIMIT:
                self._hand_over(head)
            else:
                self.head = head
            return
        self.head = head
        request = _upgrade(head[:end])
        if request is None:
            self._hand_over(head)
            return
        assert self.transport is not None
        self.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._admit(*request, end + 4))
        self.admission = task
        self.endpoint.admissions.add(task)
        task.add_done_callback(self.endpoint.admissions.discard)

    def _hand_over(self, head: bytes) -> None:
        """aiohttp takes the connection, with what was read of it."""
        transport = self.transport
        assert transport is not None
        self._head_done()
        if transport.is_closing():
            return
        http = self.endpoint.http()
        transport.set_protocol(http)
        http.connection_made(transport)
        transport.resume_reading()
        if head:
            http.data_received(head)

    async def _admit(
        self, room_id: str, query: dict[str, str], headers: dict[str, str], start: int
    ) -> None:
        try:
            entry = await admit(self.endpoint.app, room_id, query, headers)
        except (Refused, AuthError):
            entry = None
        except Exception:
            log.exception("websocket upgrade failed")
            entry = None
        finally:
            self.admission = None
        transport, head = self.transport, self.head
        assert transport is not None
        assert head is not None
        if entry is None or not entry.placement.local:
            self._hand_over(head)  # aiohttp answers why, or forwards to the owner
            return
        if transport.is_closing():
            return  # gone while we checked
        key = headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())  # noqa: S324
        offered = {p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")}
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: "
            + accept
            + (
                b"\r\nSec-WebSocket-Protocol: " + SUBPROTOCOL.encode()
                if SUBPROTOCOL in offered
                else b""
            )
            + b"\r\n\r\n"
        )
        endpoint = self.endpoint
        settings, hub = endpoint.settings, endpoint.hub
        transport.write(frame(0x1, ice_servers_message(settings, entry.client_id)))
        rest = head[start:]
        self._head_done()
        self.reader = WebSocketReader(
            Inbox(self, asyncio.get_running_loop()),
            settings.ws_max_message_bytes * 4,  # the hub answers sizes up to this itself
            compress=False,
            decode_text=False,
        )
        self.connection = hub.open(
            self,
            entry.room_id,
            entry.client_id,
            entry.display_name,
            _TEXT,
            abort=transport.abort,
            ticket_role=entry.ticket_role,
            write_now=FrameWriter(transport, hub.outbox),
        )
        transport.resume_reading()
        if rest:
            self.data_received(rest)

    # -- the WebSocket --------------------------------------------------------------------

    def received(self, data: bytes | None) -> None:
        connection = self.connection
        if connection is not None and not self.closing:
            connection.frame(data)

    def pong(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.closing:
            self.transport.write(frame(0xA, data))

    def peer_closed(self, code: int) -> None:
        """The peer's close frame: the answer to ours, or its own (answered in kind)."""
        if self.peer_gone is not None and not self.peer_gone.done():
            self.peer_gone.set_result(None)
        self._close_now(code if sendable(code) else 1000)

    def broken(self, code: int) -> None:
        """A frame the reader cannot take: close with its code and go."""
        self._close_now(code if sendable(code) else 1002)

    def _close_now(self, code: int) -> None:
        """Our close frame unless one went already, then the TCP connection."""
        transport = self.transport
        assert transport is not None
        if not self.closing:
            self.closing = True
            transport.write(frame(0x8, _CODE(code)))
        transport.close()

    async def send_frame(self, message: bytes, opcode: Any, compress: int | None = None) -> None:
        """A text frame, then wait while the socket's buffer is full (hub.Socket)."""
        transport = self.transport
        assert transport is not None
        if transport.is_closing() or self.closing:
            raise ConnectionResetError("the connection is closing")
        transport.write(frame(0x1, message))
        if self.drained is not None:
            await self.drained

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        """Our close frame; the TCP connection goes when the peer answers. (The hub's
        `Connection.close` cuts it after CLOSE_GRACE if the peer never does.)"""
        transport = self.transport
        assert transport is not None
        if self.closing:
            return False
        self.closing = True
        if transport.is_closing():
            return False
        transport.write(frame(0x8, _CODE(code) + message[:123]))
        self.peer_gone = asyncio.get_running_loop().create_future()
        await self.peer_gone
        transport.close()
        return True

    def heartbeat(self) -> bool:
        return heartbeat(self, self.transport)

    # -- flow control and the end ---------------------------------------------------------

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        if self.admission is not None:
            self.admission.cancel()
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_exception(ConnectionResetError("the connection is gone"))
            drained.exception()  # retrieved: nobody may be waiting
        if self.peer_gone is not None and not self.peer_gone.done():
            self.peer_gone.set_result(None)
        connection, self.connection = self.connection, None
        self.reader = None
        if connection is not None:
            self.endpoint.hub.closed(connection)

    # WebSocketDataQueue asks its protocol to pause when it holds too much; the Inbox holds
    # nothing, but the reader's type wants these.
    _reading_paused = False

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()


def _upgrade(head: bytes) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """(room id, query, headers in lower case) of a request head that is a plain WebSocket
    upgrade to /ws/hub/{room}; None for anything else (aiohttp will answer it)."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    path, _, query_string = parts[1].partition("?")
    room_id = path[len("/ws/hub/") :]
    if not ROOM_ID.fullmatch(room_id):
        return None  # percent-encoded, or not a room id: aiohttp decodes or refuses it
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or not name.isascii():
            return None
        name, value = name.lower(), value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if headers.get("upgrade", "").lower() != "websocket":
        return None
    if "upgrade" not in {t.strip().lower() for t in headers.get("connection", "").split(",")}:
        return None
    if headers.get("sec-websocket-version") != "13":
        return None
    if "content-length" in headers or "transfer-encoding" in headers:
        return None
    try:
        if len(base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, value)
    return room_id, query, headers
