"""Memory policies (guaranteed / burstable) and the node check (issue 14)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommenders.nodecheck import check_and_raise, node_pressure, pack
from recommenders.policy import MIB, RightsizePolicy
from recommenders.rightsizing import recommend_rightsizing
from tests.test_recommend_rightsizing import GIB, build, recs_by, rng_series


def _daily(level, swing, seed):
    r = np.random.default_rng(seed)
    return lambda n: level + swing * np.clip(np.sin(np.arange(n) * 2 * np.pi / 144), 0, None) \
        + 0.01 * level * r.standard_normal(n)


def _snap(nodes=True, days=10):
    return build([
        {"name": "web", "cpu": rng_series(1, 0.5, 0.05), "memory": _daily(2 * GIB, GIB, 2),
         "cpu_request": 1.0, "memory_request": 4 * GIB, "memory_limit": 4 * GIB},
        {"name": "flat", "cpu": rng_series(3, 0.2, 0.02), "memory": np.full(int(days * 144), 300 * MIB),
         "cpu_request": 1.0, "memory_request": GIB, "memory_limit": GIB},
    ], days=days, nodes=nodes)


def test_burstable_request_below_limit_never_limit_below_peak_and_records_say_why():
    snap = _snap()
    peak = snap.usage.filter((pl.col("resource") == "memory") & (pl.col("workload") == "web"))["value"].max()
    g = recs_by(recommend_rightsizing(snap, RightsizePolicy(memory_policy="guaranteed")))[("web", "memory")]
    res = recommend_rightsizing(snap, RightsizePolicy(memory_policy="burstable"))
    b = recs_by(res)[("web", "memory")]
    assert g.proposed_request == g.proposed_limit >= peak * 1.15
    # the limit: the peak + the burstable margin (not billed; fewer OOM kills), never below guaranteed's
    assert b.proposed_limit >= max(g.proposed_limit, peak * 1.5)
    assert b.proposed_request < b.proposed_limit  # the daily swing is not reserved
    assert b.evidence.policy == "burstable" and b.evidence.quantile_used.startswith("p")
    assert 0 < b.evidence.expected_memory_above_request <= 0.01
    assert g.evidence.policy == "guaranteed" and g.evidence.expected_memory_above_request == 0.0
    assert "burstable request at the p" in b.evidence.reason
    assert b.pod_spec_patch["containers"][0]["resources"]["limits"]["memory"]


def test_burstable_falls_back_to_guaranteed_for_constant_memory_with_the_reason():
    b = recs_by(recommend_rightsizing(_snap(), RightsizePolicy(memory_policy="burstable")))[("flat", "memory")]
    assert b.proposed_request == b.proposed_limit and b.evidence.policy == "guaranteed"
    assert any("fell back to guaranteed: its memory use is constant" in n for n in b.evidence.notes)


def test_burstable_falls_back_for_too_short_history():
    snap = _snap(days=2)
    b = recs_by(recommend_rightsizing(snap, RightsizePolicy(memory_policy="burstable")))[("web", "memory")]
    assert b.proposed_request == b.proposed_limit
    assert any("h of memory history" in n for n in b.evidence.notes)


def test_snapshot_without_nodes_packs_onto_node_size_with_a_note():
    res = recommend_rightsizing(_snap(nodes=False), RightsizePolicy(memory_policy="burstable", node_memory=8 * GIB,
                                                                    node_cpu=4.0))
    assert any("no nodes" in n and "8 GiB / 4 core" in n for n in res.notes)
    check = res.cluster_notes["node_check"]
    assert check["node_size_from"] == "--node-size" and check["node_pressure"] <= 0.001


def test_pack_is_first_fit_decreasing_on_memory_and_cpu():
    node = pack(np.array([6.0, 5.0, 3.0, 2.0, 9.0]), np.array([1.0, 1.0, 1.0, 5.0, 1.0]), 10.0, 6.0)
    # 9 -> n0; 6 -> n1; 5 -> n2 (n1 has 4 left); 3 -> n1; 2 (cpu 5) -> n0 has cpu 5 left and memory 1: no; n1
    # has memory 1: no; n2 memory 5, cpu 5 -> n2
    assert node.tolist() == [1, 2, 1, 2, 0]


def test_node_pressure_counts_node_steps_over_allocatable():
    use = np.array([[4.0, 6.0, np.nan], [5.0, 5.0, 5.0], [1.0, 1.0, 1.0]])
    over, steps = node_pressure(np.array([0, 0, 1]), use, 10.0)
    assert over.tolist() == [1, 0] and steps.tolist() == [3, 3]


def test_check_raises_pods_on_overflowing_nodes_until_within_risk():
    t = np.arange(100)
    use = np.vstack([np.where(t % 10 == 0, 9.0, 2.0), np.where(t % 10 == 5, 9.0, 2.0), np.full(100, 2.0)])
    req = np.array([2.5, 2.5, 2.5])
    guaranteed = np.array([9.5, 9.5, 2.5])
    out, check = check_and_raise(req, guaranteed, np.zeros(3), guaranteed, np.zeros(3), use, 10.0, 100.0, 0.001)
    assert check.pressure_first > 0.1  # all three packed on one node: 9 + 2 + 2 > 10 at every spike
    assert check.pressure_after <= 0.001 and (out <= guaranteed).all() and (out >= req).all()
    assert check.nodes_after >= 2 and check.raised.any()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mem_gib=st.floats(0.05, 16.0), spike=st.floats(1.0, 3.0), ooms=st.booleans(), limit_ratio=st.floats(0.3, 3.0),
       keep=st.booleans(), node_gib=st.floats(0.5, 64.0), seed=st.integers(0, 1000))
def test_property_burstable_never_limit_below_peak_nor_request_above_limit(mem_gib, spike, ooms, limit_ratio, keep,
                                                                          node_gib, seed):
    r = np.random.default_rng(seed)

    def mem(n):
        m = mem_gib * GIB * (1 + 0.2 * np.sin(np.arange(n) / 20) + 0.05 * r.standard_normal(n)).clip(0.3)
        m[r.integers(0, n)] *= spike
        return m

    limit = int(mem_gib * GIB * limit_ratio)
    snap = build([{"name": "p", "cpu": rng_series(seed, 0.5, 0.1), "memory": mem, "cpu_request": 0.5,
                   "memory_request": limit, "memory_limit": limit, "ooms": [100, 200] if ooms else []},
                  {"name": "q", "cpu": rng_series(seed + 1, 0.5, 0.1), "memory": mem, "cpu_request": 0.5,
                   "memory_request": limit, "memory_limit": limit}], days=3.5, nodes=False)
    policy = RightsizePolicy(memory_policy="burstable", memory_limit="keep" if keep else "request",
                             node_memory=int(node_gib * GIB), node_cpu=4.0)
    res = recommend_rightsizing(snap, policy)
    assert res.cluster_notes["node_check"]["node_pressure"] <= 0.001
    for rec in res.recommendations:
        if rec.resource != "memory":
            continue
        peak = snap.usage.filter((pl.col("resource") == "memory") & (pl.col("workload") == rec.target.workload))[
            "value"].max()
        assert rec.proposed_limit >= peak and rec.proposed_request <= rec.proposed_limit
        if ooms and rec.target.workload == "p":
            assert rec.proposed_request >= limit and rec.evidence.policy == "guaranteed"
