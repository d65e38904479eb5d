"""Connections <-> rooms: feeds client commands to rooms, carries out their effects.

A delivery is written to the client's socket at once when nothing is waiting and the
socket's buffer has room; otherwise it joins a bounded per-connection queue drained by a
writer task, so a client that stops reading is cut off instead of stalling everyone else in
its room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .cluster import Cluster, LocalCluster
from .config import Settings
from .metrics import OK, Metrics
from .protocol import (
    CLOSE_CODES,
    CLOSE_GRACE,
    RECONNECT_REASONS,
    RELAY_EVENTS,
    DisconnectReason,
    ErrorCode,
    ProtocolError,
    Role,
    encode,
    error_payload,
    parse,
)
from .room import (
    Close,
    Deliver,
    Effect,
    ParticipantsChanged,
    PeerOutcome,
    RoleChanged,
    Room,
    RoomLimits,
    Send,
)
from .wsio import Outbox

log = logging.getLogger(__name__)

# Events that change nothing in a room's state (nothing to save for a successor).
STATELESS_EVENTS = frozenset(
    {"offer", "answer", "candidate", "renegotiate", "ping", "recents_chat", "mute_request"}
)
# A connection that keeps breaking the rules this many times in a window is closed.
MAX_VIOLATIONS = 20
VIOLATION_WINDOW = 10.0
RATE_NOTICE_WEIGHT = 4


class Socket(Protocol):
    """What the hub needs of a WebSocket (aiohttp's WebSocketResponse fits)."""

    async def send_frame(
        self, message: bytes, opcode: Any, compress: int | None = None
    ) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class TokenBucket:
    """Messages per second with a burst allowance; rate 0 turns it off."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Connection:
    """One participant's WebSocket with its bounded send queue."""

    __slots__ = (
        "_text",
        "abort",
        "bucket",
        "client_id",
        "close_reason",
        "counted",
        "display_name",
        "hub",
        "last_rate_error",
        "limit",
        "loop",
        "queue",
        "room_id",
        "socket",
        "violations",
        "window_start",
        "write_now",
        "writer",
    )

    def __init__(
        self,
        socket: Socket,
        room_id: str,
        client_id: str,
        display_name: str,
        settings: Settings,
        now: float,
        text_opcode: Any,
        abort: Callable[[], None] | None = None,
        write_now: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.socket = socket
        self.abort = abort
        # Writes a frame at once when the socket can take it (False: it cannot, queue it).
        self.write_now = write_now
        self.room_id = room_id
        self.client_id = client_id
        self.display_name = display_name
        # Created when a frame first has to wait (a deque costs half a KiB even empty).
        self.queue: deque[bytes] | None = None
        self.limit = settings.ws_send_queue
        self.bucket = TokenBucket(settings.ws_rate_limit, settings.ws_rate_burst, now)
        self.violations = 0
        self.window_start = now
        self.last_rate_error = 0.0
        self.close_reason: DisconnectReason | None = None
        self._text = text_opcode
        # Runs only while frames wait in the queue (the socket's buffer was full, or a close
        # is under way): an idle connection costs no task.
        self.writer: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.hub: Hub | None = None  # set while its frames go to the hub (Hub.open)
        self.counted = False  # whether it is in the connection gauge (Hub.open)

    def frame(self, data: bytes | None) -> None:
        """A frame handed over as it arrived (wsio.Frames.attach)."""
        if self.close_reason is None and self.hub is not None:  # closing: nothing more is read
            self.hub.receive(self, data)

    def send(self, data: bytes) -> None:
        if self.close_reason is not None:
            return
        if not self.queue and self.write_now is not None and self.write_now(data):
            return  # the common case: nothing waiting, the socket's buffer has room
        if self.queue is None:
            self.queue = deque()
        elif len(self.queue) >= self.limit:
            self.close(DisconnectReason.SLOW_CONSUMER)
            return
        self.queue.append(data)
        self._start_writer()

    def _start_writer(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = self.loop.create_task(self._write())

    def close(self, reason: DisconnectReason) -> None:
        """Queue a `disconnect` telling why, then close; later sends are dropped."""
        if self.close_reason is not None:
            return
        if self.queue is None or reason == DisconnectReason.SLOW_CONSUMER:
            self.queue = deque()  # a slow consumer's backlog goes: only the goodbye matters
        self.queue.append(
            encode("disconnect", {"reason": reason.value, "reconnect": reason in RECONNECT_REASONS})
        )
        self.close_reason = reason
        self._start_writer()
        self.loop.call_later(CLOSE_GRACE, self._abort_if_open)

    def _abort_if_open(self) -> None:
        """A client too slow to take even its goodbye is cut at the TCP level."""
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            if self.abort is not None:
                self.abort()

    def violation(self, now: float, weight: int = 1) -> bool:
        """Count a broken rule; True when the connection should be closed for it."""
        if now - self.window_start > VIOLATION_WINDOW:
            self.window_start = now
            self.violations = 0
        self.violations += weight
        return self.violations > MAX_VIOLATIONS

    async def _write(self) -> None:
        """Send what is queued, in order (waiting for the socket to drain), then the close
        if one was asked for; end when the queue is empty."""
        try:
            while self.queue:
                await self.socket.send_frame(self.queue.popleft(), self._text)
            self.queue = None
            if self.close_reason is not None:
                code = CLOSE_CODES[self.close_reason]
                await self.socket.close(code=code, message=self.close_reason.value.encode())
                return  # kept: the hub waits for it to finish the goodbye
        except (ConnectionError, RuntimeError):
            return  # the peer went away; the reader notices and cleans up
        self.writer = None  # done with the queue; a finished task is not worth keeping


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room_id: str
    exists: bool
    participants: int
    names: list[dict[str, str]] | None


class Hub:
    """All rooms and connections of this process."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        tickets: Callable[[str, str, str], tuple[str, int]] | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.settings = settings
        self.cluster: Cluster = cluster or LocalCluster()
        # Signs admission tickets: (client_id, room_id, role) -> (ticket, expires_at).
        self.tickets = tickets
        self.metrics = metrics
        self.clock = clock
        self.rooms: dict[str, Room] = {}
        self.connections: dict[tuple[str, str], Connection] = {}
        # Frames written at once are sent per socket at the end of each turn of the loop.
        self.outbox = Outbox()
        self.draining = False
        self._all_closed = asyncio.Event()
        self.limits = RoomLimits(
            max_members=settings.max_room_size,
            chat_history=settings.chat_history,
            reconnect_grace=settings.reconnect_grace,
            empty_room_ttl=settings.empty_room_ttl,
        )

    # -- rooms ----------------------------------------------------------------------------

    async def create_room(self) -> str | None:
        """A new room with an unguessable id, or None when this process is at its limit."""
        if len(self.rooms) >= self.settings.max_rooms:
            return None
        room_id = secrets.token_urlsafe(12)
        await self.cluster.place(room_id, self.clock(), self.limits)  # ours: nobody has it
        self.cluster.changed(self._room(room_id))
        return room_id

    def accepts(self, room_id: str) -> bool:
        """Whether a connection to this room can be taken (existing room, or room to spare)."""
        return room_id in self.rooms or len(self.rooms) < self.settings.max_rooms

    def room_info(self, room_id: str, client_id: str | None) -> RoomInfo:
        room = self.rooms.get(room_id)
        if room is None:
            return RoomInfo(room_id, False, 0, None)
        member = room.members.get(client_id) if client_id else None
        names = None
        if member is not None and member.role > 0:
            names = [m.card() for m in room.admitted()]
        return RoomInfo(room_id, True, room.participant_count(), names)

    def adopt(self, room: Room) -> None:
        """Take over a room restored from the cluster's store."""
        if room.room_id not in self.rooms:
            self.rooms[room.room_id] = room
            self.metrics.rooms.set(len(self.rooms))

    def lose(self, room_id: str) -> None:
        """Another replica owns this room now: send its clients there (they reconnect)."""
        self.rooms.pop(room_id, None)
        self.metrics.rooms.set(len(self.rooms))
        for (rid, _), connection in list(self.connections.items()):
            if rid == room_id:
                connection.close(DisconnectReason.SERVER_SHUTDOWN)

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = Room(room_id, self.clock(), self.limits)
            self.metrics.rooms.set(len(self.rooms))
        return room

    def sweep(self) -> None:
        """Expire absent members and remove rooms nobody will come back to."""
        now = self.clock()
        for room_id, room in list(self.rooms.items()):
            effects = room.expire(now)
            if effects:
                self.apply(room_id, effects)
                self.cluster.changed(room)
            if room.removable(now):
                del self.rooms[room_id]
                self.cluster.removed(room_id)
        self.metrics.rooms.set(len(self.rooms))

    def heartbeat(self) -> None:
        """One sweep of the WebSocket heartbeat: sockets that can (wsio.ClientSocket) ping
        quiet peers; a peer that has not answered is cut at the TCP level (and counts as
        dropped: its seat is kept for the reconnect grace)."""
        for connection in list(self.connections.values()):
            beat = getattr(connection.socket, "heartbeat", None)
            if beat is not None and not beat() and connection.abort is not None:
                connection.abort()

    async def heartbeat_forever(self, interval: float) -> None:
        """`heartbeat` every half `interval` (WS_HEARTBEAT_SECONDS): a quiet peer is pinged
        after half to one interval and cut half an interval later if it stays silent."""
        while True:
            await asyncio.sleep(interval / 2)
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat sweep failed")

    async def sweep_forever(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:
                log.exception("room sweep failed")

    # -- connections ----------------------------------------------------------------------

    def open(
        self,
        socket: Socket,
        room_id: str,
        client_id: str,
        display_name: str,
        text_opcode: Any,
        abort: Callable[[], None] | None = None,
        ticket_role: Role | None = None,
        counted: bool = True,
        write_now: Callable[[bytes], bool] | None = None,
    ) -> Connection:
        """A participant's connection joins its room; its frames go to `Connection.frame`
        from now on. Call `closed` once the socket is gone, whatever happened.

        `counted`: whether this connection counts in this replica's connection gauge (a
        connection forwarded by another replica is counted there)."""
        now = self.clock()
        connection = Connection(
            socket,
            room_id,
            client_id,
            display_name,
            self.settings,
            now,
            text_opcode,
            abort,
            write_now,
        )
        if not self.accepts(room_id):
            # Checked before the upgrade too; this covers a race with rooms created meanwhile.
            connection.close(DisconnectReason.SERVER_BUSY)  # the goodbye; it never joins
            return connection
        room = self._room(room_id)
        key = (room_id, client_id)
        previous = self.connections.get(key)
        if previous is not None:
            previous.close(DisconnectReason.REPLACED)
        self.connections[key] = connection
        connection.counted = counted
        if counted:
            self.metrics.connections.inc()
        connection.hub = self
        try:
            self.apply(room_id, room.join(client_id, display_name, now, ticket_role))
            self.cluster.changed(room)
        except BaseException:
            self.closed(connection)
            raise
        return connection

    def closed(self, connection: Connection) -> None:
        """The connection's socket is gone: it leaves its room (its seat kept for the
        reconnect grace unless it left on purpose)."""
        connection.hub = None
        if connection.writer is not None:
            connection.writer.cancel()
        if connection.counted:
            connection.counted = False
            self.metrics.connections.dec()
        room_id, client_id = key = (connection.room_id, connection.client_id)
        if self.connections.get(key) is connection:
            del self.connections[key]
            if not self.connections:
                self._all_closed.set()
            current = self.rooms.get(room_id)
            if current is not None:
                dropped = connection.close_reason != DisconnectReason.LEFT
                self.apply(room_id, current.leave(client_id, self.clock(), dropped=dropped))
                self.cluster.changed(current)

    async def serve(self, connection: Connection, messages: Any) -> None:
        """Run a connection from `open` whose socket is read by awaiting it (an aiohttp
        WebSocketResponse) until it closes; `messages` yields its raw frames."""
        try:
            if connection.close_reason is None:
                # Frames handed over as they are parsed when the socket can (see wsio); then
                # the loop below only waits for the close.
                attach = getattr(messages, "attach", None)
                if attach is not None:
                    attach(connection.frame)
                async for data in messages:
                    self.receive(connection, data)
                    if connection.close_reason is not None:
                        break
            if connection.close_reason is not None and connection.writer is not None:
                # Our goodbye is in flight: let the writer finish it before the socket goes.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(connection.writer), CLOSE_GRACE)
        finally:
            self.closed(connection)

    def receive(self, connection: Connection, data: bytes | str | None) -> None:
        """Handle one frame from a client: limits, parsing, the room's rules, metrics."""
        started = time.perf_counter()
        now = self.clock()
        event = "unknown"
        try:
            if data is None:
                raise ProtocolError(ErrorCode.BINARY_FRAME, "send JSON as text frames")
            if len(data) > self.settings.ws_max_message_bytes:
                raise ProtocolError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"message is {len(data)} bytes; the limit is "
                    f"{self.settings.ws_max_message_bytes}",
                )
            if not connection.bucket.take(now):
                raise ProtocolError(ErrorCode.RATE_LIMITED, "too many messages; slow down")
            event, payload = parse(data)
            room = self.rooms.get(connection.room_id)
            if room is None:
                return
            if event in RELAY_EVENTS:  # most messages: the short way when it goes through
                send = room.relay(connection.client_id, event, payload)
                if send is not None:
                    self.apply(connection.room_id, (send,))
                    self.metrics.events.record(event, OK, time.perf_counter() - started)
                    return
            effects = room.handle(connection.client_id, event, payload, now)
        except ProtocolError as exc:
            self.metrics.event(exc.event or event, exc.code.value)
            self._reject(connection, exc, now)
            return
        except Exception:
            # A bug must cost one message, not the connection or the room.
            log.exception("event failed", extra={"event_type": event})
            self.metrics.event(event, ErrorCode.INTERNAL_ERROR.value)
            connection.send(
                encode(
                    "error",
                    error_payload(
                        ErrorCode.INTERNAL_ERROR, "the server failed to handle this message", event
                    ),
                )
            )
            return
        status = OK
        for effect in effects:
            if (
                isinstance(effect, Deliver)
                and effect.event == "error"
                and effect.recipients == (connection.client_id,)
            ):
                status = effect.payload["code"]
        self.apply(connection.room_id, effects)
        if event not in STATELESS_EVENTS:
            self.cluster.changed(room)
        # Both from closed sets here (a parsed event, an ErrorCode): no need for the guards
        # of Metrics.event on the path every message takes.
        self.metrics.events.record(event, status, time.perf_counter() - started)

    def _reject(self, connection: Connection, error: ProtocolError, now: float) -> None:
        if error.code == ErrorCode.RATE_LIMITED:
            # One notice a second at most, the rest dropped: answering every flooded message
            # would amplify the flood. Each notice weighs as much as a few broken messages,
            # so a client still flooding after about five seconds is closed.
            if now - connection.last_rate_error < 1.0:
                return
            connection.last_rate_error = now
            connection.violation(now, weight=RATE_NOTICE_WEIGHT - 1)
        if connection.violation(now):
            connection.close(DisconnectReason.POLICY_VIOLATION)
            return
        connection.send(encode("error", error_payload(error.code, error.message, error.event)))

    def apply(self, room_id: str, effects: Iterable[Effect]) -> None:
        """Carry out a room's effects: deliveries encoded once, closes, metrics."""
        for effect in effects:
            if isinstance(effect, Deliver):
                data = encode(effect.event, effect.payload)
                for client_id in effect.recipients:
                    connection = self.connections.get((room_id, client_id))
                    if connection is not None:
                        connection.send(data)
            elif isinstance(effect, Send):
                connection = self.connections.get((room_id, effect.recipient))
                if connection is not None:
                    connection.send(effect.message)
            elif isinstance(effect, Close):
                connection = self.connections.get((room_id, effect.client_id))
                if connection is not None:
                    connection.close(effect.reason)
            elif isinstance(effect, ParticipantsChanged):
                self.metrics.room_participants.observe(effect.count)
            elif isinstance(effect, PeerOutcome):
                self.metrics.peer_outcome(effect.status, effect.relayed)
            elif isinstance(effect, RoleChanged) and self.tickets is not None:
                connection = self.connections.get((room_id, effect.client_id))
                if connection is not None:
                    role = effect.role.name.lower()
                    ticket, expires_at = self.tickets(effect.client_id, room_id, role)
                    connection.send(
                        encode("ticket", {"ticket": ticket, "role": role, "expiresAt": expires_at})
                    )

    async def drain(
        self,
        grace: float,
        delay: float = 0.0,
        also: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Refuse newcomers; after `delay` tell every client to reconnect elsewhere, then
        wait (bounded by `grace`) for them to go."""
        self.draining = True
        if delay > 0:
            # Not ready, still serving: load balancers stop sending newcomers meanwhile.
            await asyncio.sleep(delay)
        for connection in list(self.connections.values()):
            connection.close(DisconnectReason.SERVER_SHUTDOWN)
        if also is not None:
            await also()  # e.g. the connections this replica forwards to other owners
        if self.connections:
            self._all_closed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), grace)
        if self.connections:
            log.warning("drain timed out", extra={"connections": len(self.connections)})
        await self.cluster.hand_over()
