"""Rooms shared by replicas through Redis: one owner per room, held by a lease.

Keys (all under `videoconf:`):
- `room:{id}:owner`  the owning replica's id, with a TTL of LEASE_SECONDS, renewed by it;
- `room:{id}:state`  the room without its chat (snapshot.dump_room), written soon after changes;
- `room:{id}:chat`   one list entry per chat message, trimmed to CHAT_HISTORY;
- `replica:{id}`     the address other replicas forward connections to, with the lease's TTL.
Room keys expire on their own if nobody renews them, and are deleted when a room ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..room import Room, RoomLimits
from ..snapshot import dump_chat, dump_room, load_room
from . import ClusterUnavailable, Placement

# Seconds to wait for the lease renewal loop to stop (one Redis command's timeout and more).
STOP_TIMEOUT = 3.0

log = logging.getLogger(__name__)

PREFIX = "videoconf:"
# How long a room's keys outlive the last write or renewal (rooms are deleted when they end;
# this only bounds what a crashed owner can leave behind).
KEY_TTL_SECONDS = 600

# Renew a lease only if we still hold it; answers 1 when renewed, 0 when lost.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# Give a lease up only if we hold it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def _bytes(value: bytes | str) -> bytes:
    """redis-py returns bytes here (no decode_responses); its types also allow str."""
    return value if isinstance(value, bytes) else value.encode()


class RedisCluster:
    def __init__(
        self,
        url: str,
        address: str,
        lease_seconds: float,
        rooms: Callable[[], Mapping[str, Room]],
        on_lost: Callable[[str], None],
        chat_history: int,
    ) -> None:
        self.replica_id = secrets.token_hex(8)
        self.address = address
        self.lease_ms = int(lease_seconds * 1000)
        self._rooms = rooms
        self._on_lost = on_lost
        self._chat_history = chat_history
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=0,
        )
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._healthy = False
        self._was_healthy = False
        self._run_id: str | None = None
        self._settle_until = 0.0
        self._dirty: set[str] = set()
        self._pending_chat: dict[str, list[tuple[str, bytes]]] = {}
        self._rewrite: set[str] = set()  # rooms whose chat list must be written in full
        self._flush_task: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._maintaining = True

    # -- life cycle -----------------------------------------------------------------------

    def ready(self) -> bool:
        return self._healthy and time.monotonic() >= self._settle_until

    async def start(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._heartbeat()
        self._loop_task = asyncio.get_running_loop().create_task(self._maintain())

    async def _stop_maintaining(self) -> None:
        """Stop renewing, for good. A cancellation that arrives while redis-py is mid-command
        can be swallowed by it (seen: a shutdown waited forever on the renewal loop), so the
        loop also stops at its next turn, and the wait for it is bounded."""
        self._maintaining = False
        task, self._loop_task = self._loop_task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task], timeout=STOP_TIMEOUT)
        if not task.done():
            log.warning("lease renewal did not stop")

    async def close(self) -> None:
        await self._stop_maintaining()
        if self._flush_task is not None:
            with contextlib.suppress(Exception):
                await self._flush_task
        await self._redis.aclose()

    async def _maintain(self) -> None:
        """Every third of a lease: say we are alive, renew our rooms' leases."""
        while self._maintaining:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._heartbeat()
                await self._renew_leases()
                if self._dirty:
                    await self._flush()
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.warning("redis unreachable", extra={"error": str(exc)})
                self._healthy = False

    async def _heartbeat(self) -> None:
        restarted = await self._check_run_id()
        if (not self._healthy and self._was_healthy) or restarted:
            self._settle()
        await self._redis.set(_key("replica", self.replica_id), self.address, px=self.lease_ms)
        self._healthy = self._was_healthy = True

    async def _check_run_id(self) -> bool:
        """Whether Redis restarted (and so lost every key) since we last looked."""
        try:
            run_id = (await self._redis.info("server")).get("run_id")
        except ResponseError:
            return False  # INFO not allowed for this user (managed Redis): outages still count

        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        return restarted

    def _settle(self) -> None:
        """Redis was away or lost its keys: give the owners one lease to take their rooms back
        before this replica takes any room it does not know (it reports not-ready meanwhile)."""
        self._settle_until = time.monotonic() + self.lease_ms / 1000
        log.warning("redis reachable again", extra={"replica": self.replica_id})

    async def _renew_leases(self) -> None:
        for room_id in list(self._rooms()):
            owner_key = _key("room", room_id, "owner")
            renewed = await self._renew(keys=[owner_key], args=[self.replica_id, self.lease_ms])
            if renewed:
                await self._redis.expire(_key("room", room_id, "state"), KEY_TTL_SECONDS)
                await self._redis.expire(_key("room", room_id, "chat"), KEY_TTL_SECONDS)
                continue
            # Expired (Redis was away longer than a lease): take it back if nobody else did.
            if await self._redis.set(owner_key, self.replica_id, nx=True, px=self.lease_ms):
                # Redis lost our keys (restarted): write the whole room again, chat included.
                self._dirty.add(room_id)
                self._rewrite.add(room_id)
                continue
            log.warning("room ownership lost", extra={"room": room_id})
            self._on_lost(room_id)

    # -- placement ------------------------------------------------------------------------

    async def place(self, room_id: str, now: float, limits: RoomLimits) -> Placement:
        if room_id in self._rooms():
            return Placement(local=True)
        owner_key = _key("room", room_id, "owner")
        try:
            for _ in range(20):
                owner = await self._redis.get(owner_key)
                if owner is None:
                    # About to start a room: make sure Redis did not just restart empty while
                    # the room's owner is about to take it back.
                    if await self._check_run_id():
                        self._settle()
                    if time.monotonic() < self._settle_until:
                        raise ClusterUnavailable("rooms are being taken back after a Redis outage")
                    if await self._redis.set(owner_key, self.replica_id, nx=True, px=self.lease_ms):
                        return Placement(local=True, room=await self._restore(room_id, now, limits))
                    continue  # someone else took it a moment ago
                owner_id = _bytes(owner).decode()
                if owner_id == self.replica_id:
                    # Ours in Redis but not in memory (e.g. just released): take it up again.
                    return Placement(local=True, room=await self._restore(room_id, now, limits))
                address = await self._redis.get(_key("replica", owner_id))
                if address is not None:
                    return Placement(local=False, address=_bytes(address).decode())
                # The owner stopped answering; its lease is about to expire.
                await asyncio.sleep(self.lease_ms / 4000)
        except (RedisError, OSError) as exc:
            self._healthy = False
            raise ClusterUnavailable(str(exc)) from exc
        raise ClusterUnavailable(f"no owner could be found for room {room_id}")

    async def owner_address(self, room_id: str) -> str | None:
        try:
            owner = await self._redis.get(_key("room", room_id, "owner"))
            if owner is None or _bytes(owner).decode() == self.replica_id:
                return None
            address = await self._redis.get(_key("replica", _bytes(owner).decode()))
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable(str(exc)) from exc
        return None if address is None else _bytes(address).decode()

    async def _restore(self, room_id: str, now: float, limits: RoomLimits) -> Room | None:
        state = await self._redis.get(_key("room", room_id, "state"))
        if state is None:
            return None
        chat = await self._redis.lrange(_key("room", room_id, "chat"), 0, -1)
        return load_room(_bytes(state), [_bytes(item) for item in chat], now, limits)

    # -- persistence ----------------------------------------------------------------------

    def changed(self, room: Room) -> None:
        if room.chat_changes:
            pending = self._pending_chat.setdefault(room.room_id, [])
            for kind, message in room.chat_changes:
                pending.append((kind, dump_chat(message)))
            room.chat_changes.clear()
        self._dirty.add(room.room_id)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            # Changes made while a write is under way go out in the next one, at once.
            while self._dirty:
                await asyncio.sleep(0)  # gather what this loop iteration changed
                await self._flush()
        except (RedisError, OSError) as exc:
            self._healthy = False
            log.warning("room state not saved yet", extra={"error": str(exc)})

    async def _flush(self) -> None:
        rooms = self._rooms()
        dirty, self._dirty = self._dirty, set()
        # Take the chat changes now: more may arrive while this write is under way.
        taken = {room_id: self._pending_chat.pop(room_id, []) for room_id in dirty}
        rewrite, self._rewrite = self._rewrite & dirty, self._rewrite - dirty
        try:
            async with self._redis.pipeline(transaction=True) as pipe:  # all or nothing
                for room_id in dirty:
                    room = rooms.get(room_id)
                    if room is not None:
                        self._queue_room(pipe, room, taken[room_id], room_id in rewrite)
                await pipe.execute()
        except BaseException:
            # Try again on the next flush, older changes first.
            self._dirty |= dirty
            self._rewrite |= rewrite
            for room_id, ops in taken.items():
                self._pending_chat[room_id] = ops + self._pending_chat.get(room_id, [])
            raise

    def _queue_room(
        self, pipe: Any, room: Room, chat_ops: list[tuple[str, bytes]], rewrite: bool
    ) -> None:
        state_key = _key("room", room.room_id, "state")
        chat_key = _key("room", room.room_id, "chat")
        pipe.set(state_key, dump_room(room), ex=KEY_TTL_SECONDS)
        if rewrite:
            pipe.delete(chat_key)
            chat_ops = [("add", dump_chat(message)) for message in room.chat]
        for kind, data in chat_ops:
            if kind == "add":
                pipe.rpush(chat_key, data)
            else:
                pipe.lrem(chat_key, 1, data)
        pipe.ltrim(chat_key, -self._chat_history, -1)
        pipe.expire(chat_key, KEY_TTL_SECONDS)

    def removed(self, room_id: str) -> None:
        self._dirty.discard(room_id)
        self._pending_chat.pop(room_id, None)
        asyncio.get_running_loop().create_task(self._forget(room_id))

    async def _forget(self, room_id: str) -> None:
        try:
            await self._redis.delete(_key("room", room_id, "state"), _key("room", room_id, "chat"))
            await self._release(keys=[_key("room", room_id, "owner")], args=[self.replica_id])
        except (RedisError, OSError) as exc:
            log.warning("room keys left to expire", extra={"room": room_id, "error": str(exc)})

    async def hand_over(self) -> None:
        await self._stop_maintaining()  # no more renewing: the leases are about to go
        try:
            self._dirty |= set(self._rooms())
            await self._flush()
            for room_id in list(self._rooms()):
                await self._release(keys=[_key("room", room_id, "owner")], args=[self.replica_id])
            await self._redis.delete(_key("replica", self.replica_id))
        except (RedisError, OSError) as exc:
            log.warning("hand-over incomplete", extra={"error": str(exc)})
