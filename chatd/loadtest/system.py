"""What the load tools ask of the operating system: CPU pinning, the open-files limit, and
this process's CPU time (a child server's memory and CPU time: `chatd.launcher`)."""

from __future__ import annotations

import os
import resource


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin(cpus: set[int] | None, pid: int = 0) -> None:
    """Runs `pid` (0: this process) on `cpus` only; None leaves it as it is."""
    if cpus:
        os.sched_setaffinity(pid, cpus)


def parse_cpus(text: str | None) -> set[int] | None:
    """`0`, `1,3` or `2-5` to a set of CPU numbers; None or empty for no pinning."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def raise_open_files(wanted: int | None = None) -> int:
    """Raises the soft limit of open files towards `wanted` (default: the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else min(hard, max(soft, wanted))
    if hard == resource.RLIM_INFINITY and wanted is None:
        target = max(soft, 1_048_576)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
