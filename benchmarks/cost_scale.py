"""Cost model at scale (issue 5): 5,000 containers x 14 days x 5 min -> ~40 M usage rows.

Builds a synthetic snapshot directly with NumPy/Polars (no simulator needed), then times the
full allocation (``analyze_cost``) plus the roll-ups the CLI and report use. The snapshot is
written to a temporary directory and analysed in a fresh process that loads it, as
``kubetune cost`` would, so the peak RSS reported is the analysis', not the generator's.
Target: under 20 s and under 3 GB on 2 cores.

    .venv/bin/python benchmarks/cost_scale.py [--containers 5000] [--days 14] [--step 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from analyzer.cost import analyze_cost, rollup, top_waste
from analyzer.snapshot import Manifest, Snapshot

GIB = 2**30
START = datetime(2026, 9, 1, tzinfo=UTC)
NODE_TYPES = [  # (instance_type, cores, GiB, GPUs, capacity_type)
    ("m5.2xlarge", 8.0, 32, 0, "on-demand"),
    ("m6i.4xlarge", 16.0, 64, 0, "on-demand"),
    ("r5.2xlarge", 8.0, 64, 0, "spot"),
    ("c5.4xlarge", 16.0, 32, 0, "spot"),
    ("g5.2xlarge", 8.0, 32, 1, "on-demand"),
    ("acme.metal", 32.0, 128, 0, "on-demand"),  # unknown type -> fallback rates
]


def peak_rss_gb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec,
    so a child would report the generator's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build(containers: int, days: float, step: int, seed: int = 0) -> Snapshot:
    """A cluster of ``containers`` app containers (2 per pod), every one sampled every ``step``."""
    rng = np.random.default_rng(seed)
    steps = int(days * 86400 // step)
    n_gpu_pods = max(1, containers // 200)
    n = containers
    pods = n // 2
    pod_idx = np.arange(n) // 2
    workload_idx = pod_idx // 3
    ns_idx = workload_idx % 40
    gpu = pod_idx < n_gpu_pods
    # Nodes: enough CPU for the requests, GPU nodes for the GPU pods.
    cpu_req = np.round(rng.choice([0.1, 0.25, 0.5, 1.0, 2.0], n, p=[0.3, 0.3, 0.2, 0.15, 0.05]), 3)
    mem_req = (rng.choice([128, 256, 512, 1024, 4096], n, p=[0.2, 0.3, 0.3, 0.15, 0.05]) * 2**20).astype(np.int64)
    n_gpu_nodes = n_gpu_pods
    n_cpu_nodes = int(np.ceil(cpu_req.sum() / 8.0 * 1.4))
    node_names, rows = [], []
    for i in range(n_cpu_nodes + n_gpu_nodes):
        t = NODE_TYPES[4] if i >= n_cpu_nodes else NODE_TYPES[[0, 1, 2, 3, 5][i % 5]]
        node_names.append(f"node-{i:05d}")
        rows.append({"node": node_names[-1], "instance_type": t[0], "provider": "aws" if "." in t[0] and t[0] != "acme.metal"
                     else "on-prem", "capacity_type": t[4], "cpu_capacity": t[1], "memory_capacity": t[2] * GIB,
                     "gpu_count": t[3]})
    nodes = pl.DataFrame(rows)
    cpu_nodes = np.array(node_names[:n_cpu_nodes])
    node_of_pod = np.where(np.arange(pods) < n_gpu_pods, np.array(node_names[n_cpu_nodes:] + [""] * pods)[
        np.minimum(np.arange(pods), max(0, n_gpu_nodes - 1))], cpu_nodes[np.arange(pods) % n_cpu_nodes])
    cont = pl.DataFrame({
        "namespace": [f"team-{k:02d}" for k in ns_idx],
        "workload_kind": ["Deployment"] * n,
        "workload": [f"svc-{k:05d}" for k in workload_idx],
        "pod": [f"svc-{w:05d}-{p:06d}" for w, p in zip(workload_idx, pod_idx, strict=True)],
        "container": np.where(np.arange(n) % 2 == 0, "app", "sidecar").tolist(),
        "container_type": np.where(np.arange(n) % 2 == 0, "app", "sidecar").tolist(),
        "node": node_of_pod[pod_idx].tolist(),
        "cpu_request": cpu_req,
        "memory_request": mem_req,
        "gpu_resource": np.where(gpu & (np.arange(n) % 2 == 0), "nvidia.com/gpu", None).tolist(),
        "gpu_request": np.where(gpu & (np.arange(n) % 2 == 0), 1, None).tolist(),
    }).with_columns(pl.col(c).cast(pl.Categorical) for c in ("namespace", "workload_kind", "workload", "pod", "container"))

    # Usage: one row per container x timestamp x resource, values from a daily cycle + noise.
    ts = pl.datetime_range(START, START + timedelta(seconds=step * (steps - 1)), timedelta(seconds=step),
                           time_unit="us", time_zone="UTC", eager=True)
    hours_of_day = (np.arange(steps) * step / 3600.0) % 24
    daily = 0.6 + 0.4 * np.sin((hours_of_day - 6) / 24 * 2 * np.pi)
    level = rng.uniform(0.1, 1.3, n)  # usage / request: some over, most under
    key = cont.select("namespace", "workload_kind", "workload", "pod", "container")
    base = key.join(pl.DataFrame({"timestamp": ts}), how="cross")  # container-major, ~20 M rows
    total = n * steps
    noise = rng.normal(1.0, 0.1, total).clip(0.0)
    cpu_values = (np.repeat(cpu_req * level, steps) * np.tile(daily, n) * noise).astype(np.float64)
    mem_values = (np.repeat(mem_req * level, steps) * (0.9 + 0.1 * np.tile(daily, n))).astype(np.float64)
    del noise
    parts = [
        base.with_columns(pl.lit("cpu").alias("resource"), pl.Series("value", cpu_values)),
        base.with_columns(pl.lit("memory").alias("resource"), pl.Series("value", mem_values)),
    ]
    del cpu_values, mem_values
    gkey = key.filter(pl.Series(gpu & (np.arange(n) % 2 == 0)))
    if gkey.height:
        gbase = gkey.join(pl.DataFrame({"timestamp": ts}), how="cross").with_columns(
            pl.concat_str(pl.lit("GPU-"), pl.col("pod").cast(pl.String)).alias("device"))
        busy = rng.beta(2, 5, gbase.height)
        parts.append(gbase.with_columns(pl.lit("gpu").alias("resource"), pl.Series("value", busy)))
        parts.append(gbase.with_columns(pl.lit("gpu_memory").alias("resource"), pl.Series("value", busy * 20 * GIB)))
    usage = pl.concat([p.with_columns(pl.col("resource").cast(pl.Enum(["cpu", "memory", "gpu", "gpu_memory"])))
                       for p in parts], how="diagonal")
    del parts, base
    workloads = cont.select("namespace", "workload_kind", "workload").unique().with_columns(
        pl.concat_list(pl.struct(pl.lit("team").alias("key"),
                                 pl.concat_str(pl.lit("t"), (pl.col("workload").cast(pl.String).str.slice(-2)))
                                 .alias("value"))).alias("labels"))
    manifest = Manifest(cluster="bench", start=START, end=START + timedelta(seconds=step * (steps - 1)),
                        step_seconds=step, source="benchmarks/cost_scale.py")
    return Snapshot.build(manifest, usage=usage, containers=cont, workloads=workloads, nodes=nodes, events=None)


def analyze(directory: str) -> int:
    """Load the snapshot and run allocation + roll-ups, as ``kubetune cost`` would (fresh process)."""
    from analyzer.snapshot import load_snapshot

    t0 = time.perf_counter()
    snap = load_snapshot(directory)
    t_load = time.perf_counter() - t0
    rss_loaded = peak_rss_gb()
    t1 = time.perf_counter()
    result = analyze_cost(snap)
    t_alloc = time.perf_counter() - t1
    t2 = time.perf_counter()
    tables = {by: rollup(result, by) for by in ("cluster", "namespace", "workload", "node", "label:team")}
    tables["namespace proportional"] = rollup(result, "namespace", idle_share="proportional")
    waste = top_waste(result, 20)
    t_roll = time.perf_counter() - t2
    total = t_alloc + t_roll
    peak = peak_rss_gb()
    check = abs(result.allocated_cost + result.idle_cost - result.total_cost)
    print(f"load {t_load:.2f}s (peak RSS {rss_loaded:.2f} GB); allocation {t_alloc:.2f}s + roll-ups {t_roll:.2f}s "
          f"= {total:.2f}s; peak RSS {peak:.2f} GB")
    print(f"window {result.hours:.0f} h, cluster cost ${result.total_cost:,.2f} "
          f"(${result.total_cost * result.monthly_factor:,.0f}/month), idle ${result.idle_cost:,.2f}, "
          f"|allocated + idle - total| = {check:.2e}; {tables['workload'].height:,} workloads, "
          f"top waste ${waste.get_column('waste_monthly').head(1).item():,.2f}/month; {len(result.warnings)} warning(s)")
    ok = total < 20 and peak < 3.0 and check < 0.005
    print("PASS" if ok else "FAIL", "(target: allocation + roll-ups < 20 s, peak RSS < 3 GB)")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=5000)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--step", type=int, default=300)
    ap.add_argument("--analyze", metavar="DIR", help=argparse.SUPPRESS)  # internal: the measuring subprocess
    args = ap.parse_args(argv)
    if args.analyze:
        return analyze(args.analyze)

    with tempfile.TemporaryDirectory(prefix="kubetune-cost-bench-") as tmp:
        t0 = time.perf_counter()
        snap = build(args.containers, args.days, args.step)
        counts = snap.usage.group_by("resource").len().sort("resource")
        print(f"snapshot: {snap.containers.height:,} containers, {snap.nodes.height:,} nodes, "
              f"{snap.usage.height:,} usage rows ({', '.join(f'{r}={c:,}' for r, c in counts.iter_rows())}); "
              f"built in {time.perf_counter() - t0:.1f}s")
        path = snap.write(os.path.join(tmp, "snap"))
        del snap
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {sys.version.split()[0]}, "
              f"Polars {pl.__version__}, {datetime.now(UTC):%Y-%m-%d}")
        # Measure in a fresh process, so peak RSS is what `kubetune cost` needs, not what building took.
        return subprocess.call([sys.executable, os.path.abspath(__file__), "--analyze", str(path)])


if __name__ == "__main__":
    sys.exit(main())
