"""How many threads torch and onnxruntime may use: the cores this process can actually run on.

Why: torch and onnxruntime size their pools from the machine's core count, which ignores a
CPU affinity mask, a container's cgroup quota and other worker processes.  On a busy
2-core machine ``graftonnx demo`` took more than 600 s with the default pools and about
100 s with one thread per process.  Here the count comes from ``os.sched_getaffinity`` and
the cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), divided among worker processes,
and is handed to child processes through :data:`ENV` so a pool never oversubscribes.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

__all__ = ["ENV", "available_cores", "cgroup_cpus", "pick_threads", "set_threads", "current_threads"]

#: Environment variable carrying the chosen count to this process's later sessions and to its children.
ENV = "GRAFTONNX_THREADS"
_CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpus(root: Path | str = _CGROUP) -> float | None:
    """The CPU quota of the cgroup (cores, may be fractional), or None when there is none."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000" or "200000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        q = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        p = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def available_cores(root: Path | str = _CGROUP) -> int:
    """Cores this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpus(root)
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))  # 1.5 cores of quota: one busy thread, not two throttled ones
    return max(1, n)


def pick_threads(requested: int | None = None, workers: int = 1, root: Path | str = _CGROUP) -> int:
    """Threads per process: ``requested`` when given, else the available cores shared by ``workers`` processes.

    An ``OMP_NUM_THREADS`` set by the user caps the automatic count: it is their choice for this machine.
    """
    if requested:
        return int(requested)
    n = available_cores(root) // max(1, workers)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(1, n)


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in onnxruntime sessions, here and in child processes."""
    os.environ[ENV] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:  # torch sizes its pool from this when first imported
        os.environ["OMP_NUM_THREADS"] = str(n)


def current_threads() -> int:
    """The count :func:`set_threads` chose (inherited by child processes), else :func:`pick_threads`'s."""
    v = os.environ.get(ENV, "")
    return int(v) if v.isdigit() and int(v) > 0 else pick_threads()
