"""Where the load tester puts its participants when it is given several replicas."""

from __future__ import annotations

from collections import defaultdict

import pytest

from videoconf.loadtest.options import Options
from videoconf.loadtest.runner import Run

URLS = ("http://a", "http://b", "http://c")


def urls_by_room(placement: str, urls: tuple[str, ...], rooms: int) -> dict[str, list[str]]:
    run = Run(Options(urls=urls, participants=rooms * 6, rooms=rooms, placement=placement))
    seen: dict[str, list[str]] = defaultdict(list)
    for member in run.members:
        seen[member.room.name].append(member.url)
    return seen


@pytest.mark.parametrize("urls", [URLS[:2], URLS])
@pytest.mark.parametrize("rooms", [1, 2, 10])
def test_spread_puts_every_room_on_every_replica(urls: tuple[str, ...], rooms: int) -> None:
    for members in urls_by_room("spread", urls, rooms).values():
        assert sorted(members) == sorted(urls * (6 // len(urls)))


@pytest.mark.parametrize("urls", [URLS[:2], URLS])
def test_by_room_puts_a_room_on_one_replica_and_the_rooms_over_all(
    urls: tuple[str, ...],
) -> None:
    placed = urls_by_room("room", urls, 6)
    assert all(len(set(members)) == 1 for members in placed.values())
    homes = [members[0] for members in placed.values()]
    assert sorted(homes) == sorted(urls * (6 // len(urls)))


def test_the_hosts_take_turns_over_the_replicas_either_way() -> None:
    for placement in ("spread", "room"):
        run = Run(Options(urls=URLS, participants=18, rooms=6, placement=placement))
        hosts = [m.url for m in run.members if m.host]
        assert sorted(hosts) == sorted(URLS * 2)
