"""Who used the CPU during a benchmark: API workers, each server, the client, everything else.

On a 2-core machine the question "is the API slow, or was the machine busy?" decides how to read
any figure, so the bench reads Linux's per-process CPU counters (`/proc/PID/stat` utime+stime)
and the machine's (`/proc/stat`) before and after the run. "Other" is the machine's busy time
minus the processes we know: other engineers' tests, the kernel's softirq for loopback traffic.
Outside Linux every figure is None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds (None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command: state(0) ppid(1) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (Gunicorn's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def connections_per_process(workers: list[int], port: int) -> dict[int, int]:
    """Established connections on local `port` held by each of `workers` (from /proc).

    How the clients' keep-alive connections are spread over the API's workers: a worker
    accepts every connection waiting when it wakes, so 50 connections opened at once can land
    48 / 2, and a worker holding most of them is bound to one core (issue #13, session 8).
    """
    inodes: dict[str, int] = {}
    for pid in workers:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # the worker is gone
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    counts = dict.fromkeys(workers, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                counts[inodes[fields[9]]] += 1
    return counts


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS, total / _TICKS


@dataclass
class CpuMeter:
    """CPU seconds of named process groups between `start()` and `stop()`."""

    groups: dict[str, list[int]]
    _before: dict[str, float | None] = field(default_factory=dict)
    _after: dict[str, float | None] = field(default_factory=dict)
    _machine_before: tuple[float, float] | None = None
    _machine_after: tuple[float, float] | None = None

    def start(self) -> None:
        self._before = {name: self._sum(pids) for name, pids in self.groups.items()}
        self._machine_before = machine_cpu_seconds()

    def stop(self) -> None:
        self._after = {name: self._sum(pids) for name, pids in self.groups.items()}
        self._machine_after = machine_cpu_seconds()

    @staticmethod
    def _sum(pids: list[int]) -> float | None:
        values = [process_cpu_seconds(pid) for pid in pids]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    def result(self, *, extra: dict[str, float] | None = None) -> dict[str, float | None]:
        """Seconds per group, `machine_busy`, `machine_capacity` and `other` (the rest)."""
        out: dict[str, float | None] = {}
        for name in self.groups:
            before, after = self._before.get(name), self._after.get(name)
            out[name] = None if before is None or after is None else round(after - before, 2)
        out.update({name: round(value, 2) for name, value in (extra or {}).items()})
        if self._machine_before and self._machine_after:
            busy = self._machine_after[0] - self._machine_before[0]
            capacity = self._machine_after[1] - self._machine_before[1]
            known = sum(v for v in out.values() if v is not None)
            out["machine_busy"] = round(busy, 2)
            out["machine_capacity"] = round(capacity, 2)
            out["other"] = round(max(0.0, busy - known), 2)
        return out
