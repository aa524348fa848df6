"""Cost model on a snapshot small enough to work out by hand: 2 nodes (one GPU), 3 workloads.

Every expected figure below is derived in the comments, from the prices to the idle split.
``make_snapshot`` and ``write_pricing`` are shared by the other tests/test_cost_*.py files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from analyzer.cost import analyze_cost, rollup, top_waste
from analyzer.snapshot import Manifest, Snapshot

GIB = 2**30
T0 = datetime(2026, 9, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

# Round fallback rates, used as OpenCost's CPU:RAM:GPU ratio when a node price is split:
# cpu/ram = 0.04/0.005 = 8, gpu/ram = 1.0/0.005 = 200.
ROUND_RATES = """\
fallback:
  on-demand: {cpu_core_hour: 0.04, memory_gib_hour: 0.005, gpu_hour: 1.0, source: test, date: 2026-09-01}
  spot: {cpu_core_hour: 0.01, memory_gib_hour: 0.001, gpu_hour: 0.3, source: test, date: 2026-09-01}
"""


def write_pricing(tmp_path: Path, text: str = ROUND_RATES, name: str = "pricing.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def make_snapshot(nodes: list[dict], containers: list[dict], usage: list[tuple], *, steps: int, step_s: int = 3600,
                  start: datetime = T0, gpus: list[dict] | None = None, workload_labels: dict | None = None,
                  namespace_labels: dict | None = None) -> Snapshot:
    """A snapshot from plain rows. usage rows: (offset_steps, namespace, pod, container, resource, value, device)."""
    cont = pl.DataFrame(containers)
    owner = {(c["namespace"], c["pod"]): (c.get("workload_kind", "Deployment"), c["workload"]) for c in containers}
    rows = [
        (start + timedelta(seconds=step_s * i), ns, owner[(ns, pod)][0], owner[(ns, pod)][1], pod, ctr, res, float(v), dev)
        for i, ns, pod, ctr, res, v, dev in usage
    ]
    usage_df = pl.DataFrame(
        rows, orient="row",
        schema=["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value", "device"],
    )
    wl = cont.select("namespace", pl.col("workload_kind") if "workload_kind" in cont.columns else
                     pl.lit("Deployment").alias("workload_kind"), "workload").unique()
    labels = workload_labels or {}
    wl = wl.with_columns(
        pl.struct("namespace", "workload").map_elements(
            lambda s: [{"key": k, "value": v} for k, v in labels.get(s["workload"], {}).items()],
            return_dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String}))).alias("labels"))
    frames = {"usage": usage_df, "containers": cont.with_columns(
        pl.col("workload_kind") if "workload_kind" in cont.columns else pl.lit("Deployment").alias("workload_kind")),
        "workloads": wl, "nodes": pl.DataFrame(nodes), "events": None}
    if gpus:
        frames["gpus"] = pl.DataFrame(gpus)
    if namespace_labels:
        frames["namespaces"] = pl.DataFrame({
            "namespace": list(namespace_labels),
            "labels": [[{"key": k, "value": v} for k, v in d.items()] for d in namespace_labels.values()],
        })
    manifest = Manifest(cluster="hand", start=start, end=start + timedelta(seconds=step_s * (steps - 1)),
                        step_seconds=step_s, source="tests/test_cost_fixture.py")
    return Snapshot.build(manifest, **frames)


def container(ns: str, workload: str, pod: str, name: str, node: str, cpu=None, mem_gib=None, gpu=None, **extra) -> dict:
    return {
        "namespace": ns, "workload": workload, "pod": pod, "container": name, "node": node,
        "container_type": extra.pop("container_type", "app"),
        "cpu_request": cpu, "memory_request": int(mem_gib * GIB) if mem_gib is not None else None,
        "gpu_resource": "nvidia.com/gpu" if gpu else None, "gpu_request": gpu, **extra,
    }


def hand_snapshot() -> Snapshot:
    """Two hourly samples (00:00 and 01:00), so the window is [00:00, 02:00) = 2 hours.

    n1: custom type, 4 cores, 16 GiB, snapshot price $0.24/h.
        Ratio split: ram = 0.24 / (0 GPU x 200 + 4 x 8 + 16) = 0.24 / 48 = $0.005 per GiB-h,
        cpu = 0.005 x 8 = $0.04 per core-h.
    g1: custom type, 8 cores, 32 GiB, 1 GPU, snapshot price $1.48/h.
        ram = 1.48 / (1 x 200 + 8 x 8 + 32) = 1.48 / 296 = $0.005, cpu = $0.04, gpu = 0.005 x 200 = $1.00.
    """
    nodes = [
        {"node": "n1", "instance_type": "custom-4x16", "provider": "on-prem", "capacity_type": "on-demand",
         "cpu_capacity": 4.0, "memory_capacity": 16 * GIB, "gpu_count": 0, "hourly_price": 0.24,
         "price_source": "opencost node_total_hourly_cost"},
        {"node": "g1", "instance_type": "custom-gpu", "provider": "on-prem", "capacity_type": "on-demand",
         "cpu_capacity": 8.0, "memory_capacity": 32 * GIB, "gpu_count": 1, "gpu_model": "A100", "gpu_memory": 40 * GIB,
         "hourly_price": 1.48, "price_source": "opencost node_total_hourly_cost"},
    ]
    containers = [
        container("shop", "web", "web-1", "app", "n1", cpu=1.0, mem_gib=4),
        container("shop", "worker", "worker-1", "main", "n1", cpu=0.5, mem_gib=1),
        container("ml", "train", "train-1", "trainer", "g1", cpu=4.0, mem_gib=16, gpu=1),
    ]
    usage = []
    for i in (0, 1):
        usage += [
            (i, "shop", "web-1", "app", "cpu", 0.5, None),
            (i, "shop", "web-1", "app", "memory", 2 * GIB, None),
            # worker: CPU above its 0.5 request in hour 0 (1.5), below in hour 1 (0.25); memory 2 GiB > 1 GiB request.
            (i, "shop", "worker-1", "main", "cpu", 1.5 if i == 0 else 0.25, None),
            (i, "shop", "worker-1", "main", "memory", 2 * GIB, None),
            (i, "ml", "train-1", "trainer", "cpu", 2.0, None),
            (i, "ml", "train-1", "trainer", "memory", 8 * GIB, None),
            (i, "ml", "train-1", "trainer", "gpu", 0.25 if i == 0 else 0.75, "GPU-A"),
            (i, "ml", "train-1", "trainer", "gpu_memory", 20 * GIB, "GPU-A"),
        ]
    gpus = [{"node": "g1", "device": "GPU-A", "gpu_index": 0, "model": "NVIDIA A100-SXM4-40GB", "memory_total": 40 * GIB,
             "namespace": "ml", "pod": "train-1", "container": "trainer"}]
    return make_snapshot(nodes, containers, usage, steps=2, gpus=gpus,
                         workload_labels={"web": {"team": "storefront"}, "train": {"team": "research"}},
                         namespace_labels={"shop": {"team": "commerce", "cost-center": "cc-1"},
                                           "ml": {"cost-center": "cc-2"}})


@pytest.fixture()
def result(tmp_path):
    return analyze_cost(hand_snapshot(), pricing_file=write_pricing(tmp_path))


def _row(df: pl.DataFrame, **match) -> dict:
    sub = df
    for k, v in match.items():
        sub = sub.filter(pl.col(k).cast(pl.String) == v)
    assert sub.height == 1, (match, sub)
    return sub.row(0, named=True)


def test_rates_from_ratio_split(result):
    n1, g1 = _row(result.nodes, node="n1"), _row(result.nodes, node="g1")
    assert n1["cpu_rate"] == pytest.approx(0.04) and n1["memory_rate"] == pytest.approx(0.005)
    assert g1["cpu_rate"] == pytest.approx(0.04) and g1["memory_rate"] == pytest.approx(0.005)
    assert g1["gpu_rate"] == pytest.approx(1.0)
    assert n1["price_kind"] == "snapshot" and "node_total_hourly_cost" in n1["price_source"]


def test_node_totals_and_idle(result):
    # n1: 0.24 x 2 h = 0.48; g1: 1.48 x 2 h = 2.96; cluster 3.44.
    n1, g1 = _row(result.nodes, node="n1"), _row(result.nodes, node="g1")
    assert n1["total_cost"] == pytest.approx(0.48)
    assert g1["total_cost"] == pytest.approx(2.96)
    assert result.total_cost == pytest.approx(3.44)
    # n1 CPU: 4 cores x 0.04 x 2 h = 0.32; allocated: web 1.0 x 2 h x 0.04 = 0.08,
    #   worker max(0.5, 1.5) = 1.5 in h0 and max(0.5, 0.25) = 0.5 in h1 -> 2.0 core-h x 0.04 = 0.08 -> idle 0.16.
    # n1 memory: 16 GiB x 0.005 x 2 = 0.16; allocated: web 4 GiB x 2 h x 0.005 = 0.04,
    #   worker max(1, 2) = 2 GiB x 2 h x 0.005 = 0.02 -> idle 0.10.  n1 idle = 0.26.
    assert n1["cpu_idle_cost"] == pytest.approx(0.16)
    assert n1["memory_idle_cost"] == pytest.approx(0.10)
    assert n1["idle_cost"] == pytest.approx(0.26)
    # g1 CPU: 8 x 0.04 x 2 = 0.64, train allocates 4 x 0.04 x 2 = 0.32 -> idle 0.32;
    # memory 32 x 0.005 x 2 = 0.32, train 16 x 0.005 x 2 = 0.16 -> idle 0.16; GPU 1 x 1.0 x 2 = 2.0 all allocated.
    assert g1["cpu_idle_cost"] == pytest.approx(0.32)
    assert g1["memory_idle_cost"] == pytest.approx(0.16)
    assert g1["gpu_idle_cost"] == pytest.approx(0.0)
    assert result.idle_cost == pytest.approx(0.74)
    assert result.allocated_cost + result.idle_cost == pytest.approx(result.total_cost, abs=0.005)


def test_container_allocation(result):
    c = result.containers
    web = _row(c, pod="web-1")
    # web: (1.0 x 0.04 + 4 x 0.005) x 2 h = 0.12
    assert web["cpu_cost"] == pytest.approx(0.08) and web["memory_cost"] == pytest.approx(0.04)
    assert web["total_cost"] == pytest.approx(0.12)
    worker = _row(c, pod="worker-1")
    # worker, usage above request: h0 1.5 x 0.04 + 2 x 0.005 = 0.07; h1 0.5 x 0.04 + 0.01 = 0.03 -> 0.10
    assert worker["total_cost"] == pytest.approx(0.10)
    assert worker["cpu_allocated_hours"] == pytest.approx(2.0)
    train = _row(c, pod="train-1")
    # train: (4 x 0.04 + 16 x 0.005 + 1 x 1.0) x 2 = 2.48; the GPU is allocated by the device requested.
    assert train["gpu_cost"] == pytest.approx(2.0)
    assert train["total_cost"] == pytest.approx(2.48)


def test_efficiency(result):
    by_wl = rollup(result, "workload")
    web, worker, train = (_row(by_wl, workload=w) for w in ("web", "worker", "train"))
    # web: 0.5 used / 1.0 requested; memory 2 / 4.
    assert web["cpu_efficiency"] == pytest.approx(0.5) and web["memory_efficiency"] == pytest.approx(0.5)
    # worker: (1.5 + 0.25) core-h used / (0.5 x 2) requested = 1.75; memory 4 GiB-h / 2 = 2.0.
    assert worker["cpu_efficiency"] == pytest.approx(1.75) and worker["memory_efficiency"] == pytest.approx(2.0)
    # train GPU: (0.25 + 0.75) busy GPU-h / 2 requested = 0.5; total (0.5x0.32 + 0.5x0.16 + 0.5x2.0) / 2.48 = 0.5.
    assert train["gpu_efficiency"] == pytest.approx(0.5) and train["total_efficiency"] == pytest.approx(0.5)
    shop = _row(rollup(result, "namespace"), namespace="shop")
    # shop CPU (1.0 + 1.75) / (2.0 + 1.0) = 0.91667; memory (4 + 4) / (8 + 2) = 0.8;
    # total (0.91667 x 0.16 + 0.8 x 0.06) / 0.22 = 0.884848
    assert shop["cpu_efficiency"] == pytest.approx(2.75 / 3)
    assert shop["memory_efficiency"] == pytest.approx(0.8)
    assert shop["total_efficiency"] == pytest.approx((2.75 / 3 * 0.16 + 0.8 * 0.06) / 0.22)


def test_waste_ranked_per_month(result):
    top = top_waste(result, 3)
    assert top.get_column("workload").to_list() == ["train", "web", "worker"]
    # train: CPU (4-2) x 2 h x 0.04 = 0.16, memory (16-8) x 2 x 0.005 = 0.08, GPU (1-0.25)+(1-0.75) = 1 GPU-h x 1.0
    #   = 1.24 over 2 h -> x 730/2 = $452.60/month.
    # web: CPU 0.5 x 2 x 0.04 = 0.04 + memory 2 x 2 x 0.005 = 0.02 = 0.06 -> $21.90/month.
    # worker: only hour 1 wastes CPU: (0.5 - 0.25) x 0.04 = 0.01 -> $3.65/month.
    assert top.get_column("waste_monthly").to_list() == pytest.approx([452.6, 21.9, 3.65])
    assert _row(top, workload="train")["gpu_waste_monthly"] == pytest.approx(365.0)


def test_gpu_device(result):
    dev = _row(result.gpus, device="GPU-A")
    # busy (0.25 + 0.75) x 1 h = 1 busy hour over 2 device-hours = 0.5; memory 20 / 40 GiB = 0.5;
    # cost 2 h x $1.00 = 2.0, idle 2.0 x (1 - 0.5) = 1.0.
    assert dev["busy_fraction"] == pytest.approx(0.5)
    assert dev["memory_used_fraction"] == pytest.approx(0.5)
    assert dev["cost"] == pytest.approx(2.0) and dev["idle_cost"] == pytest.approx(1.0)
    assert dev["assigned"] == "ml/train-1/trainer"


def test_rollups_and_idle_sharing(result):
    none = rollup(result, "namespace", idle_share="none")
    assert none.get_column("namespace").to_list()[-1] == "__idle__"
    assert _row(none, namespace="__idle__")["total_cost"] == pytest.approx(0.74)
    assert _row(none, namespace="shop")["total_cost"] == pytest.approx(0.22)
    assert _row(none, namespace="ml")["total_cost"] == pytest.approx(2.48)
    # even: 0.74 / 2 namespaces = 0.37 each.
    even = rollup(result, "namespace", idle_share="even")
    assert _row(even, namespace="shop")["idle_cost"] == pytest.approx(0.37)
    # proportional, per resource: CPU idle 0.48 by CPU cost (shop 0.16, ml 0.32) -> shop 0.16;
    # memory idle 0.26 by memory cost (shop 0.06, ml 0.16) -> shop 0.26 x 0.06/0.22 = 0.070909; GPU idle 0.
    prop = rollup(result, "namespace", idle_share="proportional")
    assert _row(prop, namespace="shop")["idle_cost"] == pytest.approx(0.16 + 0.26 * 0.06 / 0.22)
    assert _row(prop, namespace="ml")["idle_cost"] == pytest.approx(0.32 + 0.26 * 0.16 / 0.22)
    for df in (none, even, prop):
        assert df.get_column("total_cost").sum() == pytest.approx(3.44)
    # node grouping keeps each node's own idle, no __idle__ row.
    by_node = rollup(result, "node")
    assert sorted(by_node.get_column("node").to_list()) == ["g1", "n1"]
    assert _row(by_node, node="n1")["idle_cost"] == pytest.approx(0.26)
    assert _row(rollup(result, "cluster"), cluster="hand")["total_cost"] == pytest.approx(3.44)
    # monthly: ml 2.48 over 2 h -> x 365 = 905.2
    assert _row(none, namespace="ml")["total_cost_monthly"] == pytest.approx(905.2)


def test_label_rollups(result):
    # label:team = workload label, else namespace label: web -> storefront, worker -> commerce (namespace),
    # train -> research.
    team = rollup(result, "label:team")
    assert _row(team, **{"label:team": "storefront"})["total_cost"] == pytest.approx(0.12)
    assert _row(team, **{"label:team": "commerce"})["total_cost"] == pytest.approx(0.10)
    assert _row(team, **{"label:team": "research"})["total_cost"] == pytest.approx(2.48)
    cc = rollup(result, "namespace_label:cost-center")
    assert _row(cc, **{"namespace_label:cost-center": "cc-1"})["total_cost"] == pytest.approx(0.22)
    wl_only = rollup(result, "workload_label:team")
    assert _row(wl_only, **{"workload_label:team": "__unlabeled__"})["total_cost"] == pytest.approx(0.10)
    combo = rollup(result, "namespace,label:team")
    assert combo.filter(pl.col("namespace") == "shop").height == 2


def test_summary_is_json_ready(result):
    import json

    s = result.summary()
    assert s["total_cost"] == pytest.approx(3.44) and s["idle_cost"] == pytest.approx(0.74)
    assert s["total_cost_monthly"] == pytest.approx(3.44 * 365)
    json.dumps(s)


def test_window_keeps_the_last_hour(tmp_path):
    r = analyze_cost(hand_snapshot(), window=HOUR, pricing_file=write_pricing(tmp_path))
    # Only 01:00-02:00: n1 0.24 + g1 1.48 = 1.72; worker in hour 1 costs 0.03.
    assert r.hours == pytest.approx(1.0)
    assert r.total_cost == pytest.approx(1.72)
    assert _row(r.containers, pod="worker-1")["total_cost"] == pytest.approx(0.03)
