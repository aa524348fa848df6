"""Cost model edge cases: partial nodes and pods, BestEffort, init containers, overcommit, GPU sharing."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from analyzer.cost import analyze_cost, parse_by, rollup
from analyzer.errors import InputError
from tests.test_cost_fixture import GIB, T0, container, make_snapshot, write_pricing


def _node(name: str, price: float, cores: float = 4.0, gib: int = 16, gpus: int = 0, **extra) -> dict:
    return {"node": name, "instance_type": "custom", "capacity_type": "on-demand", "cpu_capacity": cores,
            "memory_capacity": gib * GIB, "gpu_count": gpus, "hourly_price": price, **extra}


def _one(df: pl.DataFrame, col: str, value: str) -> dict:
    return df.filter(pl.col(col).cast(pl.String) == value).row(0, named=True)


def _identity(r) -> None:
    assert r.allocated_cost + r.idle_cost == pytest.approx(r.total_cost, abs=0.005)
    assert r.nodes.filter(pl.col("idle_cost") < -1e-9).height == 0


def test_node_present_only_part_of_the_window(tmp_path):
    # 3 hourly samples -> window 00:00-03:00. "late" exists from 01:00 (first_seen) to 02:00 (last_seen 01:00 + step).
    nodes = [_node("full", 0.24), _node("late", 0.24, first_seen=T0 + timedelta(hours=1),
                                        last_seen=T0 + timedelta(hours=1))]
    containers = [container("a", "w", "p1", "c", "full", cpu=1.0, mem_gib=4),
                  container("a", "v", "p2", "c", "late", cpu=1.0, mem_gib=4)]
    usage = [(i, "a", "p1", "c", "cpu", 0.5, None) for i in range(3)] + [(1, "a", "p2", "c", "cpu", 0.5, None)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=3), pricing_file=write_pricing(tmp_path))
    assert _one(r.nodes, "node", "full")["hours"] == pytest.approx(3.0)
    late = _one(r.nodes, "node", "late")
    assert late["hours"] == pytest.approx(1.0) and late["total_cost"] == pytest.approx(0.24)
    # p2 has no start/end, so its life is its samples: one hour, 1 core x 0.04 + 4 GiB x 0.005 = 0.06.
    p2 = _one(r.containers, "pod", "p2")
    assert p2["hours"] == pytest.approx(1.0) and p2["total_cost"] == pytest.approx(0.06)
    assert r.total_cost == pytest.approx(0.24 * 4)
    _identity(r)


def test_node_gone_mid_hour_and_pod_clipped_to_node(tmp_path):
    # 5-minute samples over one hour; the node's last sample is 00:25, so it existed 00:00-00:30.
    nodes = [_node("short", 0.24, last_seen=T0 + timedelta(minutes=25))]
    containers = [container("a", "w", "p", "c", "short", cpu=1.0, mem_gib=4, started_at=T0)]  # still "running"
    r = analyze_cost(make_snapshot(nodes, containers, [], steps=12, step_s=300), pricing_file=write_pricing(tmp_path))
    assert r.hours == pytest.approx(1.0)
    assert _one(r.nodes, "node", "short")["total_cost"] == pytest.approx(0.12)
    # Without samples, the pod is charged by its requests for the half hour its node lived: 0.06 x 0.5.
    assert _one(r.containers, "pod", "p")["total_cost"] == pytest.approx(0.03)
    _identity(r)


def test_pod_counts_only_between_start_and_end(tmp_path):
    nodes = [_node("n", 0.24)]
    containers = [container("a", "w", "p", "c", "n", cpu=1.0, mem_gib=4, started_at=T0 + timedelta(minutes=30),
                            ended_at=T0 + timedelta(minutes=90))]
    r = analyze_cost(make_snapshot(nodes, containers, [], steps=3), pricing_file=write_pricing(tmp_path))
    p = _one(r.containers, "pod", "p")
    assert p["hours"] == pytest.approx(1.0) and p["total_cost"] == pytest.approx(0.06)


def test_best_effort_pays_for_usage(tmp_path):
    nodes = [_node("n", 0.24)]
    containers = [container("a", "be", "p", "c", "n"), container("a", "quiet", "q", "c", "n")]
    usage = []
    for i in range(2):
        usage += [(i, "a", "p", "c", "cpu", 0.5, None), (i, "a", "p", "c", "memory", 2 * GIB, None),
                  (i, "a", "q", "c", "cpu", 0.0, None), (i, "a", "q", "c", "memory", 0.0, None)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=2), pricing_file=write_pricing(tmp_path))
    be = _one(r.containers, "pod", "p")
    # No requests: allocation = usage, (0.5 x 0.04 + 2 x 0.005) x 2 h = 0.06; nothing requested, nothing wasted.
    assert be["total_cost"] == pytest.approx(0.06) and be["waste_cost"] == 0.0
    wl = rollup(r, "workload")
    # OpenCost's no-request rule: efficiency 1.0 with usage and cost, 0 without.
    assert _one(wl, "workload", "be")["cpu_efficiency"] == 1.0
    quiet = _one(wl, "workload", "quiet")
    assert quiet["cpu_efficiency"] == 0.0 and quiet["total_cost"] == 0.0


def test_limit_only_means_request_equals_limit(tmp_path):
    nodes = [_node("n", 0.24)]
    containers = [container("a", "w", "p", "c", "n", cpu_limit=2.0, memory_limit=2 * GIB)]
    r = analyze_cost(make_snapshot(nodes, containers, [], steps=1), pricing_file=write_pricing(tmp_path))
    assert _one(r.containers, "pod", "p")["total_cost"] == pytest.approx(2 * 0.04 + 2 * 0.005)


def test_init_container_charged_only_while_it_ran(tmp_path):
    nodes = [_node("n", 0.24)]
    containers = [container("a", "w", "p", "init", "n", cpu=2.0, mem_gib=2, container_type="init"),
                  container("a", "w", "p", "app", "n", cpu=1.0, mem_gib=1)]
    usage = [(0, "a", "p", "init", "cpu", 1.0, None)] + [(i, "a", "p", "app", "cpu", 1.0, None) for i in range(3)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=3), pricing_file=write_pricing(tmp_path))
    init = _one(r.containers, "container", "init")
    assert init["hours"] == pytest.approx(1.0) and init["total_cost"] == pytest.approx(2 * 0.04 + 2 * 0.005)


def test_overcommitted_node_is_scaled_not_negative(tmp_path):
    # 2 cores; two pods request 1 core each but use 1.5 -> 3 cores allocated on a 2-core node.
    nodes = [_node("n", 0.24, cores=2.0, gib=32)]  # 0.24 = 2 x 8r + 32r -> r = 0.005, cpu 0.04
    containers = [container("a", "w", f"p{i}", "c", "n", cpu=1.0, mem_gib=1) for i in range(2)]
    usage = [(0, "a", f"p{i}", "c", "cpu", 1.5, None) for i in range(2)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=1), pricing_file=write_pricing(tmp_path))
    node = _one(r.nodes, "node", "n")
    assert node["cpu_idle_cost"] == pytest.approx(0.0)
    assert node["cpu_allocated_cost"] == pytest.approx(node["cpu_cost"]) == pytest.approx(0.08)
    assert _one(r.containers, "pod", "p0")["cpu_cost"] == pytest.approx(0.04)
    assert any("scaled down" in w for w in r.warnings)
    _identity(r)


def test_mig_slice_and_time_slicing_shares(tmp_path):
    # g: 1 A100 split into MIG slices; t: 1 GPU time-sliced 4 ways. Both 8 cores / 32 GiB / 1 GPU at $1.48 -> GPU $1/h.
    nodes = [_node("g", 1.48, cores=8.0, gib=32, gpus=1, mig_strategy="mixed"),
             _node("t", 1.48, cores=8.0, gib=32, gpus=1, gpu_sharing="time-slicing", gpu_replicas=4)]
    containers = [
        container("ml", "a", "pa", "c", "g", cpu=1.0, mem_gib=1, gpu=1, gpu_resource="nvidia.com/mig-1g.10gb"),
        container("ml", "b", "pb", "c", "t", cpu=1.0, mem_gib=1, gpu=1),
    ]
    usage = [(0, "ml", "pa", "c", "gpu", 1.0, "MIG-1"), (0, "ml", "pb", "c", "gpu", 0.5, "GPU-T")]
    gpus = [{"node": "g", "device": "MIG-1", "mig_profile": "1g.10gb", "namespace": "ml", "pod": "pa", "container": "c"}]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=1, gpus=gpus), pricing_file=write_pricing(tmp_path))
    assert _one(r.containers, "pod", "pa")["gpu_cost"] == pytest.approx(1.0 / 7)
    assert _one(r.containers, "pod", "pb")["gpu_cost"] == pytest.approx(0.25)
    assert _one(r.nodes, "node", "g")["gpu_idle_cost"] == pytest.approx(6.0 / 7)
    mig = _one(r.gpus, "device", "MIG-1")
    assert mig["share"] == pytest.approx(1 / 7) and mig["memory_total"] == 10 * GIB and mig["busy_fraction"] == 1.0
    assert mig["idle_cost"] == pytest.approx(0.0)
    shared = _one(r.gpus, "device", "GPU-T")  # found from usage only, placed through the container's node
    assert shared["node"] == "t" and shared["busy_fraction"] == pytest.approx(0.5)
    _identity(r)


def test_gpu_without_dcgm_has_unknown_efficiency(tmp_path):
    nodes = [_node("g", 1.48, cores=8.0, gib=32, gpus=1)]
    containers = [container("ml", "a", "p", "c", "g", cpu=1.0, mem_gib=1, gpu=1)]
    usage = [(0, "ml", "p", "c", "cpu", 1.0, None)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=1), pricing_file=write_pricing(tmp_path))
    row = _one(rollup(r, "workload"), "workload", "a")
    assert row["gpu_efficiency"] is None and row["cpu_efficiency"] == 1.0
    assert row["gpu_cost"] == pytest.approx(1.0)


def test_container_on_unknown_node_is_left_out_with_warning(tmp_path):
    nodes = [_node("n", 0.24)]
    containers = [container("a", "w", "p", "c", "n", cpu=1.0, mem_gib=1),
                  container("a", "w", "ghost", "c", "gone-node", cpu=1.0, mem_gib=1)]
    r = analyze_cost(make_snapshot(nodes, containers, [], steps=1), pricing_file=write_pricing(tmp_path))
    assert r.containers.filter(pl.col("pod").cast(pl.String) == "ghost").height == 0
    assert any("a/ghost/c" in w for w in r.warnings)
    _identity(r)


def test_bad_arguments():
    snap = make_snapshot([_node("n", 0.24)], [container("a", "w", "p", "c", "n", cpu=1.0)], [], steps=1)
    with pytest.raises(InputError, match="idle share"):
        analyze_cost(snap, idle_share="weighted")
    with pytest.raises(InputError, match="positive"):
        analyze_cost(snap, window=timedelta(0))
    for bad in ("", "team", "label:", "foo:bar", "namespace,nodes"):
        with pytest.raises(InputError):
            parse_by(bad)
    assert [k.columns for k in parse_by("workload, label:team")] == [["namespace", "workload_kind", "workload"],
                                                                     ["label:team"]]


def test_bursting_into_unused_requests_is_scaled_without_a_warning(tmp_path):
    # 2 cores, both requested; p0 idles at 0.2 while p1 bursts to 1.5: usage 1.7 fits the node, but
    # max(request, usage) adds up to 2.5. Normal under the OpenCost rule: scaled down, not a data problem.
    nodes = [_node("n", 0.24, cores=2.0, gib=32)]
    containers = [container("a", "w", f"p{i}", "c", "n", cpu=1.0, mem_gib=1) for i in range(2)]
    usage = [(0, "a", "p0", "c", "cpu", 0.2, None), (0, "a", "p1", "c", "cpu", 1.5, None)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=1), pricing_file=write_pricing(tmp_path))
    node = _one(r.nodes, "node", "n")
    assert node["cpu_allocated_cost"] == pytest.approx(node["cpu_cost"]) and node["cpu_idle_cost"] == pytest.approx(0.0)
    assert r.warnings == []
    _identity(r)


def test_init_container_never_sampled_costs_nothing(tmp_path):
    # It ran between scrapes at pod start; charging its request for the pod's whole life (as the
    # null start/end once did) double-counted it on top of the app containers.
    nodes = [_node("n", 0.24)]
    containers = [container("a", "w", "p", "init", "n", cpu=2.0, mem_gib=2, container_type="init"),
                  container("a", "w", "p", "app", "n", cpu=1.0, mem_gib=1)]
    usage = [(i, "a", "p", "app", "cpu", 1.0, None) for i in range(3)]
    r = analyze_cost(make_snapshot(nodes, containers, usage, steps=3), pricing_file=write_pricing(tmp_path))
    assert "init" not in set(r.containers.get_column("container").cast(str).to_list())
    assert r.warnings == []


def test_bundled_sample_raises_no_cost_warning():
    """The sample once warned that 1,954 node-hours were over-allocated: finished init containers
    charged for the pods' whole lives, plus normal bursting. Neither is wrong data."""
    from analyzer.paths import sample_snapshot_dir
    from analyzer.snapshot import load_snapshot

    assert analyze_cost(load_snapshot(sample_snapshot_dir())).warnings == []
