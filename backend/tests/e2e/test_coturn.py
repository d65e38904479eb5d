"""TURN credentials from the backend against a real coturn (Debian's `coturn` package).

The test starts its own `turnserver` on 127.0.0.1 (a free port, no config file, no TLS, no
CLI, a small relay port range, `use-auth-secret` with a secret of its own) and a real
`videoconf serve` with `TURN_URLS` pointing at it and the same `TURN_SECRET`. A participant's
credentials come from the backend's own `GET /api/config`. Two TURN clients then try to
allocate a relay with them: `turnutils_uclient` from the same package, and aioice's TURN
client (which reports the STUN error code): the backend's credentials are accepted; a wrong
credential, and an expired username correctly signed with the right secret, are refused.
Every wait is bounded; everything stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from videoconf.turn import turn_credential, turn_username

WAIT = 20.0  # every wait is bounded
UCLIENT_WAIT = 45.0  # turnutils_uclient takes about 6 s to send its one message and report
REALM = "videoconf.test"
SECRET = "coturn-test-secret-" + "c" * 32
RELAY_PORTS = 20


def program(name: str) -> str:
    found = shutil.which(name) or next(
        (path for path in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(path, os.X_OK)),
        None,
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed; CI must install Debian's coturn (.ci/run does)")
        pytest.skip(f"{name} is not installed (apt-get install coturn) - TURN not tried")
    return found


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (turnserver listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free port for both UDP and TCP")


def free_udp_range(size: int) -> int:
    """The first port of `size` consecutive free UDP ports, for the relays."""
    for _ in range(50):
        first = random.randrange(40000, 60000 - size)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    raise AssertionError(f"no {size} consecutive free UDP ports")


def binding_request() -> tuple[bytes, bytes]:
    transaction = os.urandom(12)
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction, transaction


async def answers_stun(port: int) -> bool:
    """Whether a STUN Binding request to 127.0.0.1:port gets a success response."""
    request, transaction = binding_request()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, request, ("127.0.0.1", port))
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 2048), 0.3)
        except (TimeoutError, OSError):
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == transaction


async def stop(process: asyncio.subprocess.Process) -> bytes:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    return await process.stdout.read()


@dataclass
class Coturn:
    port: int
    relay_ports: range
    process: asyncio.subprocess.Process


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    binary = program("turnserver")
    port, relays = free_port(), free_udp_range(RELAY_PORTS)
    process = await asyncio.create_subprocess_exec(
        binary,
        "-n",  # no configuration file
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        f"--min-port={relays}",
        f"--max-port={relays + RELAY_PORTS - 1}",
        "--use-auth-secret",
        f"--static-auth-secret={SECRET}",
        f"--realm={REALM}",
        "--allow-loopback-peers",  # the peers in this test are on 127.0.0.1 too
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",
        "--no-software-attribute",
        "--log-file=stdout",
        "--simple-log",
        f"--pidfile={tmp_path / 'turnserver.pid'}",
        f"--userdb={tmp_path / 'turndb'}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not await answers_stun(port):
            if process.returncode is not None or time.monotonic() > deadline:
                output = (await stop(process)).decode(errors="replace")
                raise AssertionError(f"turnserver did not answer STUN on {port}:\n{output}")
            await asyncio.sleep(0.1)
        yield Coturn(port, range(relays, relays + RELAY_PORTS), process)
    finally:
        await stop(process)


@dataclass
class Backend:
    url: str
    process: asyncio.subprocess.Process


@pytest.fixture
async def backend(coturn: Coturn) -> AsyncIterator[Backend]:
    """A real `videoconf serve`, settings from the environment as in production."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "INFO",
        "JWT_SECRET": "coturn-test-jwt-" + "j" * 32,
        "TURN_URLS": f"turn:127.0.0.1:{coturn.port}?transport=udp",
        "TURN_SECRET": SECRET,
        "TURN_TTL": "600",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoconf",
        "serve",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen: list[bytes] = []

    async def listening() -> int:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            seen.append(line)
            with contextlib.suppress(ValueError):
                entry = orjson.loads(line)
                if entry.get("message") == "listening":
                    return int(entry["port"])
        raise AssertionError(f"videoconf serve exited before listening: {seen}")

    try:
        port = await asyncio.wait_for(listening(), WAIT)
        # Keep reading its output so that a full pipe never blocks it.
        rest = asyncio.create_task(process.stdout.read())
        yield Backend(f"http://127.0.0.1:{port}", process)
        process.terminate()
        seen.append(await asyncio.wait_for(rest, 10))
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    assert SECRET.encode() not in b"".join(seen), "the TURN secret must never be logged"


async def turn_credentials(backend: Backend, coturn: Coturn) -> dict[str, Any]:
    """A signed-in participant's TURN entry from the backend's own /api/config."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http:
        async with http.post(f"{backend.url}/api/auth/guest", json={"displayName": "Ada"}) as r:
            assert r.status == 200
            token = (await r.json())["token"]
        async with http.get(f"{backend.url}/api/config") as r:
            anonymous = await r.json()
        async with http.get(
            f"{backend.url}/api/config", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200
            config = await r.json()
    assert anonymous["iceServers"] == [], "no relay for strangers"
    [turn] = config["iceServers"]
    assert turn["urls"] == [f"turn:127.0.0.1:{coturn.port}?transport=udp"]
    assert set(turn) == {"urls", "username", "credential"}
    assert config["iceServersExpiresAt"] > time.time()
    return dict(turn)


# --------------------------------------------------------------------------- the clients


@dataclass
class Outcome:
    code: int | None
    output: str


async def uclient(port: int, username: str, password: str, *transport: str) -> Outcome:
    """turnutils_uclient: one client, UDP unless `transport` says otherwise (-t: TCP, -t -S:
    TLS), one message to a peer that is its own pair (-y)."""
    binary = program("turnutils_uclient")
    process = await asyncio.create_subprocess_exec(
        binary,
        *transport,
        "-y",  # client-to-client: no separate peer program needed
        "-n",
        "1",
        "-m",
        "1",
        "-l",
        "100",
        "-u",
        username,
        "-w",
        password,
        "-p",
        str(port),
        "127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), UCLIENT_WAIT)
    except TimeoutError:
        output = (await stop(process)).decode(errors="replace")
        return Outcome(None, output)
    return Outcome(process.returncode, out.decode(errors="replace"))


async def aioice_allocate(coturn: Coturn, username: str, password: str) -> int | None:
    """Allocate a relay with aioice's TURN client: None on success, else the STUN error code."""
    try:
        transport, _ = await asyncio.wait_for(
            create_turn_endpoint(
                asyncio.DatagramProtocol,
                ("127.0.0.1", coturn.port),
                username,
                password,
                lifetime=60,
            ),
            WAIT,
        )
    except stun.TransactionFailed as failure:
        code, _reason = failure.response.attributes["ERROR-CODE"]
        return int(code)
    relayed = transport.get_extra_info("sockname")
    transport.close()
    # The relay coturn allocated: on its relay address, in the port range it was given.
    assert relayed is not None
    assert relayed[0] == "127.0.0.1", relayed
    assert relayed[1] in coturn.relay_ports, relayed
    return None


def relayed_messages(outcome: Outcome) -> int:
    """How many messages turnutils_uclient's clients received through their relays."""
    counts = [int(n) for n in re.findall(r"tot_recv_msgs=(\d+)", outcome.output)]
    return max(counts, default=0)


def assert_refused(outcome: Outcome) -> None:
    """turnutils_uclient could not allocate: it exits non-zero before sending anything."""
    assert outcome.code is not None, f"turnutils_uclient hung:\n{outcome.output}"
    assert outcome.code != 0, outcome.output
    assert relayed_messages(outcome) == 0, outcome.output
    assert "Total transmit time" not in outcome.output, outcome.output


# --------------------------------------------------------------------------- the tests


async def test_backend_credentials_allocate_a_relay(coturn: Coturn, backend: Backend) -> None:
    turn = await turn_credentials(backend, coturn)
    assert await aioice_allocate(coturn, turn["username"], turn["credential"]) is None
    # turnutils_uclient allocates two relays (-y) and sends data from one to the other.
    outcome = await uclient(coturn.port, turn["username"], turn["credential"])
    assert outcome.code == 0, outcome.output
    assert relayed_messages(outcome) > 0, outcome.output


async def test_wrong_credential_is_refused(coturn: Coturn, backend: Backend) -> None:
    turn = await turn_credentials(backend, coturn)
    wrong = turn_credential("not-the-secret", turn["username"])
    assert wrong != turn["credential"]
    assert await aioice_allocate(coturn, turn["username"], wrong) == 401
    assert_refused(await uclient(coturn.port, turn["username"], wrong))


async def test_expired_username_is_refused(coturn: Coturn, backend: Backend) -> None:
    turn = await turn_credentials(backend, coturn)
    client_id = turn["username"].partition(":")[2]
    # Signed with the right secret, the scheme followed exactly, but expired a minute ago.
    expired = turn_username(client_id, int(time.time()) - 60)
    password = turn_credential(SECRET, expired)
    assert await aioice_allocate(coturn, expired, password) == 401
    assert_refused(await uclient(coturn.port, expired, password))
    # The same identity with a live expiry and the same secret works: only the expiry differs.
    live = turn_username(client_id, int(time.time()) + 60)
    assert await aioice_allocate(coturn, live, turn_credential(SECRET, live)) is None
