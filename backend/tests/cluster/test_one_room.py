"""Clients of one room spread over three replicas see one room: one host, one waiting list, one
chat history, one set of hands; every action made on one replica takes effect on the others."""

from __future__ import annotations

from conftest import Client, ClusterFactory, ids

ROOM = "across-replicas"


async def test_one_room_across_three_replicas(cluster: ClusterFactory) -> None:
    platform = await cluster(3)
    # Ada hosts through replica 0; Bob waits through replica 1 and Ada admits him.
    ada = await platform.connect(ROOM, "Ada", via=0)
    first = await ada.state()
    assert first["you"]["role"] == "host"
    assert (await ada.expect("recents_chat")) == {"messages": []}
    bob = await platform.connect(ROOM, "Bob", via=1)
    waiting = await bob.state()
    assert waiting["you"]["role"] == "waiting" and waiting["participants"] == []
    request = await ada.expect("waiting_request")
    assert request == {"clientId": bob.client_id, "displayName": "Bob"}
    await ada.state(lambda s: ids(s["waitingUsers"]) == [bob.client_id])

    # Chat before Bob is in: he gets it from the history when admitted.
    await ada.send("add_chat", {"chatContent": "before Bob"})
    early = await ada.expect("add_chat")
    await ada.send("accept_waiting", {"clientId": bob.client_id})
    assert (await bob.expect("accept_waiting"))["clientId"] == bob.client_id
    admitted = await bob.state(lambda s: s["you"]["role"] == "participant")
    assert ids(admitted["participants"]) == [ada.client_id, bob.client_id]
    assert [m["chatId"] for m in (await bob.expect("recents_chat"))["messages"]] == [
        early["chatId"]
    ]

    # Cy waits through replica 2; the waiting list is one list for the hosts everywhere.
    cy = await platform.connect(ROOM, "Cy", via=2)
    await cy.state()
    assert (await ada.expect("waiting_request"))["clientId"] == cy.client_id
    await ada.state(lambda s: ids(s["waitingUsers"]) == [cy.client_id])
    await ada.send("accept_waiting", {"clientId": cy.client_id})
    await cy.state(lambda s: s["you"]["role"] == "participant")
    everyone = [ada.client_id, bob.client_id, cy.client_id]
    for client in (ada, bob, cy):
        await client.state(lambda s: ids(s["participants"]) == everyone)
        await client.settle()

    # One chat: each message reaches everyone once, in one order, stamped by the server.
    await bob.send("add_chat", {"chatContent": "from replica 1"})
    echo = await bob.expect("add_chat")  # stored before Cy posts: one order for everyone
    bob.inbox.insert(0, {"event": "add_chat", "payload": echo})
    await cy.send("add_chat", {"chatContent": "from replica 2", "clientMessageId": "cy-1"})
    order = []
    for client in (ada, bob, cy):
        got = [await client.expect("add_chat"), await client.expect("add_chat")]
        assert [m["chatContent"] for m in got] == ["from replica 1", "from replica 2"]
        assert [m["clientId"] for m in got] == [bob.client_id, cy.client_id]
        order.append([m["chatId"] for m in got])
        if client is cy:
            assert got[1]["clientMessageId"] == "cy-1", got[1]
    assert order[0] == order[1] == order[2]
    original = order[2][1]

    # A repeated clientMessageId is ignored: the sender gets the original echo, nobody else
    # gets anything (also with other content); the same id from someone else is a new message.
    await cy.send("add_chat", {"chatContent": "from replica 2", "clientMessageId": "cy-1"})
    again = await cy.expect("add_chat")
    assert again["chatId"] == original and again["clientMessageId"] == "cy-1"
    await cy.send("add_chat", {"chatContent": "edited?", "clientMessageId": "cy-1"})
    again = await cy.expect("add_chat")
    assert again["chatId"] == original and again["chatContent"] == "from replica 2"
    for client in (ada, bob, cy):
        assert [m for m in await client.quiet(0.5) if m["event"] == "add_chat"] == []
    await bob.send("add_chat", {"chatContent": "bob reuses the id", "clientMessageId": "cy-1"})
    for client in (ada, bob, cy):
        fresh = await client.expect("add_chat")
        assert fresh["chatContent"] == "bob reuses the id" and fresh["chatId"] != original
    await cy.send("add_chat", {"chatContent": "too long an id", "clientMessageId": "x" * 65})
    refused = await cy.expect("error")
    assert refused["code"] == "invalid_payload" and refused["event"] == "add_chat"

    # Deleting on one replica deletes everywhere.
    await ada.send("delete_chat", {"chatId": fresh["chatId"]})
    for client in (ada, bob, cy):
        assert (await client.expect("delete_chat"))["chatId"] == fresh["chatId"]

    # A late joiner on yet another replica gets the one history (Dee through replica 1).
    dee = await platform.connect(ROOM, "Dee", via=1)
    await dee.state()
    await ada.expect("waiting_request")
    await ada.send("accept_waiting", {"clientId": dee.client_id})
    await dee.state(lambda s: s["you"]["role"] == "participant")
    history = (await dee.expect("recents_chat"))["messages"]
    assert [m["chatId"] for m in history] == [early["chatId"], *order[0]]
    everyone.append(dee.client_id)
    for client in (ada, bob, cy, dee):
        await client.state(lambda s: ids(s["participants"]) == everyone)

    # Hands: raised on replica 2, seen on 0 and 1; lowered by the host on replica 0.
    await cy.send("raise_hand")
    for client in (ada, bob, dee):
        await client.state(lambda s: ids(s["handsRaised"]) == [cy.client_id])
    await bob.send("raise_hand")
    await cy.state(lambda s: ids(s["handsRaised"]) == [cy.client_id, bob.client_id])
    await ada.send("lower_hand", {"clientId": cy.client_id})
    for client in (bob, cy, dee):
        await client.state(lambda s: ids(s["handsRaised"]) == [bob.client_id])

    # Screen share: asked on replica 1, granted on 0, shared and seen on 2.
    await bob.send("request_screenshare")
    assert (await ada.expect("request_screenshare"))["clientId"] == bob.client_id
    await ada.state(lambda s: ids(s["screenshareRequests"]) == [bob.client_id])
    await ada.send("accept_screenshare", {"clientId": bob.client_id})
    await bob.expect("accept_screenshare")
    await bob.state(lambda s: s["you"]["role"] == "screenshare")
    await bob.send("toggle_screenshare", {"enabled": True})
    await cy.state(lambda s: ids(s["sharingScreen"]) == [bob.client_id])
    await dee.send("toggle_audio", {"enabled": True})
    await ada.state(lambda s: ids(s["unmuted"]) == [dee.client_id])
    await ada.send("mute_request", {"clientId": dee.client_id})
    assert (await dee.expect("mute_request"))["clientId"] == ada.client_id

    # Relay 0 -> 2 and back, then 50 candidates 0 -> 2 and 50 from 2 -> 1: all in order.
    sdp = "v=0\r\n" + "a=x\r\n" * 100
    await ada.send("offer", {"targetClientId": cy.client_id, "sdp": sdp, "type": "offer"})
    offer = await cy.expect("offer")
    assert offer["sdp"] == sdp and offer["clientId"] == ada.client_id
    assert offer["displayName"] == "Ada" and offer["targetClientId"] == cy.client_id
    await cy.send("answer", {"targetClientId": ada.client_id, "sdp": "v=0\r\n", "type": "answer"})
    assert (await ada.expect("answer"))["clientId"] == cy.client_id
    for index in range(50):
        await ada.send("candidate", candidate(cy, index))
        await cy.send("candidate", candidate(bob, index))
    for receiver, sender in ((cy, ada), (bob, cy)):
        for index in range(50):
            got = await receiver.expect("candidate")
            assert got["candidate"].startswith(f"candidate:{index} "), (index, got)
            assert got["clientId"] == sender.client_id and got["sdpMLineIndex"] == 0
    await dee.send("renegotiate", {"targetClientId": ada.client_id, "reason": "reset"})
    assert (await ada.expect("renegotiate"))["clientId"] == dee.client_id
    assert not [m for m in await dee.quiet(0.3) if m["event"] in {"offer", "candidate"}]
    # Nobody in the room can reach a member of another room, on any replica.
    other = await platform.connect("another-room", "Other", via=2)
    await other.state()
    await other.send("offer", {"targetClientId": ada.client_id, "sdp": "v=0\r\n"})
    assert (await other.expect("error"))["code"] == "not_found"

    # Transfer on replica 0 makes the host on replica 1; the new host kicks on replica 2.
    await ada.send("transfer_host", {"clientId": bob.client_id})
    await bob.state(lambda s: s["you"]["role"] == "host")
    await ada.state(lambda s: s["you"]["role"] == "participant")
    for client in (cy, dee):
        await client.state(lambda s: ids(s["hosts"]) == [bob.client_id])
    await bob.send("kick", {"clientId": cy.client_id})
    code, before = await cy.closed()
    assert code == 4001
    assert before[-1] == {
        "event": "disconnect",
        "payload": {"reason": "kicked", "reconnect": False},
    }
    for client in (ada, bob, dee):
        await client.state(lambda s: cy.client_id not in ids(s["participants"]))
    # A kicked member's relays target nobody any more.
    await dee.send("offer", {"targetClientId": cy.client_id, "sdp": "v=0\r\n"})
    assert (await dee.expect("error"))["code"] == "not_found"

    # Deny across replicas: Eve waits through replica 2, the host on replica 1 refuses her.
    eve = await platform.connect(ROOM, "Eve", via=2)
    await eve.state()
    assert (await bob.expect("waiting_request"))["clientId"] == eve.client_id
    await bob.send("deny_waiting", {"clientId": eve.client_id})
    code, seen = await eve.closed()
    assert code == 4002 and seen[-1]["payload"] == {"reason": "denied", "reconnect": False}

    # A goodbye through replica 1 passes the host role on at once, on every replica.
    await bob.send("disconnect")
    code, _ = await bob.closed()
    assert code == 1000
    await ada.state(lambda s: s["you"]["role"] == "host")
    await dee.state(lambda s: ids(s["hosts"]) == [ada.client_id])
    for client in (ada, dee, other):
        await client.ws.close()


async def test_rest_room_info_on_every_replica(cluster: ClusterFactory) -> None:
    platform = await cluster(3)
    host = await platform.connect("info-room", "Host", via=0)
    await host.state()
    guest = await platform.connect("info-room", "Guest", via=1)
    await guest.state()
    await host.send("accept_waiting", {"clientId": guest.client_id})
    await guest.state(lambda s: s["you"]["role"] == "participant")
    for index in range(3):
        async with platform.session.get(
            f"{platform.replicas[index].url}/api/rooms/info-room",
            headers={"Authorization": f"Bearer {guest.token}"},
        ) as response:
            body = await response.json()
        assert body["exists"] is True and body["participantCount"] == 2, (index, body)
        assert {p["clientId"] for p in body["participants"]} == {host.client_id, guest.client_id}
    # A room created through one replica exists on the others, and is one room.
    async with platform.session.post(
        f"{platform.replicas[2].url}/api/rooms",
        headers={"Authorization": f"Bearer {host.token}"},
    ) as response:
        assert response.status == 201
        created = (await response.json())["roomId"]
    for index in range(3):
        async with platform.session.get(
            f"{platform.replicas[index].url}/api/rooms/{created}"
        ) as response:
            assert (await response.json())["exists"] is True, index
    first = await platform.connect(created, "First", via=0)
    assert (await first.state())["you"]["role"] == "host"
    second = await platform.connect(created, "Second", via=1)
    assert (await second.state())["you"]["role"] == "waiting"
    # Two rooms on the platform, each counted once (by its owner).
    assert await platform.total("webrtc_rooms_active") == 2
    for client in (host, guest, first, second):
        await client.ws.close()


def candidate(target: Client, index: int) -> dict[str, object]:
    return {
        "targetClientId": target.client_id,
        "candidate": f"candidate:{index} 1 udp 1 127.0.0.1 9 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
