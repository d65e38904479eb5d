"""The README's example PromQL queries, run by a real Prometheus against the real backend.

The test starts its own `prometheus` (never the system service, never port 9090) with a
1 s scrape of the test backend's /metrics, scripts a small session (two rooms, chat, a raised
hand, peer connection reports of both outcomes), waits for a few scrapes and asks
Prometheus's HTTP API each of the five seed expressions.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from conftest import Client, Server, ServerFactory, free_port

WAIT = 15.0  # every wait is bounded
SCRAPE_INTERVAL = "1s"

CONNECTIONS = "websocket_connections_total"
ROOMS = "webrtc_rooms_active"
PARTICIPANTS_P95 = "histogram_quantile(0.95, rate(room_participants_bucket[5m]))"
PROCESSING_AVG = (
    "rate(message_processing_duration_seconds_sum[5m]) "
    "/ rate(message_processing_duration_seconds_count[5m])"
)
SUCCESS_RATE_SEED = (
    'rate(webrtc_connection_success_rate_total{status="success"}[5m]) / '
    "rate(webrtc_connection_success_rate_total[5m])"
)
# The seed's success rate divides series by series on every label, {status, relayed}: each
# success series is divided by itself (1, or NaN when 0/0). Summing both sides is the ratio.
SUCCESS_RATE = (
    'sum(rate(webrtc_connection_success_rate_total{status="success"}[5m])) / '
    "sum(rate(webrtc_connection_success_rate_total[5m]))"
)

# Client events the session below sends (each one succeeds, so each one is timed).
EXERCISED = {"accept_waiting", "add_chat", "raise_hand", "connection_state"}


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "the prometheus binary is not on PATH; CI must install Debian's `prometheus` "
                "package (.ci/run does)"
            )
        pytest.skip("prometheus is not installed (apt-get install prometheus) - PromQL not run")
    return binary


def write_config(directory: Path, target: str) -> Path:
    """A Prometheus config scraping only `target` every second (JSON is valid YAML)."""
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "videoconf",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


def open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.2)


class Prometheus:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now; asserts the API said success."""
        async with self.session.get(f"{self.url}/api/v1/query", params={"query": expr}) as r:
            body: dict[str, Any] = await r.json()
        assert r.status == 200 and body["status"] == "success", (expr, r.status, body)
        assert body["data"]["resultType"] == "vector", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def scalar(self, expr: str) -> float | None:
        """The value of a one-series result, or None while the result is empty."""
        result = await self.query(expr)
        if not result:
            return None
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


def field_is(key: str, value: object) -> Callable[[dict[str, Any]], bool]:
    return lambda payload: bool(payload[key] == value)


def by_label(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(series["metric"].get(label, "") for label in labels): float(series["value"][1])
        for series in result
    }


async def scripted_session(server: Server) -> list[Client]:
    """Host Ada admits Bob and Cy in one room, Dee is alone in another; chat, a hand, and
    peer connection reports: Ada<->Bob connected (two successes), Cy->Ada failed."""
    ada = await server.connect("team-standup", "Ada")
    await ada.state(lambda s: s["you"]["role"] == "host")
    guests: list[Client] = []
    for name in ("Bob", "Cy"):
        guest = await server.connect("team-standup", name)
        assert (await guest.state())["you"]["role"] == "waiting"
        await ada.expect("waiting_request", field_is("clientId", guest.client_id))
        await ada.send("accept_waiting", {"clientId": guest.client_id})
        await guest.state(lambda s: s["you"]["role"] == "participant")
        guests.append(guest)
    bob, cy = guests
    for client in (ada, bob, cy):
        await client.state(lambda s: len(s["participants"]) == 3)
    dee = await server.connect("design-review", "Dee")
    await dee.state(lambda s: s["you"]["role"] == "host")

    await ada.send("add_chat", {"chatContent": "welcome"})
    await bob.send("add_chat", {"chatContent": "hi"})
    for text in ("welcome", "hi"):
        await cy.expect("add_chat", field_is("chatContent", text))
    await cy.send("raise_hand")
    await ada.state(lambda s: [m["clientId"] for m in s["handsRaised"]] == [cy.client_id])

    await ada.send("connection_state", {"peerClientId": bob.client_id, "state": "connected"})
    await bob.send("connection_state", {"peerClientId": ada.client_id, "state": "connected"})
    await cy.send("connection_state", {"peerClientId": ada.client_id, "state": "failed"})
    # connection_state has no reply: read the backend's own exposition until it counted all.
    expected = {
        'webrtc_connection_success_rate_total{relayed="false",status="success"} 2.0',
        'webrtc_connection_success_rate_total{relayed="false",status="failure"} 1.0',
        f"{CONNECTIONS} 4.0",
        f"{ROOMS} 2.0",
    }

    async def counted() -> bool:
        return expected <= set((await server.metrics()).splitlines())

    await eventually(counted, f"backend exposition shows {sorted(expected)}")
    for client in (ada, bob, cy, dee):
        errors = [m for m in await client.quiet(0.05) if m["event"] == "error"]
        assert errors == []
    return [ada, bob, cy, dee]


@pytest.mark.timeout(90)
async def test_seed_promql_examples(make_server: ServerFactory, tmp_path: Path) -> None:
    binary = prometheus_binary()
    server = await make_server()
    target = server.url.removeprefix("http://")
    port = free_port()
    assert port != 9090
    config = write_config(tmp_path, target)
    log_path = tmp_path / "prometheus.log"
    log = open_log(log_path)
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            prom = Prometheus(f"http://127.0.0.1:{port}", session)

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(
                        f"prometheus exited with {process.returncode}:\n{log_tail(log_path)}"
                    )
                try:
                    async with session.get(f"{prom.url}/-/ready") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, "prometheus ready")

            # One scrape before any activity, so every counter has a zero to rate() from.
            async def scraped() -> bool:
                return await prom.scalar('up{job="videoconf"}') == 1.0

            await eventually(scraped, "a first successful scrape of the backend")

            clients = await scripted_session(server)
            done = time.time()

            # At least three scrapes in all, and one that started after the session ended.
            async def caught_up() -> bool:
                count = await prom.scalar(f"count_over_time({CONNECTIONS}[1m])")
                last = await prom.scalar('timestamp(up{job="videoconf"})')
                up = await prom.scalar('up{job="videoconf"}')
                return (
                    up == 1.0
                    and count is not None
                    and count >= 3
                    and last is not None
                    and last > done
                )

            await eventually(caught_up, "three scrapes, one after the session")

            # 1. WebSocket connections: Ada, Bob, Cy and Dee.
            result = await prom.query(CONNECTIONS)
            assert len(result) == 1, result
            assert result[0]["metric"]["job"] == "videoconf"
            assert float(result[0]["value"][1]) == 4

            # 2. Active rooms: team-standup and design-review.
            result = await prom.query(ROOMS)
            assert len(result) == 1, result
            assert float(result[0]["value"][1]) == 2

            # 3. p95 of the admitted count seen at each join/leave: observations 1, 2, 3
            # (team-standup) and 1 (design-review); rank 3.8 of 4 falls in (2, 3] -> 2.8.
            result = await prom.query(PARTICIPANTS_P95)
            assert len(result) == 1, result
            assert float(result[0]["value"][1]) == pytest.approx(2.8)

            # 4. Mean processing time per event_type: finite for the events sent, NaN (0/0)
            # for the pre-created series of events never sent.
            result = await prom.query(PROCESSING_AVG)
            means = {key[0]: value for key, value in by_label(result, "event_type").items()}
            assert set(means) >= EXERCISED, means
            for event, mean in means.items():
                if event in EXERCISED:
                    assert 0 < mean < 1.0, (event, mean)
                else:
                    assert math.isnan(mean), (event, mean)

            # 5. The seed's success rate matches {status, relayed} one to one: every success
            # series is divided by itself, 1 where there were reports and NaN where none.
            result = await prom.query(SUCCESS_RATE_SEED)
            seed = by_label(result, "status", "relayed")
            assert set(seed) == {("success", "false"), ("success", "true")}, result
            assert seed[("success", "false")] == 1.0
            assert math.isnan(seed[("success", "true")])
            # The corrected expression: two successes out of three reports.
            ratio = await prom.scalar(SUCCESS_RATE)
            assert ratio is not None
            assert 0 < ratio < 1
            assert ratio == pytest.approx(2 / 3)

            for client in clients:
                await client.ws.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await asyncio.wait_for(process.wait(), 5)
        log.close()
