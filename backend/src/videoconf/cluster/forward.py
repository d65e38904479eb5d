"""Forward a client's WebSocket to the replica that owns its room, frame for frame.

The edge replica has already checked the client (origin, token, ticket); it vouches for the
identity to the owner with a short-lived assertion signed with the shared JWT_SECRET. The
owner runs the room's rules; the edge only carries frames and keeps the client's connection
counted where it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import aiohttp
import jwt
from aiohttp import WSMsgType, web

from ..protocol import CLOSE_CODES, CLOSE_GRACE, DisconnectReason, encode, sendable

log = logging.getLogger(__name__)

ASSERTION_HEADER: Final = "X-Videoconf-Assertion"
_AUDIENCE: Final = "videoconf:internal"
_ALGORITHM: Final = "HS256"


def sign_assertion(
    secret: str, room_id: str, client_id: str, display_name: str, ticket_role: str | None
) -> str:
    now = int(time.time())
    claims = {
        "sub": client_id,
        "name": display_name,
        "room": room_id,
        "ticketRole": ticket_role,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + 30,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_assertion(secret: str, token: str, room_id: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("room") != room_id or not isinstance(claims.get("name"), str):
        return None
    return claims


class Forwarder:
    """The connections this replica forwards to owners elsewhere."""

    def __init__(self, secret: str, heartbeat: float) -> None:
        self._secret = secret
        self._heartbeat = heartbeat or None
        self._session: aiohttp.ClientSession | None = None
        # Each forwarded client's socket, with what cuts its TCP connection.
        self.clients: dict[web.WebSocketResponse, Callable[[], None] | None] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def drain(self) -> None:
        """Shutting down: tell forwarded clients to reconnect (they land elsewhere), all at
        once: each goodbye waits for the client's close (bounded by the socket's close
        timeout), and one after the other a few silent clients outlasted the drain."""
        await asyncio.gather(
            *(
                _goodbye(client, DisconnectReason.SERVER_SHUTDOWN, abort)
                for client, abort in list(self.clients.items())
            )
        )

    async def connect(
        self,
        address: str,
        room_id: str,
        client_id: str,
        display_name: str,
        ticket_role: str | None,
    ) -> aiohttp.ClientWebSocketResponse:
        """Open the owner's side first, so a refusal becomes an HTTP error to the client."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=3)
            )
        assertion = sign_assertion(self._secret, room_id, client_id, display_name, ticket_role)
        return await self._session.ws_connect(
            f"{address}/internal/ws/{room_id}",
            headers={ASSERTION_HEADER: assertion},
            heartbeat=self._heartbeat,
            compress=0,
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_GRACE),
            autoping=True,
        )

    async def pipe(
        self,
        client: web.WebSocketResponse,
        owner: aiohttp.ClientWebSocketResponse,
        abort: Callable[[], None] | None = None,
    ) -> None:
        """Carry frames both ways until one side closes; mirror the owner's close code.
        `abort` cuts the client's TCP connection when a goodbye cannot be delivered."""
        self.clients[client] = abort
        upstream = asyncio.get_running_loop().create_task(self._to_owner(client, owner))
        try:
            async for message in owner:
                if message.type == WSMsgType.TEXT:
                    data = message.data
                    await client.send_frame(
                        data.encode() if isinstance(data, str) else data, WSMsgType.TEXT
                    )
                else:
                    break
            if sendable(owner.close_code) and not client.closed:
                await client.close(code=owner.close_code or 1000, message=b"")
            elif not client.closed:
                # The owner vanished without a goodbye: the room moves; come back through us.
                await _goodbye(client, DisconnectReason.SERVER_SHUTDOWN, abort)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.clients.pop(client, None)
            upstream.cancel()
            await asyncio.wait([upstream])  # not `await upstream`: our own cancel must propagate
            failure = None if upstream.cancelled() else upstream.exception()
            if failure is not None and not isinstance(failure, ConnectionError | RuntimeError):
                raise failure
            if not owner.closed:
                await owner.close()

    @staticmethod
    async def _to_owner(
        client: web.WebSocketResponse, owner: aiohttp.ClientWebSocketResponse
    ) -> None:
        async for message in client:
            if message.type == WSMsgType.TEXT:
                data = message.data
                await owner.send_frame(
                    data if isinstance(data, bytes) else data.encode(), WSMsgType.TEXT
                )
            elif message.type == WSMsgType.BINARY:
                await owner.send_bytes(message.data)  # the owner answers binary_frame
            else:
                break
        await owner.close()


async def _goodbye(
    client: web.WebSocketResponse, reason: DisconnectReason, abort: Callable[[], None] | None
) -> None:
    """Tell the client why and close; a client that cannot take its goodbye within the close
    grace (its socket's buffer full, or no close frame back) is cut at the TCP level."""
    try:
        async with asyncio.timeout(CLOSE_GRACE):
            await client.send_frame(
                encode("disconnect", {"reason": reason.value, "reconnect": True}), WSMsgType.TEXT
            )
            await client.close(code=CLOSE_CODES[reason], message=reason.value.encode())
    except (ConnectionError, RuntimeError):
        pass
    except TimeoutError:
        if abort is not None:
            abort()
