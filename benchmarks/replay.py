"""Replay evaluation of right-sizing (issue 7): recommend from days 1-14, replay days 15-21.

Datasets: the real Bitbrains Rnd traces (250 VMs, cpu + memory, one pod per workload, imported
through ``analyzer.collectors.files.import_files`` as ``kubetune import`` does; skipped when
``../shared/data/real`` is absent) and simulated clusters (``simulate(workloads=120, days=21,
seed=s)``). Methods: ``krr-simple`` and ``vpa`` (``recommenders.peers``) and ``kubetune``
(``recommenders.rightsizing.proposed_requests``; left out with a message while it cannot be
imported). Each method gets the usage and the Snapshot of the 14 training days only.

Metrics (``recommenders.replay_metrics``, per method on the containers every method can be
evaluated on): reserved CPU cores and memory GiB (request x pods present, averaged over the
replay week), CPU hours above request, unmet CPU core-hours, OOM events (distinct pod, container,
hour with memory above the limit, or above the request where the limit is unset), cost (OpenCost
default prices). Verdict (issue 7's target): kubetune reserves at least 10% less CPU, memory and
cost-weighted capacity than the better peer (the peer with the lower cost), with no more OOM
events and no more CPU hours above request than that peer.

With ``--sweep`` kubetune also runs at several risk settings (per workload and cluster budget), and
the trade-off is printed: for the better peer, the lowest CPU kubetune reserves at any swept setting
with no more CPU hours above request. That setting is picked on the replay week itself, so it is the
best that tuning ``--risk`` could give, not what the defaults give.

Usage: python benchmarks/replay.py [--seeds 1 2 3] [--workloads 120] [--vms N] [--no-bitbrains]
       [--policy risk=0.01 ...] [--sweep] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from analyzer.collectors.files import import_files
from analyzer.simulator import simulate
from analyzer.snapshot import Snapshot
from recommenders.peers import krr_simple, vpa
from recommenders.replay_metrics import current_sizing, evaluate

HERE = Path(__file__).resolve().parent
PEERS = ("krr-simple", "vpa")
TARGET_REDUCTION = 0.10

Method = Callable[[pl.DataFrame, Snapshot | None], pl.DataFrame]
# keyword arguments for proposed_requests (--policy key=value). The replay holds replica counts fixed and
# the peers size every container, so kubetune sizes HPA-scaled ones too and has no churn threshold.
POLICY: dict[str, object] = {"hpa": "allow", "min_change": 0.0}


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------- methods


def _krr(usage: pl.DataFrame, snap: Snapshot | None) -> pl.DataFrame:
    return krr_simple(usage, snap.events if snap is not None else None)


def _vpa(usage: pl.DataFrame, snap: Snapshot | None) -> pl.DataFrame:
    if snap is None:
        return vpa(usage)
    return vpa(usage, snap.events, containers=snap.containers)


def _kubetune(usage: pl.DataFrame, snap: Snapshot | None) -> pl.DataFrame:
    from recommenders.rightsizing import proposed_requests

    if snap is None:
        raise ValueError("kubetune needs the training Snapshot")
    return proposed_requests(snap, **POLICY)


METHODS: dict[str, Method] = {"krr-simple": _krr, "vpa": _vpa, "kubetune": _kubetune}


# --sweep: (label, policy overrides on top of POLICY)
SWEEP: list[tuple[str, dict[str, object]]] = [
    *[(f"workload risk={r:g}", {"risk": r, "risk_mode": "workload"}) for r in (0.01, 0.02, 0.05, 0.08)],
    *[(f"cluster risk={r:g}", {"risk": r, "risk_mode": "cluster"}) for r in (0.01, 0.015, 0.02, 0.03, 0.05)],
]


def sweep_methods() -> dict[str, Method]:
    from recommenders.rightsizing import proposed_requests

    def make(overrides: dict[str, object]) -> Method:
        return lambda usage, snap: proposed_requests(snap, **{**POLICY, **overrides})

    return {f"kubetune {label}": make(o) for label, o in SWEEP}


def equal_risk(table: pl.DataFrame) -> dict | None:
    """Against the better peer: the swept kubetune row with the least CPU among those with no more CPU
    hours above request (and no more OOM events) than that peer, or None."""
    rows = table.to_dicts()
    peers = [r for r in rows if r["method"] in PEERS]
    swept = [r for r in rows if r["method"].startswith("kubetune ")]
    if not peers or not swept:
        return None
    best = min(peers, key=lambda r: r["cost_usd_per_hour"])
    ok = [r for r in swept if r["cpu_hours_above_request"] <= best["cpu_hours_above_request"] + 1e-9
          and r["oom_events"] <= best["oom_events"]]
    if not ok:
        return {"better_peer": best["method"], "setting": None}
    me = min(ok, key=lambda r: r["reserved_cpu_cores"])
    return {"better_peer": best["method"], "setting": me["method"].removeprefix("kubetune "),
            "cpu_reduction": 1 - me["reserved_cpu_cores"] / best["reserved_cpu_cores"],
            "cpu_hours_above_request": [me["cpu_hours_above_request"], best["cpu_hours_above_request"]],
            "unmet_cpu_core_hours": [me["unmet_cpu_core_hours"], best["unmet_cpu_core_hours"]]}


def _describe_equal_risk(e: dict | None) -> str:
    if e is None:
        return ""
    if e["setting"] is None:
        return f"equal risk: no swept setting has as few CPU hours above request as {e['better_peer']}"
    return (f"equal risk: at {e['setting']} kubetune reserves {-100 * e['cpu_reduction']:+.1f}% CPU against "
            f"{e['better_peer']} with {e['cpu_hours_above_request'][0]:.0f} vs {e['cpu_hours_above_request'][1]:.0f} "
            f"CPU hours above request (unmet core-hours {e['unmet_cpu_core_hours'][0]:.0f} vs "
            f"{e['unmet_cpu_core_hours'][1]:.0f}); the setting is picked on the replay week")


def kubetune_available() -> bool:
    try:
        from recommenders.rightsizing import proposed_requests  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not there yet"
        return False
    return True


# -------------------------------------------------------------------------------------------- replay


def truncate_snapshot(snapshot: Snapshot, end: datetime, start: datetime | None = None) -> Snapshot:
    """The snapshot restricted to [start, end): usage and events by timestamp, containers that
    started before ``end`` (and had not ended before ``start``), nodes first seen before ``end``."""
    def window(col: str) -> pl.Expr:
        e = pl.col(col) < end
        return e if start is None else e & (pl.col(col) >= start)

    usage = snapshot.usage.filter(window("timestamp"))
    events = snapshot.events.filter(window("timestamp"))
    c = snapshot.containers
    keep = pl.col("started_at").is_null() | (pl.col("started_at") < end)
    if start is not None:
        keep &= pl.col("ended_at").is_null() | (pl.col("ended_at") >= start)
    containers = c.filter(keep)
    nodes = snapshot.nodes.filter(pl.col("first_seen").is_null() | (pl.col("first_seen") < end))
    m = snapshot.manifest
    last = usage.get_column("timestamp").max() if usage.height else None
    manifest = dataclasses.replace(
        m, start=max(m.start, start) if start is not None else m.start,
        end=min(m.end, last if last is not None else end - timedelta(seconds=m.step_seconds)),
        source=m.source + f" [truncated to {'' if start is None else start.isoformat()}..{end.isoformat()})",
        rows={}, warnings=list(m.warnings), absent=list(m.absent),
    )
    return dataclasses.replace(snapshot, manifest=manifest, usage=usage, events=events, containers=containers,
                               nodes=nodes, path=None)


def replay(snapshot: Snapshot, methods: dict[str, Method], *, train_days: float = 14, replay_days: float = 7,
           start: datetime | None = None, errors: dict[str, str] | None = None,
           sized_only: bool = False) -> pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]:
    """Recommend with every method from [start, start + train_days), evaluate on the next
    ``replay_days``. One row per method (see ``recommenders.replay_metrics.evaluate``) plus the
    seconds each method took. With ``sized_only`` also the table restricted to the containers
    every method proposed values for: returns (table, sized_table)."""
    start = start or snapshot.manifest.start
    cut, stop = start + timedelta(days=train_days), start + timedelta(days=train_days + replay_days)
    train = truncate_snapshot(snapshot, cut, start)
    replay_usage = snapshot.usage.filter((pl.col("timestamp") >= cut) & (pl.col("timestamp") < stop)
                                         & pl.col("resource").cast(pl.String).is_in(["cpu", "memory"]))
    proposals, seconds = {}, {}
    for name, method in methods.items():
        t = time.perf_counter()
        try:
            proposals[name] = method(train.usage, train)
        except Exception as exc:  # one method failing must not hide the others
            if errors is None:
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        seconds[name] = time.perf_counter() - t
    current = current_sizing(train.containers)
    tables = [
        evaluate(replay_usage, proposals, current, step_seconds=snapshot.manifest.step_seconds,
                 window_seconds=(stop - cut).total_seconds(), sized_only=only).with_columns(
            pl.col("method").replace_strict(seconds, return_dtype=pl.Float64).alias("seconds"))
        for only in ([False, True] if sized_only else [False])
    ]
    return (tables[0], tables[1]) if sized_only else tables[0]


def verdict(table: pl.DataFrame, me: str = "kubetune") -> dict | None:
    """kubetune against the better peer (lower cost) on issue 7's target; None without both."""
    rows = {r["method"]: r for r in table.iter_rows(named=True)}
    peers = [rows[p] for p in PEERS if p in rows]
    if me not in rows or not peers:
        return None
    k, best = rows[me], min(peers, key=lambda r: r["cost_usd_per_hour"])

    def less(metric: str) -> float | None:
        return None if not best[metric] else 1 - k[metric] / best[metric]

    out = {
        "better_peer": best["method"],
        "cpu_reduction": less("reserved_cpu_cores"),
        "memory_reduction": less("reserved_memory_gib"),
        "cost_reduction": less("cost_usd_per_hour"),
        "oom_events": [k["oom_events"], best["oom_events"]],
        "cpu_hours_above_request": [k["cpu_hours_above_request"], best["cpu_hours_above_request"]],
    }
    out["passes"] = bool(
        all(out[m] is not None and out[m] >= TARGET_REDUCTION for m in ("cpu_reduction", "memory_reduction",
                                                                           "cost_reduction"))
        and k["oom_events"] <= best["oom_events"]
        and k["cpu_hours_above_request"] <= best["cpu_hours_above_request"] + 1e-9
    )
    return out


def _describe(v: dict | None) -> str:
    if v is None:
        return "verdict: kubetune not evaluated"

    def pct(x: float | None) -> str:  # reduction -> relative change (negative = kubetune reserves less)
        return "n/a" if x is None else f"{-100 * x:+.1f}%"

    return (f"kubetune vs {v['better_peer']} (better peer): reserved CPU {pct(v['cpu_reduction'])}, memory "
            f"{pct(v['memory_reduction'])}, cost {pct(v['cost_reduction'])} (target <= -10%); OOM events "
            f"{v['oom_events'][0]} vs {v['oom_events'][1]}; CPU hours above request "
            f"{v['cpu_hours_above_request'][0]:.1f} vs {v['cpu_hours_above_request'][1]:.1f} -> "
            f"{'PASS' if v['passes'] else 'FAIL'}")


# ------------------------------------------------------------------------------------------- datasets


def bitbrains_snapshot(limit: int | None = None) -> tuple[Snapshot, datetime] | None:
    """The first 21 whole days of the Bitbrains traces as an imported Snapshot, and its first midnight."""
    fa = _sibling("forecast_accuracy")
    if not fa.REAL.exists():
        return None
    usage = fa.bitbrains_usage(fa.REAL, limit)
    first = datetime.fromisoformat(usage.get_column("timestamp").min())
    start = (first + timedelta(days=1)).replace(hour=0, minute=0, second=0) if first.time() != first.min.time() \
        else first
    stop = (start + timedelta(days=21)).strftime("%Y-%m-%dT%H:%M:%SZ")
    usage = usage.filter((pl.col("timestamp") >= start.strftime("%Y-%m-%dT%H:%M:%SZ")) & (pl.col("timestamp") < stop))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.parquet"
        usage.write_parquet(path)
        return import_files(path, cluster="bitbrains", step_seconds=300), start.astimezone(UTC)


def _policy_value(text: str) -> object:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def _print(name: str, table: pl.DataFrame, v: dict | None) -> None:
    print(f"\n== {name}")
    cols = ["method", "containers_proposed", "containers_evaluated", "reserved_cpu_cores", "reserved_memory_gib",
            "cost_usd_per_hour", "cpu_hours_above_request", "unmet_cpu_core_hours", "oom_events", "seconds"]
    with pl.Config(tbl_cols=-1, tbl_width_chars=220, float_precision=3, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(table.select([c for c in cols if c in table.columns]))
    print(_describe(v))
    if v and "equal_risk" in v:
        print(_describe_equal_risk(v["equal_risk"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--workloads", type=int, default=120)
    ap.add_argument("--vms", type=int, default=None, help="first N Bitbrains VMs (default all 250)")
    ap.add_argument("--no-bitbrains", action="store_true")
    ap.add_argument("--policy", nargs="*", default=[], metavar="KEY=VALUE",
                    help="keyword arguments for proposed_requests, e.g. risk=0.01")
    ap.add_argument("--sweep", action="store_true",
                    help="also run kubetune at several risk settings and print the equal-risk trade-off")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (for the README)")
    args = ap.parse_args(argv)
    POLICY.update({k: _policy_value(v) for k, v in (p.split("=", 1) for p in args.policy)})

    methods = dict(METHODS)
    if not kubetune_available():
        print("kubetune: not available yet")
        del methods["kubetune"]
    elif args.sweep:
        methods |= sweep_methods()
    t_all = time.perf_counter()
    results: dict[str, dict] = {}
    sim_tables = []
    datasets: list[tuple[str, Callable[[], tuple[Snapshot, datetime | None] | None]]] = []
    if not args.no_bitbrains:
        datasets.append((f"bitbrains ({args.vms or 250} VM files)", lambda: bitbrains_snapshot(args.vms)))
    for seed in args.seeds:
        datasets.append((f"sim seed={seed}",
                         lambda seed=seed: (simulate(workloads=args.workloads, days=21, seed=seed), None)))
    for name, load in datasets:
        t = time.perf_counter()
        loaded = load()
        if loaded is None:
            print(f"\n== {name}: skipped, {HERE.parents[1] / 'shared' / 'data' / 'real'} is absent")
            continue
        snap, start = loaded
        cut = (start or snap.manifest.start) + timedelta(days=14)
        seen = snap.usage.filter(pl.col("resource").cast(pl.String).is_in(["cpu", "memory"])).group_by(
            pl.col("timestamp") < cut).agg(pl.struct("namespace", "workload_kind", "workload", "container").n_unique())
        counts = dict(seen.iter_rows())
        errors: dict[str, str] = {}
        table, sized = replay(snap, methods, start=start, errors=errors, sized_only=True)
        v, vs = verdict(table), verdict(sized)
        if args.sweep and v is not None:
            v["equal_risk"] = equal_risk(table)
        _print(f"{name} (days 1-14 -> 15-21, {time.perf_counter() - t:.1f}s; containers with cpu/memory usage: "
               f"{counts.get(True, 0)} in training, {counts.get(False, 0)} in the replay)", table, v)
        if vs is not None:
            print(f"  on the {sized['containers_evaluated'][0]} containers every method sized: {_describe(vs)}")
        for method, err in errors.items():
            print(f"{method} failed: {err}")
        results[name] = {"rows": table.to_dicts(), "verdict": v, "errors": errors,
                         "sized_by_all": {"rows": sized.to_dicts(), "verdict": vs}}
        if name.startswith("sim"):
            sim_tables.append((table, sized))
        del snap
    if len(sim_tables) > 1:
        def total(i: int) -> pl.DataFrame:
            frames = pl.concat([pair[i] for pair in sim_tables])
            return frames.group_by("method", maintain_order=True).agg(pl.exclude("method").sum())

        table, sized = total(0), total(1)
        v, vs = verdict(table), verdict(sized)
        if args.sweep and v is not None:
            v["equal_risk"] = equal_risk(table)
        name = f"sim, all {len(sim_tables)} seeds (sums)"
        _print(name, table, v)
        if vs is not None:
            print(f"  on the {sized['containers_evaluated'][0]} containers every method sized: {_describe(vs)}")
        results[name] = {"rows": table.to_dicts(), "verdict": v, "errors": {},
                         "sized_by_all": {"rows": sized.to_dicts(), "verdict": vs}}
    print(f"\ntotal {time.perf_counter() - t_all:.1f}s")
    if args.json:
        payload = {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "policy": POLICY,
                   "methods": list(methods), "workloads": args.workloads, "seeds": args.seeds, "results": results}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
