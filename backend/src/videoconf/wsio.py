"""The WebSocket fast path: reading frames and writing them without a task per message.

aiohttp writes a frame in one synchronous `transport.write`; its `send_frame` coroutine
adds only flow control. A relay server sends most frames to sockets whose buffers are
empty, so `frame_writer` writes those at once (the same bytes aiohttp would write) and
says no when the socket is closing or its buffer is past the high-water mark: the hub then
queues the frame for its writer task, which waits for the socket to drain.
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


def frame_writer(
    transport: asyncio.Transport, high_water: int = HIGH_WATER
) -> Callable[[bytes], bool]:
    """A function writing one unmasked text frame (server to client, no compression)."""

    def write(data: bytes) -> bool:
        if transport.is_closing() or transport.get_write_buffer_size() > high_water:
            return False
        size = len(data)
        if size < 126:
            transport.write(bytes((_TEXT_FIN, size)) + data)
        elif size < 65536:
            transport.write(_LEN2(_TEXT_FIN, 126, size) + data)
        else:
            transport.write(_LEN8(_TEXT_FIN, 127, size) + data)
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
