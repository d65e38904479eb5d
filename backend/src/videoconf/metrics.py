"""The Prometheus metrics of the seed, with bounded labels, and nowhere else.

Label values come only from closed sets (known event names, error codes, outcomes): never a
room id or a user id, so the series count stays fixed however many rooms there are.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from .protocol import CLIENT_EVENTS, ErrorCode

disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
OK: Final = "ok"
UNKNOWN_EVENT: Final = "unknown"
EVENT_STATUSES: Final = frozenset({OK, *(code.value for code in ErrorCode)})
PROCESSING_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1
)  # fmt: skip


class EventMetrics(Collector):
    """`websocket_events_total` and `message_processing_duration_seconds`, counted in plain
    integers on the message path and turned into Prometheus series only when scraped.

    Every client message passes through here; prometheus_client's own Counter and
    Histogram take a lock and a few calls per update, which showed up in profiles of the
    relay path. Same names, labels and buckets as those would produce.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        # event -> per-bucket counts (the last one is +Inf), and the sum of seconds; every
        # event's series exists from the start (rate() needs a zero to begin from)
        events = (*CLIENT_EVENTS, UNKNOWN_EVENT)
        self.buckets = {event: [0] * (len(PROCESSING_BUCKETS) + 1) for event in events}
        self.sums = dict.fromkeys(events, 0.0)

    def record(self, event: str, status: str, seconds: float | None) -> None:
        key = (event, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        if seconds is not None:
            self.buckets[event][bisect.bisect_left(PROCESSING_BUCKETS, seconds)] += 1
            self.sums[event] += seconds

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "websocket_events",
            "WebSocket events processed, by type and outcome",
            labels=["event_type", "status"],
        )
        for (event, status), count in sorted(self.counts.items()):
            events.add_metric([event, status], count)
        yield events
        processing = HistogramMetricFamily(
            "message_processing_duration_seconds",
            "Time to process one client event, from parse to queued deliveries",
            labels=["event_type"],
        )
        bounds = [*(repr(float(b)) for b in PROCESSING_BUCKETS), "+Inf"]
        for event, counts in self.buckets.items():
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            processing.add_metric([event], cumulative, self.sums[event])
        yield processing


class Metrics:
    """One registry per application, so tests can run several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "websocket_connections_total",
            "Active WebSocket connections on this replica",
            registry=self.registry,
        )
        self.rooms = Gauge(
            "webrtc_rooms_active",
            "Rooms with live state owned by this replica",
            registry=self.registry,
        )
        self.room_participants = Histogram(
            "room_participants",
            "Admitted participants in a room, observed on each join and leave",
            buckets=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30, 50, 100),
            registry=self.registry,
        )
        self.events = EventMetrics()
        self.registry.register(self.events)
        self.peer_connections = Counter(
            "webrtc_connection_success_rate",
            "Peer connection outcomes reported by clients",
            ["status", "relayed"],
            registry=self.registry,
        )
        # Pre-create children so every series exists from the start (rate() needs a zero).
        for status in ("success", "failure"):
            for relayed in ("true", "false"):
                self.peer_connections.labels(status=status, relayed=relayed)

    def event(self, event: str, status: str, seconds: float | None = None) -> None:
        if event not in CLIENT_EVENTS:
            event = UNKNOWN_EVENT
        if status not in EVENT_STATUSES:
            status = OK
        self.events.record(event, status, seconds)

    def peer_outcome(self, status: str, relayed: bool) -> None:
        self.peer_connections.labels(status=status, relayed="true" if relayed else "false").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
