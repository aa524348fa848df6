"""Specs and counters read on a grid (``promlast``) against the exact scan, on a cluster with pod churn.

``end_to_end.py``'s clusters keep every pod for the whole window, so every spec series is alive at
the end and the grid is never needed there. This benchmark uses the simulator's cluster instead:
Deployment rollouts, CronJob runs and Jobs make pods come and go, so many series end during the
window, some shorter than a grid step. The cluster is rendered as exporter text
(``write_openmetrics``), backfilled with promtool (kept in ``--workdir`` for the next run) and
served by a real Prometheus on 127.0.0.1. ``collect_prometheus`` runs alternately with
``spec_grid=0`` (the exact ``last_over_time`` / ``increase`` scans) and with the default grid,
``--repeat`` times each. Reported per run: Prometheus CPU for the whole collection (/proc), the
server time of the spec and counter requests (from the client's request log), their number, and
whether the snapshot equals the exact scan's (``cpu_throttled_fraction`` within 1 %).

    .venv/bin/python benchmarks/spec_reading.py                       # 200 workloads x 14 days
    .venv/bin/python benchmarks/spec_reading.py --workloads 40 --days 4 --repeat 1   # a quick one
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus  # noqa: E402
from benchmarks.end_to_end import cpu_seconds, load  # noqa: E402
from tests.support.prometheus_server import backfill, block_samples, need, start_prometheus  # noqa: E402

SPEC_QUERIES = ("pod owners", "requests and limits", "replicas and autoscalers", "nodes", "node lifetimes",
                "CPU throttling", "restarted containers", "series index")
FRAMES = ("containers", "workloads", "nodes", "events", "gpus", "namespaces")
EXTRA = ("--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h")  # no compaction


def build(workdir: Path, workloads: int, days: int, seed: int) -> tuple[Path, object]:
    from analyzer.simulator import simulate
    from analyzer.simulator.openmetrics import write_openmetrics

    truth = simulate(workloads=workloads, days=days, step_seconds=300, seed=seed)
    tsdb = workdir / f"sim-w{workloads}-d{days}-s{seed}" / "tsdb"
    if not tsdb.exists():
        om = tsdb.parent / "cluster.om"
        t0 = time.perf_counter()
        write_openmetrics(truth, om)
        backfill(om, tsdb)
        om.unlink()
        print(f"built {tsdb} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return tsdb, truth


def same(a, b) -> bool:
    for name in FRAMES:
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None):
            return False
        if x is None:
            continue
        t = "cpu_throttled_fraction"
        if not x.drop(t, strict=False).equals(y.drop(t, strict=False)):
            return False
        if t in x.columns:
            key = ["namespace", "pod", "container"]
            j = x.select(*key, t).join(y.select(*key, t), on=key, suffix="_e").drop_nulls()
            if j.filter((pl.col(t) - pl.col(f"{t}_e")).abs() > 0.01 * pl.col(f"{t}_e").abs() + 1e-9).height:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=200)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kubetune-bench-prometheus")
    args = ap.parse_args()
    need("prometheus", "promtool")
    tsdb, truth = build(args.workdir, args.workloads, args.days, args.seed)
    c = truth.containers
    ended = c.filter(pl.col("ended_at").is_not_null()).height
    print(f"cluster: {args.workloads} workloads x {args.days} d (simulator seed {args.seed}), {c.height} containers "
          f"over the window, {ended} of them ended in it; {block_samples(tsdb):,} samples in the TSDB")
    server = start_prometheus(tsdb, tsdb.parent / "run", extra_args=EXTRA)
    rows, exact_snap = [], None
    try:
        m = truth.manifest
        for i in range(args.repeat):
            for grid in (0.0, PrometheusConfig.spec_grid):
                config = PrometheusConfig(url=server.url, timeout=600, spec_grid=grid)
                client = PrometheusClient(config)
                load_before, cpu0, t0 = load(), cpu_seconds(server.pid), time.perf_counter()
                snap = collect_prometheus(config, start=m.start, end=m.end, client=client)
                wall, cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - cpu0
                spec = [e for e in client.log.entries if e[0].split(" (")[0] in SPEC_QUERIES]
                if grid == 0:
                    exact_snap = snap
                rows.append({"run": i + 1, "reading": "exact scan" if grid == 0 else f"grid {grid / 3600:g} h",
                             "wall_s": wall, "prometheus_cpu_s": cpu, "spec_requests": len(spec),
                             "spec_http_s": sum(e[2] for e in spec), "requests": len(client.log),
                             "same": same(snap, exact_snap), "load": load_before})
                time.sleep(1)
    finally:
        server.stop()
    print(f"\nmachine: {os.cpu_count()} cores; Prometheus {server.kind} on 127.0.0.1\n")
    print("| run | specs and counters | collect wall | Prometheus CPU | spec/counter requests | their HTTP time "
          "| all requests | snapshot = exact scan's | load before |")
    print("|---|---|--:|--:|--:|--:|--:|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['reading']} | {r['wall_s']:.1f} s | {r['prometheus_cpu_s']:.1f} s | "
              f"{r['spec_requests']} | {r['spec_http_s']:.2f} s | {r['requests']} | {'yes' if r['same'] else 'NO'} | "
              f"{r['load']} |")


if __name__ == "__main__":
    main()
