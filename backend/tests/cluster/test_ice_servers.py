"""ICE servers on join across replicas: a client whose WebSocket an edge replica forwards to
the room's owner gets `ice_servers` first, once, with TURN credentials for its own clientId."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from conftest import ClusterFactory, ReplicaClient

ROOM = "ice-across"
TURN_SECRET = "cluster-turn-secret-" + "t" * 24
STUN_URL = "stun:stun.example.com:3478"
TURN_URL = "turn:turn.example.com:3478?transport=udp"
TTL = 600


def check(message: dict[str, Any], client_id: str, before: int, after: int) -> None:
    assert message["event"] == "ice_servers", message
    stun, turn = message["payload"]["iceServers"]
    assert stun == {"urls": [STUN_URL]}
    assert turn["urls"] == [TURN_URL]
    expiry, _, named = turn["username"].partition(":")
    assert named == client_id
    assert before + TTL <= int(expiry) <= after + TTL
    assert message["payload"]["expiresAt"] == int(expiry)
    mac = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(mac).decode()


async def test_forwarded_connection_gets_its_ice_servers(cluster: ClusterFactory) -> None:
    platform = await cluster(
        2, STUN_URLS=STUN_URL, TURN_URLS=TURN_URL, TURN_SECRET=TURN_SECRET, TURN_TTL=str(TTL)
    )

    async def join(name: str, via: int) -> tuple[ReplicaClient, str]:
        guest = await platform.guest(name, via)
        before = int(time.time())
        client = await platform.connect(ROOM, token=guest["token"], via=via)
        first = await client.next_message()
        check(first, guest["clientId"], before, int(time.time()))
        return client, guest["clientId"]

    ada, _ = await join("Ada", 0)  # served where it connected: replica 0 owns the room
    assert (await ada.state())["you"]["role"] == "host"
    assert platform.owner(ROOM) == 0
    bob, bob_id = await join("Bob", 1)  # forwarded by replica 1 to replica 0
    assert (await bob.state())["you"]["role"] == "waiting"
    assert (await ada.expect("waiting_request"))["clientId"] == bob_id
    await ada.send("accept_waiting", {"clientId": bob_id})
    await bob.state(lambda s: s["you"]["role"] == "participant")
    # Exactly once per connection: neither the edge nor the owner sends it again.
    for client in (ada, bob):
        assert not [m for m in await client.quiet(0.3) if m["event"] == "ice_servers"]
