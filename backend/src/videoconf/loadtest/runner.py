"""The load run: sign in, join every room (the host admits), drive the mix, settle, leave.

Everything runs in one event loop and on callbacks: a delivery is matched to its send by
the sequence number in its body, recorded, and (in saturation mode) immediately answered by
the sender's next message. Nothing per message is awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import traffic
from .adapters import ADAPTERS, Adapter, Identity, SignInError
from .histogram import Histogram
from .options import Options
from .stats import Stats
from .wire import ConnectError, Outbox, Wire, connect

RELAY_EVENTS = frozenset(traffic.RELAY_KINDS)


@dataclass(eq=False, slots=True)
class Member:
    index: int
    url: str
    room: Room
    identity: Identity | None = None
    wire: Wire | None = None
    state: str = "new"  # connecting, waiting, joined, leaving, gone
    host: bool = False
    inbound: int = 0  # messages on their way to this member
    outstanding: int = 0  # this member's operations not completed yet
    turn: int = 0  # rotates the relay target through the room
    hand_phase: int = 0  # 0: none, 1: raising, 2: lowering
    hand_sent: float = 0.0
    connect_started: float = 0.0
    waiting_since: float = 0.0
    media: bool = False  # a real WebRTC peer (--media): no generated traffic to or from it


@dataclass(eq=False, slots=True)
class Room:
    name: str
    members: list[Member] = field(default_factory=list)
    joined: list[Member] = field(default_factory=list)
    # Admitted by the host, not yet told: the server may already deliver chat to them.
    admitting: set[int] = field(default_factory=set)


def cycle_of(weights: dict[str, float], rng: random.Random, length: int = 100) -> list[str]:
    """A shuffled list of `length` names in proportion to their weights."""
    total = sum(weights.values())
    names = [n for n, w in weights.items() for _ in range(round(w / total * length))]
    rng.shuffle(names)
    return names or [max(weights, key=lambda n: weights[n])]


class Run:
    """One load run against one deployment (or a set of replicas)."""

    def __init__(self, options: Options, progress: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.adapter: Adapter = ADAPTERS[options.target]()
        self.rng = random.Random(options.seed)
        self.stats = Stats()
        self.progress = progress
        self.clock = time.perf_counter
        self.seq = 0
        self.relays: dict[int, tuple[float, Member, Member]] = {}
        # seq -> (sent at, sender, members still to receive it, members who may receive it)
        self.chats: dict[int, tuple[float, Member, set[int], frozenset[int]]] = {}
        self.by_client_id: dict[str, Member] = {}
        self.late: dict[int, frozenset[int]] = {}  # delivered chats that may still reach some
        self.issued = 0  # operations started in the drive phase
        self.driving = False
        self.stopping = False
        self.members_by_index: dict[int, Member] = {}
        self.rooms = [Room(f"{options.room_prefix}-{i}") for i in range(options.rooms)]
        self.members: list[Member] = []
        for i in range(options.participants):
            room = self.rooms[i % options.rooms]
            member = Member(i, self._url(i % options.rooms, len(room.members)), room)
            room.members.append(member)
            self.members.append(member)
            self.members_by_index[i] = member
        for room in self.rooms:
            if room.members:
                room.members[0].host = True
        for k in range(options.media):  # in pairs, after everyone else (never a host)
            index = options.participants + k
            at = (k // 2) % options.rooms
            room = self.rooms[at]
            member = Member(index, self._url(at, len(room.members)), room, media=True)
            room.members.append(member)
            self.members.append(member)
            self.members_by_index[index] = member
        self.media_peers: dict[int, Any] = {}
        # The mix as a shuffled cycle: exact proportions, no random draw per message.
        self.op_cycle = cycle_of(options.mix, self.rng)
        self.relay_cycle = cycle_of(
            dict(zip(traffic.RELAY_KINDS, traffic.RELAY_WEIGHTS, strict=True)), self.rng
        )
        self.op_turn = 0
        self.relay_turn = 0
        self.rejoins: set[asyncio.Task[None]] = set()
        self.returning: set[Member] = set()  # churned: left, not yet back in the room
        self.outbox: Outbox

    # -- phases -----------------------------------------------------------------------------

    def _url(self, room: int, position: int) -> str:
        """Which of several URLs (replicas) the `position`-th participant of the `room`-th
        room connects to: the room's URL (hosts take turns over the URLs), or with `spread`
        the next URL after its room's previous participant's."""
        urls = self.options.urls
        spread = position if self.options.placement == "spread" else 0
        return urls[(room + spread) % len(urls)]

    async def run(self) -> dict[str, Any]:
        o = self.options
        started = time.time()
        self.outbox = Outbox()
        rss_before = self.stats.server_rss(o.server_pids)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=o.connect_concurrency),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as http:
            await self._sign_in(http)
        await self._join_all()
        rss_joined = self.stats.server_rss(o.server_pids)
        self.stats.server_memory(rss_before, rss_joined, self._connected())
        ticker = asyncio.create_task(self._report_progress())
        try:
            await self._drive()
            await self._settle()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._close_media()
            await self._leave_all()
        return self.stats.report(o, self, started)

    async def _sign_in(self, http: aiohttp.ClientSession) -> None:
        async def one(member: Member) -> None:
            try:
                name = f"{self.options.name_prefix} {member.index}"
                member.identity = await self.adapter.sign_in(http, member.url, name)
                self.by_client_id[member.identity.client_id] = member
            except (SignInError, aiohttp.ClientError, TimeoutError) as exc:
                self.stats.error(f"sign_in: {exc}" if isinstance(exc, SignInError) else "sign_in")
                member.state = "gone"

        await asyncio.gather(*(one(m) for m in self.members))

    async def _join_all(self) -> None:
        """Hosts first (the first into an empty room is host), then everyone else."""
        limit = asyncio.Semaphore(self.options.connect_concurrency)

        async def one(member: Member) -> None:
            async with limit:
                await self._connect(member)

        hosts = [m for m in self.members if m.host and m.state == "new"]
        await asyncio.gather(*(one(m) for m in hosts))
        await self._wait_until(lambda: all(m.state != "connecting" for m in hosts), 15.0)
        others = [m for m in self.members if not m.host and m.state == "new"]
        await asyncio.gather(*(one(m) for m in others))
        await self._wait_until(
            lambda: all(m.state not in ("connecting", "waiting") for m in self.members),
            self.options.join_timeout,
        )
        for member in self.members:
            if member.state in ("connecting", "waiting"):
                self.stats.error("join: not admitted in time")

    async def _connect(self, member: Member) -> None:
        assert member.identity is not None
        member.state = "connecting"
        member.connect_started = self.clock()
        url, headers = self.adapter.websocket(member.url, member.room.name, member.identity)
        try:
            member.wire = await connect(
                url, headers, self._receiver(member), self._closer(member), self.outbox
            )
        except ConnectError as exc:
            self.stats.error(f"connect: {exc.reason}")
            member.state = "gone"
            return
        if self.adapter.name == "relay" and member.state == "connecting":
            # The no-logic relay says nothing on join: the handshake is the join.
            self.stats.delivered("join", self.clock() - member.connect_started)
            self._joined(member)

    async def _drive(self) -> None:
        o = self.options
        self.driving = True
        self.stats.start_drive(self.clock(), o.server_pids)
        deadline = self.clock() + o.duration
        churn = asyncio.create_task(self._churn(deadline)) if o.churn > 0 else None
        calls = asyncio.create_task(self._media_calls()) if o.media else None
        if o.idle:
            await asyncio.sleep(o.duration)
        elif o.rate <= 0:
            for member in self.members:
                self._prime(member)
            while self.clock() < deadline and not self._exhausted():
                await asyncio.sleep(0.05)
        else:
            await self._open_loop(deadline)
        self.driving = False
        self.stats.stop_drive(self.clock(), o.server_pids)
        if calls is not None:
            await calls  # bounded by the set-up timeout
        if churn is not None:
            churn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await churn

    async def _open_loop(self, deadline: float) -> None:
        """Offer `rate` operations a second, spread over everyone admitted."""
        o = self.options
        begin = self.clock()
        cursor = 0
        while (now := self.clock()) < deadline and not self._exhausted():
            due = int((now - begin) * o.rate) - self.issued
            senders = self._senders()
            if senders:
                for _ in range(max(0, min(due, int(o.rate) + 1))):
                    if self._exhausted():
                        break
                    cursor = (cursor + 1) % len(senders)
                    self._operation(senders[cursor])
            await asyncio.sleep(0.002)

    async def _churn(self, deadline: float) -> None:
        """Leave and come back, `churn` times a second: joins and admissions under load."""
        interval = 1.0 / self.options.churn
        due = self.clock() + interval
        while (now := self.clock()) < deadline:
            if now < due:
                await asyncio.sleep(due - now)
                continue
            # Someone with nothing on its way, so that leaving loses nothing; under load
            # such a moment comes within milliseconds.
            candidates = [
                m
                for m in self._senders()
                if not m.host and m.inbound == 0 and m.outstanding == 0 and m.hand_phase == 0
            ]
            if not candidates:
                await asyncio.sleep(0.005)
                continue
            due += interval
            member = self.rng.choice(candidates)
            self.stats.count("churn")
            self.returning.add(member)
            self._depart(member)
            task = asyncio.create_task(self._rejoin(member))
            self.rejoins.add(task)
            task.add_done_callback(self.rejoins.discard)

    async def _rejoin(self, member: Member) -> None:
        if member.wire is not None:
            await self._wait_until(lambda: member.state == "gone", 5.0)
        if not self.stopping:
            assert member.identity is not None
            old = member.identity.client_id
            member.identity = self.adapter.rejoin_identity(member.identity)
            self.by_client_id.pop(old, None)
            self.by_client_id[member.identity.client_id] = member
            await self._connect(member)

    async def _media_calls(self) -> None:
        from . import media

        peers = [media.MediaPeer(m) for m in self.members if m.media and m.state == "joined"]
        for peer in peers:
            self.media_peers[peer.member.index] = peer
        await media.run_calls(self, peers)

    async def _close_media(self) -> None:
        if self.media_peers:
            from . import media

            await media.close(list(self.media_peers.values()))

    async def _settle(self) -> None:
        """Wait for what is still on its way (bounded)."""
        await self._wait_until(
            lambda: (
                not self.relays and not self.chats and not self._hands_open() and not self.returning
            ),
            self.options.settle,
        )
        self.stopping = True
        for _ in self.returning:
            self.stats.error("rejoin: not back in the room in time")
        for task in list(self.rejoins):
            task.cancel()
        self.stats.lost("relay", len(self.relays))
        self.stats.lost("chat", sum(len(c[2]) for c in self.chats.values()))
        self.stats.lost("hand", sum(1 for m in self.members if m.hand_phase))

    async def _leave_all(self) -> None:
        self.stopping = True
        for member in self.members:
            if member.wire is not None and member.state not in ("gone",):
                self._depart(member)
        await self._wait_until(lambda: all(m.state == "gone" for m in self.members), 5.0)
        for member in self.members:
            if member.wire is not None and member.wire.open:
                member.wire.close()

    # -- operations -------------------------------------------------------------------------

    def _senders(self) -> list[Member]:
        return [m for room in self.rooms if len(room.joined) > 1 for m in room.joined]

    def _exhausted(self) -> bool:
        return self.options.messages > 0 and self.issued >= self.options.messages

    def _prime(self, member: Member) -> None:
        """Saturation mode: keep `window` operations in flight for this member."""
        while (
            self.driving
            and member.state == "joined"
            and member.outstanding < self.options.window
            and len(member.room.joined) > 1
            and not self._exhausted()
        ):
            if not self._operation(member):
                break

    def _operation(self, sender: Member) -> bool:
        self.op_turn = (self.op_turn + 1) % len(self.op_cycle)
        kind = self.op_cycle[self.op_turn]
        if kind == "hand" and sender.hand_phase != 0:
            kind = "relay"
        if kind == "relay":
            done = self._relay(sender)
        elif kind == "chat":
            done = self._chat(sender)
        else:
            done = self._hand(sender)
        if done:
            self.issued += 1
            sender.outstanding += 1
        return done

    def _relay(self, sender: Member) -> bool:
        joined = sender.room.joined
        if len(joined) < 2 or sender.wire is None:
            return False
        sender.turn = sender.turn % (len(joined) - 1) + 1
        target = joined[(joined.index(sender) + sender.turn) % len(joined)]
        assert target.identity is not None
        self.relay_turn = (self.relay_turn + 1) % len(self.relay_cycle)
        kind = self.relay_cycle[self.relay_turn]
        self.seq += 1
        body = traffic.relay_body(kind, self.seq, self.rng)
        data = self.adapter.relay(kind, target.identity.client_id, body)
        self.relays[self.seq] = (self.clock(), sender, target)
        target.inbound += 1
        self.stats.sent("relay", len(data))
        sender.wire.send(data)
        return True

    def _chat(self, sender: Member) -> bool:
        if not self.adapter.broadcast or sender.wire is None:
            return False
        self.seq += 1
        data = self.adapter.chat(traffic.chat(self.seq, self.rng.randint(*traffic.CHAT_SIZE)))
        recipients = sender.room.joined
        self.chats[self.seq] = (
            self.clock(),
            sender,
            {m.index for m in recipients},
            frozenset(sender.room.admitting),
        )
        for member in recipients:
            member.inbound += 1
        self.stats.sent("chat", len(data), expected=len(recipients))
        sender.wire.send(data)
        return True

    def _hand(self, sender: Member) -> bool:
        if not self.adapter.rooms or sender.wire is None:
            return False
        sender.hand_phase = 1
        sender.hand_sent = self.clock()
        data = self.adapter.encode("raise_hand", {})
        self.stats.sent("hand", len(data))
        sender.wire.send(data)
        return True

    def _completed(self, sender: Member) -> None:
        sender.outstanding -= 1
        if self.options.rate <= 0:
            self._prime(sender)

    def _hands_open(self) -> bool:
        return any(m.hand_phase for m in self.members if m.state == "joined")

    # -- what arrives -----------------------------------------------------------------------

    def _decode(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        try:
            return self.adapter.decode(data)
        except (ValueError, KeyError, TypeError):
            self.stats.error("undecodable message")
            return None

    def _receiver(self, member: Member) -> Callable[[bytes], None]:
        def on_text(data: bytes) -> None:
            now = self.clock()
            message = self._decode(data)
            if message is None:
                return
            event, payload = message
            if member.media:
                # A media peer's call signaling goes to its peer connection; the generated
                # traffic (chat) is not meant for it.
                if event in RELAY_EVENTS:
                    peer = self.media_peers.get(member.index)
                    if peer is not None:
                        peer.inbox.put_nowait((event, payload))
                    return
                if event in ("add_chat", "disconnect"):
                    return
            if event in RELAY_EVENTS:
                self._relay_arrived(member, event, payload, now)
            elif event == "add_chat":
                self._chat_arrived(member, payload, now)
            elif event == "room_state":
                self._room_state(member, payload, now)
            elif event == "waiting_request":
                if member.host and member.state == "joined":
                    assert member.wire is not None
                    who = payload.get("clientId")
                    newcomer = self.by_client_id.get(who) if isinstance(who, str) else None
                    if newcomer is not None:
                        newcomer.room.admitting.add(newcomer.index)
                    member.wire.send(self.adapter.encode("accept_waiting", {"clientId": who}))
            elif event == "open":  # PeerJS: registered
                if member.state == "connecting":
                    self.stats.delivered("join", now - member.connect_started)
                    self._joined(member)
            elif event == "error":
                self.stats.error(f"error: {payload.get('code')}")
            elif event == "disconnect":
                reason = payload.get("reason")
                if not (member.state == "leaving" and reason == "left"):
                    self.stats.error(f"disconnect: {reason}")

        return on_text

    def _closer(self, member: Member) -> Callable[[int | None, str], None]:
        def on_closed(code: int | None, reason: str) -> None:
            if member.state != "leaving":
                how = f"code {code} {reason}".strip() if code is not None else "no close frame"
                self.stats.error(f"closed: {how} while {member.state}")
                self._remove(member)
            member.state = "gone"

        return on_closed

    def _relay_arrived(
        self, member: Member, event: str, payload: dict[str, Any], now: float
    ) -> None:
        seq = traffic.seq_of(event, payload)
        entry = self.relays.pop(seq, None) if seq is not None else None
        if entry is None:
            self.stats.duplicate("relay")
            return
        sent, sender, target = entry
        if target is not member:
            self.stats.error("relay: delivered to the wrong member")
        target.inbound -= 1
        self.stats.delivered("relay", now - sent)
        self._completed(sender)

    def _chat_arrived(self, member: Member, payload: dict[str, Any], now: float) -> None:
        seq = traffic.seq_of("add_chat", payload)
        entry = self.chats.get(seq) if seq is not None else None
        optional = entry[3] if entry is not None else self.late.get(seq or 0, frozenset())
        if member.index in optional and (entry is None or member.index not in entry[2]):
            return  # admitted while the message was on its way: delivered to them too
        if entry is None or member.index not in entry[2]:
            self.stats.duplicate("chat")
            return
        sent, sender, waiting, _ = entry
        waiting.discard(member.index)
        member.inbound -= 1
        self.stats.delivered("chat", now - sent)
        if not waiting:
            del self.chats[seq]  # type: ignore[arg-type]
            if entry[3]:
                self.late[seq] = entry[3]  # type: ignore[index]
            self._completed(sender)

    def _room_state(self, member: Member, payload: dict[str, Any], now: float) -> None:
        role = (payload.get("you") or {}).get("role")
        if member.state == "connecting":
            self.stats.delivered("join", now - member.connect_started)
            if role == "waiting":
                member.state = "waiting"
                member.waiting_since = now
            else:
                self._joined(member)
            return
        if member.state == "waiting" and role != "waiting":
            self.stats.delivered("admit", now - member.waiting_since)
            self._joined(member)
            return
        if member.hand_phase and member.identity is not None:
            me = member.identity.client_id
            raised = any(c.get("clientId") == me for c in payload.get("handsRaised", ()))
            if member.hand_phase == 1 and raised:
                self.stats.delivered("hand", now - member.hand_sent)
                member.hand_phase = 2
                member.hand_sent = now
                assert member.wire is not None
                data = self.adapter.encode("lower_hand", {})
                self.stats.sent("hand", len(data))
                member.wire.send(data)
            elif member.hand_phase == 2 and not raised:
                self.stats.delivered("hand", now - member.hand_sent)
                member.hand_phase = 0
                self._completed(member)

    # -- membership -------------------------------------------------------------------------

    def _joined(self, member: Member) -> None:
        member.state = "joined"
        self.returning.discard(member)
        member.room.admitting.discard(member.index)
        if member.media:
            return  # joined, but outside the generated traffic
        if member not in member.room.joined:
            member.room.joined.append(member)
        if self.driving and self.options.rate <= 0:
            for other in member.room.joined:
                self._prime(other)

    def _remove(self, member: Member) -> None:
        with contextlib.suppress(ValueError):
            member.room.joined.remove(member)

    def _depart(self, member: Member) -> None:
        """Leave on purpose: out of the target lists first, then say goodbye."""
        self._remove(member)
        if member.wire is None or not member.wire.open:
            member.state = "gone"
            return
        member.state = "leaving"
        goodbye = self.adapter.leave()
        if goodbye is not None:
            member.wire.send(goodbye)  # the server answers `disconnect` and closes
        else:
            member.wire.close()

    def _connected(self) -> int:
        return sum(1 for m in self.members if m.state in ("joined", "waiting"))

    # -- reporting --------------------------------------------------------------------------

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.progress is not None:
                self.progress(self.stats.progress_line(self.clock(), self._connected()))

    async def _wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = self.clock() + timeout
        while not done() and self.clock() < deadline:
            await asyncio.sleep(0.02)


__all__ = ["Histogram", "Member", "Room", "Run"]
