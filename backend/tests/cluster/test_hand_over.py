"""`RedisCluster.hand_over` in process, against a real redis-server: shutting down cannot
wait forever on the lease renewal loop, even when a cancellation is swallowed inside it (as
redis-py can while a command is under way; it once held a replica's SIGTERM for good)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from conftest import RedisServer

from videoconf.cluster import redis as cluster_redis
from videoconf.cluster.redis import RedisCluster


@pytest.mark.timeout(30)
async def test_hand_over_ends_when_the_renewal_loop_swallows_its_cancellation(
    fresh_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_redis, "STOP_TIMEOUT", 1.0)
    cluster = RedisCluster(fresh_redis.url, "http://127.0.0.1:1", 0.3, dict, lambda _: None, 10)
    await cluster.start()  # the renewal loop runs
    in_command = asyncio.Event()
    real_heartbeat = cluster._heartbeat

    async def heartbeat_that_swallows() -> None:
        await real_heartbeat()
        in_command.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as a library might
            await asyncio.sleep(0.5)  # a command under way

    monkeypatch.setattr(cluster, "_heartbeat", heartbeat_that_swallows)
    await asyncio.wait_for(in_command.wait(), 5)
    await asyncio.wait_for(cluster.hand_over(), 5)  # before: waited for the loop forever
    assert not fresh_redis.scan()  # the replica's key is gone: the hand-over went on
    await cluster.close()
