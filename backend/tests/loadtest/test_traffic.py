"""Bodies of realistic sizes whose sequence number the receiver reads back, and the mix."""

from __future__ import annotations

import argparse
import random
from collections import Counter

import orjson
import pytest

from videoconf.loadtest import traffic
from videoconf.loadtest.options import parse_mix
from videoconf.loadtest.runner import cycle_of
from videoconf.protocol import MAX_CANDIDATE_LENGTH, MAX_CHAT_LENGTH, parse


@pytest.mark.parametrize("seq", [0, 7, 123_456_789])
def test_sequence_numbers_survive_the_round_trip(seq: int) -> None:
    rng = random.Random(seq)
    for kind in traffic.RELAY_KINDS:
        body = traffic.relay_body(kind, seq, rng)
        field = "candidate" if kind == "candidate" else "sdp"
        assert traffic.seq_of(kind, {field: body}) == seq
    assert traffic.seq_of("add_chat", {"chatContent": traffic.chat(seq, 120)}) == seq
    assert traffic.seq_of("add_chat", {"chatContent": "someone else's message"}) is None
    assert traffic.seq_of("offer", {}) is None


def test_bodies_have_realistic_sizes_and_pass_the_servers_validation() -> None:
    rng = random.Random(1)
    sizes = [len(traffic.sdp(n, rng.randint(*traffic.SDP_SIZE))) for n in range(200)]
    assert min(sizes) >= 2000
    assert max(sizes) <= 6000
    assert len(traffic.candidate(99)) < MAX_CANDIDATE_LENGTH
    assert len(traffic.chat(99, traffic.CHAT_SIZE[1])) <= MAX_CHAT_LENGTH
    for event, payload in (
        ("offer", {"targetClientId": "g_x", "sdp": traffic.sdp(5, 6000)}),
        ("candidate", {"targetClientId": "g_x", "candidate": traffic.candidate(5)}),
        ("add_chat", {"chatContent": traffic.chat(5, traffic.CHAT_SIZE[1])}),
    ):
        assert parse(orjson.dumps({"event": event, "payload": payload}))[0] == event


def test_the_mix_is_a_cycle_in_exact_proportion() -> None:
    cycle = cycle_of({"relay": 7, "chat": 2, "hand": 1}, random.Random(3))
    assert Counter(cycle) == {"relay": 70, "chat": 20, "hand": 10}
    assert cycle_of({"chat": 1}, random.Random(3)) == ["chat"] * 100


def test_mix_flags() -> None:
    assert parse_mix("relay=70,chat=20,hand") == {"relay": 70.0, "chat": 20.0, "hand": 1.0}
    for bad in ("", "video=1", "relay=x", "relay=-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_mix(bad)
