"""A CPU quota for one process (a Linux cgroup), so that a server, not the load generator,
is what runs out.

The load generator is Python on one core and cannot outrun a lean server on another: at
"saturation" the generator is often the one at 100 %. Capped at half a core, every server
saturates while the generator still has half its core to spare, and throughputs compare as
they are, without dividing by CPU time. Needs root and a writable cgroup `cpu` controller
(v1 `/sys/fs/cgroup/cpu`, or v2 with `cpu` enabled); `CpuCap.create` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
NAME = "videoconf-bench"
PERIOD_US = 10_000  # short periods: a capped server pauses for milliseconds, not 100 ms


class CpuCap:
    """A cgroup of its own that holds processes to `cores` of CPU time."""

    def __init__(self, directory: Path, version: int, cores: float) -> None:
        self.directory = directory
        quota = int(PERIOD_US * cores)
        if version == 1:
            (directory / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (directory / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (directory / "cpu.max").write_text(f"{quota} {PERIOD_US}")

    @classmethod
    def create(cls, cores: float) -> CpuCap | str:
        """The cap, or why there can be none here."""
        if os.geteuid() != 0:
            return "not root"
        try:
            if (CGROUPS / "cpu" / "cpu.cfs_quota_us").exists():
                directory = CGROUPS / "cpu" / NAME
                directory.mkdir(exist_ok=True)
                return cls(directory, 1, cores)
            controllers = CGROUPS / "cgroup.controllers"
            if controllers.exists() and "cpu" in controllers.read_text().split():
                (CGROUPS / "cgroup.subtree_control").write_text("+cpu")
                directory = CGROUPS / NAME
                directory.mkdir(exist_ok=True)
                return cls(directory, 2, cores)
        except OSError as exc:
            return f"cgroup: {exc}"
        return "no cgroup cpu controller"

    def hold(self, pid: int) -> None:
        """Put a process (all its threads) under the cap for the rest of its life."""
        (self.directory / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # once the processes in it have exited
