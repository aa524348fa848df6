"""The weekly report at scale (issue 17): `kubetune report` on a ~5,000-container, 14-day snapshot.

Simulates ``workloads=1260`` (about 5,000 containers at once, 5-min samples, ~42 M usage rows),
writes it as a snapshot, then runs the real console script on it in a fresh process, as the
CronJob would: load, cost, recommendations (incl. drift), forecast band, HTML/MD/JSON, patches.
Reports wall time, the child's peak RSS and the output sizes. Target: under 2 minutes on 2 cores.

    .venv/bin/python benchmarks/report_scale.py [--workloads 1260] [--days 14] [--keep-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analyzer.simulator import simulate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1260)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-dir", type=Path, default=None, help="Keep the snapshot and report here.")
    args = ap.parse_args(argv)
    work = args.keep_dir or Path(tempfile.mkdtemp(prefix="kubetune-report-scale-"))
    snap_dir, out = work / "snap", work / "report"
    if not (snap_dir / "manifest.json").exists():
        t = time.perf_counter()
        snap = simulate(workloads=args.workloads, days=args.days, step_seconds=300, seed=args.seed)
        snap.write(snap_dir, overwrite=True)
        print(f"simulated + wrote {snap.usage.height:,} usage rows, {snap.containers.height:,} container rows "
              f"in {time.perf_counter() - t:.1f} s")
        del snap
    env = {**os.environ, "NO_COLOR": "1"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kubetune", "report", str(snap_dir), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    took = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = usage.ru_maxrss / 1024**2
    cpu = usage.ru_utime + usage.ru_stime
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        print(f"kubetune report failed with exit {proc.returncode}")
        return 1
    doc = json.loads((out / "report.json").read_text())
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    patches = sum(1 for _ in (out / "patches").rglob("*.yaml"))
    print(f"kubetune report: {took:.1f} s wall (target < 120 s), {cpu:.1f} s CPU (user+sys), peak RSS {rss:.2f} GB; "
          f"{doc['summary']['containers']:,} containers, {doc['headline']['recommendations']:,} recommendations, "
          f"{patches:,} patch files; sizes {json.dumps(sizes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
