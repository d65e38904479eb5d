"""A room's state as bytes and back, so another replica can take a room over.

Pure: no Redis here. Chat messages are stored apart (one list entry each, so that adding one
does not rewrite the history); the rest of the room is one small JSON document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .protocol import Role
from .room import Absent, ChatMessage, Room, RoomLimits

VERSION = 1


def dump_room(room: Room) -> bytes:
    """Everything but the chat: roles of present and absent members, counters, timers."""
    return orjson.dumps(
        {
            "version": VERSION,
            "roomId": room.room_id,
            "counter": room.counter,
            "keepUntil": room.keep_until,
            "known": sorted(room.known),
            "members": [
                {
                    "clientId": m.client_id,
                    "displayName": m.display_name,
                    "role": int(m.role),
                    "order": m.order,
                }
                for m in room.members.values()
            ],
            "absent": {
                cid: {"role": int(a.role), "until": a.until} for cid, a in room.absent.items()
            },
        }
    )


def dump_chat(message: ChatMessage) -> bytes:
    return orjson.dumps(message.to_payload())


def load_room(data: bytes, chat: Iterable[bytes], now: float, limits: RoomLimits) -> Room:
    """The room as its last owner left it. Members who were connected there are now absent:
    their roles wait for them for the reconnect grace period, as after any dropped connection.
    """
    state: dict[str, Any] = orjson.loads(data)
    if state.get("version") != VERSION:
        raise ValueError(f"unknown room snapshot version {state.get('version')!r}")
    room = Room(state["roomId"], now, limits)
    room.counter = int(state["counter"])
    room.keep_until = max(float(state["keepUntil"]), now + limits.reconnect_grace)
    room.known = set(state["known"])
    for cid, absent in state["absent"].items():
        room.absent[cid] = Absent(Role(absent["role"]), float(absent["until"]))
    for member in state["members"]:
        role = Role(member["role"])
        if role >= Role.PARTICIPANT:
            room.absent[member["clientId"]] = Absent(role, now + limits.reconnect_grace)
    for raw in chat:
        room.chat.append(ChatMessage.from_payload(orjson.loads(raw)))
    return room
