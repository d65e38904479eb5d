"""The WebSocket fast path: reading frames and writing them without a task per message.

aiohttp writes a frame in one synchronous `transport.write`; its `send_frame` coroutine
adds only flow control. A relay server sends most frames to sockets whose buffers are
empty, so `frame_writer` takes those at once (the same bytes aiohttp would write, sent with
the socket's other frames at the end of the loop's turn) and says no when the socket is
closing or its buffer is past the high-water mark: the hub then queues the frame for its
writer task, which waits for the socket to drain.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import WSMsgType, web

# Bytes a socket may hold unsent before frames go through the queue instead.
HIGH_WATER: Final = 256 * 1024
_TEXT_FIN: Final = 0x81
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack


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


def frame_writer(
    transport: asyncio.Transport, outbox: Outbox, high_water: int = HIGH_WATER
) -> Callable[[bytes], bool]:
    """A function writing one unmasked text frame (server to client, no compression).

    The frame goes out with the socket's other frames of this turn of the loop. When the
    socket's buffer is past `high_water` it sends what it holds and says no: the caller
    queues the frame for a writer task that waits for the socket to drain (its first write
    comes after this turn's flush, scheduled earlier, so the order holds)."""
    pending: list[bytes] = []

    def flush() -> None:
        if pending:
            data = b"".join(pending)
            pending.clear()
            if not transport.is_closing():
                transport.write(data)

    def write(data: bytes) -> bool:
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > high_water:
            flush()
            return False
        size = len(data)
        if not pending:
            outbox.later(flush)
        if size < 126:
            pending.append(bytes((_TEXT_FIN, size)))
        elif size < 65536:
            pending.append(_LEN2(_TEXT_FIN, 126, size))
        else:
            pending.append(_LEN8(_TEXT_FIN, 127, size))
        pending.append(data)
        return True

    return write


class Frames:
    """The text frames of a socket as bytes (a binary frame as None), until it closes."""

    __slots__ = ("socket",)

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket

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
