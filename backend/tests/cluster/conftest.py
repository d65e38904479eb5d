"""Several real `videoconf serve` replicas sharing one real `redis-server`, and clients that
connect across them: the fixtures and helpers of the multi-replica suite."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families


def _shared_helpers() -> ModuleType:
    """The suite's own `tests/conftest.py`, loaded under a name of its own.

    Conftest files outside packages are all imported as the module `conftest`, and pytest
    drops the previous one from `sys.modules` when it loads the next: once this file is
    loaded, `from conftest import Client` anywhere resolves here. So this file takes the
    shared helpers from `tests/conftest.py` and re-exports the names other suites import.
    """
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("videoconf_tests_shared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_shared = _shared_helpers()
Client = _shared.Client
Server = _shared.Server
ServerFactory = _shared.ServerFactory
TIMEOUT: float = _shared.TIMEOUT
test_settings = _shared.test_settings
start_serve = _shared.start_serve

SECRET = "cluster-test-secret-" + "c" * 32
KEY_PREFIX = "videoconf:"
# Replica settings of the suite (a test may override any of them).
BASE_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "RECONNECT_GRACE_SECONDS": "4",
    "LEASE_SECONDS": "2",
    "DRAIN_TIMEOUT_SECONDS": "3",
}
ADMITTED = frozenset({"participant", "screenshare", "host"})
RELAYS = frozenset({"offer", "answer", "candidate", "renegotiate"})

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: the long multi-replica run (about 30 s of traffic); -m 'not soak' skips"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests' own aiohttp client polls replicas that are killed and Redis that is restarted
    # under it; a pooled keep-alive connection to a dead replica is occasionally collected
    # before aiohttp closes it. That is the test client's housekeeping, not the product's, so
    # only this warning is let through here (every other warning stays an error).
    for item in items:
        if "/cluster/" in str(item.fspath):
            item.add_marker(
                pytest.mark.filterwarnings("ignore:Unclosed connection:ResourceWarning")
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing(what: str) -> None:
    """Fail under CI (the machine must provide it), skip with the reason elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must provide it (.ci/run installs Debian's redis-server)")
    pytest.skip(what)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    for candidate in (found, "/usr/sbin/redis-server", "/usr/bin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("redis-server is not installed (apt-get install redis-server) - cluster tests not run")
    raise AssertionError("unreachable")


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0, every: float = 0.1
) -> float:
    """Wait until `check()` holds; return how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(every)
    return loop.time() - started


# -- Redis ----------------------------------------------------------------------------------


class RedisServer:
    """A throw-away redis-server on a free loopback port: no persistence, stoppable."""

    def __init__(self, binary: str, directory: Path) -> None:
        import redis  # the client library; checked by the fixture

        self._redis = redis
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed program and arguments
                [
                    self.binary,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"redis-server exited with {self.process.returncode}:\n"
                    + log_tail(self.log_path)
                )
            try:
                if self.client().ping():
                    return
            except self._redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not answer PING within 10 s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Gone at once, as in a crash: SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> Any:
        return self._redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=0,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def scan(self, pattern: str = f"{KEY_PREFIX}*") -> list[str]:
        with self.client() as client:
            return sorted(client.scan_iter(match=pattern, count=1000))

    def room_keys(self, room: str | None = None) -> list[str]:
        """The keys of one room (`videoconf:room:<id>` and `videoconf:room:<id>:...`), or of
        every room."""
        if room is None:
            return self.scan(f"{KEY_PREFIX}room:*")
        prefix = f"{KEY_PREFIX}room:{room}"
        return [k for k in self.scan(f"{prefix}*") if k == prefix or k.startswith(prefix + ":")]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_binary()
    try:
        import redis  # noqa: F401
    except ImportError:
        missing("the `redis` Python package is not installed - cluster tests not run")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    """Every test starts with a running, empty Redis (a previous test may have stopped it)."""
    if not redis_server.running:
        redis_server.start()
    with redis_server.client() as client:
        client.flushall()
    return redis_server


# -- replicas -------------------------------------------------------------------------------


@dataclass
class Replica:
    index: int
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


class ReplicaClient(Client):
    """A test participant that knows which replica it connected through."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str, via: int) -> None:
        super().__init__(ws, token)
        self.via = via


async def gone(client: Client, timeout: float = TIMEOUT) -> tuple[int | None, list[dict[str, Any]]]:
    """Like `Client.closed`, but an abnormal end (the server process died) counts as closed too:
    the close code and everything received before."""
    seen: list[dict[str, Any]] = list(client.inbox)
    client.inbox.clear()
    while True:
        message = await client.ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.TEXT:
            seen.append(orjson.loads(message.data))
            continue
        if message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            return client.ws.close_code, seen
        raise AssertionError(f"unexpected frame {message.type!r}")


def ids(members: list[dict[str, str]]) -> list[str]:
    return [m["clientId"] for m in members]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Cluster:
    """K replicas of one platform: start, SIGKILL, SIGTERM and restart them by index."""

    def __init__(
        self,
        redis: RedisServer,
        session: aiohttp.ClientSession,
        directory: Path,
        settings: dict[str, str],
    ) -> None:
        self.redis = redis
        self.session = session
        self.directory = directory
        self.settings = settings
        self.replicas: list[Replica] = []

    # -- processes ------------------------------------------------------------------------

    def env(self, replica: Replica) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "HOST": "127.0.0.1",
            "PORT": str(replica.port),
            "REPLICA_ADDRESS": replica.url,
            "REDIS_URL": self.redis.url,
            "JWT_SECRET": SECRET,
            **BASE_SETTINGS,
            **self.settings,
        }

    async def add(self, count: int) -> None:
        for _ in range(count):
            index = len(self.replicas)
            self.replicas.append(
                Replica(index, free_port(), self.directory / f"replica-{index}.log")
            )
        await asyncio.gather(*(self.start(r.index) for r in self.replicas[-count:]))

    async def start(self, index: int, *, ready: bool = True) -> None:
        """Start replica `index` (again, on its port) and wait for /health (and /ready)."""
        replica = self.replicas[index]
        assert not replica.alive, f"replica {index} is running"
        with replica.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            replica.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "videoconf",
                "serve",
                env=self.env(replica),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        async def healthy() -> bool:
            if not replica.alive:
                raise AssertionError(
                    f"replica {index} exited with {replica.process and replica.process.returncode}"
                    f":\n{log_tail(replica.log_path)}"
                )
            return await self.status(index, "/health") == 200

        await eventually(healthy, f"replica {index} /health", timeout=15, every=0.05)
        if ready:
            await eventually(
                lambda: self._is(index, "/ready", 200), f"replica {index} /ready", timeout=10
            )

    async def kill(self, index: int) -> None:
        """SIGKILL: no goodbye, no clean-up."""
        replica = self.replicas[index]
        assert replica.process is not None and replica.alive
        replica.process.send_signal(signal.SIGKILL)
        await replica.process.wait()

    async def terminate(self, index: int, timeout: float = 15.0) -> None:
        """SIGTERM, and the replica must drain and exit 0."""
        replica = self.replicas[index]
        assert replica.process is not None and replica.alive
        replica.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(replica.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"replica {index} still running {timeout}s after SIGTERM:\n"
                + log_tail(replica.log_path)
            ) from None
        assert code == 0, f"replica {index} exited {code} on SIGTERM:\n{log_tail(replica.log_path)}"

    def live(self) -> list[int]:
        return [r.index for r in self.replicas if r.alive]

    async def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.process is not None and replica.alive:
                replica.process.kill()
                await replica.process.wait()

    def logs(self) -> str:
        parts = []
        for replica in self.replicas:
            text = log_tail(replica.log_path, 60)
            if text.strip():
                parts.append(f"=== replica {replica.index} (port {replica.port})\n{text}")
        return "\n".join(parts)

    # -- HTTP -----------------------------------------------------------------------------

    async def status(self, index: int, path: str) -> int | None:
        """The HTTP status of GET `path` on replica `index`; None when it does not answer."""
        try:
            async with self.session.get(
                f"{self.replicas[index].url}{path}", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _is(self, index: int, path: str, status: int) -> bool:
        return await self.status(index, path) == status

    async def guest(self, name: str, via: int = 0) -> dict[str, Any]:
        async with self.session.post(
            f"{self.replicas[via].url}/api/auth/guest", json={"displayName": name}
        ) as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def metrics(self, index: int) -> Samples:
        async with self.session.get(f"{self.replicas[index].url}/metrics") as response:
            text = await response.text()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def total(self, name: str, **labels: str) -> float:
        """A metric summed over the live replicas, as `sum(...)` in PromQL would."""
        tables = await asyncio.gather(*(self.metrics(i) for i in self.live()))
        return sum(value(table, name, **labels) for table in tables)

    # -- clients --------------------------------------------------------------------------

    async def connect(
        self,
        room: str,
        name: str | None = None,
        *,
        token: str | None = None,
        via: int = 0,
        ticket: str | None = None,
    ) -> ReplicaClient:
        if token is None:
            assert name is not None
            token = (await self.guest(name, via))["token"]
        params = {"token": token}
        if ticket is not None:
            params["ticket"] = ticket
        ws = await self.session.ws_connect(
            f"{self.replicas[via].ws_url}/ws/hub/{room}", params=params, autoping=True
        )
        return ReplicaClient(ws, token, via)

    async def rejoin(
        self, room: str, token: str, vias: list[int], timeout: float = 12.0
    ) -> ReplicaClient:
        """Connect again with `token` through the first of `vias` that takes the client into
        the room (a room whose owner died can only be taken over once its lease expired), with
        backoff: the first message read after `ice_servers` is a `room_state`, both kept in the
        inbox."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.1
        attempt = 0
        failures: list[str] = []
        while True:
            via = vias[attempt % len(vias)]
            attempt += 1
            try:
                client = await self.connect(room, token=token, via=via)
                first = await client.next_message(min(5.0, max(0.5, deadline - loop.time())))
                while first["event"] == "ice_servers":  # every connection's first message
                    client.inbox.append(first)
                    first = await client.next_message(min(5.0, max(0.5, deadline - loop.time())))
                if first["event"] == "room_state":
                    client.inbox.append(first)
                    return client
                failures.append(f"via {via}: first message {first}")
                await client.ws.close()
            except (aiohttp.ClientError, AssertionError, TimeoutError) as exc:
                failures.append(f"via {via}: {type(exc).__name__}: {exc}")
            if loop.time() > deadline:
                raise AssertionError(f"could not rejoin {room!r} within {timeout}s: {failures}")
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    async def admitted_room(
        self, room: str, names: list[str], vias: list[int]
    ) -> list[ReplicaClient]:
        """The first name hosts through vias[0]; each other joins through its via and is admitted
        by the host; returns after everyone has seen the full room."""
        host = await self.connect(room, names[0], via=vias[0])
        first = await host.state()
        assert first["you"]["role"] == "host", first
        clients = [host]
        for name, via in zip(names[1:], vias[1:], strict=True):
            guest = await self.connect(room, name, via=via)
            assert (await guest.state())["you"]["role"] == "waiting"
            await host.expect("waiting_request", lambda p, g=guest: p["clientId"] == g.client_id)
            await host.send("accept_waiting", {"clientId": guest.client_id})
            await guest.expect("accept_waiting")
            await guest.state(lambda s: s["you"]["role"] == "participant")
            clients.append(guest)
        everyone = {c.client_id for c in clients}
        for client in clients:
            await client.state(lambda s: set(ids(s["participants"])) == everyone)
            await client.settle()
        return clients

    # -- Redis view -----------------------------------------------------------------------

    def owner(self, room: str) -> int | None:
        """The replica holding the room's lease (`videoconf:room:<id>:owner`), if it can be told:
        the key names the replica by address, or by an id registered at `videoconf:replica:<id>`
        with its address."""
        with self.redis.client() as client:
            held = client.get(f"{KEY_PREFIX}room:{room}:owner")
            if held is None:
                return None
            address = client.get(f"{KEY_PREFIX}replica:{held}") or held
        for replica in self.replicas:
            if replica.url == address.rstrip("/"):
                return replica.index
        return None


ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def cluster(
    fresh_redis: RedisServer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    """`await cluster(3, RECONNECT_GRACE_SECONDS="6")`: K replicas, up and ready."""
    # No connection limit: the soak holds over a hundred WebSockets through one session. A new
    # connection per request, as browsers and Envoy's WebSocket pool open one per upgrade: the
    # replicas' own endpoint takes them (and hands the forwarded ones to aiohttp).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
    made: list[Cluster] = []

    async def make(count: int = 3, **settings: str) -> Cluster:
        platform = Cluster(fresh_redis, session, tmp_path, settings)
        made.append(platform)
        await platform.add(count)
        return platform

    try:
        yield make
    finally:
        for platform in made:
            await platform.stop_all()
        await session.close()
        for platform in made:
            logs = platform.logs()
            if logs:
                print(logs)  # shown with the report of a failing test


# -- resilient members (rolling update, soak) -----------------------------------------------


@dataclass
class Member:
    """A participant that keeps itself in its room, as the web app does: it reconnects with
    backoff through any live replica with the same token, resends the chat messages the server
    has not acknowledged, and records everything it sees."""

    cluster: Cluster
    room: str
    name: str
    token: str
    client_id: str
    home: int
    chat_every: float = 1.0
    relay_every: float | None = None
    # What it saw.
    view: dict[str, dict[str, Any]] = field(default_factory=dict)  # chatId -> message
    live: Counter[str] = field(default_factory=Counter)  # chatId -> add_chat received
    errors: list[dict[str, Any]] = field(default_factory=list)
    goodbyes: list[tuple[dict[str, Any] | None, int | None]] = field(default_factory=list)
    came_back_as: list[str] = field(default_factory=list)
    relays_in: dict[str, list[int]] = field(default_factory=dict)  # sender -> sequence numbers
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)
    # What it sent.
    sent: dict[str, str] = field(default_factory=dict)  # clientMessageId -> content
    unacked: dict[str, str] = field(default_factory=dict)
    relays_out: int = 0
    history: list[dict[str, Any]] | None = None  # the latest recents_chat
    role: str | None = None
    participants: list[str] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    sending: bool = False
    _fresh: bool = False
    _seq: int = 0
    _relay_seq: int = 0
    _outbox: asyncio.Queue[tuple[aiohttp.ClientWebSocketResponse, str]] = field(
        default_factory=asyncio.Queue
    )
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def adopt(cls, cluster: Cluster, room: str, client: ReplicaClient, **kwargs: Any) -> Member:
        """Take over an admitted test client's connection."""
        assert client.client_id is not None and client.last_state is not None
        member = cls(
            cluster,
            room,
            client.last_state["you"]["displayName"],
            client.token,
            client.client_id,
            client.via,
            **kwargs,
        )
        member.ws = client.ws
        member.role = client.last_state["you"]["role"]
        member.participants = ids(client.last_state["participants"])
        member.synced.set()
        for message in client.inbox:
            member.handle(message)
        client.inbox.clear()
        return member

    def begin(self) -> None:
        self.sending = True
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._stay()),
            loop.create_task(self._write()),
            loop.create_task(self._chat()),
        ]
        if self.relay_every is not None:
            self._tasks.append(loop.create_task(self._relay()))

    def stop_sending(self) -> None:
        self.sending = False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ws is not None:
            await self.ws.close()

    async def fetch_history(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Ask the room for its chat history (`recents_chat`) and return it."""
        self.history = None
        assert self._send("recents_chat", {}), "not connected"
        await eventually(self._has_history, f"{self.name}'s recents_chat", timeout, 0.05)
        assert self.history is not None
        return self.history

    async def _has_history(self) -> bool:
        return self.history is not None

    # -- the connection -------------------------------------------------------------------

    async def _stay(self) -> None:
        attempt = 0
        while True:
            if self.ws is None:
                try:
                    self.ws = await self._reconnect(attempt)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(f"no replica took me back: {exc!r}")
                    return
                attempt += 1
                self.reconnects += 1
                self._fresh = True
            ws = self.ws
            goodbye: dict[str, Any] | None = None
            while True:
                message = await ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = orjson.loads(message.data)
                if data["event"] == "disconnect":
                    goodbye = data["payload"]
                self.handle(data)
            self.synced.clear()
            self.ws = None
            self.goodbyes.append((goodbye, ws.close_code))
            if goodbye is not None and not goodbye["reconnect"]:
                self.failures.append(f"told not to come back: {goodbye}")
                return

    async def _reconnect(self, attempt: int) -> aiohttp.ClientWebSocketResponse:
        """Any live replica, starting from the next one; backoff with jitter."""
        loop = asyncio.get_running_loop()
        delay = 0.1
        deadline = loop.time() + 20
        tries = 0
        while True:
            live = self.cluster.live() or [self.home]
            via = live[(self.home + attempt + tries) % len(live)]
            tries += 1
            try:
                return await self.cluster.session.ws_connect(
                    f"{self.cluster.replicas[via].ws_url}/ws/hub/{self.room}",
                    params={"token": self.token},
                )
            except (aiohttp.ClientError, TimeoutError):
                if loop.time() > deadline:
                    raise
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def handle(self, data: dict[str, Any]) -> None:
        event, payload = data["event"], data["payload"]
        if event == "room_state":
            if self._fresh:
                self.came_back_as.append(payload["you"]["role"])
                self._fresh = False
            self.role = payload["you"]["role"]
            self.participants = ids(payload["participants"])
        elif event == "add_chat":
            self.live[payload["chatId"]] += 1
            self._saw(payload)
        elif event == "recents_chat":
            self.history = payload["messages"]
            for message in payload["messages"]:
                self._saw(message)
            if not self.synced.is_set() and self.role in ADMITTED:
                self.synced.set()
                for message_id, content in list(self.unacked.items()):
                    self._send("add_chat", {"chatContent": content, "clientMessageId": message_id})
        elif event == "error":
            self.errors.append(payload)
        elif event in RELAYS:
            text = payload.get("candidate") or payload.get("sdp") or ""
            found = re.search(r":(\d+)", text)
            assert found, payload
            self.relays_in.setdefault(payload["clientId"], []).append(int(found.group(1)))

    def _saw(self, message: dict[str, Any]) -> None:
        self.view[message["chatId"]] = message
        if message["clientId"] == self.client_id:
            self.unacked.pop(message.get("clientMessageId") or "", None)

    def _send(self, event: str, payload: dict[str, Any]) -> bool:
        """Queue a frame for the current connection; it is dropped if that one closes first."""
        ws = self.ws
        if ws is None or ws.closed or not self.synced.is_set():
            return False
        self._outbox.put_nowait((ws, orjson.dumps({"event": event, "payload": payload}).decode()))
        return True

    async def _write(self) -> None:
        while True:
            ws, frame = await self._outbox.get()
            if ws is self.ws and not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(frame)

    # -- traffic --------------------------------------------------------------------------

    async def _chat(self) -> None:
        await asyncio.sleep(random.random() * self.chat_every)
        while True:
            if self.sending and self.synced.is_set():
                self._seq += 1
                message_id = f"{self.name}-{self._seq}"
                content = f"{self.name} says #{self._seq}"
                self.sent[message_id] = content
                self.unacked[message_id] = content
                self._send("add_chat", {"chatContent": content, "clientMessageId": message_id})
            await asyncio.sleep(self.chat_every * (0.8 + 0.4 * random.random()))

    async def _relay(self) -> None:
        assert self.relay_every is not None
        await asyncio.sleep(random.random() * self.relay_every)
        while True:
            others = [p for p in self.participants if p != self.client_id]
            if self.sending and others and self.synced.is_set():
                self._relay_seq += 1
                target = random.choice(others)
                if self._relay_seq % 4 == 1:
                    payload = {"targetClientId": target, "sdp": f"v=0:{self._relay_seq}"}
                    sent = self._send("offer", payload)
                else:
                    payload = {
                        "targetClientId": target,
                        "candidate": f"candidate:{self._relay_seq} 1 udp 1 127.0.0.1 9 typ host",
                        "sdpMid": "0",
                        "sdpMLineIndex": 0,
                    }
                    sent = self._send("candidate", payload)
                self.relays_out += sent
            await asyncio.sleep(self.relay_every * (0.8 + 0.4 * random.random()))


@dataclass
class Audit:
    sent: int
    delivered: int
    expected: int
    duplicates: list[str]
    lost: list[str]
    conflicts: list[str]

    def problems(self) -> list[str]:
        return self.duplicates + self.lost + self.conflicts


def audit(members: list[Member]) -> Audit:
    """Every message sent must be in every member's view exactly once (by chatId): one chatId
    per message, the same everywhere, and no second live delivery to anyone but its sender
    (a resend is answered by echoing the original to the sender only)."""
    by_id = {m.client_id: m for m in members}
    messages: dict[tuple[str, str], set[str]] = {}  # (sender, content) -> chatIds
    owner_of_id: dict[tuple[str, str], tuple[str, str]] = {}  # (room, chatId) -> message
    conflicts: list[str] = []
    for member in members:
        for chat_id, message in member.view.items():
            key = (message["clientId"], message["chatContent"])
            messages.setdefault(key, set()).add(chat_id)
            previous = owner_of_id.setdefault((member.room, chat_id), key)
            if previous != key:
                conflicts.append(f"{member.room}: chatId {chat_id} is both {previous} and {key}")
    duplicates: list[str] = []
    lost: list[str] = []
    sent = 0
    delivered = 0
    for sender in members:
        for message_id, content in sender.sent.items():
            sent += 1
            chat_ids = messages.get((sender.client_id, content), set())
            if len(chat_ids) > 1:
                duplicates.append(f"{message_id} stored {len(chat_ids)} times: {sorted(chat_ids)}")
            if not chat_ids:
                lost.append(f"{message_id}: in nobody's view")
                continue
            for member in members:
                if member.room != sender.room:
                    continue
                if not chat_ids & member.view.keys():
                    lost.append(f"{message_id}: not in {member.name}'s view")
                else:
                    delivered += 1
    for member in members:
        for chat_id, count in member.live.items():
            author = owner_of_id.get((member.room, chat_id), ("?", ""))[0]
            if count > 1 and author != member.client_id and author in by_id:
                duplicates.append(f"{chat_id} delivered live {count} times to {member.name}")
    expected = sum(len(s.sent) * sum(1 for m in members if m.room == s.room) for s in members)
    return Audit(sent, delivered, expected, duplicates, lost, conflicts)
