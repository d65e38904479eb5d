"""The load generator's latency histogram against exact percentiles."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from videoconf.loadtest.histogram import Histogram


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, round(q / 100 * len(ordered))) - 1]


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=300))
def test_percentiles_are_within_a_fifth_of_a_percent(values: list[float]) -> None:
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    for q in (50, 90, 99, 100):
        got = histogram.percentile(q)
        assert got is not None
        want = int(exact(values, q) * 1_000_000) / 1000  # recorded in whole µs
        assert math.isclose(got, want, rel_tol=0.002, abs_tol=0.001), (q, got, want)


def test_merge_and_since_count_what_was_recorded() -> None:
    rng = random.Random(7)
    a, b = Histogram(), Histogram()
    for _ in range(1000):
        a.record(rng.uniform(0, 0.01))
    snapshot = a.counts[:]
    for _ in range(500):
        a.record(0.5)
        b.record(0.5)
    later = a.since(snapshot)
    assert later.total == 500
    assert later.percentile(50) == b.percentile(50)
    a.merge(b)
    assert a.total == 2000
    assert Histogram().percentile(50) is None
    assert Histogram().summary()["p99"] is None
