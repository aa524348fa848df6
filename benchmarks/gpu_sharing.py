"""GPU sharing on the real Alibaba GenTD26 inference trace (issue 7, item 2).

The trace has per-pod GPU duty cycle (%) and framebuffer bytes for 80 inference pods over ~23 h,
but no node facts. Assumption, stated because the answer depends on it: one bare Pod per
``container_ip``, each holding one whole GPU (``nvidia.com/gpu: 1``) of an A100-80GB-like node
(``NVIDIA-A100-SXM4-80GB``, 80 GiB, 8 GPUs per node, MIG off, no price: fallback rates). The trace is
shorter than the recommender's default 24 h minimum, so this runs with ``min_hours=12``.
Usage: python benchmarks/gpu_sharing.py [--margin 0.2] [--min-hours 12]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from analyzer.snapshot import Manifest, Snapshot
from recommenders.gpu import recommend_gpu
from recommenders.mig import USABLE_FRACTION

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "alibaba-gentd26-gpu"
MODEL = "NVIDIA-A100-SXM4-80GB"
DCGM_MODEL = "NVIDIA A100-SXM4-80GB"
DEVICE_MEMORY = 80 * 2**30
GPUS_PER_NODE = 8
STEP = 60  # the trace samples every ~57 s


def alibaba_snapshot(directory: Path = REAL) -> Snapshot:
    """The trace as a Snapshot under the module docstring's assumption."""
    duty = pl.read_csv(directory / "pod_gpu_duty_cycle_anon.csv.gz")
    fb = pl.read_csv(directory / "pod_gpu_memory_used_bytes_anon.csv.gz")
    ips = sorted(set(duty["container_ip"].drop_nulls()) | set(fb["container_ip"].drop_nulls()))
    pods = pl.DataFrame({
        "container_ip": ips,
        "pod": [f"infer-{ip[:12]}" for ip in ips],
        "device": [f"GPU-{ip[:8]}-{ip[8:12]}-{ip[12:16]}-{ip[16:20]}-{ip[20:32]}" for ip in ips],
        "node": [f"a100-80gb-{i // GPUS_PER_NODE}" for i in range(len(ips))],
    })

    def long(df: pl.DataFrame, resource: str, scale: float) -> pl.DataFrame:
        return df.drop_nulls(["container_ip", "value"]).join(pods, on="container_ip").select(
            pl.from_epoch(pl.col("timestamp_anon").cast(pl.Int64), time_unit="s").dt.replace_time_zone("UTC")
            .alias("timestamp"),
            pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"), pl.col("pod").alias("workload"),
            "pod", pl.lit("main").alias("container"), pl.lit(resource).alias("resource"),
            (pl.col("value").cast(pl.Float64) * scale).alias("value"), "device")

    usage = pl.concat([long(duty, "gpu", 0.01), long(fb, "gpu_memory", 1.0)])
    start, end = usage["timestamp"].min(), usage["timestamp"].max()
    n = pods.height
    containers = pods.select(
        pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"), pl.col("pod").alias("workload"),
        "pod", pl.lit("main").alias("container"), pl.lit("app").alias("container_type"), "node",
        pl.lit("nvidia.com/gpu").alias("gpu_resource"), pl.lit(1).alias("gpu_request"), pl.lit(1).alias("gpu_limit"))
    workloads = pods.select(pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"),
                            pl.col("pod").alias("workload"), pl.lit(1).alias("replicas"))
    node_names = sorted(set(pods["node"]))
    nodes = pl.DataFrame({
        "node": node_names, "capacity_type": ["unknown"] * len(node_names),
        "gpu_count": [min(GPUS_PER_NODE, n - i * GPUS_PER_NODE) for i in range(len(node_names))],
        "gpu_model": [MODEL] * len(node_names), "gpu_memory": [DEVICE_MEMORY] * len(node_names),
        "mig_strategy": ["none"] * len(node_names), "gpu_sharing": ["none"] * len(node_names),
        "first_seen": [start] * len(node_names), "last_seen": [end] * len(node_names),
    })
    gpus = pods.select("node", "device", pl.lit(DCGM_MODEL).alias("model"),
                       pl.lit(DEVICE_MEMORY).alias("memory_total"), pl.lit("alibaba").alias("namespace"), "pod",
                       pl.lit("main").alias("container"))
    manifest = Manifest(cluster="alibaba-gentd26", start=start, end=end, step_seconds=STEP,
                        source=f"{directory} (one pod per container_ip on A100-80GB-like nodes)",
                        created_at=datetime(2026, 1, 1, tzinfo=UTC))
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes, gpus=gpus)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--min-hours", type=float, default=12.0)
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"skipped: {REAL} is absent (the real traces are not part of the repository)")
        return 0
    t0 = time.perf_counter()
    snap = alibaba_snapshot()
    t1 = time.perf_counter()
    rs = recommend_gpu(snap, margin=args.margin, min_hours=args.min_hours)
    t2 = time.perf_counter()
    gpu = rs.cluster_notes["gpu"]
    print(f"pods: {snap.containers.height}, usage rows: {snap.usage.height}, build {t1 - t0:.2f} s, "
          f"recommend {t2 - t1:.2f} s (margin {args.margin:.0%}, min history {args.min_hours:g} h)")
    print(f"GPUs needed now: {gpu['gpus_needed_now']}, after: {gpu['gpus_needed_after']}, "
          f"released: {gpu['gpus_released']} ({gpu['gpus_released'] / max(gpu['gpus_needed_now'], 1):.0%})")
    print(f"recommendations: {dict(Counter(r.kind for r in rs.recommendations))}, skipped: {len(rs.skipped)}, "
          f"kept (need the whole GPU): {snap.containers.height - len(rs.recommendations) - len(rs.skipped)}")
    for reason, count in Counter(re.sub(r"[\d.]+ h", "N h", s.reason) for s in rs.skipped).most_common():
        print(f"  skip x{count}: {reason}")
    _why_kept(snap, args.margin)
    print("proposed profiles (pods):", dict(sorted(gpu["profiles"].items())))
    if rs.recommendations:
        head = [r.evidence.observed["proposed_memory_bytes"] / r.evidence.observed["framebuffer_peak_bytes"]
                for r in rs.recommendations if r.kind == "gpu-share"]
        short = [r.evidence.observed.get("shortfall_fraction", 0.0) for r in rs.recommendations]
        if head:
            print(f"proposed memory / peak framebuffer: min {min(head):.2f}, median {sorted(head)[len(head) // 2]:.2f}")
        print(f"compute shortfall (share of samples above the proposal): max {max(short):.3f}, "
              f"mean {sum(short) / len(short):.3f}; monthly saving ${rs.monthly_saving_usd:,.0f} ({rs.notes})")
    print("margin sensitivity (same trace):")
    for m in (0.0, 0.1, 0.2, 0.3):
        g = recommend_gpu(snap, margin=m, min_hours=args.min_hours).cluster_notes["gpu"]
        print(f"  margin {m:.0%}: released {g['gpus_released']} of {g['gpus_needed_now']}, profiles {g['profiles']}")
    return 0


def _why_kept(snap: Snapshot, margin: float) -> None:
    """What binds for the pods that keep a whole GPU: memory (no half-GPU slice holds the peak) or compute."""
    per = (snap.usage.group_by("pod").agg(
        pl.col("value").filter(pl.col("resource") == "gpu").quantile(0.95, "linear").alias("p95"),
        pl.col("value").filter(pl.col("resource") == "gpu_memory").max().alias("peak")))
    half = 40 * 2**30 * USABLE_FRACTION
    mem = per.filter(pl.col("peak") * (1 + margin) > half).height
    cpu = per.filter(pl.col("p95") * (1 + margin) > 4 / 7).height
    print(f"pods whose peak framebuffer x{1 + margin:g} exceeds a 4g.40gb/3g.40gb slice ({half / 2**30:.0f} GiB usable): "
          f"{mem} of {per.height}; whose P95 busy x{1 + margin:g} exceeds 4/7 of a GPU: {cpu}; "
          f"peak framebuffer median {per['peak'].median() / 2**30:.1f} GiB, P95 busy median {per['p95'].median():.1%}")


if __name__ == "__main__":
    sys.exit(main())
