"""Metrics stay true per replica and sum to the platform: connections where clients connected,
rooms and room observations only at the room's owner."""

from __future__ import annotations

import asyncio

from conftest import Cluster, ClusterFactory, eventually, value


async def test_metrics_sum_across_replicas(cluster: ClusterFactory) -> None:
    platform = await cluster(3)
    ada, bob, cy = await platform.admitted_room("metrics-m", ["Ada", "Bob", "Cy"], [0, 1, 2])
    nia, ned = await platform.admitted_room("metrics-n", ["Nia", "Ned"], [1, 2])
    wes = await platform.connect("metrics-n", "Wes", via=0)  # waits: connected, not admitted
    await wes.state()
    await nia.expect("waiting_request")
    await bob.send("add_chat", {"chatContent": "counted once"})
    for client in (ada, bob, cy):
        await client.expect("add_chat")
    await cy.send("kick", {"clientId": bob.client_id})  # refused: not a host
    await cy.expect("error")
    for client in (ada, bob, cy, nia, ned, wes):
        await client.send("ping")
        await client.expect("pong")  # everything before it has been handled
    # The first connection of a room takes its lease: M is owned by 0, N by 1.
    owner_m = platform.owner("metrics-m")
    owner_n = platform.owner("metrics-n")
    owner_m = 0 if owner_m is None else owner_m
    owner_n = 1 if owner_n is None else owner_n

    # Connections: at the replica each client connected to; never again at the owner.
    await expect_per_replica(platform, "websocket_connections_total", [2, 2, 2])
    assert await platform.total("websocket_connections_total") == 6
    # Rooms: one per owner; the sum is the platform's rooms.
    rooms = [0.0, 0.0, 0.0]
    rooms[owner_m] += 1
    rooms[owner_n] += 1
    await expect_per_replica(platform, "webrtc_rooms_active", rooms)
    # Participant counts, observed once per join (Ada 1, Bob 2, Cy 3; Nia 1, Ned 2): waiting
    # Wes is not admitted; nothing is observed twice by a replica that only carried a client.
    observed = await asyncio.gather(*(platform.metrics(i) for i in range(3)))
    counts = [value(t, "room_participants_count") for t in observed]
    sums = [value(t, "room_participants_sum") for t in observed]
    assert sum(counts) == 5 and sum(sums) == 1 + 2 + 3 + 1 + 2, (counts, sums)
    expected_counts = [0.0, 0.0, 0.0]
    expected_counts[owner_m] += 3
    expected_counts[owner_n] += 2
    assert counts == expected_counts, counts
    assert await platform.total("room_participants_bucket", le="1.0") == 2
    # Events: counted by the owner that handled them, once.
    assert await platform.total("websocket_events_total", event_type="add_chat", status="ok") == 1
    assert (
        value(observed[owner_m], "websocket_events_total", event_type="add_chat", status="ok") == 1
    )
    assert (
        await platform.total("websocket_events_total", event_type="accept_waiting", status="ok")
        == 3
    )
    assert (
        await platform.total("websocket_events_total", event_type="kick", status="forbidden") == 1
    )
    assert await platform.total("websocket_events_total", event_type="ping", status="ok") == 6
    assert (
        await platform.total("message_processing_duration_seconds_count", event_type="add_chat")
        == 1
    )

    # Leaving: Cy says goodbye (through replica 2), Bob drops (through replica 1): both are
    # leaves of room M, observed once each (2, then 1).
    await cy.send("disconnect")
    await cy.closed()
    await ada.state(lambda s: len(s["participants"]) == 2)
    await bob.ws.close()
    await ada.state(lambda s: len(s["participants"]) == 1)
    await expect_per_replica(platform, "websocket_connections_total", [2, 1, 1])

    async def observed_leaves() -> bool:
        return await platform.total("room_participants_count") == 7

    await eventually(observed_leaves, "two leaves observed", timeout=5)
    assert await platform.total("room_participants_sum") == 9 + 2 + 1
    assert await platform.total("webrtc_rooms_active") == 2
    for client in (ada, nia, ned, wes):
        await client.ws.close()
    await expect_per_replica(platform, "websocket_connections_total", [0, 0, 0])


async def expect_per_replica(platform: Cluster, name: str, expected: list[float]) -> None:
    """Gauges follow connections that end asynchronously (proxies): poll for a moment."""
    seen: list[float] = []

    async def matches() -> bool:
        nonlocal seen
        tables = await asyncio.gather(*(platform.metrics(i) for i in range(len(expected))))
        seen = [value(t, name) for t in tables]
        return seen == expected

    try:
        await eventually(matches, name, timeout=5)
    except AssertionError:
        raise AssertionError(f"{name} per replica: {seen}, expected {expected}") from None
