"""GPU sharing replayed on the real Alibaba GenTD26 serving trace (issue 21): recommend from the
past, replay the future, count what would have broken.

Assumptions, stated because the answer depends on them: the publisher scaled the values, so the
device is unknown; every pod (``container_ip``) is a bare Pod holding one whole GPU
(``nvidia.com/gpu: 1``) of an 80 GB A100 or H100 node (both are run), MIG off, 8 GPUs per node, no
price (fallback rates). The trace is ~23 h, so the recommender sees the first 2/3 (~15 h) with
``min_history_hours=12`` and the last 1/3 (~7.6 h) is replayed.

Per proposal, in the replay window: the share of framebuffer samples above the proposal's memory
(a MIG slice's memory, or 1/replicas of the GPU under time-slicing/MPS: a CUDA out-of-memory), the
share of busy samples above its compute share (slowdown), and for time-slicing the share of time
the co-located pods' summed busy exceeds 100% (contention) or their summed framebuffer exceeds the
GPU (an OOM for someone). Fleet: GPUs released (``recommenders.gpu_packing``) against a hindsight
packing of the replay window (replay framebuffer peaks and busy P95, first-fit decreasing onto MIG
geometry with its placement rules; separately onto time-shared whole GPUs), beside "whole GPU per
pod" (today) and a flat rule (smallest MIG profile holding the training peak framebuffer x 1.2).

Never tuned to the sample: pods are split in two by a hash of their id; a setting is chosen on the
tune half (most GPUs released with 0 framebuffer overflows) and reported on the other half.
Usage: python benchmarks/gpu_replay.py [--json PATH] [--png PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import GIB
from recommenders.gpu import recommend_gpu
from recommenders.gpu_packing import pack_mig, pack_shared
from recommenders.mig import MIG_PROFILES, profile
from recommenders.record import RecommendationSet

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "alibaba-gentd26-gpu"
DEVICES = {  # family -> (GFD product, DCGM modelName)
    "A100-80GB": ("NVIDIA-A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"),
    "H100-80GB": ("NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3"),
}
DEVICE_MEMORY = 80 * GIB  # what the node advertises
GPUS_PER_NODE = 8
STEP = 60  # the trace samples every ~57 s
TRAIN_FRACTION = 2 / 3
MIN_HISTORY_HOURS = 12.0
BUSY_TARGET = 0.05  # busy above the compute share in at most 5% of a pod's samples
FIXED_MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
FB_RISKS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def load_trace(directory: Path = REAL) -> pl.DataFrame:
    """Long frame: ip, timestamp (UTC), resource (gpu = busy fraction, gpu_memory = bytes), value."""
    def one(name: str, resource: str, scale: float) -> pl.DataFrame:
        df = pl.read_csv(directory / name)
        return df.drop_nulls(["container_ip", "value"]).select(
            pl.col("container_ip").alias("ip"),
            pl.from_epoch(pl.col("timestamp_anon").cast(pl.Int64), time_unit="s").dt.replace_time_zone("UTC")
            .alias("timestamp"),
            pl.lit(resource).alias("resource"), (pl.col("value").cast(pl.Float64) * scale).alias("value"))

    out = pl.concat([one("pod_gpu_duty_cycle_anon.csv.gz", "gpu", 0.01),
                     one("pod_gpu_memory_used_bytes_anon.csv.gz", "gpu_memory", 1.0)])
    return out.with_columns((pl.lit("infer-") + pl.col("ip").str.slice(0, 12)).alias("pod"))


def pod_name(ip: str) -> str:
    return f"infer-{ip[:12]}"


def trace_snapshot(trace: pl.DataFrame, family: str = "A100-80GB") -> Snapshot:
    """The (possibly time-cut) trace as a Snapshot under the module docstring's assumption."""
    product, dcgm = DEVICES[family]
    ips = sorted(trace["ip"].unique())
    pods = pl.DataFrame({"ip": ips, "pod": [pod_name(ip) for ip in ips],
                         "device": [f"GPU-{ip[:8]}-{ip[8:12]}-{ip[12:16]}-{ip[16:20]}-{ip[20:32]}" for ip in ips],
                         "node": [f"{family.lower()}-{i // GPUS_PER_NODE}" for i in range(len(ips))]})
    usage = trace.drop("pod").join(pods, on="ip").select(
        "timestamp", pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"),
        pl.col("pod").alias("workload"), "pod", pl.lit("main").alias("container"), "resource", "value", "device")
    start, end = usage["timestamp"].min(), usage["timestamp"].max()
    containers = pods.select(
        pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"), pl.col("pod").alias("workload"),
        "pod", pl.lit("main").alias("container"), pl.lit("app").alias("container_type"), "node",
        pl.lit("nvidia.com/gpu").alias("gpu_resource"), pl.lit(1).alias("gpu_request"), pl.lit(1).alias("gpu_limit"))
    workloads = pods.select(pl.lit("alibaba").alias("namespace"), pl.lit("Pod").alias("workload_kind"),
                            pl.col("pod").alias("workload"), pl.lit(1).alias("replicas"))
    names = sorted(set(pods["node"]))
    n = len(names)
    nodes = pl.DataFrame({
        "node": names, "capacity_type": ["unknown"] * n,
        "gpu_count": [min(GPUS_PER_NODE, len(ips) - i * GPUS_PER_NODE) for i in range(n)],
        "gpu_model": [product] * n, "gpu_memory": [DEVICE_MEMORY] * n, "mig_strategy": ["none"] * n,
        "gpu_sharing": ["none"] * n, "first_seen": [start] * n, "last_seen": [end] * n})
    gpus = pods.select("node", "device", pl.lit(dcgm).alias("model"), pl.lit(DEVICE_MEMORY).alias("memory_total"),
                       pl.lit("alibaba").alias("namespace"), "pod", pl.lit("main").alias("container"))
    manifest = Manifest(cluster="alibaba-gentd26", start=start, end=end, step_seconds=STEP,
                        source=f"{REAL} (one pod per container_ip on {family} nodes; assumption)",
                        created_at=datetime(2026, 1, 1, tzinfo=UTC))
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes, gpus=gpus)


def split_time(trace: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, datetime]:
    t0, t1 = trace["timestamp"].min(), trace["timestamp"].max()
    cut = t0 + timedelta(seconds=(t1 - t0).total_seconds() * TRAIN_FRACTION)
    return trace.filter(pl.col("timestamp") < cut), trace.filter(pl.col("timestamp") >= cut), cut


def pod_half(ip: str) -> str:
    """'tune' or 'report', from a hash of the pod id (stable, unrelated to its usage)."""
    return "tune" if hashlib.sha256(ip.encode()).digest()[0] % 2 == 0 else "report"


# --- replay ------------------------------------------------------------------------------------

@dataclass
class Placement:
    """What one pod gets under a policy: ``mig`` profile, ``ts`` replicas (time-slicing), or whole."""

    kind: str  # "whole", "mig", "ts"
    memory: float  # bytes the pod may use before a CUDA OOM (slice memory, or device/replicas)
    compute: float  # share of one GPU's compute
    profile: str | None = None
    replicas: int = 1


def whole_gpu(family: str) -> Placement:
    p = profile(family, "7g.80gb")
    return Placement("whole", float(p.usable_bytes), 1.0)


def kubetune_placements(rs: RecommendationSet, family: str) -> dict[str, Placement]:
    """Pod -> placement from the recommender's proposals (bare Pods: workload = pod)."""
    out: dict[str, Placement] = {}
    for r in rs.recommendations:
        obs = r.evidence.observed
        if r.resource.startswith("nvidia.com/mig-"):
            name = r.resource.removeprefix("nvidia.com/mig-")
            p = profile(family, name)
            out[r.target.workload] = Placement("mig", float(p.usable_bytes), p.compute_fraction, name)
        elif r.kind == "gpu-share":
            n = round(1 / obs["proposed_compute_fraction"])
            usable = whole_gpu(family).memory
            mps = any(m["metadata"]["name"].startswith("mps-") for m in r.extra_manifests)
            out[r.target.workload] = Placement("mps" if mps else "ts", usable / n, 1.0 / n, replicas=n)
        elif r.kind == "gpu-remove":
            out[r.target.workload] = Placement("mig", 0.0, 0.0, "removed")
    return out


def flat_rule_placements(train: pl.DataFrame, family: str, eligible: set[str]) -> dict[str, Placement]:
    """Smallest MIG profile holding the training framebuffer peak x 1.2 (memory only)."""
    peaks = train.filter(pl.col("resource") == "gpu_memory").group_by("pod").agg(pl.col("value").max())
    out = {}
    for pod, peak in peaks.iter_rows():
        if pod not in eligible:
            continue
        fits = [p for p in MIG_PROFILES[family] if p.usable_bytes >= peak * 1.2]
        p = min(fits, key=lambda p: (p.memory_gb, p.compute_slices), default=None)
        if p is not None and p.compute_slices < 7:
            out[pod] = Placement("mig", float(p.usable_bytes), p.compute_fraction, p.name)
    return out


def replay(replay_trace: pl.DataFrame, placements: dict[str, Placement], family: str) -> dict[str, Any]:
    """Per-pod overflow/slowdown shares and fleet GPUs for the pods present in the replay window.

    A MIG slice (and an MPS client) enforces its memory: a framebuffer sample above it is a CUDA OOM.
    Time-slicing enforces nothing per pod: an OOM happens when the pods sharing a GPU together
    exceed it, so for time-sliced pods the overflow count is the worst GPU-minutes over random
    pairings (the device plugin, not kubetune, decides who shares with whom)."""
    r = replay_trace
    present = sorted(r["pod"].unique())
    whole = whole_gpu(family)
    plan = pl.DataFrame([{"pod": p, "kind": placements.get(p, whole).kind, "cap_mem": placements.get(p, whole).memory,
                          "cap_busy": placements.get(p, whole).compute} for p in present])
    j = r.join(plan, on="pod")
    per = j.group_by("pod", "kind").agg(
        ((pl.col("value") > pl.col("cap_mem")) & (pl.col("resource") == "gpu_memory")).sum().alias("fb_over"),
        (pl.col("resource") == "gpu_memory").sum().alias("fb_n"),
        (pl.col("value").filter(pl.col("resource") == "gpu") > pl.col("cap_busy").filter(
            pl.col("resource") == "gpu") + 1e-9).mean().fill_null(0.0).alias("busy_over_share"))
    shared = per.filter(pl.col("kind") != "whole")
    isolated = shared.filter(pl.col("kind").is_in(["mig", "mps"]))  # memory enforced per pod
    # fleet: proposals packed as the recommender packs them, the rest keep a whole GPU
    mig = [(profile(family, p.profile).compute_slices, profile(family, p.profile).memory_slices)
           for pod, p in placements.items() if pod in present and p.kind == "mig" and p.profile != "removed"]
    ts: dict[int, list[str]] = {}
    mps: dict[int, list[str]] = {}
    for pod, p in sorted(placements.items()):
        if pod in present and p.kind in ("ts", "mps"):
            (ts if p.kind == "ts" else mps).setdefault(p.replicas, []).append(pod)
    n_whole = sum(1 for p in present if placements.get(p, whole).kind == "whole")
    gpus_after = n_whole + len(pack_mig(mig)) + sum(-(-len(v) // k) for g in (ts, mps) for k, v in g.items())
    tsr = _time_sliced(r, ts, whole.memory)
    over = int(isolated["fb_over"].sum() or 0) + (tsr["oom_minutes_max"] if tsr else 0)
    return {
        "pods": len(present), "proposals": shared.height,
        "gpus_now": len(present), "gpus_after": gpus_after, "released": len(present) - gpus_after,
        "fb_overflow_samples": over,
        "fb_overflow_pods": int((isolated["fb_over"] > 0).sum()) + (tsr["oom_pods_max"] if tsr else 0),
        "busy_over_share_max": float(shared["busy_over_share"].max() or 0.0) if shared.height else 0.0,
        "pods_busy_over_target": int((shared["busy_over_share"] > BUSY_TARGET).sum()),
        "ts_pods_above_fair_share": int((shared.filter(pl.col("kind") == "ts")["fb_over"] > 0).sum()),
        "ts_contention_share": tsr["contention_mean"] if tsr else None,
        "ts_contention_share_max": tsr["contention_max"] if tsr else None,
        "ts_oom_draws": tsr["oom_draws"] if tsr else None,
    }


def _time_sliced(r: pl.DataFrame, ts: dict[int, list[str]], usable: float, draws: int = 200) -> dict[str, Any] | None:
    """Time-sliced pods put together ``k`` per GPU in ``draws`` random orders: GPU-minutes with summed
    framebuffer above the GPU (OOM) and with summed busy above 100% (contention)."""
    pods = sorted(p for v in ts.values() for p in v)
    if not pods:
        return None
    m = (r.filter(pl.col("pod").is_in(pods)).with_columns(pl.col("timestamp").dt.truncate("1m").alias("minute"))
         .group_by("pod", "minute", "resource").agg(pl.col("value").max()))
    minutes = sorted(m["minute"].unique())
    grids = {}
    for res in ("gpu", "gpu_memory"):
        wide = (m.filter(pl.col("resource") == res).pivot(on="pod", index="minute", values="value")
                .join(pl.DataFrame({"minute": minutes}), on="minute", how="right").sort("minute"))
        grids[res] = np.nan_to_num(np.stack([wide[p].to_numpy() if p in wide.columns else np.zeros(len(minutes))
                                             for p in pods]).astype(float))
    rng = np.random.default_rng(21)
    index = {p: i for i, p in enumerate(pods)}
    ooms, oom_pods, contention = [], [], []
    for _ in range(draws):
        om, op, busy_over, gpu_minutes = 0, 0, 0, 0
        for k, group in ts.items():
            order = [index[p] for p in rng.permutation(group)]
            for g in range(0, len(order), k):
                members = order[g:g + k]
                fb = grids["gpu_memory"][members].sum(axis=0)
                hit = fb > usable
                om += int(hit.sum())
                op += len(members) if hit.any() else 0
                busy_over += int((grids["gpu"][members].sum(axis=0) > 1.0).sum())
                gpu_minutes += len(minutes)
        ooms.append(om)
        oom_pods.append(op)
        contention.append(busy_over / max(gpu_minutes, 1))
    return {"oom_minutes_max": max(ooms), "oom_pods_max": max(oom_pods), "oom_draws": sum(o > 0 for o in ooms) / draws,
            "contention_mean": float(np.mean(contention)), "contention_max": float(np.max(contention))}


def hindsight(replay_trace: pl.DataFrame, family: str, pods: set[str] | None = None) -> dict[str, int]:
    """GPUs released by packing the replay window with knowledge of it: each pod's replay framebuffer
    peak and busy P95 (busy above the share in at most 5% of samples), onto MIG geometry with the
    placement rules, and separately onto whole GPUs shared by time-slicing (summed peaks <= GPU)."""
    r = replay_trace
    if pods is not None:
        r = r.filter(pl.col("pod").is_in(list(pods)))
    st = r.group_by("pod").agg(
        pl.col("value").filter(pl.col("resource") == "gpu_memory").max().fill_null(0.0).alias("fb"),
        pl.col("value").filter(pl.col("resource") == "gpu").quantile(1 - BUSY_TARGET, "higher").fill_null(0.0)
        .alias("busy"))
    items = []
    whole = 0
    for _, fb, busy in st.iter_rows():
        fits = [p for p in MIG_PROFILES[family] if p.usable_bytes >= fb and p.compute_fraction >= busy - 1e-12]
        p = min(fits, key=lambda p: (p.compute_slices, p.memory_gb), default=None)
        if p is None or p.compute_slices == 7:
            whole += 1
        else:
            items.append((p.compute_slices, p.memory_slices))
    mig_after = whole + len(pack_mig(items))
    ts_after = len(pack_shared(list(zip(st["fb"], st["busy"], strict=True)), whole_gpu(family).memory, 1.0))
    return {"pods": st.height, "mig_released": st.height - mig_after, "ts_released": st.height - ts_after}


# --- the run -----------------------------------------------------------------------------------

def run(trace: pl.DataFrame, family: str) -> dict[str, Any]:
    train, rep, cut = split_time(trace)
    snap = trace_snapshot(train, family)
    halves = {pod_name(ip): pod_half(ip) for ip in trace["ip"].unique()}
    out: dict[str, Any] = {"family": family, "cut": cut.isoformat(), "frontier": []}
    span = train.group_by("pod").agg(((pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_seconds()
                                      / 3600.0).alias("h"))
    eligible = set(span.filter(pl.col("h") >= MIN_HISTORY_HOURS)["pod"])  # pods the recommender may size
    settings: list[tuple[str, dict[str, Any]]] = [(f"fixed margin {m:.0%}", {"margin": m}) for m in FIXED_MARGINS]
    settings += [(f"calibrated fb_risk {q:g}", {"fb_risk": q}) for q in FB_RISKS]
    for mode in ("time-slicing", "mps"):
        settings += [(f"{mode}, fixed margin {m:.0%}", {"margin": m, "sharing": mode}) for m in (0.0, 0.1, 0.2)]
        settings += [(f"{mode}, calibrated fb_risk {q:g}", {"fb_risk": q, "sharing": mode}) for q in FB_RISKS]
    for label, kw in settings:
        t = time.perf_counter()
        rs = recommend_gpu(snap, min_history_hours=MIN_HISTORY_HOURS, **kw)
        secs = time.perf_counter() - t
        plc = kubetune_placements(rs, family)
        row = {"policy": "kubetune", "setting": label, "kw": kw, "recommend_s": round(secs, 2),
               "skipped": len(rs.skipped)}
        for half in ("tune", "report", "all"):
            pods = {p for p, h in halves.items() if half in ("all", h)}
            row[half] = replay(rep.filter(pl.col("pod").is_in(list(pods))),
                               {p: v for p, v in plc.items() if p in pods}, family)
        out["frontier"].append(row)
    out["baselines"] = {}
    for name, plc in (("whole GPU per pod", {}), ("flat rule (peak fb x 1.2)", flat_rule_placements(train, family, eligible))):
        out["baselines"][name] = {half: replay(_half(rep, halves, half), {p: v for p, v in plc.items()
                                                                         if half == "all" or halves[p] == half}, family)
                                  for half in ("tune", "report", "all")}
    out["hindsight"] = {half: hindsight(_half(rep, halves, half), family) for half in ("tune", "report", "all")}
    out["hindsight_eligible"] = {half: hindsight(_half(rep, halves, half), family, eligible)
                                 for half in ("tune", "report", "all")}
    # tune on one half, report the other: most GPUs released with 0 framebuffer overflows on "tune"
    ok = [r for r in out["frontier"] if r["tune"]["fb_overflow_samples"] == 0 and r["tune"]["pods_busy_over_target"] == 0]
    chosen = max(ok, key=lambda r: (r["tune"]["released"], r["tune"]["proposals"]), default=None)
    out["chosen"] = chosen["setting"] if chosen else None
    out["eligible_pods"] = len(eligible)
    out["pods"] = len(halves)
    return out


def _half(rep: pl.DataFrame, halves: dict[str, str], half: str) -> pl.DataFrame:
    if half == "all":
        return rep
    pods = [p for p, h in halves.items() if h == half]
    return rep.filter(pl.col("pod").is_in(pods))


def plot(trace: pl.DataFrame, path: Path) -> None:
    """Busy and framebuffer distributions per pod (box plots, pods sorted by median framebuffer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, _, cut = split_time(trace)
    order = (trace.filter(pl.col("resource") == "gpu_memory").group_by("ip").agg(pl.col("value").median())
             .sort("value")["ip"].to_list())
    fb = [trace.filter((pl.col("ip") == ip) & (pl.col("resource") == "gpu_memory"))["value"].to_numpy() / GIB
          for ip in order]
    busy = [trace.filter((pl.col("ip") == ip) & (pl.col("resource") == "gpu"))["value"].to_numpy() * 100
            for ip in order]
    fig, (a, b) = plt.subplots(2, 1, figsize=(16, 9), sharex=True)
    a.boxplot(fb, whis=(0, 100), widths=0.6, showfliers=False)
    for gib, label in ((39.25, "3g/4g.40gb (A100-80GB, 39.25 GiB)"), (19.5, "1g/2g.20gb (19.5 GiB)"),
                       (79.0, "whole GPU (79 GiB)")):
        a.axhline(gib, ls="--", lw=0.8, color="grey")
        a.text(0.5, gib + 0.5, label, fontsize=8, color="grey")
    a.set_ylabel("framebuffer used (GiB)")
    a.set_title("Alibaba GenTD26: per-pod framebuffer and busy over ~23 h (whiskers = min..max); "
                "pods sorted by median framebuffer")
    b.boxplot(busy, whis=(0, 100), widths=0.6, showfliers=False)
    for share, label in ((2 / 7, "2g (2/7)"), (3 / 7, "3g (3/7)"), (4 / 7, "4g (4/7)")):
        b.axhline(share * 100, ls="--", lw=0.8, color="grey")
        b.text(0.5, share * 100 + 1, label, fontsize=8, color="grey")
    b.set_ylabel("GPU busy (%)")
    b.set_xlabel(f"pod ({len(order)}, ids omitted)")
    b.set_xticks([])
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write every number to this file")
    ap.add_argument("--png", type=Path, help="write the per-pod busy/framebuffer distributions (needs matplotlib)")
    ap.add_argument("--family", choices=sorted(DEVICES), action="append", help="device assumption (default: both)")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"skipped: {REAL} is absent (the real traces are not part of the repository)")
        return 0
    trace = load_trace()
    results = [run(trace, f) for f in (args.family or sorted(DEVICES))]
    for res in results:
        _print(res)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.png:
        plot(trace, args.png)
    return 0


def _print(res: dict[str, Any]) -> None:
    print(f"\n== {res['family']} (assumed), recommend from the first 2/3 (to {res['cut']}), replay the rest; "
          f"{res['pods']} pods, {res['eligible_pods']} with >= {MIN_HISTORY_HOURS:g} h of training history ==")
    h, he = res["hindsight"], res["hindsight_eligible"]
    for half in ("tune", "report", "all"):
        print(f"hindsight [{half}]: {h[half]['pods']} pods in the replay; MIG releases {h[half]['mig_released']}, "
              f"time-slicing {h[half]['ts_released']} (pods kubetune could size: {he[half]['mig_released']} / "
              f"{he[half]['ts_released']})")
    cols = ("proposals", "gpus_now", "released", "fb_overflow_samples", "fb_overflow_pods", "busy_over_share_max",
            "pods_busy_over_target", "ts_pods_above_fair_share", "ts_contention_share", "ts_contention_share_max",
            "ts_oom_draws")
    print("policy | setting | half | " + " | ".join(cols))
    rows = [("kubetune", r["setting"], r) for r in res["frontier"]]
    rows += [(name, "", b) for name, b in res["baselines"].items()]
    for policy, setting, r in rows:
        for half in ("tune", "report", "all"):
            v = r[half]
            print(f"{policy} | {setting} | {half} | " + " | ".join(
                "-" if v[c] is None else f"{v[c]:.3f}" if isinstance(v[c], float) else str(v[c]) for c in cols))
    print(f"chosen on the tune half (0 overflows, busy target met, most released): {res['chosen']}")


if __name__ == "__main__":
    sys.exit(main())
