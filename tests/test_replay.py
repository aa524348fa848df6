"""Replay metrics (recommenders/replay_metrics.py, used by benchmarks/replay.py) on a tiny frame."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from recommenders.replay_metrics import common_keys, current_sizing, effective_sizing, evaluate, replay_metrics

GIB = 2**30
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = 300
KEY = {"namespace": "ns", "workload_kind": "Deployment", "workload": "w", "container": "app"}


def rows(pod: str, resource: str, values: list[float], workload: str = "w") -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame({
        "timestamp": [T0 + timedelta(seconds=STEP * i) for i in range(n)],
        "namespace": ["ns"] * n, "workload_kind": ["Deployment"] * n, "workload": [workload] * n,
        "pod": [pod] * n, "container": ["app"] * n, "resource": [resource] * n, "value": values,
    })


# two hours (24 samples) of one pod, a second pod for the first hour only
CPU_A = [0.2] * 20 + [0.7, 0.9, 0.5, 1.5]  # above 0.5: 0.7, 0.9, 1.5 (0.5 is not above)
CPU_B = [0.1] * 12
MEM_A = [0.5 * GIB] * 5 + [1.5 * GIB, 1.2 * GIB] + [0.5 * GIB] * 10 + [2.0 * GIB] + [0.5 * GIB] * 6
MEM_B = [0.5 * GIB] * 12
USAGE = pl.concat([rows("a", "cpu", CPU_A), rows("b", "cpu", CPU_B), rows("a", "memory", MEM_A),
                   rows("b", "memory", MEM_B)])


def sizing(cpu: float | None, mem_req: float | None, mem_lim: float | None, workload: str = "w") -> pl.DataFrame:
    def b(x: float | None) -> int | None:
        return None if x is None else int(x)

    return pl.DataFrame([{**KEY, "workload": workload, "cpu_request": cpu, "cpu_limit": None,
                          "memory_request": b(mem_req), "memory_limit": b(mem_lim)}],
                        schema_overrides={"cpu_request": pl.Float64, "cpu_limit": pl.Float64,
                                          "memory_request": pl.Int64, "memory_limit": pl.Int64})


def test_metrics_by_hand():
    m = replay_metrics(USAGE, effective_sizing(sizing(0.5, GIB, GIB)), step_seconds=STEP, window_seconds=7200)
    # pod a 24 samples + pod b 12 samples at 0.5 core over 24 steps: 0.5 x 36 / 24 = 0.75 cores
    assert m["reserved_cpu_cores"] == pytest.approx(0.75)
    assert m["reserved_memory_gib"] == pytest.approx(1.5)
    assert m["cpu_hours_above_request"] == pytest.approx(3 * STEP / 3600)
    assert m["unmet_cpu_core_hours"] == pytest.approx((0.2 + 0.4 + 1.0) * STEP / 3600)
    # pod a above 1 GiB at 00:25, 00:30 (same hour) and 01:25: two OOM events
    assert m["oom_events"] == 2
    assert m["cost_usd_per_hour"] == pytest.approx(0.75 * 0.0316 + 1.5 * 0.00424)
    assert m["containers_evaluated"] == 1 and m["containers_sized"] == 1
    # a sized container without replay usage reserves nothing and is not counted as evaluated
    two = effective_sizing(pl.concat([sizing(0.5, GIB, GIB), sizing(8.0, GIB, GIB, workload="gone")]))
    m2 = replay_metrics(USAGE, two, step_seconds=STEP, window_seconds=7200)
    assert m2["containers_evaluated"] == 1 and m2["reserved_cpu_cores"] == pytest.approx(0.75)


def test_oom_threshold_is_the_limit_else_the_request():
    m = replay_metrics(USAGE, effective_sizing(sizing(0.5, GIB, 1.6 * GIB)), step_seconds=STEP, window_seconds=7200)
    assert m["oom_events"] == 1 and m["reserved_memory_gib"] == pytest.approx(1.5)  # only the 2 GiB sample
    m = replay_metrics(USAGE, effective_sizing(sizing(0.5, 1.3 * GIB, None)), step_seconds=STEP, window_seconds=7200)
    assert m["oom_events"] == 2  # no limit: the request (1.3 GiB) is the threshold: 1.5 and 2.0 GiB
    m = replay_metrics(USAGE, effective_sizing(sizing(None, None, 2 * GIB)), step_seconds=STEP, window_seconds=7200)
    assert m["reserved_cpu_cores"] == 0 and m["containers_evaluated"] == 0  # no CPU value: not evaluable


def test_effective_sizing_falls_back_to_current_values():
    containers = pl.DataFrame({
        **{k: [v, v] for k, v in KEY.items()}, "pod": ["old", "new"],
        "started_at": [T0 - timedelta(days=2), T0 - timedelta(days=1)],
        "cpu_request": [2.0, 1.0], "cpu_limit": [None, None], "memory_request": [None, None],
        "memory_limit": [4 * GIB, 3 * GIB],
    })
    current = current_sizing(containers)
    assert current.row(0, named=True)["cpu_request"] == 1.0  # the most recently started pod
    e = effective_sizing(sizing(None, None, None), current).row(0, named=True)
    assert (e["cpu_request"], e["memory_request"], e["memory_threshold"], e["sized"]) == (1.0, 3 * GIB, 3 * GIB, False)
    e = effective_sizing(sizing(0.25, None, None), current).row(0, named=True)
    assert (e["cpu_request"], e["memory_request"], e["sized"]) == (0.25, 3 * GIB, False)
    e = effective_sizing(sizing(0.25, GIB, None), current).row(0, named=True)
    assert (e["memory_request"], e["memory_threshold"], e["sized"]) == (GIB, GIB, True)


def test_evaluate_compares_methods_on_the_common_set():
    usage = pl.concat([USAGE, rows("c", "cpu", [0.3] * 24, workload="w2"), rows("c", "memory", [float(GIB)] * 24, workload="w2")])
    proposals = {
        "both": pl.concat([sizing(0.5, GIB, GIB), sizing(0.4, 2 * GIB, 2 * GIB, workload="w2")]),
        "only-w": sizing(1.0, 2 * GIB, 2 * GIB),  # nothing for w2, which has no current values either
        "none": None,
    }
    sz = {k: effective_sizing(v) for k, v in proposals.items()}
    assert common_keys({k: v for k, v in sz.items() if k != "none"})["workload"].to_list() == ["w"]
    assert common_keys(sz).is_empty()
    table = evaluate(usage, {k: v for k, v in proposals.items() if k != "none"}, None,
                     step_seconds=STEP, window_seconds=7200)
    got = {r["method"]: r for r in table.iter_rows(named=True)}
    assert got["both"]["containers_proposed"] == 2 and got["both"]["containers_evaluated"] == 1
    assert got["both"]["containers_sized"] == 1
    assert got["both"]["reserved_cpu_cores"] == pytest.approx(0.75)  # w2 excluded
    assert got["only-w"]["reserved_cpu_cores"] == pytest.approx(1.5)
    assert got["only-w"]["oom_events"] == 0 and got["only-w"]["cpu_hours_above_request"] == pytest.approx(STEP / 3600)


def _bench():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "replay.py"
    spec = importlib.util.spec_from_file_location("replay_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_replay_on_a_small_simulated_cluster():
    bench = _bench()
    from analyzer.simulator import simulate

    snap = simulate(workloads=20, days=3, seed=3)
    train = bench.truncate_snapshot(snap, snap.manifest.start + timedelta(days=2))
    assert train.usage["timestamp"].max() < snap.manifest.start + timedelta(days=2)
    assert train.events.is_empty() or train.events["timestamp"].max() < snap.manifest.start + timedelta(days=2)
    table = bench.replay(snap, methods={k: v for k, v in bench.METHODS.items() if k != "kubetune"},
                         train_days=2, replay_days=1)
    assert set(table["method"]) == {"krr-simple", "vpa"}
    assert table["containers_evaluated"].n_unique() == 1 and table["containers_evaluated"][0] > 0
    assert (table["reserved_cpu_cores"] > 0).all()


def test_equal_risk_picks_the_cheapest_setting_within_the_peers_shortfall():
    bench = _bench()

    def row(method, cpu, hours, oom=0, cost=None):
        return {"method": method, "reserved_cpu_cores": cpu, "cpu_hours_above_request": hours, "oom_events": oom,
                "unmet_cpu_core_hours": hours / 10, "cost_usd_per_hour": cost if cost is not None else cpu}

    table = pl.DataFrame([
        row("krr-simple", 12.0, 50.0), row("vpa", 10.0, 100.0),
        row("kubetune workload risk=0.02", 11.0, 40.0),
        row("kubetune cluster risk=0.02", 8.0, 90.0),
        row("kubetune cluster risk=0.05", 6.0, 150.0),  # cheaper but more shortfall than VPA: not eligible
        row("kubetune cluster risk=0.03", 7.0, 95.0, oom=1),  # more OOM events than VPA: not eligible
    ])
    e = bench.equal_risk(table)
    assert e["better_peer"] == "vpa" and e["setting"] == "cluster risk=0.02"
    assert e["cpu_reduction"] == pytest.approx(0.2)
    none = bench.equal_risk(table.filter(pl.col("method").is_in(["vpa", "kubetune cluster risk=0.05"])))
    assert none == {"better_peer": "vpa", "setting": None}
    assert bench.equal_risk(table.filter(pl.col("method") == "vpa")) is None
