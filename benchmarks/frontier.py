"""Cost/risk frontiers of right-sizing on the real Bitbrains traces (issue 14).

Every policy is judged on its whole frontier against the simplest flat rules, on data it was not
tuned on. The 250 Bitbrains VMs are split by VM *and* by time:

* ``dev``: VMs 1-125, 14-day histories starting on days 0 and 4 (replays: days 14-21, 18-25);
* ``held-out VMs``: VMs 126-250, the same windows;
* ``held-out VMs + time``: VMs 126-250, history from day 8 (replay days 22-29, a week no dev case
  replayed).

Design choices are made on ``dev`` only; the held-out splits are reported separately.

Rules swept (vectorised over all cases at once as (VMs, steps) arrays):

* CPU: flat percentile 80-99.5 of the history (linear interpolation);
* memory, request = limit: peak x (1 + m), m in 0-100%, and peak + max(m, 64Mi);
* memory, request < limit: request = quantile q (95-99.9) x (1 + m'), limit = peak x 1.15 + >= 64Mi;
* KRR simple (``recommenders.peers.krr_simple``) and kubetune (``proposed_requests``) at several
  settings, both policies.

Metrics per rule over the replay week (``metrics``): allocation as OpenCost counts it,
max(request, usage), in core-hours / GiB-hours and USD (0.0316 USD/core-h, 0.00424 USD/GiB-h);
CPU shortfall = sum (use - request)+ / sum use (volume) and the share of samples above the request;
memory above request = sum (use - request)+ / sum use; OOM episodes = runs of consecutive samples
above the limit (a new run after at least one sample at or below it), OOM cases = VMs with any.
Node check: the requests of a split's window packed onto ``--node-size`` nodes (first-fit
decreasing by memory, ``recommenders.nodecheck``) and the replay week played on that packing.

Usage: python benchmarks/frontier.py [--quick] [--png-dir benchmarks/frontier] [--json PATH]
Intermediate results are cached in /tmp/kubetune-frontier (keyed by the right-sizing code and settings).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from analyzer.units import GIB, MIB

HERE = Path(__file__).resolve().parent
CACHE = Path(tempfile.gettempdir()) / "kubetune-frontier"
STEP_S = 300
DAY = 86_400 // STEP_S
TRAIN_DAYS, REPLAY_DAYS = 14, 7
CPU_USD, GIB_USD = 0.0316, 0.00424
SPLITS = {"dev": (range(1, 126), (0, 4)), "held-out VMs": (range(126, 251), (0, 4)),
          "held-out VMs + time": (range(126, 251), (8,))}
CPU_PCTS = (80, 85, 90, 92.5, 95, 96, 97, 98, 99, 99.5)
MEM_MARGINS = (0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 0.75, 1.0)
REQ_QS = (95, 97.5, 99, 99.5, 99.9)
REQ_MARGINS = (0, 0.05, 0.10)
NODE_MEMORY, NODE_CPU = 64 * GIB, 16.0


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------ data


def usage_frame() -> pl.DataFrame | None:
    """The Bitbrains usage (long, as ``kubetune import`` reads it), cached as Parquet."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "bitbrains.parquet"
    if path.exists():
        return pl.read_parquet(path)
    fa = _sibling("forecast_accuracy")
    if not fa.REAL.exists():
        return None
    u = fa.bitbrains_usage(fa.REAL)
    u.write_parquet(path)
    return u


def matrices(usage: pl.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, object]:
    """VM names, cpu and memory as (VMs, steps) arrays (NaN = no sample) from the first midnight."""
    u = usage.with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    t0 = u.get_column("timestamp").min()
    start = t0.replace(hour=0, minute=0, second=0) + (timedelta(days=1) if t0.time() != t0.min.time() else timedelta())
    u = u.filter(pl.col("timestamp") >= start).with_columns(
        ((pl.col("timestamp") - pl.lit(start)).dt.total_seconds() // STEP_S).cast(pl.Int64).alias("t"),
        pl.col("workload").str.strip_prefix("vm-").cast(pl.Int64).alias("vm"))
    vms = sorted(u.get_column("vm").unique().to_list())
    index = {v: i for i, v in enumerate(vms)}
    steps = int(u.get_column("t").max()) + 1
    out = {}
    for r in ("cpu", "memory"):
        part = u.filter(pl.col("resource") == r)
        a = np.full((len(vms), steps), np.nan)
        a[part.get_column("vm").replace_strict(index).to_numpy(), part.get_column("t").to_numpy()] = \
            part.get_column("value").to_numpy()
        out[r] = a
    return [f"vm-{v}" for v in vms], out["cpu"], out["memory"], start


def window(a: np.ndarray, rows: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
    s = day * DAY
    return a[rows, s:s + TRAIN_DAYS * DAY], a[rows, s + TRAIN_DAYS * DAY:s + (TRAIN_DAYS + REPLAY_DAYS) * DAY]


# --------------------------------------------------------------------------------------- metrics


def metrics(cpu_req, mem_req, mem_lim, cpu, mem) -> dict[str, float]:
    """Replay metrics of one rule over stacked cases (arrays (cases,) and (cases, steps))."""
    h = STEP_S / 3600
    cr, mr, ml = (np.asarray(x, float)[:, None] for x in (cpu_req, mem_req, mem_lim))
    cpu_alloc = np.nansum(np.maximum(cr, cpu)) * h  # per sample present (NaN = no sample, not billed)
    mem_alloc = np.nansum(np.maximum(mr, mem)) * h / GIB
    above = np.nan_to_num(mem > ml)
    starts = above.astype(bool) & ~np.c_[np.zeros((len(ml), 1), bool), above[:, :-1].astype(bool)]
    return {
        "cost_usd": cpu_alloc * CPU_USD + mem_alloc * GIB_USD,
        "cpu_core_h": cpu_alloc, "memory_gib_h": mem_alloc,
        "cpu_shortfall": np.nansum(np.fmax(cpu - cr, 0)) / np.nansum(cpu),
        "cpu_share_above": np.nansum(cpu > cr) / np.sum(~np.isnan(cpu)),
        "memory_above_request": np.nansum(np.fmax(mem - mr, 0)) / np.nansum(mem),
        # the part below the limit (above it the container is OOM-killed, counted as episodes)
        "memory_above_request_below_limit": np.nansum(np.fmax(np.minimum(mem, ml) - mr, 0)) / np.nansum(mem),
        "oom_episodes": int(starts.sum()), "oom_cases": int(starts.any(axis=1).sum()),
    }


def node_replay(mem_req, cpu_req, mem_use) -> dict[str, float]:
    """Pack one window's requests onto --node-size nodes and replay the week on that packing."""
    from recommenders.nodecheck import node_pressure, pack

    node = pack(np.asarray(mem_req, float), np.asarray(cpu_req, float), NODE_MEMORY, NODE_CPU)
    over, steps = node_pressure(node, mem_use, NODE_MEMORY)
    return {"nodes": int(node.max() + 1), "node_pressure": float(over.sum() / max(steps.sum(), 1))}


# ---------------------------------------------------------------------------------------- rules


def flat_rules(cpu_tr: np.ndarray, mem_tr: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """name -> cpu_request, memory_request, memory_limit for every case (rows of the arrays)."""
    with np.errstate(all="ignore"):
        pct = {p: np.nanpercentile(cpu_tr, p, axis=1) for p in CPU_PCTS}
        peak = np.nanmax(mem_tr, axis=1)
        mq = {q: np.nanpercentile(mem_tr, q, axis=1) for q in REQ_QS}
    krr_cpu = np.fmax(pct[95], 0.010)
    krr_mem = np.ceil(np.fmax(peak * 1.15, 100 * MIB) / MIB) * MIB
    limit = np.fmax(peak * 1.15, peak + 64 * MIB)
    rules = {"krr-simple": {"cpu": krr_cpu, "mem_req": krr_mem, "mem_lim": krr_mem, "family": "peer"}}
    for p in CPU_PCTS:
        rules[f"flat CPU p{p:g}"] = {"cpu": pct[p], "mem_req": krr_mem, "mem_lim": krr_mem, "family": "flat cpu"}
    for m in MEM_MARGINS:
        v = peak * (1 + m)
        rules[f"flat peak x{1 + m:.2f}"] = {"cpu": krr_cpu, "mem_req": v, "mem_lim": v, "family": "flat guaranteed"}
        v = np.fmax(peak * (1 + m), peak + 64 * MIB)
        rules[f"flat peak + max({m:.0%}, 64Mi)"] = {"cpu": krr_cpu, "mem_req": v, "mem_lim": v,
                                                    "family": "flat guaranteed+abs"}
    for q in REQ_QS:
        for m in REQ_MARGINS:
            rules[f"flat request p{q:g} x{1 + m:.2f}"] = {"cpu": krr_cpu, "mem_req": np.fmin(mq[q] * (1 + m), limit),
                                                          "mem_lim": limit, "family": "flat burstable"}
    return rules


def kubetune_rules(snapshot, rows: np.ndarray, vms: list[str], day: int, start, settings) -> dict[str, dict]:
    """kubetune's proposals at each setting for the VMs ``rows`` and the window starting ``day``
    (the product runs on the training snapshot of those VMs only), cached per setting."""
    from recommenders.rightsizing import proposed_requests

    replay = _sibling("replay")
    names = [vms[i] for i in rows]
    code = b"".join((HERE.parent / "recommenders" / f).read_bytes() for f in ("rightsizing.py", "policy.py", "nodecheck.py"))
    key = hashlib.sha1(json.dumps([names, day]).encode() + code).hexdigest()[:10]  # stale after a code change
    cut = start + timedelta(days=day + TRAIN_DAYS)
    train = None
    out = {}
    for label, overrides in settings:
        path = CACHE / f"kt-{key}-{hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:10]}.parquet"
        if not path.exists():
            if train is None:
                sub = replay.truncate_snapshot(snapshot, cut, start + timedelta(days=day))
                keep = pl.col("workload").cast(pl.String).is_in(names)
                import dataclasses
                train = dataclasses.replace(sub, usage=sub.usage.filter(keep), containers=sub.containers.filter(keep))
            t = time.perf_counter()
            p = proposed_requests(train, **{"hpa": "allow", "min_change": 0.0, **overrides})
            p.with_columns(pl.lit(time.perf_counter() - t).alias("_seconds")).write_parquet(path)
        p = pl.read_parquet(path)
        idx = pl.DataFrame({"workload": names}).join(p, on="workload", how="left")
        out[f"kubetune {label}"] = {"cpu": idx["cpu_request"].to_numpy().astype(float),
                                    "mem_req": idx["memory_request"].to_numpy().astype(float),
                                    "mem_lim": idx["memory_limit"].to_numpy().astype(float),
                                    "family": family(overrides)}
    return out


SETTINGS: list[tuple[str, dict]] = [
    ("guaranteed (default)", {}),
    ("burstable", {"memory_policy": "burstable"}),
    *[(f"guaranteed risk={r:g}", {"risk": r, "max_risk": 0.3}) for r in (0.01, 0.02, 0.06, 0.07, 0.08, 0.10)],
    ("guaranteed memory floor 100Mi", {"memory_floor": 100 * MIB}),
    ("guaranteed headroom 100Mi", {"memory_headroom": 100 * MIB}),
    *[(f"guaranteed drift+recency risk={r:g}", {"risk": r, "use_drift": True, "half_life_hours": 72.0})
      for r in (0.01, 0.02, 0.05)],
    ("guaranteed cluster risk=0.05", {"risk_mode": "cluster", "max_risk": 0.3}),
    *[(f"guaranteed margin={m:g}", {"memory_margin": m}) for m in (0.05, 0.3)],
    *[(f"guaranteed spread memory_risk={r:g}", {"memory_spread": True, "memory_margin": 0.0, "memory_risk": r})
      for r in (0.01, 0.2)],
    *[(f"burstable overcommit={o:g}", {"memory_policy": "burstable", "memory_overcommit": o}) for o in (0.003, 0.03)],
    *[(f"burstable limit margin={m:g}", {"memory_policy": "burstable", "burstable_limit_margin": m}) for m in (0.15, 0.3)],
    *[(f"burstable pooled overcommit={o:g}", {"memory_policy": "burstable", "memory_overcommit": o,
                                              "own_risk_weight": 0.0}) for o in (0.003, 0.01, 0.03)],
]


def family(overrides: dict) -> str:
    return "kubetune " + overrides.get("memory_policy", "guaranteed")


# ------------------------------------------------------------------------------------------ run


def evaluate_split(name: str, vms, cpu, mem, start, snapshot, settings) -> pl.DataFrame:
    vm_rows, days = SPLITS[name]
    rows = np.array([i for i, v in enumerate(vms) if int(v.split("-")[1]) in vm_rows])
    per_rule: dict[str, list] = {}
    for day in days:
        cpu_tr, cpu_re = window(cpu, rows, day)
        mem_tr, mem_re = window(mem, rows, day)
        ok = (np.sum(~np.isnan(cpu_tr), 1) >= 288) & (np.sum(~np.isnan(mem_tr), 1) >= 288) \
            & (np.sum(~np.isnan(mem_re), 1) > 0) & (np.nanmax(np.nan_to_num(mem_tr), 1) > 0)
        rules = flat_rules(cpu_tr, mem_tr)
        if snapshot is not None and settings:
            rules |= kubetune_rules(snapshot, rows, vms, day, start, settings)
        for rule, r in rules.items():
            valid = ok & np.isfinite(r["cpu"]) & np.isfinite(r["mem_req"]) & np.isfinite(r["mem_lim"])
            per_rule.setdefault(rule, []).append((r, valid, cpu_re, mem_re))
    # cases every rule can be evaluated on
    common = [np.logical_and.reduce([parts[i][1] for parts in per_rule.values()]) for i in range(len(days))]
    out = []
    for rule, parts in per_rule.items():
        stack = [(r["cpu"][c], r["mem_req"][c], r["mem_lim"][c], cr[c], mr[c])
                 for (r, _, cr, mr), c in zip(parts, common)]
        m = metrics(*(np.concatenate([s[i] for s in stack]) for i in range(5)))
        nodes = [node_replay(s[1], s[0], s[4]) for s in stack]
        m |= {"nodes": float(np.mean([n["nodes"] for n in nodes])),
              "node_pressure": float(np.mean([n["node_pressure"] for n in nodes]))}
        out.append({"split": name, "rule": rule, "family": parts[0][0]["family"], "cases": int(sum(c.sum() for c in common)),
                    **m})
    df = pl.DataFrame(out)
    krr = df.filter(pl.col("rule") == "krr-simple").row(0, named=True)
    return df.with_columns(
        (pl.col("cost_usd") / krr["cost_usd"] - 1).alias("cost_vs_krr"),
        (pl.col("nodes") / krr["nodes"] - 1).alias("nodes_vs_krr"),
    )


def interpolate(df: pl.DataFrame, family: str, x: str, at: float, y: str) -> float | None:
    """y of a family's frontier at x = ``at`` (linear between its two nearest points, sorted by x)."""
    f = df.filter(pl.col("family") == family).sort(x)
    xs, ys = f[x].to_numpy(), f[y].to_numpy()
    if len(xs) < 2 or not xs.min() <= at <= xs.max():
        return None
    return float(np.interp(at, xs, ys))


def plot(df: pl.DataFrame, split: str, png_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_dir.mkdir(parents=True, exist_ok=True)
    d = df.filter(pl.col("split") == split)
    charts = [("cpu_shortfall", "cpu_core_h", "CPU shortfall (volume above request / use)", "CPU core-hours",
               ("flat cpu", "peer", "kubetune guaranteed")),
              ("cpu_share_above", "cpu_core_h", "share of CPU samples above request", "CPU core-hours",
               ("flat cpu", "peer", "kubetune guaranteed")),
              ("oom_episodes", "memory_gib_h", "OOM episodes", "memory GiB-hours (max(request, use))",
               ("flat guaranteed", "flat guaranteed+abs", "flat burstable", "peer", "kubetune guaranteed",
                "kubetune burstable")),
              ("memory_above_request", "memory_gib_h", "memory above request / memory used", "memory GiB-hours",
               ("flat burstable", "peer", "kubetune burstable"))]
    paths = []
    slug = split.replace(" ", "-").replace("+", "and")
    for x, y, xl, yl, families in charts:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for fam in families:
            f = d.filter(pl.col("family") == fam).sort(x)
            if f.is_empty():
                continue
            style = "o" if fam in ("peer",) or fam.startswith("kubetune") else "-o"
            ax.plot(f[x].to_numpy(), f[y].to_numpy(), style, ms=4, label=fam)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        if x == "oom_episodes":
            ax.set_xscale("symlog", linthresh=10)
        ax.set_title(f"Bitbrains {split}: {yl.split(' (')[0]} vs {xl.split(' (')[0]}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = png_dir / f"{slug}-{x}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="*", default=list(SPLITS))
    ap.add_argument("--no-kubetune", action="store_true", help="flat rules and KRR only (seconds)")
    ap.add_argument("--png-dir", type=Path, default=None, help="write the frontier PNGs here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    usage = usage_frame()
    if usage is None:
        print("skipped: ../shared/data/real is absent")
        return 0
    t = time.perf_counter()
    vms, cpu, mem, start = matrices(usage)
    snapshot = None
    if not args.no_kubetune:
        from analyzer.collectors.files import import_files

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "usage.parquet"
            usage.write_parquet(path)
            snapshot = import_files(path, cluster="bitbrains", step_seconds=STEP_S)
    frames = [evaluate_split(s, vms, cpu, mem, start, snapshot, SETTINGS) for s in args.splits]
    df = pl.concat(frames, how="diagonal")
    cols = ["rule", "cases", "cost_vs_krr", "cpu_core_h", "memory_gib_h", "cpu_shortfall", "cpu_share_above",
            "memory_above_request", "oom_cases", "oom_episodes", "nodes", "node_pressure"]
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=250, float_precision=4, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        for s in args.splits:
            print(f"\n== {s}")
            print(df.filter(pl.col("split") == s).select(cols))
    if args.png_dir:
        for s in args.splits:
            for p in plot(df, s, args.png_dir):
                print(f"wrote {p}")
    if args.json:
        args.json.write_text(json.dumps(df.to_dicts(), indent=1, default=str) + "\n", encoding="utf-8")
    print(f"total {time.perf_counter() - t:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
