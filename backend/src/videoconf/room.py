"""The room state machine: members, roles, waiting room, chat, hands, screen share, relay.

Pure: no sockets, no clocks, no I/O. Every entry point takes the time as an argument and
returns the effects (deliveries, closes, metric observations) for the shell to carry out,
so the rules can be checked by plain calls and by property-based tests.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from . import permissions
from .protocol import (
    CLIENT_EVENTS,
    AddChat,
    ConnectionState,
    DeleteChat,
    DisconnectReason,
    ErrorCode,
    OptionalSubject,
    Payload,
    Ping,
    Role,
    Subject,
    Toggle,
    error_payload,
    relayed,
)

ADMITTED = Role.PARTICIPANT


class Deliver(msgspec.Struct, frozen=True):
    """Send one message (encoded once) to each recipient."""

    recipients: tuple[str, ...]
    event: str
    payload: Any


class Send(msgspec.Struct, frozen=True):
    """Send one message already encoded (a relay, by `protocol.relayed`) to one member."""

    recipient: str
    message: bytes


class Close(msgspec.Struct, frozen=True):
    """Tell a client why, then close its connection."""

    client_id: str
    reason: DisconnectReason


class ParticipantsChanged(msgspec.Struct, frozen=True):
    """The number of admitted members changed (feeds the room_participants histogram)."""

    count: int


class PeerOutcome(msgspec.Struct, frozen=True):
    """A client reported how one of its peer connections ended up."""

    status: Literal["success", "failure"]
    relayed: bool


class RoleChanged(msgspec.Struct, frozen=True):
    """An admitted member's role is now `role` (the shell hands them a fresh ticket)."""

    client_id: str
    role: Role


Effect = Deliver | Send | Close | ParticipantsChanged | PeerOutcome | RoleChanged


@dataclass(slots=True)
class Member:
    client_id: str
    display_name: str
    role: Role
    order: int  # arrival order; the lowest admitted one is the longest present
    hand_raised: int | None = None  # order of raising, for a fair queue
    audio: bool = False
    video: bool = False
    sharing: bool = False
    wants_screenshare: bool = False
    reported: dict[str, str] = field(default_factory=dict)

    def card(self) -> dict[str, str]:
        return {"clientId": self.client_id, "displayName": self.display_name}


@dataclass(slots=True)
class ChatMessage:
    chat_id: str
    client_id: str
    display_name: str
    content: str
    timestamp: int  # milliseconds since the epoch
    client_message_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "chatId": self.chat_id,
            "clientId": self.client_id,
            "displayName": self.display_name,
            "chatContent": self.content,
            "timestamp": self.timestamp,
            "clientMessageId": self.client_message_id,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> ChatMessage:
        return cls(
            data["chatId"],
            data["clientId"],
            data["displayName"],
            data["chatContent"],
            data["timestamp"],
            data.get("clientMessageId"),
        )


@dataclass(slots=True)
class Absent:
    """An admitted member whose connection dropped: their role waits for them a while."""

    role: Role
    until: float


@dataclass(frozen=True, slots=True)
class RoomLimits:
    max_members: int = 50
    chat_history: int = 200
    reconnect_grace: float = 30.0
    empty_room_ttl: float = 300.0


class Room:
    """One room's state and rules. Every method returns the effects to carry out."""

    def __init__(self, room_id: str, now: float, limits: RoomLimits | None = None) -> None:
        self.room_id = room_id
        self.limits = limits or RoomLimits()
        self.members: dict[str, Member] = {}
        self.absent: dict[str, Absent] = {}
        self.chat: deque[ChatMessage] = deque(maxlen=self.limits.chat_history)
        # Everyone this room has seen: an admission ticket counts only for strangers, i.e.
        # after the room was lost (a restart), never to undo a kick, a denial or a demotion.
        self.known: set[str] = set()
        # Chat additions and deletions since the shell last took them (to persist them).
        self.chat_changes: list[tuple[Literal["add", "delete"], ChatMessage]] = []
        self.counter = 0
        self.keep_until = now + self.limits.empty_room_ttl

    # -- queries --------------------------------------------------------------------------

    def admitted(self) -> list[Member]:
        return sorted(
            (m for m in self.members.values() if m.role >= ADMITTED), key=lambda m: m.order
        )

    def admitted_ids(self) -> tuple[str, ...]:
        return tuple(m.client_id for m in self.members.values() if m.role >= ADMITTED)

    def host_ids(self) -> tuple[str, ...]:
        return tuple(m.client_id for m in self.members.values() if m.role == Role.HOST)

    def participant_count(self) -> int:
        return sum(1 for m in self.members.values() if m.role >= ADMITTED)

    def removable(self, now: float) -> bool:
        """Empty, nobody expected back, and past its keep-alive time."""
        return not self.members and not self.absent and now >= self.keep_until

    def state_for(self, member: Member) -> dict[str, Any]:
        """The room as one member may see it."""
        you = {**member.card(), "role": member.role.name.lower()}
        if member.role < ADMITTED:
            return {
                "roomId": self.room_id,
                "you": you,
                "hosts": [],
                "participants": [],
                "screenshareAllowed": [],
                "handsRaised": [],
                "waitingUsers": [],
                "screenshareRequests": [],
                "sharingScreen": [],
                "unmuted": [],
                "cameraOn": [],
            }
        return {**self._shared_state(member.role == Role.HOST), "you": you}

    # -- membership -----------------------------------------------------------------------

    def join(
        self, client_id: str, display_name: str, now: float, ticket_role: Role | None = None
    ) -> list[Effect]:
        """A connection for this identity arrived (new, back after a drop, or replacing).

        `ticket_role` is the role of a verified admission ticket the client presented."""
        existing = self.members.get(client_id)
        if existing is not None:
            # Same identity again: the connection was replaced; role and place are kept.
            existing.display_name = display_name
            existing.audio = existing.video = existing.sharing = False
            existing.reported.clear()
            return [*self._state_to_all(), *self._welcome(existing)]
        if len(self.members) >= self.limits.max_members:
            return [
                Deliver(
                    (client_id,),
                    "error",
                    error_payload(
                        ErrorCode.ROOM_FULL, f"room is full ({self.limits.max_members} people)"
                    ),
                ),
                Close(client_id, DisconnectReason.ROOM_FULL),
            ]
        self._expire_absent(now)
        back = self.absent.pop(client_id, None)
        if back is not None:
            role = back.role
        elif ticket_role is not None and ticket_role >= ADMITTED and client_id not in self.known:
            role = ticket_role
        elif not self.admitted_ids() and not self.absent:
            role = Role.HOST  # first into an empty room
        else:
            role = Role.WAITING
        member = Member(client_id, display_name, role, self._next())
        self.members[client_id] = member
        self.known.add(client_id)
        effects: list[Effect] = []
        if role == Role.WAITING:
            effects.append(Deliver(self.host_ids(), "waiting_request", member.card()))
        else:
            effects.append(ParticipantsChanged(self.participant_count()))
        welcome = self._welcome(member)
        # Someone back from a drop may find the room without a host: settle that first.
        effects.extend(self._settle_hosts(now))
        effects.extend(welcome)
        return effects

    def leave(self, client_id: str, now: float, *, dropped: bool) -> list[Effect]:
        """A member left on purpose (dropped=False) or lost its connection (dropped=True)."""
        member = self.members.get(client_id)
        if member is None:
            return []
        if dropped and member.role >= ADMITTED:
            self.absent[client_id] = Absent(member.role, now + self.limits.reconnect_grace)
        return self._remove(member, now)

    def expire(self, now: float) -> list[Effect]:
        """Let go of absent members whose grace is over; settle who hosts."""
        if not self._expire_absent(now):
            return []
        return self._settle_hosts(now)

    # -- commands -------------------------------------------------------------------------

    def handle(self, client_id: str, event: str, payload: Payload, now: float) -> list[Effect]:
        """Apply one validated client command from a member."""
        actor = self.members.get(client_id)
        if actor is None:
            return []  # a message still in flight from someone already removed
        if not permissions.allowed(actor.role, event):
            needed = permissions.MINIMUM_ROLE[event].name.lower()
            message = (
                "waiting for a host to admit you"
                if actor.role == Role.WAITING
                else f"{event} needs the {needed} role"
            )
            return self._error(actor, ErrorCode.FORBIDDEN, message, event)
        effects: list[Effect] = _HANDLERS[event](self, actor, payload, now)
        return effects

    def _on_ping(self, actor: Member, payload: Ping, now: float) -> list[Effect]:
        return [
            Deliver(
                (actor.client_id,),
                "pong",
                {"timestamp": payload.timestamp, "serverTime": int(now * 1000)},
            )
        ]

    def _on_disconnect(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return [*self._remove(actor, now), Close(actor.client_id, DisconnectReason.LEFT)]

    def _on_add_chat(self, actor: Member, payload: AddChat, now: float) -> list[Effect]:
        content = payload.chat_content.strip()
        if not content:
            return self._error(
                actor, ErrorCode.INVALID_PAYLOAD, "chat message is empty", "add_chat"
            )
        if payload.client_message_id is not None:
            for earlier in self.chat:
                if (
                    earlier.client_id == actor.client_id
                    and earlier.client_message_id == payload.client_message_id
                ):
                    # A resend of a message that did arrive: acknowledge it again, post nothing.
                    return [Deliver((actor.client_id,), "add_chat", earlier.to_payload())]
        message = ChatMessage(
            f"c{self._next()}",
            actor.client_id,
            actor.display_name,
            content,
            int(now * 1000),
            payload.client_message_id,
        )
        self.chat.append(message)
        self.chat_changes.append(("add", message))
        return [Deliver(self.admitted_ids(), "add_chat", message.to_payload())]

    def _on_delete_chat(self, actor: Member, payload: DeleteChat, now: float) -> list[Effect]:
        for message in self.chat:
            if message.chat_id == payload.chat_id:
                break
        else:
            return self._error(actor, ErrorCode.NOT_FOUND, "no such chat message", "delete_chat")
        if message.client_id != actor.client_id and actor.role < permissions.MODERATOR_ROLE:
            return self._error(
                actor,
                ErrorCode.FORBIDDEN,
                "only a host may delete someone else's message",
                "delete_chat",
            )
        self.chat.remove(message)
        self.chat_changes.append(("delete", message))
        return [
            Deliver(
                self.admitted_ids(),
                "delete_chat",
                {"chatId": message.chat_id, "clientId": actor.client_id},
            )
        ]

    def _on_recents_chat(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return [self._recents(actor)]

    def _on_raise_hand(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        if actor.hand_raised is not None:
            return []
        actor.hand_raised = self._next()
        return self._state_to_all()

    def _on_lower_hand(self, actor: Member, payload: OptionalSubject, now: float) -> list[Effect]:
        subject = actor
        if payload.client_id is not None and payload.client_id != actor.client_id:
            if actor.role < permissions.MODERATOR_ROLE:
                return self._error(
                    actor,
                    ErrorCode.FORBIDDEN,
                    "only a host may lower someone else's hand",
                    "lower_hand",
                )
            found = self._admitted_subject(actor, payload.client_id, "lower_hand")
            if isinstance(found, list):
                return found
            subject = found
        if subject.hand_raised is None:
            return []
        subject.hand_raised = None
        return self._state_to_all()

    def _on_accept_waiting(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        subject = self.members.get(payload.client_id)
        if subject is None or subject.role != Role.WAITING:
            return self._error(
                actor, ErrorCode.NOT_FOUND, "nobody by that id is waiting", "accept_waiting"
            )
        return self._admit(subject, Role.PARTICIPANT)

    def _on_deny_waiting(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        subject = self.members.get(payload.client_id)
        if subject is None or subject.role != Role.WAITING:
            return self._error(
                actor, ErrorCode.NOT_FOUND, "nobody by that id is waiting", "deny_waiting"
            )
        return [*self._remove(subject, now), Close(subject.client_id, DisconnectReason.DENIED)]

    def _on_request_screenshare(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        if actor.role >= Role.SCREENSHARE or actor.wants_screenshare:
            return []
        actor.wants_screenshare = True
        return [
            Deliver(self.host_ids(), "request_screenshare", actor.card()),
            *self._state_to_all(),
        ]

    def _on_accept_screenshare(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        found = self._admitted_subject(actor, payload.client_id, "accept_screenshare")
        if isinstance(found, list):
            return found
        found.wants_screenshare = False
        effects: list[Effect] = []
        if found.role < Role.SCREENSHARE:
            found.role = Role.SCREENSHARE
            effects.append(RoleChanged(found.client_id, found.role))
        return [
            *effects,
            Deliver((found.client_id,), "accept_screenshare", found.card()),
            *self._state_to_all(),
        ]

    def _on_deny_screenshare(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        found = self._admitted_subject(actor, payload.client_id, "deny_screenshare")
        if isinstance(found, list):
            return found
        if not found.wants_screenshare and found.role != Role.SCREENSHARE:
            return []
        found.wants_screenshare = False
        effects: list[Effect] = []
        if found.role == Role.SCREENSHARE:  # a grant taken back stops the share
            found.role = Role.PARTICIPANT
            found.sharing = False
            effects.append(RoleChanged(found.client_id, found.role))
        return [
            *effects,
            Deliver((found.client_id,), "deny_screenshare", found.card()),
            *self._state_to_all(),
        ]

    def _on_toggle_audio(self, actor: Member, payload: Toggle, now: float) -> list[Effect]:
        if actor.audio == payload.enabled:
            return []
        actor.audio = payload.enabled
        return self._state_to_all()

    def _on_toggle_video(self, actor: Member, payload: Toggle, now: float) -> list[Effect]:
        if actor.video == payload.enabled:
            return []
        actor.video = payload.enabled
        return self._state_to_all()

    def _on_toggle_screenshare(self, actor: Member, payload: Toggle, now: float) -> list[Effect]:
        if actor.sharing == payload.enabled:
            return []
        actor.sharing = payload.enabled
        return self._state_to_all()

    def relay(self, client_id: str, event: str, payload: Any) -> Send | None:
        """`handle` for a relay event (offer, answer, candidate, renegotiate) that goes
        through, without a list of effects: the one `Send` that `handle` would return. None
        when it does not go through: `handle` then gives the answer (nothing, or an error
        for the sender).

        Most messages in a call are relays: on this path the hub spends about a sixth less
        per relayed message than through `handle` and `Hub.apply`."""
        actor = self.members.get(client_id)
        if actor is None or not permissions.allowed(actor.role, event):
            return None
        target = self.members.get(payload.target_client_id)
        if target is None or target.role < ADMITTED or target is actor:
            return None
        return Send(target.client_id, relayed(event, payload, actor.client_id, actor.display_name))

    def _relay(self, actor: Member, payload: Any, event: str) -> list[Effect]:
        send = self.relay(actor.client_id, event, payload)
        if send is None:
            return self._error(
                actor, ErrorCode.NOT_FOUND, "target is not a participant of this room", event
            )
        return [send]

    def _on_offer(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return self._relay(actor, payload, "offer")

    def _on_answer(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return self._relay(actor, payload, "answer")

    def _on_candidate(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return self._relay(actor, payload, "candidate")

    def _on_renegotiate(self, actor: Member, payload: Payload, now: float) -> list[Effect]:
        return self._relay(actor, payload, "renegotiate")

    def _on_kick(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        subject = self.members.get(payload.client_id)
        if subject is None or subject is actor:
            return self._error(actor, ErrorCode.NOT_FOUND, "nobody else by that id is here", "kick")
        self.absent.pop(subject.client_id, None)
        return [*self._remove(subject, now), Close(subject.client_id, DisconnectReason.KICKED)]

    def _on_transfer_host(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        found = self._admitted_subject(actor, payload.client_id, "transfer_host")
        if isinstance(found, list):
            return found
        found.role = Role.HOST
        found.wants_screenshare = False
        actor.role = Role.SCREENSHARE if actor.sharing else Role.PARTICIPANT
        return [
            RoleChanged(found.client_id, found.role),
            RoleChanged(actor.client_id, actor.role),
            *self._state_to_all(),
        ]

    def _on_mute_request(self, actor: Member, payload: Subject, now: float) -> list[Effect]:
        found = self._admitted_subject(actor, payload.client_id, "mute_request")
        if isinstance(found, list):
            return found
        return [Deliver((found.client_id,), "mute_request", actor.card())]

    def _on_connection_state(
        self, actor: Member, payload: ConnectionState, now: float
    ) -> list[Effect]:
        found = self._admitted_subject(actor, payload.peer_client_id, "connection_state")
        if isinstance(found, list):
            return found
        # Count each peer connection's outcome once per change, so a client cannot inflate it.
        outcome = f"{payload.state}:{payload.relayed}"
        if actor.reported.get(found.client_id) == outcome:
            return []
        actor.reported[found.client_id] = outcome
        status: Literal["success", "failure"] = (
            "success" if payload.state == "connected" else "failure"
        )
        return [PeerOutcome(status, payload.relayed)]

    # -- internals ------------------------------------------------------------------------

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _error(self, actor: Member, code: ErrorCode, message: str, event: str) -> list[Effect]:
        return [Deliver((actor.client_id,), "error", error_payload(code, message, event))]

    def _admitted_subject(self, actor: Member, client_id: str, event: str) -> Member | list[Effect]:
        subject = self.members.get(client_id)
        if subject is None or subject.role < ADMITTED or subject is actor:
            return self._error(
                actor, ErrorCode.NOT_FOUND, "no other participant by that id is here", event
            )
        return subject

    def _recents(self, member: Member) -> Deliver:
        return Deliver(
            (member.client_id,), "recents_chat", {"messages": [m.to_payload() for m in self.chat]}
        )

    def _welcome(self, member: Member) -> list[Effect]:
        if member.role < ADMITTED:
            return []
        return [RoleChanged(member.client_id, member.role), self._recents(member)]

    def _admit(self, subject: Member, role: Role) -> list[Effect]:
        subject.role = role
        subject.order = self._next()
        return [
            Deliver((subject.client_id,), "accept_waiting", subject.card()),
            ParticipantsChanged(self.participant_count()),
            *self._state_to_all(),
            *self._welcome(subject),
        ]

    def _remove(self, member: Member, now: float) -> list[Effect]:
        del self.members[member.client_id]
        for other in self.members.values():
            other.reported.pop(member.client_id, None)
        effects: list[Effect] = []
        if member.role >= ADMITTED:
            effects.append(ParticipantsChanged(self.participant_count()))
        if not self.members:
            self.keep_until = now + self.limits.reconnect_grace
        effects.extend(self._settle_hosts(now))
        return effects

    def _settle_hosts(self, now: float) -> list[Effect]:
        """Keep a host while anyone is here: hand over, or let the longest waiting in."""
        if self.host_ids():
            return self._state_to_all()
        admitted = self.admitted()
        if admitted:
            admitted[0].role = Role.HOST
            admitted[0].wants_screenshare = False
            return [RoleChanged(admitted[0].client_id, Role.HOST), *self._state_to_all()]
        waiting = sorted(self.members.values(), key=lambda m: m.order)
        if waiting and not self.absent:
            # Nobody admitted is here or expected back: the room is empty in effect.
            return self._admit(waiting[0], Role.HOST)
        return self._state_to_all()

    def _expire_absent(self, now: float) -> bool:
        gone = [cid for cid, absent in self.absent.items() if absent.until <= now]
        for cid in gone:
            del self.absent[cid]
        if gone and not self.members:
            self.keep_until = min(self.keep_until, now)
        return bool(gone)

    def _shared_state(self, for_host: bool) -> dict[str, Any]:
        admitted = self.admitted()
        waiting = sorted(
            (m for m in self.members.values() if m.role == Role.WAITING), key=lambda m: m.order
        )
        hands = sorted(
            (m for m in admitted if m.hand_raised is not None), key=lambda m: m.hand_raised or 0
        )
        return {
            "roomId": self.room_id,
            "hosts": [m.card() for m in admitted if m.role == Role.HOST],
            "participants": [m.card() for m in admitted],
            "screenshareAllowed": [m.card() for m in admitted if m.role >= Role.SCREENSHARE],
            "handsRaised": [m.card() for m in hands],
            "waitingUsers": [m.card() for m in waiting] if for_host else [],
            "screenshareRequests": (
                [m.card() for m in admitted if m.wants_screenshare] if for_host else []
            ),
            "sharingScreen": [m.card() for m in admitted if m.sharing],
            "unmuted": [m.card() for m in admitted if m.audio],
            "cameraOn": [m.card() for m in admitted if m.video],
        }

    def _state_to_all(self) -> list[Effect]:
        """A fresh room_state for every member, each seeing what their role may see."""
        if not self.members:
            return []
        shared = {True: self._shared_state(True), False: self._shared_state(False)}
        effects: list[Effect] = []
        for member in self.members.values():
            you = {**member.card(), "role": member.role.name.lower()}
            payload = (
                self.state_for(member)
                if member.role < ADMITTED
                else {**shared[member.role == Role.HOST], "you": you}
            )
            effects.append(Deliver((member.client_id,), "room_state", payload))
        return effects


# Client event -> its handler, looked up once per message.
_HANDLERS: dict[str, Any] = {event: getattr(Room, f"_on_{event}") for event in CLIENT_EVENTS}
