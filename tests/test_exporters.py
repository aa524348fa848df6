"""Exporter renderings of a Snapshot: OpenMetrics text (cAdvisor, kube-state-metrics, DCGM, OpenCost)
backfilled by the real promtool, and Kubernetes API objects validated against the OpenAPI schemas.

Two inputs: the hand-made ``tests.support.exporter_snapshot.small_cluster()`` (exact, readable) and
``simulate(workloads=20, days=2)`` (the simulator's whole archetype mix).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import kubernetes_validate
import polars as pl
import pytest

from analyzer.simulator.kube_objects import RESOURCES, kube_lists, kubectl_list, write_kube_json
from analyzer.simulator.openmetrics import write_openmetrics
from analyzer.snapshot import Snapshot
from analyzer.units import parse_count, parse_cpu, parse_memory
from tests.support.exporter_snapshot import (
    CPU_NODE,
    GPU_NODE,
    NIGHTLY_POD,
    OOM_POD,
    OOM_STEPS,
    STEP,
    small_cluster,
    t,
)

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\}) (\S+) (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
MIB = 2**20


@dataclass
class Rendered:
    snapshot: Snapshot
    path: Path
    counts: dict
    lines: list[str]

    def of(self, metric: str) -> dict[str, list[tuple[int, float]]]:
        """label set -> [(ts, value)] for one metric, parsed on demand."""
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        prefix = metric + "{"
        for line in self.lines:
            if line.startswith(prefix):
                m = SAMPLE.match(line)
                out[m[2]].append((int(m[4]), float(m[3])))
        return out


def labels(text: str) -> dict[str, str]:
    return dict(LABEL.findall(text))


def render(snapshot: Snapshot, path: Path, **options) -> Rendered:
    counts = write_openmetrics(snapshot, path, **options)
    return Rendered(snapshot, path, counts, path.read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def small():
    return small_cluster()


@pytest.fixture(scope="module")
def sim():
    from analyzer.simulator import simulate

    return simulate(workloads=20, days=2)


@pytest.fixture(scope="module")
def small_om(small, tmp_path_factory):
    return render(small, tmp_path_factory.mktemp("om") / "small.om", duplicate_job=True, pod_level_series=True)


@pytest.fixture(scope="module")
def small_plain(small, tmp_path_factory):
    return render(small, tmp_path_factory.mktemp("om") / "plain.om", hostname_label="hostname",
                  duplicate_job=False, pod_level_series=False)


@pytest.fixture(scope="module")
def sim_om(sim, tmp_path_factory):
    return render(sim, tmp_path_factory.mktemp("om") / "sim.om", duplicate_job=True, pod_level_series=True)


@pytest.fixture(params=["small_om", "sim_om"])
def any_om(request):
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------------------------
# OpenMetrics: format and backfill


def test_format_rules(any_om):
    """promtool's rules (shared/docs/prometheus-testing.md), checked column-wise over every line."""
    text = any_om.path.read_text(encoding="utf-8")
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    assert "\n\n" not in text and "\r" not in text
    m = any_om.snapshot.manifest
    start, end = int(m.start.timestamp()), int(m.end.timestamp())
    df = pl.DataFrame({"line": text.splitlines()[:-1]})
    is_type = pl.col("line").str.starts_with("# TYPE ")
    df = df.with_columns(is_type.cum_sum().alias("fid"))
    types = df.filter(is_type).select("fid", pl.col("line").str.split(" ").list.get(2).alias("family"),
                                      pl.col("line").str.split(" ").list.get(3).alias("mtype"))
    assert types["family"].is_unique().all(), "a family is declared twice (not contiguous)"
    assert set(types["mtype"]) <= {"counter", "gauge"}
    assert not types.filter((pl.col("mtype") == "counter") & pl.col("family").str.ends_with("_total")).height
    assert df.filter(pl.col("line").str.starts_with("#") & ~is_type).height == 0
    samples = df.filter(~pl.col("line").str.starts_with("#")).with_columns(
        pl.col("line").str.extract_groups(SAMPLE.pattern)).unnest("line").rename(
        {"1": "name", "2": "labels", "3": "value", "4": "ts"}).join(types, on="fid", how="left")
    assert samples["name"].null_count() == 0, "a line is not `name{labels} value timestamp`"
    assert samples.filter(pl.col("name") != pl.when(pl.col("mtype") == "counter")
                          .then(pl.col("family") + "_total").otherwise(pl.col("family"))).height == 0
    assert samples["ts"].str.contains(r"^\d{10}$").all(), "timestamps must be whole seconds"
    samples = samples.with_columns(pl.col("ts").cast(pl.Int64), pl.col("value").cast(pl.Float64),
                                   (pl.col("name") + pl.col("labels")).alias("series"))
    assert samples["ts"].min() >= start and samples["ts"].max() <= end
    assert samples["value"].is_finite().all()
    assert not samples["labels"].str.contains(",}").any()
    runs = (pl.col("series") != pl.col("series").shift()).fill_null(True)
    checks = samples.select(runs.sum().alias("runs"), pl.col("series").n_unique().alias("series"),
                            (~runs & (pl.col("ts") <= pl.col("ts").shift())).sum().alias("not_increasing"))
    assert checks["runs"][0] == checks["series"][0], "a series is split (not contiguous)"
    assert checks["not_increasing"][0] == 0, "timestamps must strictly increase within a series"
    got = samples.group_by("name").agg(pl.col("series").n_unique().alias("series"), pl.len().alias("samples"))
    got = {n: {"series": a, "samples": b} for n, a, b in got.iter_rows()}
    assert got == {k: {"series": v["series"], "samples": v["samples"]} for k, v in any_om.counts.items()}


def _promtool_samples(tsdb: Path) -> tuple[int, int, int]:
    """(samples, min time ms, max time ms) over all blocks, from ``promtool tsdb list``."""
    promtool = shutil.which("promtool")
    readable = subprocess.run([promtool, "tsdb", "list", "-r", str(tsdb)], check=True, capture_output=True,
                              text=True, timeout=300).stdout.splitlines()
    col = readable[0].index("NUM SAMPLES")  # tabwriter columns: the header offset holds for every row
    samples = sum(int(row[col:].split()[0]) for row in readable[1:] if row.strip())
    raw = subprocess.run([promtool, "tsdb", "list", str(tsdb)], check=True, capture_output=True, text=True,
                         timeout=300).stdout.splitlines()[1:]
    mins = [int(r.split()[1]) for r in raw if r.strip()]
    maxs = [int(r.split()[2]) for r in raw if r.strip()]
    return samples, min(mins), max(maxs)


def test_promtool_backfills_every_sample(any_om, tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus): the backfill cannot be checked")
    proc = subprocess.run([shutil.which("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                           "--max-block-duration=744h", str(any_om.path), str(tmp_path / "tsdb")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    samples, t_min, t_max = _promtool_samples(tmp_path / "tsdb")
    assert samples == sum(c["samples"] for c in any_om.counts.values())  # nothing dropped silently
    m = any_om.snapshot.manifest
    assert t_min == int(m.start.timestamp()) * 1000  # seconds read as seconds, not year 58000
    assert t_max <= int(m.end.timestamp()) * 1000 + 1


# ---------------------------------------------------------------------------------------------
# cAdvisor


def _truth(snapshot: Snapshot, resource: str) -> dict[tuple[str, str, str], dict[int, float]]:
    u = snapshot.usage.filter(pl.col("resource") == resource).select(
        pl.col("namespace", "pod", "container").cast(pl.String), pl.col("timestamp").dt.epoch("s").alias("ts"), "value")
    out: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for ns, pod, c, ts, v in u.iter_rows():
        out[(ns, pod, c)][ts] = v
    return out


def _restarts(snapshot: Snapshot) -> dict[tuple[str, str, str], list[int]]:
    ev = snapshot.events.filter(~pl.col("reason").is_in(["Completed", "Evicted"])).select(
        pl.col("namespace", "pod", "container").cast(pl.String), pl.col("timestamp").dt.epoch("s"))
    out: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for ns, pod, c, ts in ev.iter_rows():
        out[(ns, pod, c)].append(ts)
    return out


def test_cpu_counter_integrates_usage_and_resets_only_at_restarts(any_om):
    step = any_om.snapshot.manifest.step_seconds
    truth, restarts = _truth(any_om.snapshot, "cpu"), _restarts(any_om.snapshot)
    resets: dict[tuple, int] = defaultdict(int)
    checked = 0
    for text, points in any_om.of("container_cpu_usage_seconds_total").items():
        lab = labels(text)
        key = (lab["namespace"], lab["pod"], lab["container"])
        if lab["container"] in ("", "POD"):  # pod cgroup and pause: never reset
            assert all(b[1] >= a[1] for a, b in zip(points, points[1:], strict=False)), text[:120]
            continue
        assert lab["cpu"] == "total" and lab["job"] in ("kubelet", "cadvisor")
        assert points[0][1] == pytest.approx(truth[key][points[0][0]] * step, rel=1e-9)
        for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
            if v1 < v0:
                assert any(t0 < e <= t1 for e in restarts[key]), f"reset without a restart event: {key} at {t1}"
                assert v1 == pytest.approx(truth[key][t1] * step, rel=1e-9)  # from zero again
                resets[(key, lab["job"])] += 1
            else:
                assert v1 - v0 == pytest.approx(truth[key][t1] * step, rel=1e-6, abs=1e-9)
                checked += 1
    assert checked > 100
    for key, times in restarts.items():
        if key in truth:
            assert resets[(key, "kubelet")] == len(times), key


def test_cpu_counter_resets_twice_for_the_oom_killed_container(small_om):
    series = [p for text, p in small_om.of("container_cpu_usage_seconds_total").items()
              if labels(text)["pod"] == OOM_POD and labels(text)["container"] == "app" and 'job="kubelet"' in text]
    assert len(series) == 1
    points = series[0]
    drops = [t1 for (_, v0), (t1, v1) in zip(points, points[1:], strict=False) if v1 < v0]
    assert drops == [int(t(i).timestamp()) for i in OOM_STEPS]


def test_memory_cfs_and_oom_counters(small_om, small):
    step = small.manifest.step_seconds
    mem = _truth(small, "memory")
    cpu = _truth(small, "cpu")
    for text, points in small_om.of("container_memory_working_set_bytes").items():
        lab = labels(text)
        if lab["container"] not in ("", "POD"):
            assert {ts: v for ts, v in points} == mem[(lab["namespace"], lab["pod"], lab["container"])]
    limits = {(r["namespace"], r["pod"], r["container"]): r["cpu_limit"]
              for r in small.containers.with_columns(pl.col("namespace", "pod", "container").cast(pl.String))
              .iter_rows(named=True) if r["cpu_limit"] is not None}
    periods = {labels(k)["pod"] + "/" + labels(k)["container"]: v
               for k, v in small_om.of("container_cpu_cfs_periods_total").items() if 'job="kubelet"' in k}
    throttled = {labels(k)["pod"] + "/" + labels(k)["container"]: v
                 for k, v in small_om.of("container_cpu_cfs_throttled_periods_total").items() if 'job="kubelet"' in k}
    with_usage = {f"{p}/{c}" for (ns, p, c) in limits if (ns, p, c) in cpu}
    assert set(periods) == set(throttled) == with_usage  # only containers with a CPU limit
    web = f"{OOM_POD.replace('abcde', 'fghij')}/app"
    for key in with_usage:
        p, th = periods[key], throttled[key]
        for (a, pa), (b, pb), (_, ta), (_, tb) in zip(p, p[1:], th, th[1:], strict=False):
            if pb >= pa:
                assert pb - pa == step * 10
                assert 0 <= tb - ta <= pb - pa
    # The web app bursts to 95 % of its limit every sixth sample: throttled there, not at 30-45 %.
    grew = [b for (a, ta), (b, tb) in zip(throttled[web], throttled[web][1:], strict=False) if tb > ta]
    assert grew and all((b - int(t(0).timestamp())) // STEP % 6 == 0 for b in grew)
    ooms = {(labels(k)["pod"], labels(k)["container"]): v[-1][1]
            for k, v in small_om.of("container_oom_events_total").items() if 'job="kubelet"' in k}
    assert ooms[(OOM_POD, "app")] == len(OOM_STEPS)
    assert sum(v for k, v in ooms.items() if k != (OOM_POD, "app")) == 0


def test_noise_series_and_duplicate_job(small_om, small_plain):
    cpu = small_om.of("container_cpu_usage_seconds_total")
    by_job: dict[str, dict[tuple, list]] = defaultdict(dict)
    for text, points in cpu.items():
        lab = labels(text)
        by_job[lab["job"]][(lab["namespace"], lab["pod"], lab["container"])] = points
    assert set(by_job) == {"kubelet", "cadvisor"}
    kubelet = {k: v for k, v in by_job["kubelet"].items() if k[2] not in ("", "POD")}
    assert kubelet == by_job["cadvisor"]  # the same container series, scraped twice
    pods = {k[1] for k in kubelet}
    assert {k[1] for k in by_job["kubelet"] if k[2] == ""} == pods
    assert {k[1] for k in by_job["kubelet"] if k[2] == "POD"} == pods
    for metric in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes"):
        plain = [labels(k) for k in small_plain.of(metric)]
        assert plain and {lab["job"] for lab in plain} == {"kubelet"}
        assert not any(lab["container"] in ("", "POD") for lab in plain)
    # The pod cgroup holds its containers (and the pause container).
    mem = small_om.of("container_memory_working_set_bytes")
    pod_level = next(v for k, v in mem.items() if labels(k)["pod"] == "db-0" and labels(k)["container"] == "")
    db = next(v for k, v in mem.items() if labels(k)["pod"] == "db-0" and labels(k)["container"] == "postgres")
    assert all(p[1] > d[1] for p, d in zip(pod_level, db, strict=True))


# ---------------------------------------------------------------------------------------------
# DCGM and OpenCost


def test_dcgm_devices_mig_and_hostname(small_om, small_plain, small, tmp_path):
    util = [labels(k) for k in small_om.of("DCGM_FI_DEV_GPU_UTIL")]
    engine = small_om.of("DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    assert util and not any("GPU_I_ID" in lab or "GPU_I_PROFILE" in lab for lab in util)  # absent on MIG
    mig = [labels(k) for k in engine if "GPU_I_ID" in labels(k)]
    assert {(lab["UUID"], lab["GPU_I_ID"], lab["GPU_I_PROFILE"]) for lab in mig} == {
        ("GPU-bbbb0000-0000-4000-8000-000000000002", "7", "1g.5gb"),
        ("GPU-bbbb0000-0000-4000-8000-000000000002", "8", "1g.5gb")}
    for text, points in engine.items():
        lab = labels(text)
        assert lab["Hostname"] == GPU_NODE and "hostname" not in lab
        assert lab["device"] == f"nvidia{lab['gpu']}" and lab["DCGM_FI_DRIVER_VERSION"]
        assert all(0 <= v <= 1 for _, v in points)
        device = lab["UUID"] + (f"/{lab['GPU_I_ID']}" if "GPU_I_ID" in lab else "")
        if device.endswith(("3", "/8")):  # nobody uses these: idle, no pod labels
            assert "pod" not in lab and all(v == 0 for _, v in points) and len(points) == 36
        else:
            assert lab["pod"] in ("train-llm-x8k2p", "infer-5c8d7b9f6d-kq2mn")
    truth = small.usage.filter(pl.col("resource") == "gpu").select(
        pl.col("device").cast(pl.String), pl.col("timestamp").dt.epoch("s"), "value")
    busy = {(d, ts): v for d, ts, v in truth.iter_rows()}
    for text, points in small_om.of("DCGM_FI_DEV_GPU_UTIL").items():
        lab = labels(text)
        for ts, v in points:
            assert v == round(busy.get((lab["UUID"], ts), 0.0) * 100)
    # Framebuffer: used + free = the device's memory, in MiB.
    total = {r["device"]: r["memory_total"] / MIB for r in small.gpus.with_columns(pl.col("device").cast(pl.String))
             .iter_rows(named=True)}

    def per_device(metric: str) -> dict[tuple[str, int], float]:
        out = {}
        for text, points in small_om.of(metric).items():
            lab = labels(text)
            device = lab["UUID"] + (f"/{lab['GPU_I_ID']}" if "GPU_I_ID" in lab else "")
            out.update({(device, ts): v for ts, v in points})
        return out

    used, free = per_device("DCGM_FI_DEV_FB_USED"), per_device("DCGM_FI_DEV_FB_FREE")
    assert used.keys() == free.keys() and len(used) == 4 * 36
    assert all(used[k] + free[k] == total[k[0]] for k in used)
    # The newer exporter's label name.
    newer = [labels(k) for k in small_plain.of("DCGM_FI_PROF_GR_ENGINE_ACTIVE")]
    assert newer and all(lab.get("hostname") == GPU_NODE and "Hostname" not in lab for lab in newer)
    with pytest.raises(ValueError, match="hostname_label"):
        write_openmetrics(small, tmp_path / "x.om", hostname_label="host")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_opencost_prices_only_priced_nodes(small_om):
    cost = {labels(k)["node"]: (labels(k), v) for k, v in small_om.of("node_total_hourly_cost").items()}
    assert set(cost) == {CPU_NODE}
    lab, points = cost[CPU_NODE]
    assert lab["instance_type"] == "m5.xlarge" and lab["region"] == "us-east-1" and lab["arch"] == "amd64"
    assert lab["provider_id"].startswith("aws:///us-east-1a/i-")
    assert {v for _, v in points} == {0.192} and len(points) == 36


# ---------------------------------------------------------------------------------------------
# kube-state-metrics


def test_ksm_requests_limits_and_container_kinds(small_om, small):
    got: dict[tuple[str, str, str, str, str], float] = {}
    for family, init in (("kube_pod_container_resource_requests", False),
                         ("kube_pod_container_resource_limits", False),
                         ("kube_pod_init_container_resource_requests", True),
                         ("kube_pod_init_container_resource_limits", True)):
        for text, points in small_om.of(family).items():
            lab = labels(text)
            assert lab["unit"] == {"cpu": "core", "memory": "byte"}.get(lab["resource"], "integer")
            assert lab["node"] in (CPU_NODE, GPU_NODE) and lab["uid"]
            assert len({v for _, v in points}) == 1
            got[(family.split("_")[-1], lab["pod"], lab["container"], lab["resource"], str(init))] = points[0][1]
    c = small.containers.with_columns(pl.col("pod", "container", "container_type").cast(pl.String))
    for r in c.iter_rows(named=True):
        init = str(r["container_type"] != "app")
        key = (r["pod"], r["container"])
        req_cpu = r["cpu_request"] if r["cpu_request"] is not None else r["cpu_limit"]
        assert got.get(("requests", *key, "cpu", init)) == req_cpu
        assert got.get(("limits", *key, "cpu", init)) == r["cpu_limit"]
        assert got.get(("requests", *key, "memory", init)) == r["memory_request"]
        assert got.get(("limits", *key, "memory", init)) == r["memory_limit"]
    assert got[("requests", "infer-5c8d7b9f6d-kq2mn", "server", "nvidia_com_mig_1g_5gb", "False")] == 1
    assert got[("limits", "train-llm-x8k2p", "trainer", "nvidia_com_gpu", "False")] == 1
    policies = {labels(k)["container"]: labels(k)["restart_policy"] for k in small_om.of("kube_pod_init_container_info")}
    assert policies == {"istio-proxy": "Always", "istio-init": ""}
    assert {labels(k)["container"] for k in small_om.of("kube_pod_container_info")} == {
        "app", "postgres", "exporter", "job", "server", "trainer", "shell"}


def test_ksm_series_exist_only_while_the_pod_does(small_om):
    info = {labels(k)["pod"]: v for k, v in small_om.of("kube_pod_info").items()}
    nightly = [ts for ts, _ in info[NIGHTLY_POD]]
    assert nightly == [int((t(0) + timedelta(minutes=m)).timestamp()) for m in range(30, 71, 5)]
    assert len(info["db-0"]) == 36
    for family in ("kube_pod_container_resource_requests", "kube_pod_container_status_restarts_total"):
        for text, points in small_om.of(family).items():
            if labels(text)["pod"] == NIGHTLY_POD:
                assert [ts for ts, _ in points] == nightly


def test_ksm_owners(small_om):
    pod_owner = {labels(k)["pod"]: (labels(k)["owner_kind"], labels(k)["owner_name"], labels(k)["owner_is_controller"])
                 for k in small_om.of("kube_pod_owner")}
    assert pod_owner[OOM_POD] == ("ReplicaSet", "web-7d9f8c6b5d", "true")
    assert pod_owner[NIGHTLY_POD] == ("Job", "nightly-29893050", "true")
    assert pod_owner["db-0"] == ("StatefulSet", "db", "true")
    assert pod_owner["debug"] == ("<none>", "<none>", "<none>")
    rs = {labels(k)["replicaset"]: (labels(k)["owner_kind"], labels(k)["owner_name"])
          for k in small_om.of("kube_replicaset_owner")}
    assert rs == {"web-7d9f8c6b5d": ("Deployment", "web"), "infer-5c8d7b9f6d": ("Deployment", "infer")}
    jobs = {labels(k)["job_name"]: (labels(k)["owner_kind"], labels(k)["owner_name"])
            for k in small_om.of("kube_job_owner")}
    assert jobs == {"nightly-29893050": ("CronJob", "nightly"), "train-llm": ("<none>", "<none>")}
    info = {labels(k)["pod"]: labels(k) for k in small_om.of("kube_pod_info")}
    assert info[NIGHTLY_POD]["created_by_kind"] == "Job" and info[NIGHTLY_POD]["node"] == CPU_NODE


def test_ksm_restarts_and_last_termination(small_om):
    oom_times = [int(t(i).timestamp()) for i in OOM_STEPS]

    def one(metric: str, **match) -> list[tuple[int, float]]:
        found = [v for k, v in small_om.of(metric).items()
                 if all(labels(k).get(a) == b for a, b in match.items())]
        assert len(found) == 1, (metric, match, len(found))
        return found[0]

    restarts = one("kube_pod_container_status_restarts_total", pod=OOM_POD, container="app")
    assert [v for ts, v in restarts if ts < oom_times[0]] == [0] * OOM_STEPS[0]
    assert {v for ts, v in restarts if oom_times[0] <= ts < oom_times[1]} == {1}
    assert {v for ts, v in restarts if ts >= oom_times[1]} == {2}
    reason = one("kube_pod_container_status_last_terminated_reason", pod=OOM_POD, container="app")
    assert reason[0][0] == oom_times[0] and len(reason) == 36 - OOM_STEPS[0] and {v for _, v in reason} == {1}
    assert labels(next(k for k in small_om.of("kube_pod_container_status_last_terminated_reason")))["reason"] == \
        "OOMKilled"
    assert {v for _, v in one("kube_pod_container_status_last_terminated_exitcode", pod=OOM_POD)} == {137}
    others = [k for k in small_om.of("kube_pod_container_status_restarts_total") if labels(k)["pod"] != OOM_POD]
    assert all({v for _, v in small_om.of("kube_pod_container_status_restarts_total")[k]} == {0} for k in others)


def test_ksm_nodes_namespaces_controllers_hpa(small_om):
    node_labels = {labels(k)["node"]: labels(k) for k in small_om.of("kube_node_labels")}
    gpu = node_labels[GPU_NODE]
    assert gpu["label_node_kubernetes_io_instance_type"] == "p4d.24xlarge"
    assert gpu["label_karpenter_sh_capacity_type"] == "spot"
    assert gpu["label_nvidia_com_mig_config"] == "all-balanced"
    assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) for name in gpu)
    cap = {(labels(k)["node"], labels(k)["resource"]): (labels(k)["unit"], v[0][1])
           for k, v in small_om.of("kube_node_status_capacity").items()}
    assert cap[(GPU_NODE, "nvidia_com_gpu")] == ("integer", 2)  # two whole GPUs, one split into MIG slices
    assert cap[(GPU_NODE, "nvidia_com_mig_1g_5gb")] == ("integer", 2)
    assert cap[(CPU_NODE, "cpu")] == ("core", 4.0) and cap[(CPU_NODE, "memory")] == ("byte", 16 * 2**30)
    alloc = {(labels(k)["node"], labels(k)["resource"]): v[0][1]
             for k, v in small_om.of("kube_node_status_allocatable").items()}
    assert alloc[(CPU_NODE, "cpu")] == 3.92 and alloc[(CPU_NODE, "memory")] == 16138633216
    taints = [labels(k) for k in small_om.of("kube_node_spec_taint")]
    assert taints == [{**taints[0], "node": GPU_NODE, "key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    ns = {labels(k)["namespace"]: labels(k) for k in small_om.of("kube_namespace_labels")}
    assert ns["shop"]["label_team"] == "storefront" and len(ns) == 5
    targets = {(labels(k)["metric_name"], labels(k)["metric_target_type"]): v[0][1]
               for k, v in small_om.of("kube_horizontalpodautoscaler_spec_target_metric").items()}
    assert targets == {("cpu", "utilization"): 70.0, ("memory", "average"): float(2**30)}
    info = [labels(k) for k in small_om.of("kube_horizontalpodautoscaler_info")]
    assert [(i["horizontalpodautoscaler"], i["scaletargetref_kind"], i["scaletargetref_name"]) for i in info] == [
        ("web", "Deployment", "web")]
    replicas = {labels(k)["deployment"]: v[0][1] for k, v in small_om.of("kube_deployment_spec_replicas").items()}
    assert replicas == {"web": 2, "infer": 1}


# ---------------------------------------------------------------------------------------------
# Kubernetes API objects


@pytest.fixture(scope="module")
def small_lists(small):
    return kube_lists(small)


@pytest.fixture(scope="module")
def sim_lists(sim):
    return kube_lists(sim)


@pytest.fixture(params=["small", "sim"])
def case(request):
    return request.getfixturevalue(request.param), request.getfixturevalue(request.param + "_lists")


def test_every_object_validates_against_the_openapi_schema(case):
    _, lists = case
    version = kubernetes_validate.latest_version()
    assert set(lists) == set(RESOURCES)
    seen_uids = set()
    for resource, lst in lists.items():
        assert lst["kind"].endswith("List") and lst["metadata"]["resourceVersion"]
        for item in lst["items"]:
            assert f"{item['kind']}List" == lst["kind"] and item["apiVersion"] == lst["apiVersion"]
            kubernetes_validate.validate(item, version, strict=True)
            assert item["metadata"]["uid"] not in seen_uids
            seen_uids.add(item["metadata"]["uid"])
    assert lists["pods"]["items"] and lists["nodes"]["items"] and lists["namespaces"]["items"]


def test_owner_references_chain_to_the_top_controller(case):
    _, lists = case
    index = {(i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"]): i
             for lst in lists.values() for i in lst["items"]}

    def owner(item: dict) -> dict | None:
        refs = item["metadata"].get("ownerReferences") or []
        if not refs:
            return None
        assert len(refs) == 1 and refs[0]["controller"] is True
        parent = index[(refs[0]["kind"], item["metadata"]["namespace"], refs[0]["name"])]
        assert parent["metadata"]["uid"] == refs[0]["uid"] and parent["apiVersion"] == refs[0]["apiVersion"]
        return parent

    chains = set()
    for pod in lists["pods"]["items"]:
        chain, node = ["Pod"], pod
        while (node := owner(node)) is not None:
            chain.append(node["kind"])
        chains.add(tuple(chain))
    assert ("Pod", "ReplicaSet", "Deployment") in chains
    assert ("Pod", "Job", "CronJob") in chains
    assert chains <= {("Pod", "ReplicaSet", "Deployment"), ("Pod", "Job", "CronJob"), ("Pod", "Job"),
                      ("Pod", "StatefulSet"), ("Pod", "DaemonSet"), ("Pod",)}
    # Pod templates carry the selector's labels.
    for resource in ("deployments", "statefulsets", "daemonsets", "replicasets", "jobs"):
        for item in lists[resource]["items"]:
            sel = item["spec"]["selector"]["matchLabels"]
            assert sel.items() <= item["spec"]["template"]["metadata"]["labels"].items()


def test_quantities_round_trip_to_the_snapshot(case):
    snapshot, lists = case
    c = snapshot.containers.with_columns(pl.col("namespace", "pod", "container").cast(pl.String))
    truth = {(r["namespace"], r["pod"], r["container"]): r for r in c.iter_rows(named=True)}
    checked = 0
    for pod in lists["pods"]["items"]:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for spec in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            r = truth[(ns, name, spec["name"])]
            req, lim = spec["resources"].get("requests", {}), spec["resources"].get("limits", {})
            want_cpu = r["cpu_request"] if r["cpu_request"] is not None else r["cpu_limit"]
            want_mem = r["memory_request"] if r["memory_request"] is not None else r["memory_limit"]
            assert (parse_cpu(req["cpu"]) if "cpu" in req else None) == want_cpu
            assert (parse_cpu(lim["cpu"]) if "cpu" in lim else None) == r["cpu_limit"]
            assert (parse_memory(req["memory"]) if "memory" in req else None) == want_mem
            assert (parse_memory(lim["memory"]) if "memory" in lim else None) == r["memory_limit"]
            gpu = [k for k in lim if k.startswith("nvidia.com/")]
            assert gpu == ([r["gpu_resource"]] if r["gpu_resource"] else [])
            if gpu:
                assert parse_count(lim[gpu[0]]) == r["gpu_limit"] and parse_count(req[gpu[0]]) == r["gpu_request"]
            assert (spec.get("restartPolicy") == "Always") == (r["container_type"] == "sidecar")
            checked += 1
    assert checked >= 9
    nodes = {r["node"]: r for r in snapshot.nodes.with_columns(pl.col("node").cast(pl.String)).iter_rows(named=True)}
    for node in lists["nodes"]["items"]:
        r, st = nodes[node["metadata"]["name"]], node["status"]
        assert parse_cpu(st["capacity"]["cpu"]) == r["cpu_capacity"]
        assert parse_cpu(st["allocatable"]["cpu"]) == r["cpu_allocatable"]
        assert parse_memory(st["capacity"]["memory"]) == r["memory_capacity"]
        assert parse_memory(st["allocatable"]["memory"]) == r["memory_allocatable"]


def test_pod_status_specs_and_controllers(small_lists):
    pods = {p["metadata"]["name"]: p for p in small_lists["pods"]["items"]}
    app = next(s for s in pods[OOM_POD]["status"]["containerStatuses"] if s["name"] == "app")
    assert app["restartCount"] == 2 and app["state"]["running"]["startedAt"] == "2026-11-02T02:20:00Z"
    assert app["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert app["lastState"]["terminated"]["exitCode"] == 137
    web = pods[OOM_POD]["spec"]
    assert [c["name"] for c in web["initContainers"]] == ["istio-init", "istio-proxy"]
    assert {"name": "scratch", "emptyDir": {}} in web["volumes"]
    assert web["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"] == {
        "matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}
    nightly = pods[NIGHTLY_POD]
    assert nightly["status"]["phase"] == "Succeeded" and nightly["spec"]["restartPolicy"] == "Never"
    assert nightly["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert pods["debug"]["status"]["qosClass"] == "BestEffort" and "ownerReferences" not in pods["debug"]["metadata"]
    assert pods["infer-5c8d7b9f6d-kq2mn"]["spec"]["nodeSelector"] == {"nvidia.com/mig.config": "all-balanced"}
    deploy = {d["metadata"]["name"]: d for d in small_lists["deployments"]["items"]}
    assert deploy["web"]["spec"]["strategy"] == {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}
    assert deploy["infer"]["spec"]["strategy"] == {"type": "Recreate"}
    sts = small_lists["statefulsets"]["items"][0]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-storage"
    ds = small_lists["daemonsets"]["items"][0]
    assert ds["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": "10%", "maxSurge": 0}
    assert ds["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}]
    hpa = small_lists["horizontalpodautoscalers"]["items"][0]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]
    pdbs = {p["metadata"]["name"]: p["spec"] for p in small_lists["poddisruptionbudgets"]["items"]}
    assert pdbs == {"web-pdb": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
                    "db-pdb": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "db"}}}}
    cron = small_lists["cronjobs"]["items"][0]
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"] == "job"
    gpu_node = next(n for n in small_lists["nodes"]["items"] if n["metadata"]["name"] == GPU_NODE)
    assert gpu_node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert gpu_node["status"]["capacity"]["nvidia.com/mig-1g.5gb"] == "2"


def test_exporters_agree_on_identity(small_om, small_lists):
    """The pod uids and IPs kube-state-metrics reports are the API objects' own."""
    pods = {p["metadata"]["name"]: p for p in small_lists["pods"]["items"]}
    for text in small_om.of("kube_pod_info"):
        lab = labels(text)
        if lab["pod"] in pods:
            p = pods[lab["pod"]]
            assert lab["uid"] == p["metadata"]["uid"] and lab["host_ip"] == p["status"]["hostIP"]
            if "podIP" in p["status"]:
                assert lab["pod_ip"] == p["status"]["podIP"]


def test_kubectl_list_and_atomic_json_files(small, small_lists, tmp_path):
    listing = kubectl_list(small)
    assert listing["kind"] == "List" and listing["apiVersion"] == "v1"
    kinds = [i["kind"] for i in listing["items"]]
    order = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
             "HorizontalPodAutoscaler", "PodDisruptionBudget", "Node", "Namespace"]
    assert kinds == sorted(kinds, key=order.index)
    assert len(kinds) == sum(len(v["items"]) for v in small_lists.values())
    target = tmp_path / "kube"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    (target / ".kubetune").write_text("")  # an earlier run's output: only such a directory is replaced (#15)
    out = write_kube_json(small, target)
    assert out == target.resolve()
    assert sorted(p.name for p in target.iterdir()) == sorted([f"{r}.json" for r in RESOURCES] + ["all.json", ".kubetune"])
    assert json.loads((target / "pods.json").read_text()) == small_lists["pods"]
    assert json.loads((target / "all.json").read_text()) == listing
    assert [p.name for p in tmp_path.iterdir()] == ["kube"]  # no temporary directory left behind


def test_kubectl_json_reads_back_through_the_collector(case, tmp_path):
    """The project's kubectl-JSON collector recovers the snapshot's containers from the objects."""
    from analyzer.collectors.kubernetes import collect_from_kubectl

    snapshot, _ = case
    write_kube_json(snapshot, tmp_path / "kube")
    got = collect_from_kubectl(tmp_path / "kube" / "all.json", include_kube_system=True,
                               collected_at=snapshot.manifest.end)
    key = ["namespace", "pod", "container"]
    cols = ["workload_kind", "workload", "container_type", "owner_kind", "owner_name", "node", "cpu_limit",
            "memory_limit", "gpu_resource", "gpu_request", "gpu_limit"]
    strs = lambda df: df.with_columns(pl.col(c).cast(pl.String) for c, d in df.schema.items()
                                      if d == pl.Categorical or isinstance(d, pl.Enum))
    truth, back = strs(snapshot.containers), strs(got.containers)
    assert back.height >= 9
    joined = back.select(*key, *cols).join(truth.select(*key, *cols), on=key, how="left", suffix="_truth")
    for col in cols:
        diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_truth")))
        assert diff.height == 0, (col, diff.head(3))
    wl_key = ["namespace", "workload_kind", "workload"]
    wl_cols = ["replicas", "hpa_name", "hpa_min_replicas", "hpa_max_replicas", "hpa_metrics", "pdb_name",
               "pdb_min_available", "pdb_max_unavailable", "update_strategy", "max_unavailable", "max_surge",
               "uses_empty_dir", "uses_local_storage", "affinity"]
    wl = strs(got.workloads).select(*wl_key, *wl_cols).join(strs(snapshot.workloads).select(*wl_key, *wl_cols),
                                                          on=wl_key, how="inner", suffix="_truth")
    assert wl.height == snapshot.workloads.height
    for col in wl_cols:
        if col == "replicas":
            continue  # a finished Job's parallelism is what its object says, not a live count
        got_col, want = pl.col(col), pl.col(f"{col}_truth")
        if col in ("uses_empty_dir", "uses_local_storage"):
            got_col, want = got_col.fill_null(False), want.fill_null(False)
        elif col == "hpa_metrics":  # order as the collector sorts them
            metric = pl.element().struct.field("metric")
            got_col, want = got_col.list.eval(pl.element().sort_by(metric)), want.list.eval(pl.element().sort_by(metric))
        same = wl.filter(got_col.ne_missing(want))
        assert same.height == 0, (col, same.head(3))
