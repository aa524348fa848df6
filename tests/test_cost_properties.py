"""Property: on any snapshot, allocated + idle = total node cost (to the cent), idle >= 0, and every
roll-up sums to the cluster's cost, whatever the idle sharing."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.cost import analyze_cost, load_pricing, rollup
from tests.test_cost_fixture import GIB, T0, make_snapshot

BOOK = load_pricing()  # bundled catalog, loaded once
STEP = 900  # 15-minute samples; the start is shifted off the hour so partial hours occur
TYPES = ["m5.xlarge", "g5.xlarge", "n2-standard-8", "Standard_D4s_v5", "unknown.type", None]


@st.composite
def snapshots(draw):
    steps = draw(st.integers(1, 10))
    start = T0 + timedelta(minutes=draw(st.sampled_from([0, 7, 30, 45])))
    n_nodes = draw(st.integers(1, 3))
    nodes = []
    for i in range(n_nodes):
        first = draw(st.integers(0, steps - 1))
        last = draw(st.integers(first, steps - 1))
        nodes.append({
            "node": f"n{i}",
            "instance_type": draw(st.sampled_from(TYPES)),
            "capacity_type": draw(st.sampled_from(["on-demand", "spot", "unknown", "reserved"])),
            "cpu_capacity": draw(st.sampled_from([1.0, 2.0, 8.0, 16.0])),
            "memory_capacity": draw(st.sampled_from([2, 8, 64])) * GIB,
            "gpu_count": draw(st.sampled_from([0, 0, 1, 2])),
            "hourly_price": draw(st.one_of(st.none(), st.floats(0.0, 40.0, allow_nan=False))),
            "first_seen": draw(st.one_of(st.none(), st.just(start + timedelta(seconds=STEP * first)))),
            "last_seen": draw(st.one_of(st.none(), st.just(start + timedelta(seconds=STEP * last)))),
        })
    containers, usage = [], []
    for j in range(draw(st.integers(1, 6))):
        node = draw(st.sampled_from([n["node"] for n in nodes] + ["missing"]))
        ns = draw(st.sampled_from(["a", "b", "c"]))
        pod = f"p{j}"
        c = {
            "namespace": ns, "workload": f"w{j % 3}", "pod": pod, "container": "c", "node": node,
            "container_type": draw(st.sampled_from(["app", "app", "sidecar", "init"])),
            "cpu_request": draw(st.one_of(st.none(), st.floats(0.0, 20.0, allow_nan=False))),
            "memory_request": draw(st.one_of(st.none(), st.integers(0, 80 * GIB))),
            "gpu_request": draw(st.one_of(st.none(), st.integers(0, 3))),
            "gpu_resource": draw(st.sampled_from(["nvidia.com/gpu", "nvidia.com/mig-3g.40gb", None])),
        }
        if draw(st.booleans()):
            s = draw(st.integers(-2, steps))
            c["started_at"] = start + timedelta(seconds=STEP * s)
            if draw(st.booleans()):
                c["ended_at"] = c["started_at"] + timedelta(seconds=STEP * draw(st.integers(0, steps + 2)))
        containers.append(c)
        for i in range(steps):
            if draw(st.integers(0, 3)) == 0:
                continue  # gaps in monitoring
            usage.append((i, ns, pod, "c", "cpu", draw(st.floats(0.0, 25.0, allow_nan=False)), None))
            usage.append((i, ns, pod, "c", "memory", float(draw(st.integers(0, 100 * GIB))), None))
            if c["gpu_request"]:
                usage.append((i, ns, pod, "c", "gpu", draw(st.floats(0.0, 1.0)), f"GPU-{node}"))
    return make_snapshot(nodes, containers, usage, steps=steps, step_s=STEP, start=start)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots(), share=st.sampled_from(["none", "even", "proportional"]),
       by=st.sampled_from(["namespace", "workload", "node", "label:team", "cluster", "namespace,capacity_type"]))
def test_allocated_plus_idle_is_total(snap, share, by):
    r = analyze_cost(snap, pricing=BOOK, idle_share=share)
    total = r.total_cost
    assert r.allocated_cost + r.idle_cost == pytest.approx(total, abs=0.005)
    nodes = r.nodes
    for res in ("cpu", "memory", "gpu"):
        assert nodes.filter(pl.col(f"{res}_idle_cost") < -1e-9).height == 0
        per_node = nodes.get_column(f"{res}_allocated_cost") + nodes.get_column(f"{res}_idle_cost")
        assert (per_node - nodes.get_column(f"{res}_cost")).abs().max() < 0.005
    assert r.containers.filter(pl.col("total_cost") < 0).height == 0
    assert r.containers.get_column("total_cost").sum() == pytest.approx(r.allocated_cost, abs=0.005)
    # A node costs its price for at most the window's hours.
    assert (nodes.get_column("hours") <= r.hours + 1e-9).all()
    table = rollup(r, by)
    assert table.get_column("total_cost").sum() == pytest.approx(total, abs=0.005)
    timeline = r.timeline
    assert timeline.get_column("total_cost").sum() == pytest.approx(total, abs=0.005)
