"""Recommenders at scale (issue 7): every recommender over a ~5,000-container, 14-day, 5-min cluster.

Times ``recommend()`` (rightsizing incl. drift detection, GPU, spot, rates from the cost model)
and ``write_patches`` on ``simulate(workloads=1260, days=14)`` (~40 M usage rows), and reports
peak RSS. No target is named by the issue; the bar is that a CronJob on a large cluster finishes in
minutes on 2 cores.

    .venv/bin/python benchmarks/recommend_scale.py [--workloads 1260] [--days 14]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from analyzer.simulator import simulate
from recommenders.api import recommend
from recommenders.patches import write_patches


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1260)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-policy", default=None, help="guaranteed (default) or burstable (adds the node check)")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    snap = simulate(workloads=args.workloads, days=args.days, step_seconds=300, seed=args.seed)
    print(f"simulate: {snap.usage.height:,} usage rows, {snap.containers.height:,} container rows, "
          f"{time.perf_counter() - t:.1f} s, RSS {peak_rss_gb():.2f} GB")
    rss0 = peak_rss_gb()
    t = time.perf_counter()
    if args.memory_policy:
        from recommenders.policy import RightsizePolicy

        result = recommend(snap, RightsizePolicy(memory_policy=args.memory_policy))
    else:
        result = recommend(snap)
    took = time.perf_counter() - t
    kinds = Counter(r.kind for r in result.recommendations)
    print(f"recommend: {len(result.recommendations):,} recommendations {dict(kinds)}, {len(result.skipped):,} skipped, "
          f"{took:.1f} s, peak RSS {peak_rss_gb():.2f} GB (before: {rss0:.2f} GB)")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        files = write_patches(result, Path(tmp) / "patches")
        print(f"write_patches: {len(files.files):,} patches in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
