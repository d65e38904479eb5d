"""The load tester against several real replicas: participants spread over them (most
connections forwarded to their room's owner) or placed by room, as the Gateway's hash on the
`room` query parameter places them. What Envoy does with that hash is not proven here."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from conftest import Cluster, ClusterFactory, eventually, value


async def start_loadtest(cluster: Cluster, *args: str) -> asyncio.subprocess.Process:
    urls = [replica.url for replica in cluster.replicas]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoconf", "loadtest", *urls, *args, "--json", "-q",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def report_of(process: asyncio.subprocess.Process) -> dict[str, Any]:
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    report: dict[str, Any] = orjson.loads(out)
    assert report["ok"], report["errors"]
    return report


async def connections_while_idle(cluster: Cluster, placement: str) -> list[float]:
    """Six participants of one room hold their connections: how many each replica has."""
    process = await start_loadtest(
        cluster, "-n", "6", "-r", "1", "--idle", "-d", "4", "--placement", placement
    )

    counts: list[float] = []

    async def held() -> bool:
        tables = await asyncio.gather(*(cluster.metrics(i) for i in cluster.live()))
        counts[:] = [value(table, "websocket_connections_total") for table in tables]
        return sum(counts) == 6

    await eventually(held, "all six connected", timeout=15)
    report = await report_of(process)
    assert report["placement"] == placement
    return counts


async def test_placed_by_room_a_rooms_connections_share_one_replica(
    cluster: ClusterFactory,
) -> None:
    platform = await cluster(2)
    assert await connections_while_idle(platform, "room") == [6, 0]
    assert await connections_while_idle(platform, "spread") == [3, 3]


async def test_relay_across_replicas_arrives_complete_either_way(cluster: ClusterFactory) -> None:
    platform = await cluster(2)
    for placement in ("spread", "room"):
        process = await start_loadtest(
            platform, "-n", "8", "-r", "2", "--mix", "relay=8,chat=2", "--rate", "200",
            "-d", "1.5", "--settle", "5", "--placement", placement,
        )  # fmt: skip
        report = await report_of(process)
        for kind in ("relay", "chat"):
            counts = report["kinds"][kind]
            assert counts["sent"] > 0
            assert counts["delivered"] == counts["expected"]
            assert counts["lost"] == counts["duplicates"] == 0
