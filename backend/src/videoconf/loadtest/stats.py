"""Counts and latencies of a load run, the live progress line, and the final report."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .histogram import Histogram

if TYPE_CHECKING:
    from .options import Options
    from .runner import Run

# What each row measures (also the order of the summary table).
KINDS = {
    "relay": "offer/answer/candidate, sender -> one peer",
    "chat": "chat message, sender -> every admitted member (one row per delivery)",
    "hand": "raise or lower a hand -> own room_state showing it",
    "join": "ramp-up: WebSocket open -> first room_state",
    "admit": "ramp-up: waiting -> admitted by the host",
    "rejoin": "during the load (churn): WebSocket open -> first room_state",
    "readmit": "during the load (churn): waiting -> admitted by the host",
    "media": "aiortc peer: offer sent -> ICE connected",
}


_UNDER_LOAD = {"join": "rejoin", "admit": "readmit"}
_COUNTED_ON_ARRIVAL = frozenset({"join", "admit", "rejoin", "readmit", "media"})


@dataclass(slots=True)
class Kind:
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    bytes: int = 0
    latency: Histogram = field(default_factory=Histogram)
    shown: list[int] = field(default_factory=list)  # the counts at the last progress line


def cpu_seconds(pids: tuple[int, ...]) -> float | None:
    """User + system CPU seconds of the processes `pids` (all their threads), from /proc."""
    if not pids:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / ticks


def steal_seconds() -> float | None:
    """CPU time the hypervisor gave to other guests, summed over this machine's CPUs, from
    /proc/stat (Linux); None where it cannot be read."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if fields[0] == "cpu" else None
    except (OSError, IndexError, ValueError):
        return None


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Stats:
    def __init__(self) -> None:
        self.kinds = {name: Kind() for name in KINDS}
        self.errors: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.drive_started = 0.0
        self.drive_stopped = 0.0
        self.driving = False
        self.memory: dict[str, Any] | None = None
        self.cpu: dict[str, float | None] = {}
        self._cpu_started: tuple[float | None, float, float | None] = (None, 0.0, None)
        self._last_line = time.perf_counter()
        self._last_sent = 0
        self._last_delivered = 0

    # -- recording --------------------------------------------------------------------------

    def sent(self, kind: str, size: int, expected: int = 1) -> None:
        k = self.kinds[kind]
        k.sent += 1
        k.expected += expected
        k.bytes += size

    def delivered(self, kind: str, seconds: float) -> None:
        if self.driving and kind in _UNDER_LOAD:
            kind = _UNDER_LOAD[kind]  # joins while everyone else is connected and busy
        k = self.kinds[kind]
        k.delivered += 1
        if kind in _COUNTED_ON_ARRIVAL:
            k.sent += 1
            k.expected += 1
        k.latency.record(seconds)

    def duplicate(self, kind: str) -> None:
        self.kinds[kind].duplicates += 1

    def lost(self, kind: str, count: int) -> None:
        self.kinds[kind].lost += count

    def error(self, what: str) -> None:
        self.errors[what] += 1

    def count(self, what: str) -> None:
        self.counters[what] += 1

    def start_drive(self, now: float, pids: tuple[int, ...]) -> None:
        self.drive_started = now
        self.driving = True
        self._cpu_started = (cpu_seconds(pids), own_cpu_seconds(), steal_seconds())

    def stop_drive(self, now: float, pids: tuple[int, ...]) -> None:
        self.drive_stopped = now
        self.driving = False
        seconds = max(now - self.drive_started, 1e-9)
        server_before, own_before, steal_before = self._cpu_started
        server_after, steal_after = cpu_seconds(pids), steal_seconds()
        self.cpu = {
            "generator_utilization": round((own_cpu_seconds() - own_before) / seconds, 3),
            "server_utilization": None
            if server_after is None or server_before is None
            else round((server_after - server_before) / seconds, 3),
            "steal_seconds": None
            if steal_after is None or steal_before is None
            else round(steal_after - steal_before, 3),
        }

    # -- server memory (a local server only) ------------------------------------------------

    @staticmethod
    def server_rss(pids: tuple[int, ...]) -> int | None:
        """Resident memory of the processes `pids` in KiB, from /proc (Linux)."""
        if not pids:
            return None
        total = 0
        try:
            for pid in pids:
                with open(f"/proc/{pid}/status") as status:
                    total += next(int(x.split()[1]) for x in status if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return None
        return total

    def server_memory(self, before: int | None, after: int | None, connections: int) -> None:
        if before is None or after is None:
            return
        self.memory = {
            "rss_before_kib": before,
            "rss_joined_kib": after,
            "connections": connections,
            "kib_per_connection": round((after - before) / connections, 2) if connections else None,
        }

    # -- output -----------------------------------------------------------------------------

    def progress_line(self, now: float, connected: int) -> str:
        sent = sum(k.sent for name, k in self.kinds.items() if name in ("relay", "chat", "hand"))
        delivered = sum(
            k.delivered for name, k in self.kinds.items() if name in ("relay", "chat", "hand")
        )
        window = Histogram()
        for name in ("relay", "chat", "hand"):
            k = self.kinds[name]
            window.merge(k.latency.since(k.shown))
            k.shown = k.latency.counts[:]
        elapsed = max(now - self._last_line, 1e-9)
        send_rate = (sent - self._last_sent) / elapsed
        delivery_rate = (delivered - self._last_delivered) / elapsed
        self._last_line, self._last_sent, self._last_delivered = now, sent, delivered
        p50, p99 = window.percentile(50), window.percentile(99)
        latency = (
            f"p50 {p50:.2f} ms  p99 {p99:.2f} ms" if p50 is not None and p99 else "p50 -  p99 -"
        )
        return (
            f"connected {connected:>6}  sent {send_rate:>9.0f}/s  delivered {delivery_rate:>9.0f}/s"
            f"  {latency}  errors {sum(self.errors.values())}"
        )

    def report(self, options: Options, run: Run, started: float) -> dict[str, Any]:
        seconds = max(self.drive_stopped - self.drive_started, 1e-9)
        kinds: dict[str, Any] = {}
        for name, k in self.kinds.items():
            if k.sent == 0 and k.delivered == 0:
                continue
            kinds[name] = {
                "sent": k.sent,
                "expected": k.expected,
                "delivered": k.delivered,
                "lost": k.lost,
                "duplicates": k.duplicates,
                "per_second": round(k.delivered / seconds, 1),
                "bytes_sent": k.bytes,
                "latency_ms": k.latency.summary(),
            }
        failures = sum(self.errors.values()) + sum(
            k["lost"] + k["duplicates"] + (k["expected"] - k["delivered"]) for k in kinds.values()
        )
        return {
            "target": options.target,
            "urls": list(options.urls),
            "placement": options.placement,
            "participants": options.participants,
            "rooms": options.rooms,
            "mode": "idle"
            if options.idle
            else ("saturation" if options.rate <= 0 else "fixed rate"),
            "offered_rate": options.rate,
            "window": options.window if options.rate <= 0 else None,
            "mix": options.mix,
            "churn_per_second": options.churn,
            "started_at": round(started, 3),
            "drive_seconds": round(seconds, 3),
            "operations": run.issued,
            "kinds": kinds,
            "counters": dict(self.counters),
            "errors": dict(self.errors),
            "server_memory": self.memory,
            # CPU used during the load, as a fraction of one core: a server below ~0.95 at
            # saturation was not the bottleneck (the generator or the machine was). Steal:
            # seconds a hypervisor held this machine's CPUs meanwhile; above zero, latencies
            # include pauses that are not the server's.
            "cpu": self.cpu,
            "generator_pid": os.getpid(),
            "ok": failures == 0,
        }


def table(report: dict[str, Any]) -> str:
    """The summary table for a terminal."""
    head = f"{'':<7}{'expected':>10}{'delivered':>11}{'lost':>7}{'dup':>5}{'per s':>10}"
    head += f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    lines = [
        f"{report['target']} at {', '.join(report['urls'])}: {report['participants']} "
        f"participants in {report['rooms']} rooms, {report['mode']}"
        + (f" ({report['offered_rate']:g} ops/s offered)" if report["mode"] == "fixed rate" else "")
        + f", {report['drive_seconds']:.1f} s",
        head,
    ]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for name, k in report["kinds"].items():
        lat = k["latency_ms"]
        lines.append(
            f"{name:<7}{k['expected']:>10}{k['delivered']:>11}{k['lost']:>7}{k['duplicates']:>5}"
            f"{k['per_second']:>10.0f}{ms(lat['p50']):>9}{ms(lat['p90']):>9}{ms(lat['p99']):>9}"
            f"{ms(lat['max']):>9}"
        )
    if report["server_memory"]:
        mem = report["server_memory"]
        lines.append(
            f"server memory: {mem['rss_before_kib']} KiB -> {mem['rss_joined_kib']} KiB with "
            f"{mem['connections']} connections: {mem['kib_per_connection']} KiB each"
        )
    steal = report["cpu"].get("steal_seconds")
    if steal:
        lines.append(
            f"note: the hypervisor took {steal * 1000:.0f} ms of CPU time from this machine "
            "meanwhile (steal); latencies include those pauses"
        )
    if report["errors"]:
        lines.append("errors: " + ", ".join(f"{k} x{v}" for k, v in report["errors"].items()))
    lines.append("OK: everything sent was delivered, once" if report["ok"] else "FAILED")
    return "\n".join(lines)
