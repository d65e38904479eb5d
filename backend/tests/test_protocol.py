"""The wire codec's own checks, beyond what msgspec's types say: client ids and relayed
payloads (both hand-written for speed, so held here to what they replace)."""

from __future__ import annotations

import re

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from videoconf.protocol import (
    CLIENT_EVENTS,
    MAX_CLIENT_ID_LENGTH,
    RELAY_EVENTS,
    ClientId,
    Empty,
    ProtocolError,
    parse,
    relayed,
    valid_client_id,
)

# What a client id is, said the plain way: 1 to 128 characters from '!' (0x21) to '~' (0x7e).
CLIENT_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_CLIENT_ID_LENGTH}}}")


@given(st.text(max_size=MAX_CLIENT_ID_LENGTH + 2))
def test_valid_client_id_is_printable_ascii_without_spaces(value: str) -> None:
    assert valid_client_id(value) == bool(CLIENT_ID.fullmatch(value))


@given(st.text(st.characters(min_codepoint=0x1F, max_codepoint=0x80), max_size=130))
def test_valid_client_id_near_the_edges_of_the_range(value: str) -> None:
    assert valid_client_id(value) == bool(CLIENT_ID.fullmatch(value))


def _client_id_fields() -> list[tuple[str, str]]:
    """(event, JSON field) for every ClientId field a client may send."""
    found = []
    for event, kind in CLIENT_EVENTS.items():
        for field in msgspec.structs.fields(kind):
            if field.type == ClientId or ClientId in getattr(field.type, "__args__", ()):
                found.append((event, field.encode_name))
    return found


def _message(event: str, field: str, client_id: str) -> bytes:
    payload: dict[str, object] = {field: client_id}
    if event in ("offer", "answer"):
        payload["sdp"] = "v=0\r\n"
    elif event == "candidate":
        payload["candidate"] = ""
    elif event == "connection_state":
        payload["state"] = "connected"
    return orjson.dumps({"event": event, "payload": payload})


def test_every_client_id_field_is_found() -> None:
    # One per payload type at most: `parse` checks one.
    fields = _client_id_fields()
    assert len({event for event, _ in fields}) == len(fields)
    assert dict(fields) == {
        "lower_hand": "clientId",
        "accept_waiting": "clientId",
        "deny_waiting": "clientId",
        "accept_screenshare": "clientId",
        "deny_screenshare": "clientId",
        "offer": "targetClientId",
        "answer": "targetClientId",
        "candidate": "targetClientId",
        "renegotiate": "targetClientId",
        "kick": "clientId",
        "transfer_host": "clientId",
        "mute_request": "clientId",
        "connection_state": "peerClientId",
    }


@pytest.mark.parametrize(("event", "field"), _client_id_fields())
@pytest.mark.parametrize("bad", ["", "has space", "t\u00e9", "bell\u0007", "del\x7f", "x" * 129])
def test_a_malformed_client_id_is_an_invalid_payload(event: str, field: str, bad: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse(_message(event, field, bad))
    assert (refused.value.code, refused.value.event) == ("invalid_payload", event)
    assert f"$.{field}" in refused.value.message


@pytest.mark.parametrize(("event", "field"), _client_id_fields())
def test_a_well_formed_client_id_is_kept(event: str, field: str) -> None:
    good = "!~" + "x" * (MAX_CLIENT_ID_LENGTH - 2)
    parsed_event, payload = parse(_message(event, field, good))
    assert parsed_event == event
    assert good in msgspec.json.encode(payload).decode()


def test_lower_hand_without_a_client_id_is_still_fine() -> None:
    assert parse(b'{"event": "lower_hand", "payload": {}}')[0] == "lower_hand"


@given(
    client_id=st.from_regex(CLIENT_ID, fullmatch=True),
    display_name=st.text(max_size=40),
    candidate=st.text(max_size=200),
)
def test_relayed_is_the_sender_card_then_the_fields(
    client_id: str, display_name: str, candidate: str
) -> None:
    message = orjson.dumps(
        {"event": "candidate", "payload": {"targetClientId": "t", "candidate": candidate}}
    )
    event, payload = parse(message)
    whole = orjson.loads(relayed(event, payload, client_id, display_name))
    assert list(whole) == ["event", "payload"]
    assert whole["event"] == "candidate"
    out = whole["payload"]
    assert out == {
        "clientId": client_id,
        "displayName": display_name,
        "targetClientId": "t",
        "candidate": candidate,
        "sdpMid": None,
        "sdpMLineIndex": None,
        "usernameFragment": None,
    }
    assert list(out)[:2] == ["clientId", "displayName"]


def test_relayed_keeps_the_sdp_as_it_came() -> None:
    sdp = '"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n\\u00e9"'
    message = b'{"event":"offer","payload":{"targetClientId":"t","sdp":' + sdp.encode() + b"}}"
    event, payload = parse(message)
    out = relayed(event, payload, "me", 'Ann "A" \\ B')
    assert sdp.encode() in out
    assert orjson.loads(out)["payload"]["displayName"] == 'Ann "A" \\ B'


def test_relayed_without_fields_is_the_sender_card() -> None:
    out = relayed("renegotiate", Empty(), "me", "Ann")
    assert orjson.loads(out) == {
        "event": "renegotiate",
        "payload": {"clientId": "me", "displayName": "Ann"},
    }


@pytest.mark.parametrize("event", sorted(RELAY_EVENTS))
def test_relayed_names_each_relay_event(event: str) -> None:
    assert orjson.loads(relayed(event, Empty(), "me", "Ann"))["event"] == event
