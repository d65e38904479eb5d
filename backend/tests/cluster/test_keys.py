"""Redis keys of rooms have TTLs or are deleted: after all rooms end, nothing of them remains."""

from __future__ import annotations

import asyncio

from conftest import KEY_PREFIX, ClusterFactory, RedisServer, eventually

GRACE = 2.0
LEASE = 2.0


async def test_keys_are_cleaned(cluster: ClusterFactory, fresh_redis: RedisServer) -> None:
    platform = await cluster(
        3,
        RECONNECT_GRACE_SECONDS=str(GRACE),
        EMPTY_ROOM_TTL_SECONDS="2",
        LEASE_SECONDS=str(LEASE),
    )
    # Two rooms living a little: admissions, chat with ids, hands, a screen-share request.
    ada, bob, cy = await platform.admitted_room("keys-1", ["Ada", "Bob", "Cy"], [0, 1, 2])
    dee, eli = await platform.admitted_room("keys-2", ["Dee", "Eli"], [1, 0])
    await bob.send("add_chat", {"chatContent": "hello", "clientMessageId": "bob-1"})
    await eli.send("add_chat", {"chatContent": "hi", "clientMessageId": "eli-1"})
    await cy.send("raise_hand")
    await bob.send("request_screenshare")
    await ada.expect("request_screenshare")
    waiter = await platform.connect("keys-2", "Waiter", via=2)
    await waiter.state()
    # A room created over REST that nobody joins.
    async with platform.session.post(
        f"{platform.replicas[0].url}/api/rooms", headers={"Authorization": f"Bearer {ada.token}"}
    ) as response:
        assert response.status == 201
    # A room whose owner dies and whose only member never comes back: no replica removes it,
    # so what it left in Redis must expire by itself.
    orphan = await platform.connect("keys-orphan", "Lonely", via=2)
    await orphan.state()
    await orphan.send("add_chat", {"chatContent": "anyone?", "clientMessageId": "l-1"})
    await orphan.expect("add_chat")
    await asyncio.sleep(1.0)  # written to Redis shortly after each change
    live_keys = fresh_redis.room_keys()
    for room in ("keys-1", "keys-2", "keys-orphan"):
        assert fresh_redis.room_keys(room), f"nothing of {room} in Redis: {live_keys}"
    # Everyone leaves, in every way there is: goodbye, dropped, kicked, waiting and gone.
    await ada.send("kick", {"clientId": cy.client_id})
    await cy.closed()
    await bob.ws.close()
    await ada.send("disconnect")
    await ada.closed()
    await waiter.ws.close()
    await dee.send("disconnect")
    await dee.closed()
    await eli.ws.close()
    assert platform.owner("keys-orphan") in (None, 2)
    await platform.kill(2)

    def leftovers() -> list[str]:
        return [k for k in fresh_redis.room_keys() if not _of(k, "keys-orphan")]

    async def clean() -> bool:
        return not leftovers()

    try:
        took = await eventually(clean, "room keys gone", timeout=GRACE + LEASE + 8)
    except AssertionError:
        raise AssertionError(
            f"keys left after every room ended: {_ttls(fresh_redis, leftovers())}"
        ) from None
    print(f"room keys gone {took:.1f}s after the last member left")

    # The orphan's keys: each has a TTL (the lease a short one), so they go by themselves.
    await asyncio.sleep(max(0.0, LEASE + 1 - took))
    orphaned = _ttls(fresh_redis, fresh_redis.room_keys("keys-orphan"))
    print(f"orphaned room keys and their TTLs: {orphaned}")
    assert all(ttl > 0 for ttl in orphaned.values()), f"keys without a TTL: {orphaned}"
    assert not [k for k in orphaned if "owner" in k or "lease" in k], orphaned
    # Whatever else the platform keeps in Redis (not a room's): shown, for the record.
    others = [k for k in fresh_redis.scan() if not k.startswith(f"{KEY_PREFIX}room:")]
    print(f"other keys and their TTLs: {_ttls(fresh_redis, others)}")
    await orphan.ws.close()


def _of(key: str, room: str) -> bool:
    prefix = f"{KEY_PREFIX}room:{room}"
    return key == prefix or key.startswith(prefix + ":")


def _ttls(redis: RedisServer, keys: list[str]) -> dict[str, int]:
    with redis.client() as client:
        return {key: int(client.ttl(key)) for key in keys}
