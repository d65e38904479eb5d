"""Where a room lives: this process alone (the default), or one owner among replicas (Redis).

The hub runs the rooms it owns exactly as in a single process; the cluster decides which
rooms those are, keeps their state where another replica can take them over, and tells
the transport when a connection has to be forwarded to the room's owner instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..room import Room, RoomLimits


class ClusterUnavailable(Exception):
    """The shared store cannot be reached: refuse new connections, keep the ones we have."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Serve the room here (`room` is a restored room to adopt, if any), or forward to
    the owner at `address`."""

    local: bool
    address: str | None = None
    room: Room | None = None


class Cluster(Protocol):
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place(self, room_id: str, now: float, limits: RoomLimits) -> Placement: ...

    async def owner_address(self, room_id: str) -> str | None:
        """Where another replica that owns this room can be reached (None: nobody else)."""

    def changed(self, room: Room) -> None:
        """The room's state changed: keep it where a successor can find it, soon."""

    def removed(self, room_id: str) -> None:
        """The room ended: forget everything about it."""

    async def hand_over(self) -> None:
        """Shutting down: save every owned room and give up ownership, so that reconnecting
        clients land on a replica that can serve them."""


class LocalCluster:
    """The embedded default: every room lives in this process and nowhere else."""

    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def place(self, room_id: str, now: float, limits: RoomLimits) -> Placement:
        return Placement(local=True)

    async def owner_address(self, room_id: str) -> str | None:
        return None

    def changed(self, room: Room) -> None:
        room.chat_changes.clear()  # nothing to persist them to

    def removed(self, room_id: str) -> None:
        return None

    async def hand_over(self) -> None:
        return None
