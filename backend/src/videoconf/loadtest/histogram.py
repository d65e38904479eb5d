"""A latency histogram: constant memory, cheap to record into, mergeable.

Values are microseconds in log-linear buckets: exact below 1,024 µs, then 512 buckets per
power of two (under 0.2 % relative error), up to about 2^40 µs. Recording is an integer
computation and a list increment, so the load generator can record every delivery.
"""

from __future__ import annotations

from typing import Final

_LINEAR: Final = 1024  # values below this (µs) have their own bucket
_SUB: Final = 512  # buckets per power of two above it
_MAX_SHIFT: Final = 31
_SIZE: Final = _LINEAR + _MAX_SHIFT * _SUB


def _index(value: int) -> int:
    if value < _LINEAR:
        return max(value, 0)
    shift = value.bit_length() - 10
    if shift > _MAX_SHIFT:
        return _SIZE - 1
    return _LINEAR + (shift - 1) * _SUB + ((value >> shift) - _SUB)


def _value(index: int) -> float:
    """The middle of bucket `index`, in µs."""
    if index < _LINEAR:
        return float(index)
    shift, sub = divmod(index - _LINEAR, _SUB)
    shift += 1
    low = (sub + _SUB) << shift
    return low + ((1 << shift) - 1) / 2


class Histogram:
    __slots__ = ("counts", "max_us", "total", "total_us")

    def __init__(self) -> None:
        self.counts = [0] * _SIZE
        self.total = 0
        self.total_us = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        us = int(seconds * 1_000_000)
        self.counts[_index(us)] += 1
        self.total += 1
        self.total_us += us
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for i, n in enumerate(other.counts):
            if n:
                counts[i] += n
        self.total += other.total
        self.total_us += other.total_us
        self.max_us = max(self.max_us, other.max_us)

    def since(self, counts: list[int]) -> Histogram:
        """What was recorded after `counts` (an earlier copy of `self.counts`) was taken."""
        delta = Histogram()
        if not counts:
            delta.merge(self)
            return delta
        delta.counts = [a - b for a, b in zip(self.counts, counts, strict=True)]
        delta.total = sum(delta.counts)
        delta.max_us = self.max_us  # an upper bound; percentiles are capped by it
        return delta

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) in milliseconds, None when empty."""
        if self.total == 0:
            return None
        rank = max(1, round(q / 100 * self.total))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min(_value(i), float(self.max_us)) / 1000
        return self.max_us / 1000  # pragma: no cover - the counts add up to total

    def mean(self) -> float | None:
        return self.total_us / self.total / 1000 if self.total else None

    def summary(self) -> dict[str, float | None]:
        """Milliseconds, rounded to the microsecond."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "p50": ms(self.percentile(50)),
            "p90": ms(self.percentile(90)),
            "p99": ms(self.percentile(99)),
            "max": ms(self.max_us / 1000 if self.total else None),
            "mean": ms(self.mean()),
        }
