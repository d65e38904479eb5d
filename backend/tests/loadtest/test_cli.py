"""`videoconf loadtest` against real servers over real sockets: the backend (a `videoconf
serve` process), the no-logic relay of the benchmark, and the PeerJS server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import free_port, start_serve

ROOT = Path(__file__).resolve().parents[3]
PEERJS = ROOT / "bench" / "node_modules" / "peer" / "dist" / "bin" / "peerjs.js"
SECRET = "loadtest-secret-" + "l" * 32

KIND_KEYS = {
    "sent", "expected", "delivered", "lost", "duplicates", "per_second", "bytes_sent",
    "latency_ms",
}  # fmt: skip
REPORT_KEYS = {
    "target", "urls", "placement", "participants", "rooms", "mode", "offered_rate", "window",
    "mix", "churn_per_second", "started_at", "drive_seconds", "operations", "kinds",
    "counters", "errors", "server_memory", "cpu", "generator_pid", "ok",
}  # fmt: skip


async def loadtest(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run the command; its exit code, its JSON report and its stderr (progress)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoconf", "loadtest", *args, "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, orjson.loads(out), err.decode()


async def serve(**settings: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JWT_SECRET": SECRET,
        **settings,
    }
    process, _ = await start_serve(env)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
async def backend() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process, url = await serve()
    yield process, url
    process.terminate()
    await process.wait()


async def listening(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        assert process.returncode is None, "the server exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")


def check_shape(report: dict[str, Any]) -> None:
    assert set(report) == REPORT_KEYS
    for name, kind in report["kinds"].items():
        assert set(kind) == KIND_KEYS, name
        assert set(kind["latency_ms"]) == {"p50", "p90", "p99", "max", "mean"}


def clean(report: dict[str, Any]) -> None:
    """Everything sent arrived, once, and nothing went wrong."""
    assert report["errors"] == {}, report["errors"]
    for name, kind in report["kinds"].items():
        assert kind["lost"] == 0, name
        assert kind["duplicates"] == 0, name
        assert kind["delivered"] == kind["expected"], name
    assert report["ok"] is True


async def metrics(url: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    return body


async def server_events(url: str) -> dict[str, float]:
    """websocket_events_total{status="ok"} by event type, from the server's /metrics."""
    counts: dict[str, float] = {}
    for line in (await metrics(url)).splitlines():
        if line.startswith("websocket_events_total{") and 'status="ok"' in line:
            event = line.split('event_type="', 1)[1].split('"', 1)[0]
            counts[event] = float(line.rsplit(" ", 1)[1])
    return counts


async def test_a_mixed_load_arrives_complete_and_the_server_agrees(
    backend: tuple[asyncio.subprocess.Process, str],
) -> None:
    _, url = backend
    code, report, progress = await loadtest(
        url, "-n", "12", "-r", "3", "-d", "2.5", "--rate", "60", "--seed", "1",
        "--mix", "relay=5,chat=3,hand=2", "--churn", "2",
    )  # fmt: skip
    check_shape(report)
    clean(report)
    assert code == 0
    kinds = report["kinds"]
    assert set(kinds) == {"relay", "chat", "hand", "join", "admit", "rejoin", "readmit"}
    assert kinds["relay"]["sent"] > 20
    # Rooms of 4: a chat message reaches everyone joined when it is sent, the sender
    # included; 4, or 3 while a churned member is on its way back.
    assert 3 * kinds["chat"]["sent"] < kinds["chat"]["expected"] <= 4 * kinds["chat"]["sent"]
    assert kinds["hand"]["delivered"] == kinds["hand"]["sent"] > 0
    churned = report["counters"]["churn"]
    assert churned > 0
    # Everyone joins once (all but the 3 hosts admitted), then once more per churn.
    assert kinds["join"]["delivered"] == 12
    assert kinds["admit"]["delivered"] == 9
    assert kinds["rejoin"]["delivered"] == kinds["readmit"]["delivered"] == churned
    assert "connected" in progress and "p99" in progress
    # The server counted what the generator sent: offers, answers and candidates relayed.
    events = await server_events(url)
    relayed = sum(events.get(e, 0) for e in ("offer", "answer", "candidate"))
    assert relayed == kinds["relay"]["sent"]
    assert events.get("add_chat") == kinds["chat"]["sent"]
    assert events.get("raise_hand", 0) + events.get("lower_hand", 0) == kinds["hand"]["sent"]


async def test_saturation_keeps_every_participant_busy_and_loses_nothing() -> None:
    process, url = await serve(WS_RATE_LIMIT="0")
    try:
        code, report, _ = await loadtest(
            url, "-n", "10", "-r", "2", "-d", "1", "--rate", "0", "--window", "4", "-q"
        )
    finally:
        process.terminate()
        await process.wait()
    clean(report)
    assert code == 0
    assert report["mode"] == "saturation"
    assert report["kinds"]["relay"]["delivered"] > 1000


async def test_a_rate_limited_load_is_reported_as_failed() -> None:
    """The server's protective limits are visible to the operator, not hidden."""
    process, url = await serve(WS_RATE_LIMIT="10", WS_RATE_BURST="10")
    try:
        code, report, _ = await loadtest(
            url, "-n", "4", "-r", "1", "-d", "1.5", "--rate", "80", "-q"
        )
    finally:
        process.terminate()
        await process.wait()
    check_shape(report)
    assert code == 1
    assert report["ok"] is False
    assert report["errors"].get("error: rate_limited", 0) > 0
    assert report["kinds"]["relay"]["lost"] > 0


async def test_a_server_that_is_not_there_fails_fast() -> None:
    code, report, _ = await loadtest(f"http://127.0.0.1:{free_port()}", "-n", "3", "-d", "1", "-q")
    assert code == 1
    assert report["ok"] is False
    assert report["errors"] == {"sign_in": 3}


async def test_idle_connections_and_the_servers_memory_per_connection(
    backend: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = backend
    code, report, _ = await loadtest(
        url, "-n", "60", "-r", "6", "--idle", "-d", "0.5", "-q", "--server-pid", str(process.pid)
    )
    clean(report)
    assert code == 0
    memory = report["server_memory"]
    assert memory["connections"] == 60
    assert 0 <= report["cpu"]["server_utilization"] < 1.5
    # Linux: the machine's steal time over the run (zero on bare metal, often on a VM too).
    assert report["cpu"]["steal_seconds"] >= 0
    assert memory["rss_joined_kib"] >= memory["rss_before_kib"] > 0
    assert "relay" not in report["kinds"]


@contextlib.asynccontextmanager
async def reference(*argv: str) -> AsyncIterator[str]:
    """One of the benchmark's reference servers on a free port (`{port}` in argv)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(arg.replace("{port}", str(port)) for arg in argv), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize("script", ["ceiling.py", "ceiling_picows.py", "ceiling_aiohttp.py"])
async def test_the_benchmarks_no_logic_relays(script: str) -> None:
    async with reference(sys.executable, str(ROOT / "bench" / script), "--port", "{port}") as url:
        code, report, _ = await loadtest(
            url, "--target", "relay", "-n", "8", "-r", "2", "-d", "1", "--mix", "relay=3,chat=1",
            "-q",
        )  # fmt: skip
    clean(report)
    assert code == 0
    assert report["kinds"]["chat"]["expected"] == 4 * report["kinds"]["chat"]["sent"]


async def test_the_peerjs_server() -> None:
    node = shutil.which("node")
    if node is None or not PEERJS.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the PeerJS server is not installed (make installs bench/node_modules)")
        pytest.skip("the PeerJS server is not installed: cd bench && npm ci")
    async with reference(node, str(PEERJS), "--host", "127.0.0.1", "--port", "{port}") as url:
        code, report, _ = await loadtest(
            url, "--target", "peerjs", "-n", "8", "-r", "2", "-d", "1", "--churn", "2", "-q"
        )
    clean(report)
    assert code == 0
    assert report["kinds"]["relay"]["delivered"] > 0
    assert report["kinds"]["join"]["delivered"] == 8
    assert report["kinds"]["rejoin"]["delivered"] > 0


async def test_media_peers_set_up_real_calls_through_the_server(
    backend: tuple[asyncio.subprocess.Process, str],
) -> None:
    """--media: aiortc peers negotiate through the backend; media flows between them."""
    _, url = backend
    code, report, _ = await loadtest(
        url, "-n", "2", "-r", "1", "-d", "1", "--rate", "10", "--media", "4", "-q"
    )
    clean(report)
    assert code == 0
    assert report["kinds"]["media"]["delivered"] == 2  # two calls: offer -> first video frame
    assert report["kinds"]["join"]["delivered"] == 6
    assert report["kinds"]["admit"]["delivered"] == 5
    # Both sides of both calls told the server, as browsers do.
    line = 'webrtc_connection_success_rate_total{relayed="false",status="success"} 4.0'
    assert line in await metrics(url)
