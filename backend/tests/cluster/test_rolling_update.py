"""A rolling update: SIGTERM and restart one replica at a time while rooms are busy. No room
and no chat message is lost: clients are told to reconnect and land elsewhere."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ADMITTED, ClusterFactory, Member, audit, eventually

ROOMS = 3
PER_ROOM = 3


@pytest.mark.timeout(90)
async def test_rolling_update(cluster: ClusterFactory, capsys: pytest.CaptureFixture[str]) -> None:
    platform = await cluster(3, CHAT_HISTORY="2000", RECONNECT_GRACE_SECONDS="10")
    members: list[Member] = []
    for r in range(ROOMS):
        room = f"rolling-{r}"
        names = [f"R{r}p{j}" for j in range(PER_ROOM)]
        clients = await platform.admitted_room(room, names, [(r + j) % 3 for j in range(PER_ROOM)])
        members += [Member.adopt(platform, room, c, chat_every=0.1) for c in clients]
    try:
        for member in members:
            member.begin()
        await asyncio.sleep(1.5)
        for index in range(3):
            await platform.terminate(index)  # drains and exits 0
            await asyncio.sleep(0.5)  # the other two carry every room meanwhile
            await platform.start(index)
            await asyncio.sleep(1.5)
        for member in members:
            member.stop_sending()

        async def settled() -> bool:
            return all(m.synced.is_set() and not m.unacked for m in members)

        await eventually(settled, "every member back and every message acknowledged", 15)
        await asyncio.sleep(1.0)  # the last deliveries of the last messages

        result = audit(members)
        reconnects = sum(m.reconnects for m in members)
        with capsys.disabled():
            print(
                f"\nrolling update: rooms={ROOMS} clients={len(members)} sent={result.sent} "
                f"delivered={result.delivered}/{result.expected} "
                f"duplicates={len(result.duplicates)} lost={len(result.lost)} "
                f"reconnects={reconnects}"
            )
        assert [f for m in members for f in m.failures] == []
        assert result.problems() == [], result.problems()[:20]
        assert result.delivered == result.expected
        # Every replica went away once under each member: each was told, and came back.
        assert reconnects >= len(members)
        for member in members:
            assert member.goodbyes, f"{member.name} was never asked to move"
            for goodbye, code in member.goodbyes:
                assert goodbye == {"reason": "server_shutdown", "reconnect": True}, (
                    member.name,
                    goodbye,
                    code,
                )
            assert set(member.came_back_as) <= ADMITTED, (member.name, member.came_back_as)
            assert member.errors == [], (member.name, member.errors)
        # Every room still exists, whole, with its whole history, each message once.
        for r in range(ROOMS):
            room = [m for m in members if m.room == f"rolling-{r}"]
            everyone = {m.client_id for m in room}
            for member in room:
                assert set(member.participants) == everyone, (member.name, member.participants)
            history = await room[0].fetch_history()
            chat_ids = [m["chatId"] for m in history]
            assert len(chat_ids) == len(set(chat_ids))
            stored = [(m["clientId"], m["chatContent"]) for m in history]
            assert len(stored) == len(set(stored)), "a message is in the history twice"
            sent = {(m.client_id, content) for m in room for content in m.sent.values()}
            assert set(stored) == sent
    finally:
        for member in members:
            await member.close()
