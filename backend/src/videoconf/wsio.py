"""The WebSocket fast path: reading frames and writing them without a task per message.
`FrameWriter`, `frame_header` and `heartbeat` serve both kinds of socket: the endpoint's own
(endpoint.py) and aiohttp's (`ClientSocket`, for upgrades aiohttp's handler serves).

aiohttp writes a frame in one synchronous `transport.write`; its `send_frame` coroutine
adds only flow control. A relay server sends most frames to sockets whose buffers are
empty, so `FrameWriter` takes those at once (the same bytes aiohttp would write, sent with
the socket's other frames at the end of the loop's turn) and says no when the socket is
closing or its buffer is past the high-water mark: the hub then queues the frame for its
writer task, which waits for the socket to drain.

Reading takes a shortcut too: `ClientSocket` hands each data frame to a callback as aiohttp's
reader parses it (`Frames.attach`), in the protocol's `data_received`, instead of queueing
it for the connection's task to pick up one wake-up at a time. Control frames (close, ping,
pong) still go through aiohttp's queue and `receive()`, which answers them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Protocol

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

# Bytes a socket may hold unsent before frames go through the queue instead.
HIGH_WATER: Final = 256 * 1024
_TEXT_FIN: Final = 0x81
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
_PING: Final = b"\x89\x00"  # a final ping frame with no payload


def frame_header(first: int, size: int) -> bytes:
    """The header of an unmasked frame (server to client): `first` is FIN and the opcode."""
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return _LEN2(first, 126, size)
    return _LEN8(first, 127, size)


class Quiet(Protocol):
    quiet: int  # heartbeat sweeps since the peer last sent anything (reset when it does)


def heartbeat(socket: Quiet, transport: asyncio.Transport | None) -> bool:
    """One sweep of the hub's heartbeat on a socket (`Hub.heartbeat`, every half
    `WS_HEARTBEAT_SECONDS`): a peer that has sent nothing for a whole sweep gets a ping;
    False when it has not answered by the next sweep (the connection is dead: abort it)."""
    socket.quiet += 1
    if socket.quiet == 2 and transport is not None and not transport.is_closing():
        transport.write(_PING)
    return socket.quiet < 3


class Outbox:
    """The sockets with frames written during this turn of the event loop: each gets them in
    one `transport.write` when the turn ends, one system call instead of one per frame.

    Measured with bench/run: relay throughput at saturation +35 %, about 1 ms more median
    latency near saturation, no change at ordinary rates."""

    def __init__(self) -> None:
        self._dirty: list[Callable[[], None]] = []

    def later(self, flush: Callable[[], None]) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush)
        self._dirty.append(flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for flush in dirty:
            flush()


class FrameWriter:
    """Writes one unmasked text frame (server to client, no compression) when called.

    The frame goes out with the socket's other frames of this turn of the loop. When the
    socket's buffer is past `high_water` it sends what it holds and says no: the caller
    queues the frame for a writer task that waits for the socket to drain (its first write
    comes after this turn's flush, scheduled earlier, so the order holds). A class with
    slots, not closures: one is kept per connection."""

    __slots__ = ("high_water", "outbox", "pending", "transport")

    def __init__(
        self, transport: asyncio.Transport, outbox: Outbox, high_water: int = HIGH_WATER
    ) -> None:
        self.transport = transport
        self.outbox = outbox
        self.high_water = high_water
        self.pending: list[bytes] | None = None  # this turn's frames, while there are some

    def flush(self) -> None:
        pending, self.pending = self.pending, None
        if pending and not self.transport.is_closing():
            self.transport.write(b"".join(pending))

    def __call__(self, data: bytes) -> bool:
        transport = self.transport
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self.high_water:
            self.flush()
            return False
        pending = self.pending
        if pending is None:
            pending = self.pending = []
            self.outbox.later(self.flush)
        pending.append(frame_header(_TEXT_FIN, len(data)))
        pending.append(data)
        return True


OnFrame = Callable[[bytes | None], None]
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY


class Inbox(WebSocketDataQueue):
    """aiohttp's per-socket message queue, with data frames taken out as they are parsed:
    to `on_frame` (text as bytes, binary as None) once attached, kept in order until then.
    Frames after a close are dropped, as a reader that stops at the close would."""

    __slots__ = ("early", "ended", "on_frame")

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(protocol, limit, loop=loop)
        self.on_frame: OnFrame | None = None
        self.early: list[bytes | None] | None = []
        self.ended = False

    def feed_data(self, data: Any, size: int) -> None:
        kind = data[0]
        if kind is _TEXT or kind is _BINARY:
            if self.ended:
                return
            frame = data[1] if kind is _TEXT else None
            if self.on_frame is not None:
                self.on_frame(frame)
            elif self.early is not None:
                self.early.append(frame)
            return
        if kind is WSMsgType.CLOSE:
            self.ended = True
        super().feed_data(data, size)


class ClientSocket(web.WebSocketResponse):
    """aiohttp's WebSocketResponse reading through an `Inbox` (see `Frames.attach`), with
    the heartbeat left to the hub: one sweep over every connection (`heartbeat`) instead of
    a timer per connection and a reset scheduled on every read.

    `_post_start` is aiohttp's own (3.14, pinned) but for the queue it creates and the
    callback it gives the protocol. Create it with `heartbeat=None`."""

    quiet = 0

    def _post_start(self, request: Any, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer
        loop = self._loop
        assert loop is not None
        self._reader = Inbox(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = WebSocketReader(
            self._reader, self._max_msg_size, compress=False, decode_text=False
        )
        request.protocol.set_parser(self._parser, data_received_cb=self._heard)
        request.protocol.keep_alive(False)

    def _heard(self) -> None:
        self.quiet = 0

    def heartbeat(self) -> bool:
        return heartbeat(self, self._req.transport if self._req is not None else None)


class Frames:
    """The text frames of a socket as bytes (a binary frame as None), until it closes.

    On a `ClientSocket`, `attach` sends them to a callback instead, as they arrive; the
    iterator then only tells when the socket closes."""

    __slots__ = ("socket",)

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket

    def attach(self, on_frame: OnFrame) -> bool:
        """Deliver frames to `on_frame` from now on (those that came already first); False
        when the socket cannot (not a `ClientSocket`): iterate instead."""
        inbox = getattr(self.socket, "_reader", None)
        if not isinstance(inbox, Inbox) or inbox.early is None:
            return False
        early, inbox.early = inbox.early, None
        for frame in early:
            on_frame(frame)
        inbox.on_frame = on_frame
        return True

    def __aiter__(self) -> AsyncIterator[bytes | None]:
        return self

    async def __anext__(self) -> bytes | None:
        message = await self.socket.receive()
        kind = message.type
        if kind == WSMsgType.TEXT:
            data = message.data
            return data if isinstance(data, bytes) else data.encode()
        if kind == WSMsgType.BINARY:
            return None
        raise StopAsyncIteration
