"""Right-sizing on hand-made containers whose right answers can be reasoned about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import MIB
from recommenders.policy import RightsizePolicy
from recommenders.rightsizing import proposed_requests, recommend_rightsizing

START = datetime(2026, 11, 2, tzinfo=UTC)
STEP = 600  # 10 min keeps the fixtures small
GIB = 2**30


def build(specs: list[dict], days: float = 10, hpa: dict | None = None, nodes: bool = True,
          hpa_type: str = "Utilization") -> Snapshot:
    """specs: name, cpu (array per step, one pod), memory (array), requests/limits, ooms (list of step idx),
    container_type, replicas (pods sharing the same signal with small offsets)."""
    n = int(days * 86400 / STEP)
    times = [START + timedelta(seconds=STEP * i) for i in range(n)]
    usage, containers, events, workloads = [], [], [], []
    for s in specs:
        pods = s.get("replicas", 1)
        for p in range(pods):
            pod = f"{s['name']}-{p}"
            for res in ("cpu", "memory"):
                vals = np.asarray(s[res](n) if callable(s[res]) else s[res], dtype=float)
                usage.append(pl.DataFrame({
                    "timestamp": times, "namespace": "shop", "workload_kind": "Deployment", "workload": s["name"],
                    "pod": pod, "container": "app", "resource": res, "value": vals * (1 + 0.01 * p)}))
            containers.append({
                "namespace": "shop", "workload_kind": "Deployment", "workload": s["name"], "pod": pod, "container": "app",
                "container_type": s.get("container_type", "app"), "node": "n1" if nodes else None,
                "cpu_request": s.get("cpu_request"), "cpu_limit": s.get("cpu_limit"),
                "memory_request": s.get("memory_request"), "memory_limit": s.get("memory_limit"),
                "started_at": START - timedelta(days=1)})
            for i in s.get("ooms", []):
                events.append({"timestamp": times[i], "namespace": "shop", "workload_kind": "Deployment",
                               "workload": s["name"], "pod": pod, "container": "app", "reason": "OOMKilled",
                               "exit_code": 137, "memory_limit": s.get("memory_limit")})
        w = {"namespace": "shop", "workload_kind": "Deployment", "workload": s["name"], "replicas": pods}
        if hpa and s["name"] in hpa:
            w |= {"hpa_name": s["name"], "hpa_metrics": [{"metric": "cpu", "target_type": hpa_type,
                                                          "target": hpa[s["name"]]}]}
        workloads.append(w)
    node_frame = pl.DataFrame({"node": ["n1"], "instance_type": ["m5.2xlarge"], "provider": ["aws"],
                               "capacity_type": ["on-demand"], "cpu_capacity": [8.0], "cpu_allocatable": [7.9],
                               "memory_capacity": [32 * GIB], "memory_allocatable": [31 * GIB],
                               "first_seen": [times[0]], "last_seen": [times[-1]]}) if nodes else None
    manifest = Manifest(cluster="t", start=times[0], end=times[-1], step_seconds=STEP, source="test")
    frames = {"usage": pl.concat(usage), "containers": pl.DataFrame(containers), "workloads": pl.DataFrame(workloads)}
    if events:
        frames["events"] = pl.DataFrame(events)
    if node_frame is not None:
        frames["nodes"] = node_frame
    return Snapshot.build(manifest, **frames)


def rng_series(seed, level, noise, n=None):
    r = np.random.default_rng(seed)
    return lambda n: np.clip(level + noise * r.standard_normal(n), 0, None)


def recs_by(result, name=None):
    return {(r.target.workload, r.resource): r for r in result.recommendations
            if name is None or r.target.workload == name}


def test_overprovisioned_container_is_sized_down_to_its_demand():
    snap = build([{"name": "api", "cpu": rng_series(1, 0.2, 0.02), "memory": rng_series(2, 300 * MIB, 5 * MIB),
                   "cpu_request": 2.0, "memory_request": 2 * GIB, "memory_limit": 2 * GIB}])
    res = recommend_rightsizing(snap, RightsizePolicy(risk_mode="workload", risk=0.02))
    r = recs_by(res)
    cpu, mem = r[("api", "cpu")], r[("api", "memory")]
    cpu_vals = snap.usage.filter(pl.col("resource") == "cpu")["value"]
    assert cpu_vals.quantile(0.9) <= cpu.proposed_request <= cpu_vals.max() * 1.05
    assert cpu.proposed_request < 0.4 and cpu.monthly_saving_usd > 0
    peak = snap.usage.filter(pl.col("resource") == "memory")["value"].max()
    assert peak <= mem.proposed_request <= peak * 1.3
    assert mem.proposed_limit == mem.proposed_request  # request = limit by default
    assert mem.monthly_saving_usd > 0 and mem.kind == "rightsize"
    # human rounding: whole millicores and MiB multiples
    assert round(cpu.proposed_request * 1000, 6) == int(round(cpu.proposed_request * 1000))
    assert mem.proposed_request % (4 * MIB) == 0
    assert cpu.pod_spec_patch == {"containers": [{"name": "app", "resources": {"requests": {
        "cpu": f"{round(cpu.proposed_request * 1000)}m"}}}]}
    assert cpu.evidence.history_hours >= 200 and cpu.confidence > 0.9


def test_besteffort_gets_proposals_with_the_added_cost():
    snap = build([{"name": "be", "cpu": rng_series(3, 0.5, 0.05), "memory": rng_series(4, GIB, 10 * MIB)}])
    r = recs_by(recommend_rightsizing(snap))
    assert r[("be", "cpu")].current_request is None and r[("be", "cpu")].proposed_request > 0.5
    assert r[("be", "memory")].monthly_saving_usd < 0  # setting a request costs money, shown as negative saving
    assert any("BestEffort" in n for n in r[("be", "memory")].evidence.notes)


def test_small_difference_is_not_churned():
    snap = build([{"name": "ok", "cpu": lambda n: np.full(n, 0.5), "memory": lambda n: np.full(n, 500.0 * MIB),
                   "cpu_request": 0.5, "memory_request": 528 * MIB, "memory_limit": 528 * MIB}])
    res = recommend_rightsizing(snap, RightsizePolicy(min_change=0.10))
    assert not recs_by(res)
    assert {s.resource for s in res.skipped if "already right-sized" in s.reason} == {"cpu", "memory"}


def test_oom_killed_container_gets_more_memory_never_less():
    limit = 512 * MIB
    mem = lambda n: np.minimum(np.linspace(300, 600, n) * MIB, limit)
    snap = build([{"name": "leaky", "cpu": rng_series(5, 0.1, 0.01), "memory": mem, "cpu_request": 0.1,
                   "memory_request": limit, "memory_limit": limit, "ooms": [500, 900, 1300]}])
    r = recs_by(recommend_rightsizing(snap))[("leaky", "memory")]
    assert r.kind == "raise-memory"
    assert r.proposed_request >= max(limit + 100 * MIB, limit * 1.2)
    assert r.proposed_limit >= r.proposed_request and r.evidence.ooms == 3
    assert r.monthly_saving_usd < 0


def test_hpa_on_cpu_is_skipped_with_its_effect_explained():
    snap = build([{"name": "web", "cpu": rng_series(6, 0.2, 0.02), "memory": rng_series(7, 200 * MIB, 2 * MIB),
                   "cpu_request": 1.0, "memory_request": GIB, "memory_limit": GIB, "replicas": 3}], hpa={"web": 70})
    res = recommend_rightsizing(snap)
    assert ("web", "cpu") not in recs_by(res) and ("web", "memory") in recs_by(res)
    skip = next(s for s in res.skipped if s.resource == "cpu")
    assert "HPA web scales on cpu utilization (70%" in skip.reason and "replicas" in skip.reason
    allowed = recommend_rightsizing(snap, RightsizePolicy(hpa="allow"))
    assert ("web", "cpu") in recs_by(allowed)
    # an AverageValue target (cores per pod) does not depend on the request: no skip
    absolute = build([{"name": "web", "cpu": rng_series(6, 0.2, 0.02), "memory": rng_series(7, 200 * MIB, 2 * MIB),
                       "cpu_request": 1.0, "memory_request": GIB, "memory_limit": GIB, "replicas": 3}],
                     hpa={"web": 0.5}, hpa_type="AverageValue")
    assert ("web", "cpu") in recs_by(recommend_rightsizing(absolute))


def test_too_little_history_gives_a_reason_not_a_guess():
    snap = build([{"name": "new", "cpu": rng_series(8, 0.2, 0.02), "memory": rng_series(9, 100 * MIB, MIB),
                   "cpu_request": 1.0, "memory_request": GIB, "memory_limit": GIB}], days=0.5)
    res = recommend_rightsizing(snap)
    assert not res.recommendations
    assert all("h of" in s.reason and "needed" in s.reason for s in res.skipped) and len(res.skipped) == 2


def test_cpu_is_sized_from_history_after_a_level_drop_when_drift_is_on():
    def cpu(n):
        r = np.random.default_rng(10)
        return np.where(np.arange(n) < n * 0.5, 2.0, 0.3) + 0.03 * r.standard_normal(n)
    snap = build([{"name": "quiet", "cpu": cpu, "memory": rng_series(11, 200 * MIB, MIB), "cpu_request": 2.5,
                   "memory_request": GIB, "memory_limit": GIB}], days=12)
    # off by default (on the Bitbrains frontier it cost CPU at equal shortfall), opt-in with use_drift
    r = recs_by(recommend_rightsizing(snap, RightsizePolicy(use_drift=True, half_life_hours=72.0)))[("quiet", "cpu")]
    assert r.evidence.post_drift_start is not None
    assert r.proposed_request < 0.6  # a percentile over the whole window would say ~2 cores
    assert any("changed" in n for n in r.evidence.notes)


def test_cluster_risk_budget_reserves_less_than_one_level_for_all():
    """Steady containers get a high level cheaply; the spiky one carries the accepted risk."""
    spiky = lambda n: np.where(np.random.default_rng(12).random(n) < 0.04, 3.0, 0.3)
    specs = [{"name": f"steady{i}", "cpu": rng_series(20 + i, 0.5, 0.01), "memory": rng_series(40 + i, GIB, MIB),
              "cpu_request": 1.0} for i in range(4)]
    specs.append({"name": "spiky", "cpu": spiky, "memory": rng_series(60, GIB, MIB), "cpu_request": 4.0})
    snap = build(specs)
    cluster = recs_by(recommend_rightsizing(snap, RightsizePolicy(risk=0.02, risk_mode="cluster", max_risk=0.1)))
    per = recs_by(recommend_rightsizing(snap, RightsizePolicy(risk=0.02, risk_mode="workload")))
    total = lambda rs: sum(r.proposed_request for (w, res), r in rs.items() if res == "cpu")
    assert total(cluster) < total(per)
    assert cluster[("spiky", "cpu")].risk > per[("spiky", "cpu")].risk
    # the budget holds: pod-weighted calibrated risk within --risk
    risks = [r.risk for (w, res), r in cluster.items() if res == "cpu"]
    assert np.mean(risks) <= 0.02 + 1e-9 and max(risks) <= 0.1


def test_no_nodes_means_fallback_rates_said_in_notes():
    snap = build([{"name": "imp", "cpu": rng_series(13, 0.2, 0.02), "memory": rng_series(14, 200 * MIB, MIB),
                   "cpu_request": 1.0, "memory_request": GIB, "memory_limit": GIB}], nodes=False)
    res = recommend_rightsizing(snap)
    assert res.recommendations and all(r.monthly_saving_usd > 0 for r in res.recommendations)
    assert any("fallback" in n for n in res.notes)
    assert all("fallback" in r.saving_basis for r in res.recommendations)


def test_cpu_limit_policy_and_limit_never_below_request():
    snap = build([{"name": "lim", "cpu": rng_series(15, 1.5, 0.05), "memory": rng_series(16, 200 * MIB, MIB),
                   "cpu_request": 0.5, "cpu_limit": 1.0, "memory_request": GIB, "memory_limit": GIB}])
    r = recs_by(recommend_rightsizing(snap))[("lim", "cpu")]
    assert r.proposed_request > 1.5 and r.proposed_limit >= r.proposed_request  # old 1-core limit raised
    r2 = recs_by(recommend_rightsizing(snap, RightsizePolicy(cpu_limit_ratio=2.0)))[("lim", "cpu")]
    assert r2.proposed_limit == pytest.approx(2 * r2.proposed_request, rel=0.05)
    assert r2.pod_spec_patch["containers"][0]["resources"]["limits"]["cpu"]


def test_proposed_requests_frame_for_replays():
    snap = build([{"name": "api", "cpu": rng_series(17, 0.2, 0.02), "memory": rng_series(18, 300 * MIB, 5 * MIB),
                   "cpu_request": 2.0, "memory_request": 2 * GIB, "memory_limit": 2 * GIB}])
    df = proposed_requests(snap)
    assert df.columns == ["namespace", "workload_kind", "workload", "container", "cpu_request", "cpu_limit",
                          "memory_request", "memory_limit"]
    row = df.row(0, named=True)
    assert row["workload"] == "api" and 0 < row["cpu_request"] < 1 and row["memory_limit"] >= 300 * MIB


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    level=st.floats(0.01, 4.0), noise=st.floats(0.0, 0.5), mem_gib=st.floats(0.05, 16.0),
    spike=st.floats(1.0, 3.0), ooms=st.booleans(), limit_ratio=st.floats(0.3, 3.0), seed=st.integers(0, 1000),
)
def test_property_memory_never_below_peak_and_patches_only_touch_resources(level, noise, mem_gib, spike, ooms,
                                                                          limit_ratio, seed):
    r = np.random.default_rng(seed)

    def mem(n):
        m = mem_gib * GIB * (1 + 0.05 * r.standard_normal(n)).clip(0.5)
        m[r.integers(0, n)] *= spike
        return m

    limit = int(mem_gib * GIB * limit_ratio)
    snap = build([{"name": "p", "cpu": rng_series(seed, level, noise * level), "memory": mem,
                   "cpu_request": level, "memory_request": limit, "memory_limit": limit,
                   "ooms": [100, 200] if ooms else []}], days=3)
    res = recommend_rightsizing(snap)
    peak = snap.usage.filter(pl.col("resource") == "memory")["value"].max()
    for rec in res.recommendations:
        if rec.resource == "memory":
            assert rec.proposed_request >= peak and rec.proposed_limit >= peak
            if ooms:
                assert rec.proposed_request >= limit and rec.proposed_limit >= limit
        assert set(rec.pod_spec_patch) <= {"containers", "initContainers"}
        for c in next(iter(rec.pod_spec_patch.values())):
            assert set(c) == {"name", "resources"} and set(c["resources"]) <= {"requests", "limits"}
            assert all(set(v) == {rec.resource} for v in c["resources"].values())
        assert np.isfinite(rec.monthly_saving_usd) and 0 <= rec.confidence <= 1


def test_calibrated_risk_blends_own_and_pooled_exceedances():
    from recommenders.rightsizing import LEVELS, _qcol, calibrated_risk

    # container a: its holdout exceeded every level often (it grew); b: never
    stats = pl.DataFrame({"held_n": [100, 100],
                          **{"x" + _qcol(q): [50 if q < 1 else 10, 0] for q in LEVELS}})
    r = calibrated_risk(stats, own_weight=0.25)
    pooled = np.array([50 if q < 1 else 10 for q in LEVELS]) / 200
    assert r.shape == (2, len(LEVELS))
    assert np.allclose(r[0], 0.25 * np.array([0.5 if q < 1 else 0.1 for q in LEVELS]) + 0.75 * pooled)
    assert (r[0] > r[1]).all() and (np.diff(r, axis=1) <= 1e-12).all()  # riskier; monotone in the level
    assert np.allclose(calibrated_risk(stats, own_weight=0.0)[1], calibrated_risk(stats, own_weight=0.0)[0])


def test_use_forecast_adds_model_evidence_and_never_lowers_memory():
    snap = build([{"name": "api", "cpu": rng_series(30, 0.2, 0.02), "memory": rng_series(31, 300 * MIB, 5 * MIB),
                   "cpu_request": 2.0, "memory_request": 2 * GIB, "memory_limit": 2 * GIB}])
    plain = recs_by(recommend_rightsizing(snap))
    fc = recs_by(recommend_rightsizing(snap, RightsizePolicy(use_forecast=True)))
    assert "model p95 (7d)" in fc[("api", "cpu")].evidence.forecast
    assert "model peak (7d)" in fc[("api", "memory")].evidence.forecast
    assert fc[("api", "memory")].proposed_request >= plain[("api", "memory")].proposed_request
    assert fc[("api", "cpu")].proposed_request == plain[("api", "cpu")].proposed_request


@pytest.mark.parametrize("policy", [{}, {"memory_policy": "burstable"}, {"half_life_hours": 48.0},
                                    {"use_drift": True, "memory_spread": True}])
def test_statistics_part_by_part_equal_the_whole(monkeypatch, policy):
    """Bounded memory: usage is processed a few workloads at a time (``workload_parts``); the
    sizing table, pooled calibration included, is the same as in one pass."""
    from analyzer.simulator import simulate
    import analyzer.parts
    import recommenders.rightsizing as R
    import recommenders.sizing_stats as S

    snap = simulate(workloads=12, days=6, step_seconds=900, seed=3)
    whole = R.sizing_table(snap, RightsizePolicy(**policy))
    made = []
    parts = analyzer.parts.workload_parts
    monkeypatch.setattr(R, "workload_parts", lambda u, rows=None: made.append(p := parts(u, rows, part_rows=_rows(u, rows) // 5)) or p)
    split = R.sizing_table(snap, RightsizePolicy(**policy))
    assert len(made[0]) >= 5
    order = [*S.KEY]
    a, b = whole.sort(order), split.sort(order).select(whole.columns)
    assert a.height == b.height > 15
    for c in a.columns:
        if a[c].dtype.is_float():
            assert np.allclose(a[c].to_numpy().astype(float), b[c].to_numpy().astype(float), rtol=1e-9,
                               equal_nan=True), c
        else:
            assert a[c].equals(b[c]), c


def test_exceedances_count_values_strictly_above_each_threshold():
    from recommenders.sizing_stats import exceedances

    held = pl.Series([[1.0, 2.0, 2.0, 5.0], [], [3.0]], dtype=pl.List(pl.Float64))
    thresholds = np.array([[0.5, 2.0, 5.0], [1.0, 2.0, 3.0], [np.nan, 2.9, 3.0]])
    assert exceedances(held, thresholds).tolist() == [[4, 1, 0], [0, 0, 0], [0, 1, 0]]


def _rows(usage, rows=None) -> int:
    return rows if rows is not None else usage.select(pl.len()).collect().item()
