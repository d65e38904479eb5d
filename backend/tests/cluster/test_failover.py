"""Losing a replica with no goodbye (SIGKILL): its rooms are taken over from Redis, its clients
come back through the other replicas with their roles, and nobody who stays away lingers."""

from __future__ import annotations

import asyncio

from conftest import ClusterFactory, ReplicaClient, gone, ids

GRACE = 4.0


async def test_replica_killed(cluster: ClusterFactory) -> None:
    platform = await cluster(3, RECONNECT_GRACE_SECONDS=str(GRACE))
    loop = asyncio.get_running_loop()
    room_a = await platform.admitted_room(
        "failover-a", ["Ada", "Bob", "Cy", "Dan", "Zed"], [0, 1, 2, 0, 2]
    )
    ada, bob, cy, dan, zed = room_a
    room_b = await platform.admitted_room("failover-b", ["Bea", "Ben", "Bo"], [1, 0, 2])
    bea, _, bo = room_b
    await ada.send("accept_screenshare", {"clientId": cy.client_id})
    await cy.state(lambda s: s["you"]["role"] == "screenshare")
    await bob.send("add_chat", {"chatContent": "before the crash"})
    await ada.expect("add_chat")
    await cy.send("add_chat", {"chatContent": "cy's last words", "clientMessageId": "cy-k"})
    await ada.expect("add_chat")
    history_a = [m["chatId"] for m in [await cy.expect("add_chat"), await cy.expect("add_chat")]]
    original = history_a[1]
    await bo.send("add_chat", {"chatContent": "in room b"})
    history_b = [(await bea.expect("add_chat"))["chatId"]]
    for client in (*room_a, *room_b):
        await client.settle()
    await asyncio.sleep(1.0)  # the owner writes the room to Redis shortly after each change

    owners = {
        "failover-a": _owner(platform.owner("failover-a"), 0),
        "failover-b": _owner(platform.owner("failover-b"), 1),
    }
    dead = owners["failover-a"]
    live = [i for i in range(3) if i != dead]
    await platform.kill(dead)

    # Through the dead replica: cut. Through a live one to the dead owner: told to reconnect.
    # Through a live one to a live owner: nothing but the others' coming and going.
    cut, told, stay = [], [], []
    for room, clients in (("failover-a", room_a), ("failover-b", room_b)):
        for client in clients:
            if client.via == dead:
                cut.append(client)
            elif owners[room] == dead:
                told.append(client)
            else:
                stay.append(client)
    assert set(room_a) <= set(cut + told)
    ends = await asyncio.gather(*(gone(c, 8) for c in cut + told))
    for client, (code, seen) in zip(cut + told, ends, strict=True):
        if client in told:
            goodbyes = [m["payload"] for m in seen if m["event"] == "disconnect"]
            assert goodbyes and goodbyes[-1]["reconnect"] is True, (client.via, code, seen)
    dropped_b = {c.client_id for c in room_b if c in cut}
    for client in stay:
        await client.state(lambda s: not dropped_b & set(ids(s["participants"])))

    # Everyone but Zed comes back through live replicas with the same token, host first.
    back: dict[str, ReplicaClient] = {}
    expected_roles = {ada: "host", bob: "participant", cy: "screenshare", dan: "participant"}
    restored_at = None
    for turn, (client, role) in enumerate(expected_roles.items()):
        again = await platform.rejoin("failover-a", client.token, [*live[turn % 2 :], *live])
        restored_at = restored_at or loop.time()
        state = await again.state()
        assert state["you"]["role"] == role, (client.client_id, state["you"])
        recents = await again.expect("recents_chat")
        assert [m["chatId"] for m in recents["messages"]] == history_a, recents
        back[client.client_id] = again
    assert restored_at is not None
    present = {c.client_id for c in expected_roles}
    for again in back.values():
        # No ghost: Zed is not present in the restored room.
        await again.state(lambda s: set(ids(s["participants"])) == present)
        await again.settle()
    ada2, bob2, cy2, dan2 = (back[c.client_id] for c in expected_roles)

    # Room B: Ben comes back; Bea and Bo see him return; the history is there.
    for client in cut:
        if client in room_b:
            again = await platform.rejoin("failover-b", client.token, live)
            assert (await again.state())["you"]["role"] == "participant"
            recents = await again.expect("recents_chat")
            assert [m["chatId"] for m in recents["messages"]] == history_b
            back[client.client_id] = again
    for client in stay:
        await client.state(lambda s: {c.client_id for c in room_b} == set(ids(s["participants"])))

    # The room goes on: a resend of a message the dead owner stored is recognised ...
    await cy2.send("add_chat", {"chatContent": "cy's last words", "clientMessageId": "cy-k"})
    echo = await cy2.expect("add_chat")
    assert echo["chatId"] == original and echo["clientMessageId"] == "cy-k"
    for again in (ada2, bob2, dan2):
        assert [m for m in await again.quiet(0.3) if m["event"] == "add_chat"] == []
    # ... and new messages get new ids and reach everyone, across the live replicas.
    await dan2.send("add_chat", {"chatContent": "after the crash"})
    for again in (ada2, bob2, cy2, dan2):
        message = await again.expect("add_chat")
        assert message["chatContent"] == "after the crash"
        assert message["chatId"] not in history_a
    await bob2.send("raise_hand")
    await cy2.state(lambda s: ids(s["handsRaised"]) == [bob.client_id])
    await dan2.send("offer", {"targetClientId": ada.client_id, "sdp": "v=0:1"})
    assert (await ada2.expect("offer"))["clientId"] == dan.client_id

    # Zed stayed away: after his grace period he is gone, and coming back he waits.
    await asyncio.sleep(max(0.0, restored_at + GRACE + 2.5 - loop.time()))
    new_owner = platform.owner("failover-a")
    assert new_owner in live, new_owner
    async with platform.session.get(
        f"{platform.replicas[new_owner].url}/api/rooms/failover-a"
    ) as response:
        info = await response.json()
    assert info["exists"] is True and info["participantCount"] == 4, info
    zed2 = await platform.rejoin("failover-a", zed.token, live)
    assert (await zed2.state())["you"]["role"] == "waiting"
    assert (await ada2.expect("waiting_request"))["clientId"] == zed.client_id

    # The killed replica starts again and serves the room like the others.
    await platform.start(dead)
    newcomer = await platform.connect("failover-a", "Newcomer", via=dead)
    assert (await newcomer.state())["you"]["role"] == "waiting"
    await ada2.expect("waiting_request", lambda p: p["clientId"] == newcomer.client_id)
    await ada2.send("accept_waiting", {"clientId": newcomer.client_id})
    await newcomer.state(lambda s: s["you"]["role"] == "participant")
    recents = await newcomer.expect("recents_chat")
    assert [m["chatId"] for m in recents["messages"]][: len(history_a)] == history_a
    assert len(recents["messages"]) == len(history_a) + 1
    for client in (*back.values(), *stay, zed2, newcomer):
        await client.ws.close()


def _owner(found: int | None, first_connection: int) -> int:
    """The lease holder named in Redis, else the replica of the room's first connection
    (the first connection takes the lease)."""
    return first_connection if found is None else found
