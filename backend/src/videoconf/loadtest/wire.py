"""The load generator's WebSocket client: picows (Cython), so that one generator core can
outpace one server core. Frames are handed to a callback as they arrive; no task per
connection, no queue.

Sending is batched: the frames a connection sends within one turn of the event loop go out
in one write (the `Outbox`), so the generator makes far fewer system calls than the server
it loads. They are masked with a zero key: a client must mask, the key's unpredictability
protects browsers' peers from cache poisoning, which a load generator has no use for.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Mapping

import orjson
from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
_ZERO_MASK = b"\0\0\0\0"

OnText = Callable[[bytes], None]
OnClosed = Callable[[int | None, str], None]


class ConnectError(Exception):
    """The WebSocket could not be opened; `reason` is short and safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outbox:
    """The connections with frames to send, written once per turn of the event loop."""

    def __init__(self) -> None:
        self.dirty: list[Wire] = []
        self.loop = asyncio.get_running_loop()

    def add(self, wire: Wire) -> None:
        if not self.dirty:
            self.loop.call_soon(self.flush)
        self.dirty.append(wire)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for wire in dirty:
            wire.flush()


def frame(data: bytes) -> bytes:
    """A masked (zero key) final text frame."""
    size = len(data)
    if size < 126:
        return bytes((0x81, 0x80 | size)) + _ZERO_MASK + data
    if size < 65536:
        return _LEN2(0x81, 0x80 | 126, size) + _ZERO_MASK + data
    return _LEN8(0x81, 0x80 | 127, size) + _ZERO_MASK + data


class Wire(WSListener):
    """One WebSocket. `on_text` gets every text frame; `on_closed` the close code once."""

    def __init__(self, on_text: OnText, on_closed: OnClosed, outbox: Outbox) -> None:
        self.on_text = on_text
        self.on_closed = on_closed
        self.outbox = outbox
        self.pending: list[bytes] = []
        self.transport: WSTransport | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._reported = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            self.on_text(frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            code = frame.get_close_code()
            self.close_code = code.value if isinstance(code, WSCloseCode) else int(code)
            self.close_reason = (frame.get_close_message() or b"").decode("utf-8", "replace")
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self._reported:
            self._reported = True
            self.on_closed(self.close_code, self.close_reason)

    def send(self, data: bytes) -> None:
        if not self.pending:
            self.outbox.add(self)
        self.pending.append(frame(data))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending and self.transport is not None and not self.transport.is_disconnected:
            self.transport.underlying_transport.write(b"".join(pending))

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected


def _error_code(body: bytes | None) -> str:
    """The `error.code` of a refused handshake's JSON body (our backend's), if any."""
    try:
        code = orjson.loads(body or b"")["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ""
    return code if isinstance(code, str) else ""


async def connect(
    url: str, headers: Mapping[str, str], on_text: OnText, on_closed: OnClosed, outbox: Outbox
) -> Wire:
    """Open a WebSocket to `url`; raises ConnectError with the HTTP status when refused."""
    try:
        _, listener = await ws_connect(
            lambda: Wire(on_text, on_closed, outbox),
            url,
            extra_headers=dict(headers),
            websocket_handshake_timeout=15,
            enable_auto_pong=True,
            max_frame_size=1 << 20,
            logger_name="videoconf.loadtest.wire",
        )
    except WSHandshakeError as exc:
        status = getattr(getattr(exc, "response", None), "status", None)
        status = getattr(status, "value", status)
        raise ConnectError(f"http {status} {_error_code(exc.raw_body)}".strip()) from None
    except (OSError, TimeoutError) as exc:
        raise ConnectError(type(exc).__name__) from None
    assert isinstance(listener, Wire)
    return listener
