"""The load tester's report: what it says about the machine it ran on."""

from __future__ import annotations

from typing import Any

from videoconf.loadtest.stats import steal_seconds, table


def report(steal: float | None) -> dict[str, Any]:
    return {
        "target": "videoconf",
        "urls": ["http://127.0.0.1:8080"],
        "participants": 2,
        "rooms": 1,
        "mode": "fixed rate",
        "offered_rate": 10,
        "drive_seconds": 1.0,
        "kinds": {},
        "server_memory": None,
        "cpu": {"generator_utilization": 0.1, "server_utilization": 0.1, "steal_seconds": steal},
        "errors": {},
        "ok": True,
    }


def test_steal_is_read_from_the_machine() -> None:
    first = steal_seconds()
    assert first is not None and first >= 0  # Linux
    second = steal_seconds()
    assert second is not None and second >= first


def test_the_summary_says_when_the_hypervisor_took_cpu_time() -> None:
    assert "steal" in table(report(0.05))
    assert "50 ms" in table(report(0.05))
    assert "steal" not in table(report(0.0))
    assert "steal" not in table(report(None))
