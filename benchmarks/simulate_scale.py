"""Simulator at scale (issue 2): ~5,000 containers x 14 days x 5 min -> ~40 M usage rows.

Times ``simulate()`` and the snapshot write separately and reports rows and peak RSS.
"Containers" is the number running at once (the peak over the window's samples); the
containers frame holds more rows, because CronJob runs and rollouts add pods over time.
Target: ``simulate`` under 60 s on 2 cores, peak RSS a few GB at most.

    .venv/bin/python benchmarks/simulate_scale.py [--workloads 1260] [--days 14] [--step 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from analyzer.simulator import simulate
from analyzer.snapshot import write_snapshot


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1260)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--step", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    snap = simulate(workloads=args.workloads, days=args.days, step_seconds=args.step, seed=args.seed)
    t_sim = time.perf_counter() - t0
    rss_sim = peak_rss_gb()

    per_step = snap.usage.filter(pl.col("resource") == "cpu").group_by("timestamp").len().get_column("len")
    running = int(per_step.max())
    counts = dict(snap.usage.group_by("resource").len().iter_rows())
    rows = snap.usage.height
    print(f"simulate(workloads={args.workloads}, days={args.days:g}, step_seconds={args.step}, seed={args.seed}): "
          f"{t_sim:.1f} s, peak RSS {rss_sim:.2f} GB")
    print(f"  {running:,} containers running at once (mean {per_step.mean():,.0f}); containers frame "
          f"{snap.containers.height:,} rows; {snap.workloads.height:,} workloads, {snap.nodes.height:,} nodes, "
          f"{snap.gpus.height:,} GPU devices, {snap.events.height:,} events")
    print(f"  {rows:,} usage rows (" + ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items())) + ")")

    with tempfile.TemporaryDirectory(prefix="kubetune-sim-bench-") as tmp:
        t1 = time.perf_counter()
        path = write_snapshot(snap, Path(tmp) / "snap")
        t_write = time.perf_counter() - t1
        size = sum(f.stat().st_size for f in path.iterdir()) / 1024**2
    rss = peak_rss_gb()
    print(f"write_snapshot: {t_write:.1f} s, {size:,.0f} MiB on disk; peak RSS {rss:.2f} GB")
    load = os.getloadavg()[0]
    machine = (f"{os.cpu_count()} cores, {platform.machine()}, Python {sys.version.split()[0]}, "
               f"Polars {pl.__version__}, load average {load:.2f}")
    print(f"machine: {machine}")
    ok = t_sim < 60
    print("PASS" if ok else "FAIL", "(target: simulate < 60 s)")
    print()
    print("| date | workloads | containers at once / frame rows | usage rows | simulate | write | peak RSS | on disk |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {datetime.now(UTC):%Y-%m-%d} | {args.workloads:,} | {running:,} / {snap.containers.height:,} | "
          f"{rows:,} | {t_sim:.1f} s | {t_write:.1f} s | {rss:.2f} GB | {size:,.0f} MiB |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
