"""The Prometheus metrics of the seed, with bounded labels, and nowhere else.

Label values come only from closed sets (known event names, error codes, outcomes): never a
room id or a user id, so the series count stays fixed however many rooms there are.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .protocol import CLIENT_EVENTS, ErrorCode

disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
OK: Final = "ok"
UNKNOWN_EVENT: Final = "unknown"
EVENT_STATUSES: Final = frozenset({OK, *(code.value for code in ErrorCode)})


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
        self.events = Counter(
            "websocket_events",
            "WebSocket events processed, by type and outcome",
            ["event_type", "status"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "message_processing_duration_seconds",
            "Time to process one client event, from parse to queued deliveries",
            ["event_type"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
            registry=self.registry,
        )
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
        self._event_children: dict[tuple[str, str], Counter] = {}
        self._timers = {
            event: self.processing.labels(event_type=event)
            for event in (*CLIENT_EVENTS, UNKNOWN_EVENT)
        }

    def event(self, event: str, status: str, seconds: float | None = None) -> None:
        if event not in self._timers:
            event = UNKNOWN_EVENT
        key = (event, status if status in EVENT_STATUSES else OK)
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children[key] = self.events.labels(event_type=key[0], status=key[1])
        child.inc()
        if seconds is not None:
            self._timers[event].observe(seconds)

    def peer_outcome(self, status: str, relayed: bool) -> None:
        self.peer_connections.labels(status=status, relayed="true" if relayed else "false").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
