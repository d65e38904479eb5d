"""Losing Redis for a few seconds: replicas say they are not ready, keep the connections they
have, and recover by themselves when Redis is back; nothing crashes, no room splits in two."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from conftest import Cluster, ClusterFactory, RedisServer, eventually, ids

OUTAGE = 3.0


async def test_redis_outage(cluster: ClusterFactory, fresh_redis: RedisServer) -> None:
    # Replicas started at different moments, as in a real deployment: their lease-renewal
    # loops (every third of LEASE_SECONDS) are out of phase.
    platform = await cluster(1)
    for _ in range(2):
        await asyncio.sleep(0.3)
        await platform.add(1)
    loop = asyncio.get_running_loop()
    host, guest, third = await platform.admitted_room(
        "outage-room", ["Host", "Guest", "Third"], [0, 1, 2]
    )
    await host.send("add_chat", {"chatContent": "before the outage"})
    before = (await guest.expect("add_chat"))["chatId"]
    for client in (host, guest, third):
        await client.settle()

    late_token = (await platform.guest("Late"))["token"]
    fresh_redis.stop()
    stopped = loop.time()

    await eventually(
        lambda: _all(platform, range(3), 503), "/ready 503 on every replica", OUTAGE, every=0.1
    )
    for index in range(3):
        assert await platform.status(index, "/health") == 200, index
    # The connections stay: pings are answered, chat sent meanwhile is not lost.
    for client in (host, guest, third):
        await client.send("ping", {"timestamp": 1})
        assert (await client.expect("pong", timeout=3))["timestamp"] == 1
    await guest.send("add_chat", {"chatContent": "during the outage"})
    await asyncio.sleep(max(0.0, stopped + OUTAGE - loop.time()))
    assert all(r.alive for r in platform.replicas), platform.logs()

    fresh_redis.start()  # same port, empty: this Redis kept nothing
    # A load balancer sends newcomers to a replica as soon as it is ready: the first of those
    # that do not own the room. The newcomer must land in the room that lived through the
    # outage (one room, not a second one with a second host).
    edge = await _first_ready(platform, (1, 2))
    late = await platform.rejoin("outage-room", late_token, [edge])
    state = await late.state()
    assert state["you"]["role"] == "waiting", state
    back = await eventually(
        lambda: _all_ready(platform), "/ready 200 again on every replica", timeout=8
    )
    print(f"every replica ready {back:.1f}s after replica {edge}")
    for client in (host, guest, third):
        during = await client.expect(
            "add_chat", lambda p: p["chatContent"] == "during the outage", timeout=5
        )
        assert during["chatId"] != before
        assert not client.ws.closed
    assert all(r.alive for r in platform.replicas), platform.logs()
    assert (await host.expect("waiting_request"))["clientId"] == late.client_id
    await host.send("accept_waiting", {"clientId": late.client_id})
    await late.state(lambda s: s["you"]["role"] == "participant")
    history = [m["chatContent"] for m in (await late.expect("recents_chat"))["messages"]]
    assert history == ["before the outage", "during the outage"]
    for client in (host, guest, third):
        await client.state(lambda s: late.client_id in ids(s["participants"]))
    # New rooms work too.
    fresh = await platform.connect("after-outage", "Fresh", via=1)
    assert (await fresh.state())["you"]["role"] == "host"
    second = await platform.connect("after-outage", "Second", via=0)
    assert (await second.state())["you"]["role"] == "waiting"
    assert (await fresh.expect("waiting_request"))["clientId"] == second.client_id

    # Redis holds the whole room again: losing its owner now loses nothing, not even the
    # chat from before the outage (which the restarted Redis never saw written).
    await asyncio.sleep(1.0)
    owner = platform.owner("outage-room")
    assert owner is not None, f"no lease for the room in Redis: {fresh_redis.scan()}"
    await platform.kill(owner)
    live = [i for i in range(3) if i != owner]
    again = await platform.rejoin("outage-room", host.token, live)
    assert (await again.state())["you"]["role"] == "host"
    history = [m["chatContent"] for m in (await again.expect("recents_chat"))["messages"]]
    assert history == ["before the outage", "during the outage"]
    for client in (again, guest, third, late, fresh, second):
        await client.ws.close()


async def _all_ready(platform: Cluster) -> bool:
    return await _all(platform, range(3), 200)


async def _all(platform: Cluster, replicas: Iterable[int], status: int) -> bool:
    """Whether /ready answers `status` on every one of `replicas`."""
    statuses = await asyncio.gather(*(platform.status(i, "/ready") for i in replicas))
    return all(answer == status for answer in statuses)


async def _first_ready(platform: Cluster, replicas: tuple[int, ...], timeout: float = 8) -> int:
    """The first of `replicas` whose /ready answers 200 (polled every few milliseconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        statuses = await asyncio.gather(*(platform.status(i, "/ready") for i in replicas))
        for index, status in zip(replicas, statuses, strict=True):
            if status == 200:
                return index
        await asyncio.sleep(0.005)
    raise AssertionError(f"none of replicas {replicas} ready again within {timeout}s")


async def test_redis_restart_keeps_one_room(
    cluster: ClusterFactory, fresh_redis: RedisServer
) -> None:
    """A restarted Redis has forgotten every lease. A replica that is ready again before the
    owner has re-taken its room's lease must not start a second copy of the room: Redis is
    restarted until that moment is caught, and a newcomer enters through it right then."""
    platform = await cluster(1)
    for _ in range(2):
        await asyncio.sleep(0.3)  # out of phase, as replicas started at different moments
        await platform.add(1)
    host = await platform.connect("restart-room", "Host", via=0)
    await host.state()
    await host.expect("recents_chat")  # the empty history of a new room
    await host.send("add_chat", {"chatContent": "kept"})
    await host.expect("add_chat")
    token = (await platform.guest("Newcomer"))["token"]
    caught = 0
    for cycle in range(6):
        fresh_redis.stop()
        await eventually(
            lambda: _all(platform, range(3), 503), "/ready 503 everywhere", timeout=3, every=0.05
        )
        fresh_redis.start()
        edge = await _first_ready(platform, (1, 2))
        if fresh_redis.room_keys("restart-room"):
            continue  # the owner re-took its lease first: try again
        caught += 1
        newcomer = await platform.rejoin("restart-room", token, [edge])
        role = (await newcomer.state())["you"]["role"]
        assert role == "waiting", (
            f"a newcomer through replica {edge}, ready again before the owner re-took the "
            f"lease, became {role} of a second copy of the room (Redis restart {cycle + 1})"
        )
        await host.expect("waiting_request", lambda p, n=newcomer: p["clientId"] == n.client_id)
        await host.send("deny_waiting", {"clientId": newcomer.client_id})
        await newcomer.closed()
        break
    print(f"restarts: {cycle + 1}, moments caught: {caught}")
    await host.send("ping")
    await host.expect("pong")
    state = await host.state(lambda s: s["waitingUsers"] == [])
    assert state["you"]["role"] == "host"
    await host.send("recents_chat")
    assert [m["chatContent"] for m in (await host.expect("recents_chat"))["messages"]] == ["kept"]
    await host.ws.close()
