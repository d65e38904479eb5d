"""Decisions a room makes once, whichever replicas its clients came through: one host for a
stampede into an empty room, one admission for two hosts admitting the same person."""

from __future__ import annotations

import asyncio
from collections import Counter

from conftest import ClusterFactory, ids


async def test_simultaneous_joins_make_one_host(cluster: ClusterFactory) -> None:
    platform = await cluster(3)
    rooms = []
    for round_ in range(3):
        room = f"stampede-{round_}"
        guests = await asyncio.gather(
            *(platform.guest(f"P{round_}{i}", via=i % 3) for i in range(9))
        )
        # Nine people, three per replica, join the empty room at the same instant.
        clients = await asyncio.gather(
            *(
                platform.connect(room, token=g["token"], via=(i + round_) % 3)
                for i, g in enumerate(guests)
            )
        )
        states = await asyncio.gather(*(c.state() for c in clients))
        roles = Counter(s["you"]["role"] for s in states)
        assert roles == {"host": 1, "waiting": 8}, (room, roles)
        host = next(c for c, s in zip(clients, states, strict=True) if s["you"]["role"] == "host")
        waiting = [c for c in clients if c is not host]
        # One waiting list: the host sees all eight, and heard of each arrival once.
        await host.state(
            lambda s, w=waiting: set(ids(s["waitingUsers"])) == {c.client_id for c in w}
        )
        requests = [await host.expect("waiting_request") for _ in waiting]
        assert sorted(r["clientId"] for r in requests) == sorted(c.client_id for c in waiting)
        rooms.append((room, host, waiting))

    # Two hosts: the host drops, the room hands over to the admitted member present longest,
    # the old host comes back (through another replica) within the grace period.
    room, host, waiting = rooms[0]
    first, *others = waiting
    await host.send("accept_waiting", {"clientId": first.client_id})
    await first.state(lambda s: s["you"]["role"] == "participant")
    await host.ws.close()
    await first.state(lambda s: s["you"]["role"] == "host")
    back = await platform.rejoin(room, host.token, [(host.via + 1) % 3])
    assert (await back.state())["you"]["role"] == "host"
    both = {host.client_id, first.client_id}
    for each in (back, first):
        await each.state(lambda s: set(ids(s["hosts"])) == both and len(s["waitingUsers"]) == 7)
        await each.settle()

    # Both hosts admit each of the seven at the same instant: one admission each.
    await asyncio.gather(
        *(
            sender.send("accept_waiting", {"clientId": person.client_id})
            for person in others
            for sender in (back, first)
        )
    )
    for person in others:
        card = await person.expect("accept_waiting")
        assert card["clientId"] == person.client_id
        await person.state(lambda s: s["you"]["role"] == "participant")
    everyone = [host.client_id, *(c.client_id for c in waiting)]
    final = await back.state(lambda s: len(s["participants"]) == 9)
    assert sorted(ids(final["participants"])) == sorted(everyone)
    assert final["waitingUsers"] == []
    refusals = []
    for each in (back, first):
        for message in await each.quiet(0.5):
            if message["event"] == "error":
                refusals.append(message["payload"])
    assert len(refusals) == 7, refusals
    assert all(r["code"] == "not_found" and r["event"] == "accept_waiting" for r in refusals)
    for person in others:
        assert [m for m in await person.quiet(0.1) if m["event"] == "accept_waiting"] == []
    for _room, _host, clients in rooms:
        for client in clients:
            await client.ws.close()
    await back.ws.close()
    for _room, other_host, _clients in rooms[1:]:
        await other_host.ws.close()
