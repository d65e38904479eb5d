"""wsio's read shortcut: aiohttp's own (compiled) frame reader feeding an `Inbox`."""

from __future__ import annotations

import asyncio
import struct

from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketReader

from videoconf.wsio import Frames, Inbox


class Protocol:
    """What the queue asks of aiohttp's request handler (flow control)."""

    _reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


class Socket:
    def __init__(self, inbox: Inbox) -> None:
        self._reader = inbox


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (zero key), payload under 126 bytes."""
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


def reader() -> tuple[Inbox, WebSocketReader]:
    inbox = Inbox(Protocol(), 2**16, loop=asyncio.get_running_loop())
    return inbox, WebSocketReader(inbox, 2**20, compress=False, decode_text=False)


async def test_frames_before_attach_come_first_then_each_as_it_is_parsed() -> None:
    inbox, parser = reader()
    parser.feed_data(frame(0x1, b"one") + frame(0x2, b"\x00") + frame(0x1, b"two"))
    got: list[bytes | None] = []
    assert Frames(Socket(inbox)).attach(got.append)
    assert got == [b"one", None, b"two"]  # binary frames as None, in order
    parser.feed_data(frame(0x1, b"three"))
    assert got == [b"one", None, b"two", b"three"]
    assert inbox._size == 0  # nothing queued for receive()


async def test_control_frames_go_to_receive_and_nothing_is_read_after_a_close() -> None:
    inbox, parser = reader()
    got: list[bytes | None] = []
    assert Frames(Socket(inbox)).attach(got.append)
    parser.feed_data(
        frame(0x9, b"hi") + frame(0x1, b"before") + frame(0x8, b"\x03\xe8") + frame(0x1, b"after")
    )
    assert got == [b"before"]
    ping, close = await inbox.read(), await inbox.read()
    assert (ping.type, ping.data) == (WSMsgType.PING, b"hi")
    assert (close.type, close.data) == (WSMsgType.CLOSE, 1000)


async def test_a_plain_socket_is_read_by_iterating() -> None:
    assert not Frames(Socket(None)).attach(print)
