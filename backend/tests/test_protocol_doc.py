"""docs/protocol.md stays true to the code.

Every example block is preceded by a marker line `<!-- example: client|server <event> -->`.
Client examples must pass the server's own parser; server examples must have the shape the
room really produces; the tables of roles, error codes, close codes and limits must match
the code.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from videoconf import permissions, protocol
from videoconf.auth import Authenticator
from videoconf.config import Settings
from videoconf.hub import Connection, Hub
from videoconf.metrics import Metrics
from videoconf.protocol import (
    CLIENT_EVENTS,
    CLOSE_CODES,
    RECONNECT_REASONS,
    SERVER_EVENTS,
    DisconnectReason,
    ErrorCode,
    Role,
)
from videoconf.room import Deliver, RoleChanged, Room, Send
from videoconf.turn import ice_servers_payload

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"

MARKER = re.compile(r"^<!-- example: (?P<side>client|server) (?P<event>[a-z_]+) -->$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _examples() -> list[tuple[str, str, int, str]]:
    """(side, marker event, line number, block text) for every marked example."""
    lines = _text().splitlines()
    found: list[tuple[str, str, int, str]] = []
    for number, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if match is None:
            continue
        start = number + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        assert start < len(lines) and lines[start].strip() == "```json", (
            f"line {number + 1}: an example marker must be followed by a ```json block"
        )
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"line {start + 1}: unterminated code block"
        found.append((match["side"], match["event"], number + 1, "\n".join(lines[start + 1 : end])))
    return found


EXAMPLES = _examples()
CLIENT_EXAMPLES = [e for e in EXAMPLES if e[0] == "client"]
SERVER_EXAMPLES = [e for e in EXAMPLES if e[0] == "server"]


def _ids(examples: list[tuple[str, str, int, str]]) -> list[str]:
    return [f"{side}-{event}-line{line}" for side, event, line, _ in examples]


def _section(title: str, level: int = 2) -> str:
    """The text of the heading `title` (at `level`) up to the next heading of that level."""
    text = _text()
    hashes = "#" * level
    match = re.search(rf"^{hashes} {re.escape(title)}\s*$", text, re.MULTILINE)
    assert match is not None, f"no {hashes} {title} heading"
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _subsections(parent: str) -> dict[str, str]:
    """### `name` sections inside the ## `parent` section, by name."""
    body = _section(parent)
    parts = re.split(r"^### `([a-z_]+)`\s*$", body, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not set(line) <= {"|", "-", " "}:
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


# -- the examples --------------------------------------------------------------------------


def test_doc_has_examples() -> None:
    assert DOC.is_file(), DOC
    assert CLIENT_EXAMPLES
    assert SERVER_EXAMPLES


def test_every_json_block_is_a_marked_example() -> None:
    """No unchecked ```json block: other snippets use other fences."""
    lines = _text().splitlines()
    json_blocks = [
        i
        for i, line in enumerate(lines)
        if (m := FENCE.match(line.strip())) and m["lang"] == "json"
    ]
    assert len(json_blocks) == len(EXAMPLES)


@pytest.mark.parametrize(("side", "event", "line", "block"), EXAMPLES, ids=_ids(EXAMPLES))
def test_example_is_an_envelope(side: str, event: str, line: int, block: str) -> None:
    message = json.loads(block)
    assert isinstance(message, dict)
    assert set(message) == {"event", "payload"}, f"line {line}: keys {sorted(message)}"
    assert message["event"] == event, f"line {line}: marker says {event}"
    assert isinstance(message["payload"], dict)


@pytest.mark.parametrize(
    ("side", "event", "line", "block"), CLIENT_EXAMPLES, ids=_ids(CLIENT_EXAMPLES)
)
def test_client_example_parses(side: str, event: str, line: int, block: str) -> None:
    parsed_event, payload = protocol.parse(block)
    assert parsed_event == event
    assert isinstance(payload, CLIENT_EVENTS[event])
    # Unknown fields would be ignored by the server; an example must not rely on one.
    known = {field.encode_name for field in msgspec.structs.fields(CLIENT_EVENTS[event])}
    extra = set(json.loads(block)["payload"]) - known
    assert not extra, f"line {line}: {event} has no field(s) {sorted(extra)}"


@pytest.mark.parametrize(
    ("side", "event", "line", "block"), SERVER_EXAMPLES, ids=_ids(SERVER_EXAMPLES)
)
def test_server_example_event_exists(side: str, event: str, line: int, block: str) -> None:
    assert json.loads(block)["event"] in SERVER_EVENTS


def test_every_client_event_has_an_example() -> None:
    assert set(CLIENT_EVENTS) <= {event for _, event, _, _ in CLIENT_EXAMPLES}


def test_every_server_event_has_an_example() -> None:
    assert set(SERVER_EVENTS) <= {event for _, event, _, _ in SERVER_EXAMPLES}


# -- server examples have the shape the server produces ------------------------------------


def _same_shape(example: Any, actual: Any, where: str = "payload") -> None:
    """Same keys in every object; list items compared when both sides have some."""
    if isinstance(example, dict) and isinstance(actual, dict):
        assert set(example) == set(actual), f"{where}: {sorted(example)} != {sorted(actual)}"
        for key in example:
            _same_shape(example[key], actual[key], f"{where}.{key}")
    elif isinstance(example, list) and isinstance(actual, list) and example and actual:
        if len(example) == len(actual):
            # Item by item: a list may mix shapes (ice_servers: a STUN entry, a TURN entry).
            for index, (item, real) in enumerate(zip(example, actual, strict=True)):
                _same_shape(item, real, f"{where}[{index}]")
        else:
            for item in example:
                _same_shape(item, actual[0], f"{where}[]")


def _produced_payloads() -> dict[str, list[Any]]:
    """Drive a room through every server event and collect what it sends."""
    room = Room("standup-42", 0.0)
    seen: dict[str, list[Any]] = {}

    def collect(effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Deliver):
                # Round-trip through the real encoder, as the hub does.
                message = orjson.loads(protocol.encode(effect.event, effect.payload))
            elif isinstance(effect, Send):  # a relay, encoded by the room
                message = orjson.loads(effect.message)
            else:
                continue
            seen.setdefault(message["event"], []).append(message["payload"])

    def send(who: str, event: str, payload: dict[str, Any] | None = None) -> None:
        raw = orjson.dumps({"event": event, "payload": payload or {}})
        name, parsed = protocol.parse(raw)
        collect(room.handle(who, name, parsed, 10.0))

    collect(room.join("ann", "Ann", 1.0))
    collect(room.join("bob", "Bob", 2.0))  # waiting_request, waiting view
    send("ann", "accept_waiting", {"clientId": "bob"})
    send("bob", "add_chat", {"chatContent": "hi"})
    send("bob", "delete_chat", {"chatId": seen["add_chat"][0]["chatId"]})
    send("bob", "recents_chat")
    send("bob", "request_screenshare")
    send("ann", "accept_screenshare", {"clientId": "bob"})
    send("ann", "deny_screenshare", {"clientId": "bob"})
    send("ann", "mute_request", {"clientId": "bob"})
    send("bob", "offer", {"targetClientId": "ann", "sdp": "v=0"})
    send("ann", "answer", {"targetClientId": "bob", "sdp": "v=0"})
    send("bob", "candidate", {"targetClientId": "ann", "candidate": ""})
    send("bob", "renegotiate", {"targetClientId": "ann"})
    send("bob", "ping", {"timestamp": 1})
    send("bob", "kick", {"clientId": "ann"})  # error: forbidden
    return seen


async def _disconnect_payload() -> Any:
    class Socket:
        async def send_frame(
            self, message: bytes, opcode: Any, compress: int | None = None
        ) -> None:
            pass

        async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
            return True

    connection = Connection(Socket(), "standup-42", "ann", "Ann", Settings(), 0.0, 1)
    connection.close(DisconnectReason.KICKED)
    data = connection.queue[-1]
    connection.writer.cancel()
    await asyncio.gather(connection.writer, return_exceptions=True)
    message = orjson.loads(data)
    assert message["event"] == "disconnect"
    return message["payload"]


async def _ticket_payload() -> Any:
    class Socket:
        async def send_frame(
            self, message: bytes, opcode: Any, compress: int | None = None
        ) -> None:
            pass

        async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
            return True

    settings = Settings()
    hub = Hub(settings, Metrics(), tickets=Authenticator(settings).issue_ticket)
    connection = Connection(Socket(), "standup-42", "ann", "Ann", settings, 0.0, 1)
    hub.connections[("standup-42", "ann")] = connection
    hub.apply("standup-42", [RoleChanged("ann", Role.HOST)])
    data = connection.queue[-1]
    connection.writer.cancel()
    await asyncio.gather(connection.writer, return_exceptions=True)
    message = orjson.loads(data)
    assert message["event"] == "ticket"
    return message["payload"]


def _ice_servers_payload() -> Any:
    """What the WebSocket sends first, with STUN and TURN configured, round-tripped."""
    settings = Settings(
        stun_urls=("stun:stun.example.com:3478",),
        turn_urls=("turn:turn.example.com:3478?transport=udp",),
        turn_secret="example-secret",
    )
    data = protocol.encode("ice_servers", ice_servers_payload(settings, "ann", 1767225600.0))
    return orjson.loads(data)["payload"]


def test_server_examples_have_the_real_shape() -> None:
    produced = _produced_payloads()
    produced["disconnect"] = [asyncio.run(_disconnect_payload())]
    produced["ticket"] = [asyncio.run(_ticket_payload())]
    produced["ice_servers"] = [_ice_servers_payload()]
    assert set(SERVER_EVENTS) <= set(produced), set(SERVER_EVENTS) - set(produced)
    for _, event, line, block in SERVER_EXAMPLES:
        example = json.loads(block)["payload"]
        actual = produced[event]
        # Several real payloads of one event (room_state views) have the same keys.
        _same_shape(example, actual[0], f"line {line} {event}")


# -- tables and texts ----------------------------------------------------------------------


def test_every_error_code_is_in_the_errors_table() -> None:
    text = _text()
    codes = {row[0] for row in _table_rows(_section("Errors"))}
    for code in ErrorCode:
        assert f"`{code.value}`" in text
        assert f"`{code.value}`" in codes, f"{code.value} missing from the errors table"


def test_close_codes_table_matches_the_code() -> None:
    text = _text()
    rows = {row[0]: row for row in _table_rows(_section("Disconnects and close codes"))}
    for reason in DisconnectReason:
        assert f"`{reason.value}`" in text
        row = rows.get(f"`{reason.value}`")
        assert row is not None, f"{reason.value} missing from the close codes table"
        assert row[1] == str(CLOSE_CODES[reason]), f"{reason.value}: close code {row[1]}"
        assert row[2] == ("yes" if reason in RECONNECT_REASONS else "no"), reason.value


def test_client_event_sections_state_the_minimum_role() -> None:
    sections = _subsections("Client events")
    assert set(sections) == set(CLIENT_EVENTS)
    summary = {
        row[0].strip("`"): row[1].strip("`")
        for row in _table_rows(_section("Client events").split("### ")[0])
        if row[0].startswith("`")
    }
    for event, minimum in permissions.MINIMUM_ROLE.items():
        role = minimum.name.lower()
        assert summary.get(event) == role, f"summary table: {event} needs {role}"
        match = re.search(r"\*\*Who may send:\*\* `([a-z]+)`", sections[event])
        assert match is not None, f"{event}: no 'Who may send' line"
        assert match[1] == role, f"{event}: needs {role}, doc says {match[1]}"


def test_server_event_sections_exist() -> None:
    assert set(_subsections("Server events")) == set(SERVER_EVENTS)


def test_limits_table_matches_settings_defaults() -> None:
    defaults = Settings.from_env({})
    rows = [r for r in _table_rows(_section("Limits")) if re.fullmatch(r"`[A-Z_0-9]+`", r[0])]
    assert len(rows) >= 8
    for row in rows:
        name = row[0].strip("`")
        documented = float(row[1])
        # Find the setting the variable controls by changing it.
        changed = Settings.from_env({name: str(documented * 2 if documented else 1)})
        fields = [
            field
            for field in Settings.__dataclass_fields__
            if field != "jwt_secret" and getattr(changed, field) != getattr(defaults, field)
        ]
        assert len(fields) == 1, f"{name} changes {fields}"
        assert getattr(defaults, fields[0]) == documented, f"{name}: default is not {row[1]}"


def test_fixed_limits_are_stated() -> None:
    text = _text()
    assert protocol.ROOM_ID_PATTERN in text
    sections = _subsections("Client events")
    assert f"1 to {protocol.MAX_CHAT_LENGTH} characters" in sections["add_chat"]
    assert f"1 to {protocol.MAX_SDP_LENGTH} characters" in sections["offer"]
    assert f"1 to {protocol.MAX_SDP_LENGTH} characters" in sections["answer"]
    assert f"at most {protocol.MAX_CANDIDATE_LENGTH} characters" in sections["candidate"]


def _slug(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_internal_links_resolve() -> None:
    text = _text()
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        slug = _slug(line.lstrip("#"))
        n = counts.get(slug, 0)
        anchors.add(slug if n == 0 else f"{slug}-{n}")
        counts[slug] = n + 1
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"broken link #{link}"
