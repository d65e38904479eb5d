"""Which role may send which event: the one table, checked in one place."""

from __future__ import annotations

from typing import Final

from .protocol import CLIENT_EVENTS, Role

# The lowest role that may send each client event.
MINIMUM_ROLE: Final[dict[str, Role]] = {
    # Anyone connected, including people still in the waiting room.
    "ping": Role.WAITING,
    "disconnect": Role.WAITING,
    # Admitted members.
    "add_chat": Role.PARTICIPANT,
    "delete_chat": Role.PARTICIPANT,  # own messages; any message needs HOST (checked in room)
    "recents_chat": Role.PARTICIPANT,
    "raise_hand": Role.PARTICIPANT,
    "lower_hand": Role.PARTICIPANT,  # own hand; someone else's needs HOST (checked in room)
    "request_screenshare": Role.PARTICIPANT,
    "toggle_audio": Role.PARTICIPANT,
    "toggle_video": Role.PARTICIPANT,
    "offer": Role.PARTICIPANT,
    "answer": Role.PARTICIPANT,
    "candidate": Role.PARTICIPANT,
    "renegotiate": Role.PARTICIPANT,
    "connection_state": Role.PARTICIPANT,
    # Granted presenters.
    "toggle_screenshare": Role.SCREENSHARE,
    # Hosts.
    "accept_waiting": Role.HOST,
    "deny_waiting": Role.HOST,
    "accept_screenshare": Role.HOST,
    "deny_screenshare": Role.HOST,
    "kick": Role.HOST,
    "transfer_host": Role.HOST,
    "mute_request": Role.HOST,
}

assert MINIMUM_ROLE.keys() == CLIENT_EVENTS.keys(), "every client event needs a minimum role"

# What a member acting on someone else's object needs (deleting another's chat, lowering
# another's hand).
MODERATOR_ROLE: Final = Role.HOST


def allowed(role: Role, event: str) -> bool:
    return role >= MINIMUM_ROLE[event]
