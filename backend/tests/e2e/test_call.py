"""A three-person room end to end over real sockets: the whole life of a call."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import Client, Server


def ids(members: list[dict[str, str]]) -> list[str]:
    return [m["clientId"] for m in members]


async def admitted_room(server: Server, room: str = "team-standup") -> tuple[Client, ...]:
    """Host Ada, then Bob and Cy admitted; every client has read the state settling."""
    ada = await server.connect(room, "Ada")
    await ada.state(lambda s: s["you"]["role"] == "host")
    guests = []
    for name in ("Bob", "Cy"):
        guest = await server.connect(room, name)
        waiting = await guest.state()
        assert waiting["you"]["role"] == "waiting"
        request = await ada.expect("waiting_request")
        assert request == {"clientId": guest.client_id, "displayName": name}
        await ada.send("accept_waiting", {"clientId": guest.client_id})
        await guest.expect("accept_waiting")
        await guest.state(lambda s: s["you"]["role"] == "participant")
        guests.append(guest)
    for client in (ada, *guests):
        await client.state(lambda s: len(s["participants"]) == 3)
        await client.settle()
    return (ada, *guests)


async def test_three_person_call(server: Server) -> None:
    ada = await server.connect("team-standup", "Ada")
    first = await ada.state()
    assert first["you"] == {"clientId": ada.client_id, "displayName": "Ada", "role": "host"}
    assert ids(first["hosts"]) == [ada.client_id]
    assert (await ada.expect("recents_chat")) == {"messages": []}

    bob = await server.connect("team-standup", "Bob")
    waiting = await bob.state()
    assert waiting["you"]["role"] == "waiting"
    # A waiting person sees nobody and nothing until admitted.
    assert waiting["participants"] == [] and waiting["hosts"] == []
    assert (await ada.expect("waiting_request"))["displayName"] == "Bob"
    host_view = await ada.state(lambda s: len(s["waitingUsers"]) == 1)
    assert ids(host_view["waitingUsers"]) == [bob.client_id]

    # Chat before admission reaches nobody and is refused.
    await ada.send("add_chat", {"chatContent": "hello before Bob is in"})
    early = await ada.expect("add_chat")
    await bob.send("add_chat", {"chatContent": "let me in"})
    refused = await bob.expect("error")
    assert refused["code"] == "forbidden" and refused["event"] == "add_chat"

    await ada.send("accept_waiting", {"clientId": bob.client_id})
    assert (await bob.expect("accept_waiting"))["clientId"] == bob.client_id
    admitted = await bob.state(lambda s: s["you"]["role"] == "participant")
    assert ids(admitted["participants"]) == [ada.client_id, bob.client_id]
    assert admitted["waitingUsers"] == []  # only hosts see the waiting list
    history = await bob.expect("recents_chat")
    assert [m["chatId"] for m in history["messages"]] == [early["chatId"]]

    cy = await server.connect("team-standup", "Cy")
    await cy.state()
    await ada.expect("waiting_request")
    await ada.send("accept_waiting", {"clientId": cy.client_id})
    await cy.state(lambda s: s["you"]["role"] == "participant")
    for client in (ada, bob, cy):
        await client.state(lambda s: len(s["participants"]) == 3)

    # Chat: everyone gets it once, with the true sender stamped by the server.
    await bob.send(
        "add_chat", {"chatContent": "hi all", "clientId": ada.client_id, "displayName": "Not Bob"}
    )
    for client in (ada, bob, cy):
        message = await client.expect("add_chat", lambda p: p["chatContent"] == "hi all")
        assert message["clientId"] == bob.client_id and message["displayName"] == "Bob"
        assert isinstance(message["timestamp"], int)
    chat_id = message["chatId"]

    # Cy may not delete Bob's message; Bob may; a host may delete anyone's.
    await cy.send("delete_chat", {"chatId": chat_id})
    assert (await cy.expect("error"))["code"] == "forbidden"
    await bob.send("delete_chat", {"chatId": chat_id})
    for client in (ada, bob, cy):
        deleted = await client.expect("delete_chat")
        assert deleted == {"chatId": chat_id, "clientId": bob.client_id}
    await cy.send("add_chat", {"chatContent": "off topic"})
    cy_message = await ada.expect("add_chat", lambda p: p["chatContent"] == "off topic")
    await ada.send("delete_chat", {"chatId": cy_message["chatId"]})
    await cy.expect("delete_chat", lambda p: p["chatId"] == cy_message["chatId"])

    # Hands.
    await cy.send("raise_hand")
    for client in (ada, bob, cy):
        await client.state(lambda s: ids(s["handsRaised"]) == [cy.client_id])
    await bob.send("lower_hand", {"clientId": cy.client_id})
    assert (await bob.expect("error"))["code"] == "forbidden"
    await ada.send("lower_hand", {"clientId": cy.client_id})
    await cy.state(lambda s: s["handsRaised"] == [])

    # Toggles.
    await bob.send("toggle_audio", {"enabled": True})
    await bob.send("toggle_video", {"enabled": True})
    seen = await cy.state(lambda s: ids(s["cameraOn"]) == [bob.client_id])
    assert ids(seen["unmuted"]) == [bob.client_id]

    # Screen share: refused without a grant, requested, granted, shared, stopped.
    await bob.send("toggle_screenshare", {"enabled": True})
    assert (await bob.expect("error"))["code"] == "forbidden"
    await bob.send("request_screenshare")
    assert (await ada.expect("request_screenshare"))["clientId"] == bob.client_id
    await ada.state(lambda s: ids(s["screenshareRequests"]) == [bob.client_id])
    await ada.send("accept_screenshare", {"clientId": bob.client_id})
    await bob.expect("accept_screenshare")
    await bob.state(lambda s: s["you"]["role"] == "screenshare")
    await bob.send("toggle_screenshare", {"enabled": True})
    await cy.state(lambda s: ids(s["sharingScreen"]) == [bob.client_id])
    await cy.send("request_screenshare")
    await ada.expect("request_screenshare")
    await ada.send("deny_screenshare", {"clientId": cy.client_id})
    await cy.expect("deny_screenshare")

    # WebRTC relay: only to the target, in order, stamped with the true sender.
    sdp = "v=0\r\n" + "a=candidate:x\r\n" * 200
    await ada.send(
        "offer",
        {"targetClientId": bob.client_id, "sdp": sdp, "type": "offer", "clientId": cy.client_id},
    )
    offer = await bob.expect("offer")
    assert offer["clientId"] == ada.client_id and offer["displayName"] == "Ada"
    assert offer["sdp"] == sdp and offer["targetClientId"] == bob.client_id
    await bob.send("answer", {"targetClientId": ada.client_id, "sdp": "v=0\r\n", "type": "answer"})
    assert (await ada.expect("answer"))["clientId"] == bob.client_id
    for index in range(20):
        await ada.send(
            "candidate",
            {
                "targetClientId": bob.client_id,
                "candidate": f"candidate:{index} 1 udp 1 127.0.0.1 9 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
        )
    for index in range(20):
        got = await bob.expect("candidate")
        assert got["candidate"].startswith(f"candidate:{index} ")
        assert got["sdpMid"] == "0" and got["sdpMLineIndex"] == 0
    await bob.send("renegotiate", {"targetClientId": ada.client_id, "reason": "screenshare"})
    assert (await ada.expect("renegotiate"))["clientId"] == bob.client_id
    stray = [
        m for m in await cy.quiet() if m["event"] in {"offer", "answer", "candidate", "renegotiate"}
    ]
    assert stray == []

    # Mute request reaches only its subject.
    await ada.send("mute_request", {"clientId": cy.client_id})
    assert (await cy.expect("mute_request"))["clientId"] == ada.client_id

    # The host leaves: host passes to the longest-present participant (Bob).
    await ada.send("disconnect")
    code, _ = await ada.closed()
    assert code == 1000
    handed = await bob.state(lambda s: s["you"]["role"] == "host")
    assert ids(handed["participants"]) == [bob.client_id, cy.client_id]
    await cy.state(lambda s: ids(s["hosts"]) == [bob.client_id])

    # Host actions: transfer, kick.
    await bob.send("transfer_host", {"clientId": cy.client_id})
    await cy.state(lambda s: s["you"]["role"] == "host")
    await bob.state(lambda s: s["you"]["role"] == "screenshare")  # still sharing, keeps grant
    await cy.send("kick", {"clientId": bob.client_id})
    code, before = await bob.closed()
    assert code == 4001
    assert before[-1] == {
        "event": "disconnect",
        "payload": {"reason": "kicked", "reconnect": False},
    }
    final = await cy.state(lambda s: len(s["participants"]) == 1)
    assert ids(final["hosts"]) == [cy.client_id]
    for client in (cy,):
        await client.ws.close()


async def test_deny_waiting_closes_with_reason(server: Server) -> None:
    host = await server.connect("lobby-room", "Host")
    await host.state()
    guest = await server.connect("lobby-room", "Guest")
    await guest.state()
    request = await host.expect("waiting_request")
    await host.send("deny_waiting", {"clientId": request["clientId"]})
    code, seen = await guest.closed()
    assert code == 4002
    assert seen[-1]["payload"] == {"reason": "denied", "reconnect": False}
    await host.state(lambda s: s["waitingUsers"] == [])


async def test_same_identity_replaces_the_old_connection(server: Server) -> None:
    ada, bob, _cy = await admitted_room(server, "replace-room")
    second = await server.connect("replace-room", token=bob.token)
    again = await second.state()
    assert again["you"]["role"] == "participant" and len(again["participants"]) == 3
    code, seen = await bob.closed()
    assert code == 4000 and seen[-1]["payload"]["reason"] == "replaced"
    # Not duplicated: still three people; relays reach the new connection.
    await ada.send("offer", {"targetClientId": second.client_id, "sdp": "v=0\r\n"})
    assert (await second.expect("offer"))["clientId"] == ada.client_id
    later = [m["payload"] for m in await ada.quiet() if m["event"] == "room_state"]
    assert later, "the others are told about the new connection"
    assert all(len(state["participants"]) == 3 for state in later)


async def test_reconnect_within_grace_keeps_role(server: Server) -> None:
    ada, bob, cy = await admitted_room(server, "grace-room")
    await ada.send("accept_screenshare", {"clientId": bob.client_id})
    await bob.state(lambda s: s["you"]["role"] == "screenshare")
    token = bob.token
    await bob.ws.close()  # a dropped connection, not a goodbye
    await ada.state(lambda s: len(s["participants"]) == 2)
    back = await server.connect("grace-room", token=token)
    state = await back.state()
    assert state["you"]["role"] == "screenshare"  # no waiting room again
    await cy.state(lambda s: len(s["participants"]) == 3)


async def test_relay_permissions(server: Server) -> None:
    ada, bob, _cy = await admitted_room(server, "relay-room")
    waiting = await server.connect("relay-room", "Waiting")
    await waiting.state()
    await ada.expect("waiting_request")
    payload: dict[str, Any] = {"targetClientId": ada.client_id, "sdp": "v=0\r\n"}
    await waiting.send("offer", payload)
    assert (await waiting.expect("error"))["code"] == "forbidden"
    await ada.send("offer", {"targetClientId": waiting.client_id, "sdp": "v=0\r\n"})
    assert (await ada.expect("error"))["code"] == "not_found"
    assert not [m for m in await waiting.quiet() if m["event"] == "offer"]
    await bob.send("offer", {"targetClientId": "someone-else", "sdp": "v=0\r\n"})
    assert (await bob.expect("error"))["code"] == "not_found"
    # A member of another room is not reachable either.
    other = await server.connect("other-room", "Other")
    await other.state()
    await other.send("offer", {"targetClientId": ada.client_id, "sdp": "v=0\r\n"})
    assert (await other.expect("error"))["code"] == "not_found"


async def test_host_only_actions_are_refused_to_participants(server: Server) -> None:
    ada, bob, cy = await admitted_room(server, "perm-room")
    for event in (
        "accept_waiting",
        "deny_waiting",
        "accept_screenshare",
        "deny_screenshare",
        "kick",
        "transfer_host",
        "mute_request",
    ):
        await bob.send(event, {"clientId": cy.client_id})
        refused = await bob.expect("error")
        assert refused == {
            "code": "forbidden",
            "event": event,
            "message": f"{event} needs the host role",
        }
    assert not [m for m in await ada.quiet() if m["event"] == "room_state"], "nothing changed"


async def test_a_client_that_hangs_up_leaves_at_once(server: Server) -> None:
    ada, bob, _cy = await admitted_room(server, "hangup-room")
    await bob.ws.close()
    started = asyncio.get_running_loop().time()
    await ada.state(lambda s: len(s["participants"]) == 2)
    assert asyncio.get_running_loop().time() - started < 0.5
