"""The wire contract: events, payload types, error codes, and the one JSON codec.

Every message both ways is ``{"event": str, "payload": object}``. Client messages are
parsed and validated here, once, at the edge; the room never sees raw JSON.
"""

from __future__ import annotations

import enum
import functools
from typing import Annotated, Any, Final, Literal, Union

import msgspec
import orjson

MAX_CLIENT_ID_LENGTH: Final = 128
ROOM_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{3,64}$"
MAX_CHAT_LENGTH: Final = 1000
MAX_SDP_LENGTH: Final = 32_768
MAX_CANDIDATE_LENGTH: Final = 1024


def valid_client_id(value: str) -> bool:
    """A client id: 1 to MAX_CLIENT_ID_LENGTH printable ASCII characters, no spaces
    (0x21-0x7e). Checked in Python, not by a msgspec pattern: the regex was a tenth of the
    server's own cost of relaying a message."""
    return (
        0 < len(value) <= MAX_CLIENT_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


# The length is checked while decoding; the characters by `parse` (`_CLIENT_ID_FIELDS`).
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_ID_LENGTH)]


class Role(enum.IntEnum):
    """Ordered roles: a higher role may do everything a lower one may."""

    WAITING = 0
    PARTICIPANT = 1
    SCREENSHARE = 2
    HOST = 3


class ErrorCode(enum.StrEnum):
    BAD_JSON = "bad_json"
    BAD_ENVELOPE = "bad_envelope"
    BINARY_FRAME = "binary_frame"
    UNKNOWN_EVENT = "unknown_event"
    INVALID_PAYLOAD = "invalid_payload"
    MESSAGE_TOO_LARGE = "message_too_large"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    ROOM_FULL = "room_full"
    INTERNAL_ERROR = "internal_error"


class DisconnectReason(enum.StrEnum):
    LEFT = "left"
    REPLACED = "replaced"
    KICKED = "kicked"
    DENIED = "denied"
    ROOM_FULL = "room_full"
    SERVER_BUSY = "server_busy"
    SERVER_SHUTDOWN = "server_shutdown"
    POLICY_VIOLATION = "policy_violation"
    SLOW_CONSUMER = "slow_consumer"


# WebSocket close codes sent with each reason (RFC 6455 codes where one fits, 4xxx otherwise).
CLOSE_CODES: Final[dict[DisconnectReason, int]] = {
    DisconnectReason.LEFT: 1000,
    DisconnectReason.REPLACED: 4000,
    DisconnectReason.KICKED: 4001,
    DisconnectReason.DENIED: 4002,
    DisconnectReason.ROOM_FULL: 4003,
    DisconnectReason.SERVER_BUSY: 1013,
    DisconnectReason.SERVER_SHUTDOWN: 1012,
    DisconnectReason.POLICY_VIOLATION: 1008,
    DisconnectReason.SLOW_CONSUMER: 4008,
}
# A close the server starts must be done within this long (seconds), or the TCP connection
# is cut.
CLOSE_GRACE: Final = 2.0


def sendable(code: int | None) -> bool:
    """Close codes an endpoint may put in a close frame (1005, 1006, 1015 are not)."""
    return code is not None and (
        1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    )


# Reasons after which a client should come back on its own.
RECONNECT_REASONS: Final = frozenset(
    {DisconnectReason.SERVER_SHUTDOWN, DisconnectReason.SERVER_BUSY, DisconnectReason.SLOW_CONSUMER}
)


class Payload(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Base of every client payload; unknown fields (such as a spoofed clientId) are ignored."""


class Empty(Payload):
    pass


class AddChat(Payload):
    chat_content: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_LENGTH)]
    # Lets a client resend a message it is not sure arrived (after a reconnect): a repeat
    # from the same client is not posted twice.
    client_message_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class DeleteChat(Payload):
    chat_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Subject(Payload):
    """A host action (or a hand lowered by a host) names its subject by clientId."""

    client_id: ClientId


class OptionalSubject(Payload):
    client_id: ClientId | None = None


class Toggle(Payload):
    enabled: bool


# An SDP is kept as the JSON string the client sent (`parse` checks it: a string of 1 to
# MAX_SDP_LENGTH characters, valid UTF-8) and relayed as it came: unescaping its few dozen
# `\r\n` and escaping them again was half the server's cost of relaying an offer.
SdpText = msgspec.Raw


class Offer(Payload):
    target_client_id: ClientId
    sdp: SdpText
    type: Literal["offer"] = "offer"


class Answer(Payload):
    target_client_id: ClientId
    sdp: SdpText
    type: Literal["answer", "pranswer"] = "answer"


class Candidate(Payload):
    target_client_id: ClientId
    # An empty candidate string is the browser's end-of-candidates signal.
    candidate: Annotated[str, msgspec.Meta(max_length=MAX_CANDIDATE_LENGTH)]
    sdp_mid: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    sdp_m_line_index: Annotated[int, msgspec.Meta(ge=0, le=1024)] | None = None
    username_fragment: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class Renegotiate(Payload):
    target_client_id: ClientId
    reason: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class ConnectionState(Payload):
    peer_client_id: ClientId
    state: Literal["connected", "failed"]
    relayed: bool = False


class Ping(Payload):
    timestamp: float | None = None


RELAY_EVENTS: Final = frozenset({"offer", "answer", "candidate", "renegotiate"})

# Client event -> payload type. The only place that says which events a client may send.
CLIENT_EVENTS: Final[dict[str, type[Payload]]] = {
    "add_chat": AddChat,
    "delete_chat": DeleteChat,
    "recents_chat": Empty,
    "raise_hand": Empty,
    "lower_hand": OptionalSubject,
    "accept_waiting": Subject,
    "deny_waiting": Subject,
    "request_screenshare": Empty,
    "accept_screenshare": Subject,
    "deny_screenshare": Subject,
    "toggle_audio": Toggle,
    "toggle_video": Toggle,
    "toggle_screenshare": Toggle,
    "offer": Offer,
    "answer": Answer,
    "candidate": Candidate,
    "renegotiate": Renegotiate,
    "kick": Subject,
    "transfer_host": Subject,
    "mute_request": Subject,
    "connection_state": ConnectionState,
    "ping": Ping,
    "disconnect": Empty,
}

# Events only the server sends.
SERVER_EVENTS: Final = frozenset(
    {
        "room_state",
        "waiting_request",
        "pong",
        "error",
        "disconnect",
        "add_chat",
        "delete_chat",
        "recents_chat",
        "accept_waiting",
        "request_screenshare",
        "accept_screenshare",
        "deny_screenshare",
        "mute_request",
        "ticket",
        "ice_servers",
    }
    | RELAY_EVENTS
)


class Envelope(msgspec.Struct, frozen=True):
    event: Annotated[str, msgspec.Meta(max_length=64)]
    payload: msgspec.Raw = msgspec.Raw(b"{}")


class ProtocolError(Exception):
    """A client message that cannot be accepted; becomes an `error` event."""

    def __init__(self, code: ErrorCode, message: str, event: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.event = event


_envelope_decoder = msgspec.json.Decoder(Envelope)
_payload_decoders = {name: msgspec.json.Decoder(kind) for name, kind in CLIENT_EVENTS.items()}
# One pass for a well-formed message: a union of `{"event": <name>, "payload": <type>}`
# structs tagged by `event`. Anything it refuses goes through the two-pass parse below,
# which says precisely what is wrong.
_events: dict[type, str] = {
    msgspec.defstruct(f"{name}_message", [("payload", kind)], tag_field="event", tag=name): name
    for name, kind in CLIENT_EVENTS.items()
}
_message_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[tuple(_events)])  # noqa: UP007
_payload_encoder = msgspec.json.Encoder()


def _client_id_field(kind: type[Payload]) -> tuple[str, str] | None:
    """(attribute, JSON name) of a payload type's ClientId field (no type has two)."""
    for field in msgspec.structs.fields(kind):
        if field.type == ClientId or ClientId in getattr(field.type, "__args__", ()):
            return field.name, field.encode_name
    return None


# Payload type -> its ClientId field, whose characters `parse` checks.
_CLIENT_ID_FIELD = {
    kind: field for kind in set(CLIENT_EVENTS.values()) if (field := _client_id_field(kind))
}
_SDP_PAYLOADS: Final = (Offer, Answer)


def parse(data: bytes | str) -> tuple[str, Payload]:
    """Parse one client message into (event, typed payload) or raise ProtocolError."""
    try:
        message = _message_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        event, payload = _parse_slowly(data)
    else:
        event, payload = _events[type(message)], message.payload
    if isinstance(payload, _SDP_PAYLOADS):
        check_sdp(payload.sdp, event)
    field = _CLIENT_ID_FIELD.get(type(payload))
    if field is not None:
        client_id = getattr(payload, field[0])
        if client_id is not None and not valid_client_id(client_id):
            raise ProtocolError(
                ErrorCode.INVALID_PAYLOAD,
                f"Expected `str` of printable ASCII characters, no spaces - at `$.{field[1]}`",
                event,
            )
    return event, payload


def _parse_slowly(data: bytes | str) -> tuple[str, Payload]:
    try:
        envelope = _envelope_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, f"expected {{event, payload}}: {exc}") from None
    except msgspec.DecodeError:
        raise ProtocolError(ErrorCode.BAD_JSON, "message is not valid JSON") from None
    decoder = _payload_decoders.get(envelope.event)
    if decoder is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_EVENT, f"unknown event {envelope.event[:64]!r}", envelope.event[:64]
        )
    try:
        return envelope.event, decoder.decode(envelope.payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, str(exc), envelope.event) from None


def check_sdp(raw: msgspec.Raw, event: str) -> None:
    """An SDP as sent (JSON text, already known to be well-formed JSON): a string of 1 to
    MAX_SDP_LENGTH characters, in valid UTF-8 (it is relayed as it came, in a text frame)."""
    text = bytes(raw)
    problem = None
    if text[:1] != b'"':
        problem = "Expected `str` - at `$.sdp`"
    elif len(text) <= 2:
        problem = "Expected `str` of length >= 1 - at `$.sdp`"
    elif not text.isascii():
        try:
            text.decode()
        except UnicodeDecodeError:
            problem = "`sdp` is not valid UTF-8"
    # The JSON text is at least as long as the string it holds: only a long one is decoded.
    if (
        problem is None
        and len(text) - 2 > MAX_SDP_LENGTH
        and len(msgspec.json.decode(text, type=str)) > MAX_SDP_LENGTH
    ):
        problem = f"Expected `str` of length <= {MAX_SDP_LENGTH} - at `$.sdp`"
    if problem is not None:
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, problem, event)


def relayed(event: str, payload: Payload, client_id: str, display_name: str) -> bytes:
    """A relayed message as its recipient gets it, encoded once and in one piece: the
    payload is the sender's card the server vouches for (`clientId`, `displayName`), then
    the payload's fields as parsed (an SDP as the JSON text it came in). Relayed payload
    types have no field named like those."""
    fields = _payload_encoder.encode(payload)
    sender = _sender(client_id, display_name)
    if fields == b"{}":
        return b"".join((_RELAY_HEADS[event], sender[:-1], b"}}"))
    return b"".join((_RELAY_HEADS[event], sender, fields[1:], b"}"))


# Relay event -> `{"event":…,"payload":` for `relayed`.
_RELAY_HEADS: Final = {
    event: orjson.dumps({"event": event, "payload": None})[: -len(b"null}")]
    for event in RELAY_EVENTS
}


@functools.lru_cache(maxsize=4096)
def _sender(client_id: str, display_name: str) -> bytes:
    """`{"clientId":…,"displayName":…,` (an open JSON object) for `relayed`."""
    return orjson.dumps({"clientId": client_id, "displayName": display_name})[:-1] + b","


def encode(event: str, payload: Any) -> bytes:
    """Encode one server message. Called once per message, never per recipient."""
    return orjson.dumps({"event": event, "payload": payload})


def error_payload(code: ErrorCode, message: str, event: str | None = None) -> dict[str, Any]:
    return {"code": code.value, "message": message, "event": event}
