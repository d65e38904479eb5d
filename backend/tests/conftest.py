"""Shared fixtures: a real backend on a free loopback port and real WebSocket clients."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from videoconf.app import create_app
from videoconf.config import Settings
from videoconf.endpoint import Endpoint, listen

TIMEOUT = 5.0


def test_settings(**overrides: Any) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        jwt_secret="test-secret-" + "x" * 32,
        jwt_secret_generated=False,
        reconnect_grace=2.0,
        empty_room_ttl=5.0,
        drain_timeout=2.0,
    )
    return dataclasses.replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]


@dataclasses.dataclass
class Server:
    app: web.Application
    runner: web.AppRunner
    url: str
    # A new TCP connection per request, as browsers open one per WebSocket: upgrades reach
    # the endpoint's own path, not aiohttp's (see test_endpoint for a kept-alive one).
    session: aiohttp.ClientSession
    listener: asyncio.Server | None = None
    endpoint: Endpoint | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    async def guest(self, name: str) -> dict[str, Any]:
        async with self.session.post(f"{self.url}/api/auth/guest", json={"displayName": name}) as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def connect(
        self, room: str, name: str | None = None, token: str | None = None, **kwargs: Any
    ) -> Client:
        if token is None:
            assert name is not None
            token = (await self.guest(name))["token"]
        ws = await self.session.ws_connect(
            f"{self.ws_url}/ws/hub/{room}", params={"token": token}, **kwargs
        )
        return Client(ws, token)

    async def metrics(self) -> str:
        async with self.session.get(f"{self.url}/metrics") as r:
            return await r.text()


class Client:
    """A test participant: sends events, waits for the ones it expects (with a timeout)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        self.ws = ws
        self.token = token
        self.inbox: list[dict[str, Any]] = []
        self.client_id: str | None = None
        self.last_state: dict[str, Any] | None = None

    async def send(self, event: str, payload: dict[str, Any] | None = None) -> None:
        await self.ws.send_str(orjson.dumps({"event": event, "payload": payload or {}}).decode())

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def next_message(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        message: dict[str, Any] = orjson.loads(msg.data)
        return message

    async def expect(
        self,
        event: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = TIMEOUT,
    ) -> dict[str, Any]:
        """The payload of the next `event` message (matching `where`); others are kept."""
        for i, message in enumerate(self.inbox):
            if message["event"] == event and (where is None or where(message["payload"])):
                del self.inbox[i]
                return message["payload"]  # type: ignore[no-any-return]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = [m["event"] for m in self.inbox]
                raise AssertionError(f"no {event!r} within {timeout}s; got {seen}")
            message = await self.next_message(left)
            if message["event"] == event and (where is None or where(message["payload"])):
                return message["payload"]  # type: ignore[no-any-return]
            self.inbox.append(message)

    async def state(self, where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The first room_state, from the latest one seen on, that satisfies `where`."""
        matches = where or (lambda _: True)
        pending = [m for m in self.inbox if m["event"] == "room_state"]
        self.inbox = [m for m in self.inbox if m["event"] != "room_state"]
        candidates = ([self.last_state] if self.last_state and not pending else []) + [
            m["payload"] for m in pending
        ]
        for index, payload in enumerate(candidates):
            if matches(payload):
                self._keep(
                    payload,
                    [{"event": "room_state", "payload": p} for p in candidates[index + 1 :]],
                )
                return payload
        if candidates:
            self.last_state = candidates[-1]
        payload = await self.expect("room_state", matches)
        self._keep(payload, [])
        return payload

    def _keep(self, payload: dict[str, Any], later: list[dict[str, Any]]) -> None:
        self.last_state = payload
        self.client_id = payload["you"]["clientId"]
        self.inbox[:0] = later

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes; return the close code and what came before."""
        seen: list[dict[str, Any]] = list(self.inbox)
        self.inbox.clear()
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                seen.append(orjson.loads(msg.data))
                continue
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                return self.ws.close_code, seen
            raise AssertionError(f"unexpected frame {msg.type!r}")

    async def settle(self) -> None:
        """Read everything pending; remember the latest room_state; forget the rest."""
        for message in await self.quiet(0.2):
            if message["event"] == "room_state":
                self._keep(message["payload"], [])

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (for asserting nothing was delivered)."""
        seen = list(self.inbox)
        self.inbox.clear()
        try:
            while True:
                seen.append(await self.next_message(seconds))
        except TimeoutError:
            return seen


ServerFactory = Callable[..., Awaitable[Server]]


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 (for a server the test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_serve(
    env: dict[str, str], stderr: int = asyncio.subprocess.DEVNULL
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """A real `videoconf serve` process; returns it with its first log line ("listening")."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoconf",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    assert process.stdout is not None
    record: dict[str, Any] = orjson.loads(await asyncio.wait_for(process.stdout.readline(), 10))
    assert record["message"] == "listening", record
    return process, record


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        app = create_app(test_settings(**overrides))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        listener, endpoint = await listen(app, runner, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        server = Server(app, runner, f"http://127.0.0.1:{port}", session, listener, endpoint)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.session.close()
        assert server.listener is not None and server.endpoint is not None
        server.listener.close()
        server.endpoint.close()
        await server.runner.cleanup()


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server()
