"""The metrics after a scripted session equal what really happened."""

from __future__ import annotations

import asyncio
import time

from conftest import Server
from prometheus_client.parser import text_string_to_metric_families

from videoconf.api import hub_key


async def samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = await server.metrics()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    table: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return table.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_tell_the_session(server: Server) -> None:
    before = await samples(server)
    assert value(before, "websocket_connections_total") == 0
    assert value(before, "webrtc_rooms_active") == 0

    ada = await server.connect("metrics-room", "Ada")
    await ada.state()
    guests = []
    for name in ("Bob", "Cy"):
        guest = await server.connect("metrics-room", name)
        await guest.state()
        await ada.expect("waiting_request")
        await ada.send("accept_waiting", {"clientId": guest.client_id})
        await guest.state(lambda s: s["you"]["role"] == "participant")
        guests.append(guest)
    bob, cy = guests
    lone = await server.connect("other-room", "Lone")
    await lone.state()

    await bob.send("add_chat", {"chatContent": "hi"})
    await ada.expect("add_chat")
    await cy.send("kick", {"clientId": bob.client_id})  # refused: not a host
    await cy.expect("error")
    await cy.send("fly")  # unknown event
    await cy.expect("error")
    await ada.send("connection_state", {"peerClientId": bob.client_id, "state": "connected"})
    await ada.send("connection_state", {"peerClientId": bob.client_id, "state": "connected"})
    await ada.send(
        "connection_state", {"peerClientId": cy.client_id, "state": "failed", "relayed": True}
    )
    await ada.send("ping")
    await ada.expect("pong")  # everything before it has been processed

    during = await samples(server)
    assert value(during, "websocket_connections_total") == 4
    assert value(during, "webrtc_rooms_active") == 2
    # Admitted counts observed: Ada 1, Bob 2, Cy 3 in one room; Lone 1 in the other.
    assert value(during, "room_participants_count") == 4
    assert value(during, "room_participants_sum") == 1 + 2 + 3 + 1
    assert value(during, "room_participants_bucket", le="1.0") == 2
    assert value(during, "room_participants_bucket", le="2.0") == 3
    assert value(during, "websocket_events_total", event_type="accept_waiting", status="ok") == 2
    assert value(during, "websocket_events_total", event_type="add_chat", status="ok") == 1
    assert value(during, "websocket_events_total", event_type="kick", status="forbidden") == 1
    assert (
        value(during, "websocket_events_total", event_type="unknown", status="unknown_event") == 1
    )
    assert value(during, "message_processing_duration_seconds_count", event_type="add_chat") == 1
    # A repeated report of the same outcome counts once.
    assert (
        value(during, "webrtc_connection_success_rate_total", status="success", relayed="false")
        == 1
    )
    assert (
        value(during, "webrtc_connection_success_rate_total", status="failure", relayed="true") == 1
    )

    await bob.send("disconnect")
    await bob.closed()
    await ada.state(lambda s: len(s["participants"]) == 2)
    for client in (ada, cy, lone):
        await client.ws.close()
    hub = server.app[hub_key]
    deadline = time.monotonic() + 5
    while hub.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    after = await samples(server)
    assert value(after, "websocket_connections_total") == 0
    # Bob left (2), then Ada and Cy dropped (1, 0), Lone dropped (0).
    assert value(after, "room_participants_count") == 8
    # Rooms stay for the reconnect grace, then go.
    hub.clock = lambda: time.time() + 3600
    hub.sweep()
    assert value(await samples(server), "webrtc_rooms_active") == 0
    assert hub.rooms == {}
