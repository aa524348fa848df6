"""The cluster simulator: deterministic, schema-true, and realistic in the ways analysis relies on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analyzer.schema import FRAMES
from analyzer.simulator import ARCHETYPE_ANNOTATION, ARCHETYPES, DEFAULT_START, archetype_counts, simulate
from analyzer.simulator.catalog import PROVIDERS
from analyzer.snapshot import load_snapshot, write_snapshot

KEY = ["namespace", "pod", "container"]
WKEY = ["namespace", "workload_kind", "workload"]


@pytest.fixture(scope="module")
def snap():
    return simulate(workloads=30, days=7, step_seconds=300, seed=7)


@pytest.fixture(scope="module")
def arch(snap) -> pl.DataFrame:
    """workload key -> archetype, from the ground-truth annotation."""
    return snap.workloads.select(
        *WKEY,
        pl.col("annotations").list.eval(
            pl.element().filter(pl.element().struct.field("key") == ARCHETYPE_ANNOTATION).struct.field("value")
        ).list.first().alias("archetype"),
    )


def usage_of(snap, arch, archetype: str, resource: str, container_type: str = "app") -> pl.DataFrame:
    """Samples of one archetype's containers of one type, with their requests and limits."""
    keys = arch.filter(pl.col("archetype") == archetype).select(WKEY)
    cont = snap.containers.join(keys, on=WKEY).filter(pl.col("container_type") == container_type)
    return snap.usage.filter(pl.col("resource") == resource).join(
        cont.select(*KEY, "cpu_request", "cpu_limit", "memory_request", "memory_limit", "started_at", "ended_at"),
        on=KEY,
    )


def local_hour(ts: pl.Expr) -> pl.Expr:
    return ts.dt.offset_by(f"{int(PROVIDERS['aws'].utc_offset_hours)}h")


# ------------------------------------------------------------------ contract and determinism

def test_same_seed_same_frames_and_other_seed_differs():
    a = simulate(workloads=20, days=1, seed=3)
    b = simulate(workloads=20, days=1, seed=3)
    c = simulate(workloads=20, days=1, seed=4)
    for name in FRAMES:
        assert getattr(a, name).equals(getattr(b, name)), name  # same rows in the same order
    assert a.equals(b)
    assert not a.equals(c)
    assert not a.usage.get_column("value").equals(c.usage.get_column("value"))


def test_manifest_window_and_source():
    s = simulate(workloads=20, days=1, step_seconds=600, seed=2)
    m = s.manifest
    assert m.start == DEFAULT_START == datetime(2026, 11, 2, tzinfo=UTC)
    assert DEFAULT_START.weekday() == 0
    assert m.end == m.start + timedelta(seconds=600 * (144 - 1))
    assert m.source == "simulator workloads=20 days=1 step=600 seed=2"
    assert s.usage.get_column("timestamp").min() == m.start
    assert s.usage.get_column("timestamp").max() == m.end
    assert s.usage.get_column("timestamp").unique().len() == 144


def test_round_trip_through_write_and_load(snap, tmp_path):
    path = write_snapshot(snap, tmp_path / "sim")
    back = load_snapshot(path)
    assert back.equals(snap)
    for name, frame in FRAMES.items():
        assert getattr(back, name).height == getattr(snap, name).height, name
        assert dict(getattr(back, name).schema) == frame.schema, name


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate(workloads=0)
    with pytest.raises(ValueError):
        simulate(days=0)
    with pytest.raises(ValueError, match="provider"):
        simulate(provider="oracle")
    with pytest.raises(ValueError, match="no sample"):
        simulate(days=0.001, step_seconds=3600)


# ------------------------------------------------------------------ archetype mix

def test_archetype_counts_keep_every_archetype_from_twenty_workloads():
    for n in (20, 21, 60, 500, 1250):
        counts = archetype_counts(n)
        assert sum(counts.values()) == n
        assert all(counts[a.name] >= max(1, a.min_count) for a in ARCHETYPES), (n, counts)
        assert counts["daemonset"] <= 3
    assert archetype_counts(1000)["web"] > archetype_counts(1000)["idle"] > archetype_counts(1000)["gpu-unused"]
    small = archetype_counts(3)
    assert sum(small.values()) == 3 and small["web"] == 2 and small["cron-batch"] == 1


def test_documented_table_matches_the_mix():
    from analyzer.simulator import archetypes

    rows = [line.strip("|").split("|") for line in archetypes.__doc__.splitlines()
            if line.startswith("| ") and not line.startswith("| archetype")]
    doc = {r[0].strip(): (r[1].strip(), float(r[2]), int(r[3]), None if r[4].strip() == "-" else int(r[4]))
           for r in rows}
    assert doc == {a.name: (a.kind, a.weight, a.min_count, a.max_count) for a in ARCHETYPES}


def test_every_archetype_present(arch):
    assert set(arch.get_column("archetype")) == {a.name for a in ARCHETYPES}
    assert arch.get_column("archetype").null_count() == 0


# ------------------------------------------------------------------ frames hang together

def test_usage_keys_exist_in_containers_and_workloads(snap):
    orphans = snap.usage.select(*WKEY, "pod", "container").unique().join(
        snap.containers.select(*WKEY, "pod", "container"), on=[*WKEY, "pod", "container"], how="anti")
    assert orphans.height == 0
    assert snap.containers.select(WKEY).unique().join(snap.workloads.select(WKEY), on=WKEY, how="anti").height == 0
    assert snap.containers.select(KEY).is_duplicated().sum() == 0
    used = set(snap.containers.get_column("namespace").cast(pl.String))
    assert used == set(snap.namespaces.get_column("namespace").cast(pl.String))


def test_one_sample_per_series_and_step(snap):
    dup = snap.usage.select("namespace", "pod", "container", "resource", "device", "timestamp").is_duplicated()
    assert dup.sum() == 0


def test_devices_only_on_gpu_rows_and_listed(snap):
    gpu_rows = snap.usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"]))
    assert gpu_rows.height > 0 and gpu_rows.get_column("device").null_count() == 0
    assert snap.usage.filter(pl.col("resource").is_in(["cpu", "memory"])).get_column("device").null_count() == \
        snap.usage.filter(pl.col("resource").is_in(["cpu", "memory"])).height
    listed = set(snap.gpus.get_column("device").cast(pl.String))
    assert set(gpu_rows.get_column("device").cast(pl.String).unique()) <= listed
    # DCGM framebuffer never exceeds the device; busy is a fraction.
    mem = gpu_rows.filter(pl.col("resource") == "gpu_memory").join(
        snap.gpus.select("device", "memory_total"), on="device")
    assert (mem.get_column("value") <= mem.get_column("memory_total")).all()
    busy = gpu_rows.filter(pl.col("resource") == "gpu").get_column("value")
    assert busy.min() >= 0 and busy.max() <= 1


def test_gpus_frame_lists_every_device_of_gpu_nodes(snap):
    per_node = snap.gpus.group_by("node").agg(pl.len().alias("n"), pl.col("mig_profile").drop_nulls().first())
    nodes = snap.nodes.filter(pl.col("gpu_count") > 0).join(per_node, on="node", how="left")
    for row in nodes.iter_rows(named=True):
        expected = row["gpu_count"] * (7 if row["mig_profile"] == "1g.5gb" else 1)
        assert row["n"] == expected, row["node"]
    assert re.fullmatch(r"GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
                        snap.gpus.filter(pl.col("mig_profile").is_null()).get_column("device").cast(pl.String)[0])
    assigned = snap.gpus.filter(pl.col("pod").is_not_null()).join(
        snap.containers.select(KEY + ["node"]), on=KEY)
    assert assigned.height == snap.gpus.filter(pl.col("pod").is_not_null()).height
    assert (assigned.get_column("node").cast(pl.String) == assigned.get_column("node_right").cast(pl.String)).all()


def test_names_look_like_kubernetes(snap):
    c = snap.containers.with_columns(pl.col(pl.Categorical).cast(pl.String))
    rs = c.filter(pl.col("owner_kind") == "ReplicaSet")
    assert rs.height > 0
    for row in rs.select("workload", "pod", "owner_name").unique().iter_rows(named=True):
        assert re.fullmatch(re.escape(row["workload"]) + r"-[bcdfghjklmnpqrstvwxz2456789]{10}", row["owner_name"])
        assert re.fullmatch(re.escape(row["owner_name"]) + r"-[bcdfghjklmnpqrstvwxz2456789]{5}", row["pod"])
    sts = c.filter(pl.col("owner_kind") == "StatefulSet")
    assert all(re.fullmatch(re.escape(w) + r"-\d+", p) for w, p in sts.select("workload", "pod").iter_rows())
    jobs = c.filter(pl.col("owner_kind") == "Job")
    assert all(re.fullmatch(re.escape(o) + r"-[a-z0-9]{5}", p) for o, p in jobs.select("owner_name", "pod").iter_rows())
    cron = jobs.filter(pl.col("workload_kind") == "CronJob")
    assert all(o.startswith(w + "-") for w, o in cron.select("workload", "owner_name").iter_rows())
    ds = c.filter(pl.col("owner_kind") == "DaemonSet")
    assert ds.select("workload", "node").is_duplicated().sum() == 0  # one pod per node


# ------------------------------------------------------------------ nodes and placement

def test_node_mix_and_labels(snap):
    n = snap.nodes.with_columns(pl.col("capacity_type").cast(pl.String))
    assert {"spot", "on-demand"} <= set(n.get_column("capacity_type"))
    assert n.filter(pl.col("gpu_count") > 0).height > 0
    assert set(n.get_column("instance_type")) <= {"m5.xlarge", "m5.2xlarge", "c5.2xlarge", "r5.2xlarge",
                                                  "g5.xlarge", "p4d.24xlarge"}
    assert {"g5.xlarge", "p4d.24xlarge"} <= set(n.get_column("instance_type"))
    assert (n.get_column("cpu_allocatable") < n.get_column("cpu_capacity")).all()
    assert (n.get_column("memory_allocatable") < n.get_column("memory_capacity")).all()
    assert n.get_column("hourly_price").null_count() == n.height
    for row in n.iter_rows(named=True):
        labels = {kv["key"]: kv["value"] for kv in row["labels"]}
        assert labels["karpenter.sh/capacity-type"] == row["capacity_type"]
        assert labels["node.kubernetes.io/instance-type"] == row["instance_type"]
        assert labels["topology.kubernetes.io/zone"] == row["zone"] and row["zone"].startswith(row["region"])
        taints = {(t["key"], t["effect"]) for t in row["taints"]}
        if row["gpu_count"]:
            assert labels["nvidia.com/gpu.product"] == row["gpu_model"]
            assert labels["nvidia.com/gpu.count"] == str(row["gpu_count"])
            assert ("nvidia.com/gpu", "NoSchedule") in taints
        else:
            assert not taints and row["gpu_model"] is None
        assert row["first_seen"] == snap.manifest.start and row["last_seen"] == snap.manifest.end
    g5 = n.filter(pl.col("instance_type") == "g5.xlarge").row(0, named=True)
    assert g5["gpu_model"] == "NVIDIA-A10G" and g5["gpu_count"] == 1
    mig = n.filter(pl.col("mig_strategy") == "mixed")
    assert mig.height >= 1 and mig.get_column("mig_config")[0] == "all-1g.5gb"


def _requests_over_time(snap) -> pl.DataFrame:
    """Per node and hour: the sum of requests of pods running then, beside allocatable."""
    m = snap.manifest
    hours = pl.DataFrame({"t": pl.datetime_range(m.start, m.end, "1h", time_zone="UTC", eager=True)})
    pods = snap.containers.group_by("namespace", "pod").agg(
        pl.col("node").first(), pl.col("started_at").first(), pl.col("ended_at").first(),
        pl.col("cpu_request").filter(pl.col("container_type") != "init").sum().alias("cpu"),
        pl.col("cpu_request").filter(pl.col("container_type") == "init").max().alias("init_cpu"),
        pl.col("memory_request").filter(pl.col("container_type") != "init").sum().alias("mem"),
        pl.col("gpu_request").sum().alias("gpu"))
    running = pods.join(hours, how="cross").filter(
        (pl.col("started_at") <= pl.col("t")) & (pl.col("ended_at").is_null() | (pl.col("t") < pl.col("ended_at"))))
    return running.group_by("node", "t").agg(
        pl.max_horizontal("cpu", pl.col("init_cpu").fill_null(0)).sum().alias("cpu"), pl.col("mem").sum(),
        pl.col("gpu").sum()).join(snap.nodes.select("node", "cpu_allocatable", "memory_allocatable", "gpu_count",
                                                    "mig_strategy"), on="node")


def test_every_pod_placed_within_allocatable_at_every_hour(snap):
    assert snap.containers.get_column("node").null_count() == 0
    assert set(snap.containers.get_column("node").cast(pl.String)) <= set(snap.nodes.get_column("node").cast(pl.String))
    per_pod = snap.containers.filter(pl.col("container_type") != "init").group_by("namespace", "pod").agg(
        pl.col("node").first(), pl.col("cpu_request").sum(), pl.col("memory_request").sum()).join(
        snap.nodes.select("node", "cpu_allocatable", "memory_allocatable"), on="node")
    assert (per_pod.get_column("cpu_request") <= per_pod.get_column("cpu_allocatable")).all()
    load = _requests_over_time(snap)
    assert load.height > 0
    assert (load.get_column("cpu") <= load.get_column("cpu_allocatable") + 1e-9).all()
    assert (load.get_column("mem") <= load.get_column("memory_allocatable")).all()
    whole = load.filter(pl.col("mig_strategy") != "mixed")
    assert (whole.get_column("gpu") <= whole.get_column("gpu_count")).all()


def test_cpu_on_a_node_never_exceeds_allocatable(snap):
    per = snap.usage.filter(pl.col("resource") == "cpu").join(snap.containers.select(KEY + ["node"]), on=KEY)
    per = per.group_by("node", "timestamp").agg(pl.col("value").sum()).join(
        snap.nodes.select("node", "cpu_allocatable"), on="node")
    assert (per.get_column("value") <= per.get_column("cpu_allocatable") + 1e-9).all()


def test_gpu_pods_tolerate_the_gpu_taint_and_sit_on_gpu_nodes(snap):
    gpu_c = snap.containers.filter(pl.col("gpu_request") > 0).join(
        snap.nodes.select("node", "gpu_count", "mig_strategy"), on="node")
    assert gpu_c.height > 0 and (gpu_c.get_column("gpu_count") > 0).all()
    mig = gpu_c.filter(pl.col("gpu_resource").str.starts_with("nvidia.com/mig-"))
    assert mig.height > 0 and (mig.get_column("gpu_resource") == "nvidia.com/mig-1g.5gb").all()
    assert (mig.get_column("mig_strategy") == "mixed").all()
    wl = snap.workloads.join(gpu_c.select(WKEY).unique(), on=WKEY)
    for tol in wl.get_column("tolerations").to_list():
        assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in tol)


# ------------------------------------------------------------------ realism knobs

def test_web_has_daily_and_weekly_cycles(snap, arch):
    web = usage_of(snap, arch, "web", "cpu").with_columns(local_hour(pl.col("timestamp")).alias("local"))
    total = web.group_by("local").agg(pl.col("value").sum()).sort("local")
    hour = total.get_column("local").dt.hour()
    weekday = total.get_column("local").dt.weekday() <= 5
    v = total.get_column("value")
    day = v.filter(weekday & (hour >= 10) & (hour < 18)).mean()
    night = v.filter(weekday & (hour >= 2) & (hour < 5)).mean()
    assert day > 1.8 * night
    weekend_day = v.filter(~weekday & (hour >= 10) & (hour < 18)).mean()
    assert day > 1.3 * weekend_day
    x = v.to_numpy()
    lag = 288  # 24 h at 5 min
    assert np.corrcoef(x[:-lag], x[lag:])[0, 1] > 0.6


def test_oom_events_at_the_limit(snap, arch):
    ooms = snap.events.filter(pl.col("reason") == "OOMKilled")
    assert ooms.height > 0
    assert (ooms.get_column("exit_code") == 137).all()
    for name in ("memory-leak", "oom-prone"):
        mine = ooms.join(arch.filter(pl.col("archetype") == name).select(WKEY), on=WKEY)
        workloads = arch.filter(pl.col("archetype") == name).height
        assert mine.select(WKEY).unique().height == workloads, name  # every one of them was killed
    at = ooms.join(snap.usage.filter(pl.col("resource") == "memory"), on=[*KEY, "timestamp"])
    assert at.height == ooms.height
    assert (at.get_column("value") == at.get_column("memory_limit").cast(pl.Float64)).all()
    limit = snap.containers.select(KEY + ["memory_limit"])
    assert (ooms.join(limit, on=KEY).select(pl.col("memory_limit") == pl.col("memory_limit_right")).to_series()).all()
    counts = ooms.sort("timestamp").group_by(KEY).agg(pl.col("restart_count"))
    for seq in counts.get_column("restart_count").to_list():
        assert all(b == a + 1 for a, b in zip(seq, seq[1:], strict=False))


def test_no_working_set_above_its_limit(snap):
    mem = snap.usage.filter(pl.col("resource") == "memory").join(
        snap.containers.select(KEY + ["memory_limit"]), on=KEY).filter(pl.col("memory_limit").is_not_null())
    assert (mem.get_column("value") <= mem.get_column("memory_limit")).all()
    # ... and only an OOM sample reaches it
    at_limit = mem.filter(pl.col("value") == pl.col("memory_limit"))
    ooms = snap.events.filter(pl.col("reason") == "OOMKilled").select(*KEY, "timestamp")
    assert at_limit.join(ooms, on=[*KEY, "timestamp"], how="anti").height == 0


def test_leak_grows_between_ooms(snap, arch):
    mem = usage_of(snap, arch, "memory-leak", "memory").sort(KEY + ["timestamp"])
    ooms = snap.events.filter(pl.col("reason") == "OOMKilled").select(*KEY, "timestamp", pl.lit(1).alias("oom"))
    mem = mem.join(ooms, on=[*KEY, "timestamp"], how="left").with_columns(
        pl.col("oom").fill_null(0).cum_sum().over(KEY).alias("segment"))
    mem = mem.with_columns(pl.col("segment").max().over(KEY).alias("last"))
    checked = 0
    # Segments that start and end with an OOM kill: a whole cycle from restart to limit.
    whole = mem.filter(pl.col("oom").is_null() & (pl.col("segment") >= 1) & (pl.col("segment") < pl.col("last")))
    for seg in whole.partition_by([*KEY, "segment"]):
        v = seg.get_column("value").to_numpy()
        if len(v) < 48:
            continue
        q = len(v) // 4
        assert v[-q:].mean() > v[:q].mean() * 1.1
        assert np.corrcoef(np.arange(len(v)), v)[0, 1] > 0.8
        checked += 1
    assert checked > 0


def test_statefulset_memory_grows(snap, arch):
    mem = usage_of(snap, arch, "stateful", "memory")
    keys = snap.containers.filter(pl.col("workload_kind") == "StatefulSet", pl.col("container") != "metrics")
    mem = mem.join(keys.select(KEY), on=KEY)
    first = snap.manifest.start + timedelta(days=1)
    last = snap.manifest.end - timedelta(days=1)
    trend = mem.group_by(KEY).agg(
        pl.col("value").filter(pl.col("timestamp") < first).mean().alias("first"),
        pl.col("value").filter(pl.col("timestamp") > last).mean().alias("last"))
    assert trend.height > 0
    assert (trend.get_column("last") > trend.get_column("first") * 1.04).all()


def test_idle_over_and_under_provisioned(snap, arch):
    def stats(name, resource, request):
        return usage_of(snap, arch, name, resource).group_by(KEY).agg(
            pl.col("value").quantile(0.95).alias("p95"), pl.col("value").max().alias("max"),
            pl.col(request).first().alias("req"), pl.col("memory_limit").first().alias("limit"))

    idle_cpu, idle_mem = stats("idle", "cpu", "cpu_request"), stats("idle", "memory", "memory_request")
    assert idle_cpu.height > 0
    assert (idle_cpu.get_column("max") < 0.05 * idle_cpu.get_column("req")).all()
    assert (idle_mem.get_column("max") < 0.05 * idle_mem.get_column("req")).all()
    over_cpu, over_mem = stats("over-provisioned", "cpu", "cpu_request"), stats("over-provisioned", "memory",
                                                                               "memory_request")
    assert (over_cpu.get_column("p95") < 0.3 * over_cpu.get_column("req")).all()
    assert (over_mem.get_column("p95") < 0.3 * over_mem.get_column("req")).all()
    under_cpu, under_mem = stats("under-provisioned", "cpu", "cpu_request"), stats("under-provisioned", "memory",
                                                                                  "memory_request")
    assert (under_cpu.get_column("p95") > under_cpu.get_column("req")).all()
    assert (under_mem.get_column("max") > 0.85 * under_mem.get_column("limit")).all()


def test_best_effort_and_missing_limits(snap, arch):
    be = snap.containers.join(arch.filter(pl.col("archetype") == "best-effort").select(WKEY), on=WKEY)
    assert be.height > 0
    assert be.select(pl.col("cpu_request", "cpu_limit", "memory_request", "memory_limit").null_count()).row(0) == \
        (be.height,) * 4
    assert usage_of(snap, arch, "best-effort", "cpu").height > 0
    others = snap.containers.filter(pl.col("cpu_request").is_not_null())
    assert others.get_column("cpu_limit").null_count() > 0 and others.get_column("cpu_limit").drop_nulls().len() > 0


def test_gpu_training_busy_inference_mostly_idle_and_one_unused(snap, arch):
    def busy(name):
        return usage_of(snap, arch, name, "gpu").get_column("value")

    assert busy("gpu-training").mean() > 0.7
    assert busy("gpu-training").quantile(0.5) >= 0.8
    assert busy("gpu-inference").mean() < 0.3
    assert busy("gpu-inference").max() > 0.35  # bursts
    assert busy("gpu-unused").len() > 0 and busy("gpu-unused").max() == 0.0
    unused = snap.containers.join(arch.filter(pl.col("archetype") == "gpu-unused").select(WKEY), on=WKEY)
    assert (unused.get_column("gpu_request") >= 1).all()
    train_mem = usage_of(snap, arch, "gpu-training", "gpu_memory").get_column("value")
    infer_mem = usage_of(snap, arch, "gpu-inference", "gpu_memory").get_column("value")
    assert train_mem.mean() > 2 * infer_mem.mean()
    training = snap.containers.join(arch.filter(pl.col("archetype") == "gpu-training").select(WKEY), on=WKEY).join(
        snap.nodes.select("node", "instance_type"), on="node")
    assert (training.get_column("instance_type") == "p4d.24xlarge").all()
    # a multi-GPU pod has one gpu series per device
    devices = usage_of(snap, arch, "gpu-training", "gpu").group_by(KEY).agg(pl.col("device").n_unique())
    req = training.select(KEY + ["gpu_request"])
    assert (devices.join(req, on=KEY).select(pl.col("device") == pl.col("gpu_request")).to_series()).all()


def test_batch_usage_only_while_the_pod_runs(snap):
    jobs = snap.containers.filter(pl.col("owner_kind") == "Job")
    assert jobs.filter(pl.col("workload_kind") == "CronJob").get_column("owner_name").n_unique() > 1
    assert jobs.filter(pl.col("workload_kind") == "Job").height > 0
    u = snap.usage.join(jobs.select(KEY + ["started_at", "ended_at"]), on=KEY)
    assert u.height > 0
    assert (u.get_column("timestamp") >= u.get_column("started_at")).all()
    ended = u.filter(pl.col("ended_at").is_not_null())
    assert (ended.get_column("timestamp") <= ended.get_column("ended_at")).all()
    # a run's pod has samples for most of its run, not the whole window
    span = u.filter(pl.col("workload_kind") == "CronJob").group_by(KEY).agg(pl.len())
    assert span.get_column("len").max() < snap.usage.get_column("timestamp").n_unique()
    completed = snap.events.filter(pl.col("reason") == "Completed")
    assert completed.height > 0 and (completed.get_column("exit_code") == 0).all()


def test_init_containers_only_at_pod_start(snap):
    init = snap.containers.filter(pl.col("container_type") == "init")
    assert init.height > 0
    u = snap.usage.join(init.select(KEY + ["started_at"]), on=KEY)
    assert u.height > 0
    assert (u.get_column("timestamp") >= u.get_column("started_at")).all()
    assert (u.get_column("timestamp") <= u.get_column("started_at") + timedelta(minutes=16)).all()


def test_workload_metadata(snap, arch):
    w = snap.workloads.join(arch, on=WKEY)
    web = w.filter(pl.col("archetype") == "web")
    assert web.get_column("hpa_name").null_count() == 0
    assert all(m[0] == {"metric": "cpu", "target_type": "Utilization", "target": m[0]["target"]}
               for m in web.get_column("hpa_metrics").to_list())
    assert (web.get_column("hpa_min_replicas") <= web.get_column("hpa_max_replicas")).all()
    assert (web.get_column("update_strategy") == "RollingUpdate").all()
    assert web.get_column("max_unavailable").null_count() == 0 and web.get_column("max_surge").null_count() == 0
    assert w.get_column("pdb_name").drop_nulls().len() > 0
    assert w.get_column("uses_empty_dir").any() and w.get_column("uses_local_storage").any()
    annotations = [{a["key"]: a["value"] for a in row} for row in w.get_column("annotations").to_list()]
    assert any(a.get("cluster-autoscaler.kubernetes.io/safe-to-evict") == "false" for a in annotations)
    assert sum(a.get("spot.kubecost.com/spot-ready") == "true" for a in annotations) == 1
    labels = [{a["key"]: a["value"] for a in row} for row in w.get_column("labels").to_list()]
    assert all("app" in lab and "team" in lab for lab in labels)
    assert w.filter(pl.col("affinity").is_not_null()).height > 0
    ds = w.filter(pl.col("workload_kind") == "DaemonSet")
    pods = snap.containers.filter(pl.col("workload_kind") == "DaemonSet").group_by("workload").agg(
        pl.col("pod").n_unique())
    assert ds.join(pods, on="workload").select(pl.col("replicas") == pl.col("pod")).to_series().all()
    ns = {r[0]: {kv["key"]: kv["value"] for kv in r[1]} for r in snap.namespaces.iter_rows()}
    assert all("team" in v and v["cost-center"].startswith("cc-") for v in ns.values())


@pytest.mark.parametrize("provider,spot_key,types", [
    ("gcp", "cloud.google.com/gke-spot", {"g2-standard-4", "a3-highgpu-8g"}),
    ("azure", "kubernetes.azure.com/scalesetpriority", {"Standard_NC4as_T4_v3", "Standard_NC96ads_A100_v4"}),
])
def test_other_providers(provider, spot_key, types):
    s = simulate(workloads=20, days=0.5, provider=provider)
    assert s.manifest.source.endswith(f"provider={provider}")
    assert types <= set(s.nodes.get_column("instance_type"))
    spot = s.nodes.filter(pl.col("capacity_type") == "spot")
    assert spot.height > 0
    for labels in spot.get_column("labels").to_list():
        assert spot_key in {kv["key"] for kv in labels}
    assert (s.nodes.get_column("provider") == provider).all()
