"""SOAK (about 30 s of traffic; deselect with -m 'not soak'): 20 rooms x 5 clients over
3 replicas, chat and relay traffic, one replica SIGKILLed midway and started again. Every chat
message sent is delivered exactly once to every member, and the test says so with counts."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from conftest import ADMITTED, RELAYS, ClusterFactory, Member, audit, eventually

ROOMS = 20
PER_ROOM = 5
DURATION = 30.0
KILL_AT = 15.0
DOWN_FOR = 3.0
VICTIM = 1


@pytest.mark.soak
@pytest.mark.timeout(150)
async def test_soak(cluster: ClusterFactory, capsys: pytest.CaptureFixture[str]) -> None:
    platform = await cluster(3, CHAT_HISTORY="1000", RECONNECT_GRACE_SECONDS="10")
    loop = asyncio.get_running_loop()
    rooms = await asyncio.gather(
        *(
            platform.admitted_room(
                f"soak-{r:02d}",
                [f"S{r:02d}m{j}" for j in range(PER_ROOM)],
                [(r + j) % 3 for j in range(PER_ROOM)],
            )
            for r in range(ROOMS)
        )
    )
    members = [
        Member.adopt(platform, f"soak-{r:02d}", client, chat_every=1.0, relay_every=0.5)
        for r, clients in enumerate(rooms)
        for client in clients
    ]
    try:
        started = loop.time()
        for member in members:
            member.begin()
        await asyncio.sleep(KILL_AT)
        await platform.kill(VICTIM)
        await asyncio.sleep(DOWN_FOR)
        await platform.start(VICTIM)
        await asyncio.sleep(max(0.0, started + DURATION - loop.time()))
        for member in members:
            member.stop_sending()

        async def settled() -> bool:
            return all(m.synced.is_set() and not m.unacked for m in members)

        try:
            await eventually(settled, "every member back, every message acknowledged", 20)
        except AssertionError:
            stuck = [(m.name, m.role, len(m.unacked), m.failures) for m in members if m.unacked]
            raise AssertionError(f"not settled: {stuck[:10]}") from None
        await asyncio.sleep(1.5)  # the last deliveries

        result = audit(members)
        reconnects = sum(m.reconnects for m in members)
        errors = Counter((e["code"], e["event"]) for m in members for e in m.errors)
        expected_errors = {
            k: n for k, n in errors.items() if k[0] == "not_found" and k[1] in RELAYS
        }
        unexpected = {k: n for k, n in errors.items() if k not in expected_errors}
        relays_out = sum(m.relays_out for m in members)
        relays_in = sum(len(seqs) for m in members for seqs in m.relays_in.values())
        disorder = [
            (m.name, sender)
            for m in members
            for sender, seqs in m.relays_in.items()
            if seqs != sorted(seqs) or len(seqs) != len(set(seqs))
        ]
        with capsys.disabled():
            print(
                f"\nsoak: rooms={ROOMS} clients={len(members)} seconds={DURATION:.0f} "
                f"sent={result.sent} delivered={result.delivered}/{result.expected} "
                f"duplicates={len(result.duplicates)} lost={len(result.lost)} "
                f"reconnects={reconnects} relays={relays_in}/{relays_out} "
                f"relay_not_found={sum(expected_errors.values())} "
                f"other_errors={sum(unexpected.values())}"
            )
        assert [f for m in members for f in m.failures] == []
        assert result.duplicates == [], result.duplicates[:20]
        assert result.lost == [], result.lost[:20]
        assert result.conflicts == [], result.conflicts[:20]
        assert result.delivered == result.expected
        assert unexpected == {}, unexpected
        assert disorder == [], disorder[:10]
        # The kill was felt (a third of the clients came through the victim) and healed.
        assert reconnects >= len(members) // 3, reconnects
        for member in members:
            assert set(member.came_back_as) <= ADMITTED, (member.name, member.came_back_as)
        for r in range(ROOMS):
            room = [m for m in members if m.room == f"soak-{r:02d}"]
            everyone = {m.client_id for m in room}
            for member in room:
                assert set(member.participants) == everyone, (member.name, member.participants)
        assert result.sent >= ROOMS * PER_ROOM * DURATION * 0.6
    finally:
        for member in members:
            await member.close()
