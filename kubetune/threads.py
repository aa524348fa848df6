"""Cap BLAS/OpenMP thread pools to the cores this process may use, before numpy/scikit-learn load.

OpenMP (scikit-learn's gradient boosting) and BLAS size their pools from the machine's core count,
not from the CPU affinity mask or the container's CPU quota; in a 2-CPU pod on a 64-core node, or on
a loaded machine, that oversubscribes and CPU time balloons (issue #16 measured 15x). A variable the
user already set wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

POOLS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def available_cores() -> int:
    """CPUs in the affinity mask, further limited by a cgroup v2/v1 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_quota() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def cap_threads() -> int:
    """Set the pool sizes the user has not set to ``available_cores()``; returns that number."""
    cores = available_cores()
    for name in POOLS:
        os.environ.setdefault(name, str(cores))
    wait_policy()
    return cores


def wait_policy(load: float | None = None) -> str | None:
    """``OMP_WAIT_POLICY=PASSIVE`` when the machine is busier than its CPUs, unless the user set it.

    OpenMP threads spin while they wait for their siblings; when other processes hold the cores, the
    spinning burns the CPU the siblings need. Measured with `kubetune forecast` on 200 workloads
    (benchmarks/README.md): with four busy processes on 2 cores, 78 s (spinning) vs 32 s (passive);
    on an idle machine passive waiting is the slower one (8.5 s vs 16 s), so it is not the default.
    The load average is the machine's, so it is compared with the machine's CPUs (a busy 64-core node
    with a 2-CPU pod on it is not oversubscribed for that pod)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return None
    try:
        load = os.getloadavg()[0] if load is None else load
    except OSError:
        return None
    if load > (os.cpu_count() or 1):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None
