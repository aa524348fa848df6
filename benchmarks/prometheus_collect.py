"""Prometheus collector at scale (issue 3): 2,000 containers x 14 days at a 60 s scrape.

Generates exporter-shaped OpenMetrics (cAdvisor, kube-state-metrics, DCGM, OpenCost) for a
cluster of 1,000 pods x 2 containers, every series sampled every 60 s for 14 days, backfills
it with promtool into a TSDB, serves it from a real ``prometheus`` on 127.0.0.1 and runs
``collect_prometheus`` in a fresh Python process. Reports HTTP requests, wall time, client
peak RSS, Prometheus' peak RSS during the run, and checks the collected numbers against the
generator's truth (requests, peak memory exact, p95 of 5-minute CPU within 2%).

The text is generated and backfilled in 2-day time slices (one file at a time, deleted after
backfilling), so blocks never overlap; Prometheus runs with min = max block duration = 2h so
it does not compact during the measurement. The TSDB is kept in ``--workdir`` and reused on
the next run with the same parameters (``--fresh`` rebuilds it).

    .venv/bin/python benchmarks/prometheus_collect.py                 # the full benchmark
    .venv/bin/python benchmarks/prometheus_collect.py --containers 200 --days 2   # a quick one
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.prometheus_server import block_samples, need, start_prometheus

DAY = 86400
T0 = 1_793_491_200  # 2026-11-01T00:00:00Z, a multiple of 300
GPU_PODS = 40
OOM_CONTAINERS = 20
NODES = 60


# ---------------------------------------------------------------------------------------------
# The cluster


def cluster(containers: int, seed: int = 7, pods_per_workload: int = 4) -> dict:
    """Static facts of the generated cluster: pods, containers, nodes, owners, requests."""
    rng = np.random.default_rng(seed)
    pods = containers // 2
    n_ns = max(pods // 20, 1)
    kinds = np.where(np.arange(pods) < pods * 0.8, "Deployment", np.where(np.arange(pods) < pods * 0.95,
                                                                          "StatefulSet", "DaemonSet"))
    workload_idx = np.arange(pods) // pods_per_workload
    pod_rows = []
    for i in range(pods):
        ns = f"team-{i % n_ns:03d}"
        w = int(workload_idx[i])
        kind = str(kinds[i])
        if kind == "Deployment":
            name, rs = f"svc-{w:04d}", f"svc-{w:04d}-7d9f{w % 97:02d}c4b8"
            pod, owner_kind, owner_name = f"{rs}-{i:05x}", "ReplicaSet", rs
        elif kind == "StatefulSet":
            name = f"db-{w:04d}"
            pod, owner_kind, owner_name = f"{name}-{i % pods_per_workload}", "StatefulSet", name
        else:
            name = f"agent-{w:04d}"
            pod, owner_kind, owner_name = f"{name}-{i:05x}", "DaemonSet", name
        node = f"ip-10-0-{i % NODES // 250}-{i % NODES}.ec2.internal"
        pod_rows.append((ns, pod, kind, name, owner_kind, owner_name, node))
    c_rows = []
    for p, (ns, pod, kind, name, ok, on, node) in enumerate(pod_rows):
        for j, cname in enumerate(("app", "istio-proxy")):
            k = 2 * p + j
            cpu_req = float(rng.choice([0.1, 0.25, 0.5, 1.0, 2.0])) if j == 0 else 0.1
            mem_req = int(rng.choice([256, 512, 1024, 2048, 4096])) * 2**20 if j == 0 else 128 * 2**20
            cpu_lim = cpu_req * 2 if k % 10 < 3 else None
            c_rows.append({
                "namespace": ns, "pod": pod, "container": cname, "workload_kind": kind, "workload": name,
                "node": node, "cpu_request": cpu_req, "memory_request": mem_req, "cpu_limit": cpu_lim,
                "memory_limit": mem_req * 2, "base_cpu": cpu_req * float(rng.uniform(0.1, 0.9)),
                "base_mem": mem_req * float(rng.uniform(0.2, 0.9)),
                "gpu": j == 0 and kind == "Deployment" and p % (pods // GPU_PODS or 1) == 0,
                "oom": k % max(containers // OOM_CONTAINERS, 1) == 1,
            })
    frame = pl.DataFrame(c_rows)
    gpu_idx = np.flatnonzero(frame["gpu"].to_numpy())[:GPU_PODS]
    frame = frame.with_columns(pl.Series("gpu", np.isin(np.arange(frame.height), gpu_idx)))
    return {"containers": frame, "pods": pod_rows, "namespaces": n_ns}


def usage(c: dict, ts: np.ndarray, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """CPU cores (mean over the minute ending at ts) and memory bytes per container x time."""
    frame = c["containers"]
    n = frame.height
    base_cpu = frame["base_cpu"].to_numpy()[:, None]
    base_mem = frame["base_mem"].to_numpy()[:, None]
    phase = (np.arange(n) % 24)[:, None] * 3600.0
    daily = 1 + 0.5 * np.sin(2 * np.pi * (ts[None, :] + phase) / DAY)
    # Deterministic noise per (container, minute): hash-like, so slices agree across runs.
    minute = (ts // 60).astype(np.int64)[None, :]
    key = (np.arange(n, dtype=np.int64)[:, None] * 1_000_003 + minute * 7919) % 2_147_483_647
    noise = ((key * 48271) % 2_147_483_647) / 2_147_483_647.0
    cpu = np.round(base_cpu * daily * (0.6 + 0.8 * noise), 6)
    mem = np.round(base_mem * (0.9 + 0.2 * noise) * (1 + 0.05 * np.sin(2 * np.pi * ts[None, :] / (7 * DAY))))
    return cpu, mem


def oom_times(c: dict, t0: float, t1: float) -> dict[int, list[float]]:
    """Container index -> OOM kill times (every ~2.3 days, staggered)."""
    out = {}
    for k in np.flatnonzero(c["containers"]["oom"].to_numpy()):
        first = T0 + 3600 * (5 + k % 40)
        out[int(k)] = [t for t in np.arange(first, t1 + 1, 2.3 * DAY).round(-2) if t0 <= t <= t1]
    return out


# ---------------------------------------------------------------------------------------------
# OpenMetrics text (one family at a time; each series contiguous; timestamps in seconds)


def _lab(**labels) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _write_family(fh, name: str, kind: str, prefixes: list[str], values: np.ndarray, ts: np.ndarray) -> int:
    """values: (series, time) array; NaN = no sample."""
    fh.write(f"# TYPE {name} {kind}\n".encode())
    if not prefixes:
        return 0
    n, t = values.shape
    idx = np.repeat(np.arange(n, dtype=np.uint32), t)
    flat = values.ravel()
    keep = ~np.isnan(flat)
    df = pl.DataFrame({"p": pl.Series([f"{name}{{{p}}}" for p in prefixes])[idx], "v": flat,
                       "t": np.tile(ts.astype(np.int64), n)}).filter(pl.Series(keep))
    df.write_csv(fh, separator=" ", include_header=False, quote_style="never")
    return df.height


def write_slice(path: Path, c: dict, ts: np.ndarray, state: dict) -> int:
    """One time slice of the whole cluster; ``state`` carries counters between slices."""
    frame = c["containers"]
    rows = frame.to_dicts()
    n = len(rows)
    cpu, mem = usage(c, ts)
    ones = np.ones((1, ts.size))
    written = 0
    with open(path, "wb") as fh:
        cadv = [_lab(namespace=r["namespace"], pod=r["pod"], container=r["container"], cpu="total",
                     id=f"/kubepods/burstable/pod{i:06d}/{r['container']}", image=f"registry.local/{r['container']}:1.4",
                     job="kubelet", instance=f"{r['node']}:10250") for i, r in enumerate(rows)]
        counter = state.get("cpu", np.zeros(n))[:, None] + np.cumsum(cpu * 60, axis=1)
        state["cpu"] = counter[:, -1]
        written += _write_family(fh, "container_cpu_usage_seconds_total", "counter", cadv, np.round(counter, 6), ts)
        mem_lab = [_lab(namespace=r["namespace"], pod=r["pod"], container=r["container"],
                        id=f"/kubepods/burstable/pod{i:06d}/{r['container']}", job="kubelet",
                        instance=f"{r['node']}:10250") for i, r in enumerate(rows)]
        written += _write_family(fh, "container_memory_working_set_bytes", "gauge", mem_lab, mem, ts)
        lim = [i for i, r in enumerate(rows) if r["cpu_limit"]]
        periods = state.get("periods", np.zeros(len(lim)))[:, None] + np.cumsum(np.full((len(lim), ts.size), 600.0),
                                                                                axis=1)
        throttled = state.get("throttled", np.zeros(len(lim)))[:, None] + np.cumsum(
            np.floor(600 * np.clip(cpu[lim] / np.array([rows[i]["cpu_limit"] for i in lim])[:, None] - 0.5, 0, 1)),
            axis=1)
        state["periods"], state["throttled"] = periods[:, -1], throttled[:, -1]
        written += _write_family(fh, "container_cpu_cfs_periods_total", "counter", [mem_lab[i] for i in lim], periods, ts)
        written += _write_family(fh, "container_cpu_cfs_throttled_periods_total", "counter", [mem_lab[i] for i in lim],
                                 throttled, ts)
        ooms = oom_times(c, T0, ts[-1])
        oom_counts = np.zeros((len(ooms), ts.size))
        restart_counts = np.zeros((n, ts.size))
        for j, (k, times) in enumerate(sorted(ooms.items())):
            for t in times:
                oom_counts[j] += ts >= t
                restart_counts[k] += ts >= t
        oom_lab = [mem_lab[k] for k in sorted(ooms)]
        written += _write_family(fh, "container_oom_events_total", "counter", oom_lab, oom_counts, ts)
        ksm = [dict(namespace=r["namespace"], pod=r["pod"], container=r["container"], node=r["node"],
                    uid=f"uid-{i // 2:06d}", job="kube-state-metrics") for i, r in enumerate(rows)]
        req_p, req_v, lim_p, lim_v = [], [], [], []
        for i, r in enumerate(rows):
            req_p += [_lab(**ksm[i], resource="cpu", unit="core"), _lab(**ksm[i], resource="memory", unit="byte")]
            req_v += [r["cpu_request"], r["memory_request"]]
            lim_p.append(_lab(**ksm[i], resource="memory", unit="byte"))
            lim_v.append(r["memory_limit"])
            if r["cpu_limit"]:
                lim_p.append(_lab(**ksm[i], resource="cpu", unit="core"))
                lim_v.append(r["cpu_limit"])
            if r["gpu"]:
                req_p.append(_lab(**ksm[i], resource="nvidia_com_gpu", unit="integer"))
                req_v.append(1)
                lim_p.append(_lab(**ksm[i], resource="nvidia_com_gpu", unit="integer"))
                lim_v.append(1)
        written += _write_family(fh, "kube_pod_container_resource_requests", "gauge", req_p,
                                 np.array(req_v, dtype=float)[:, None] * ones, ts)
        written += _write_family(fh, "kube_pod_container_resource_limits", "gauge", lim_p,
                                 np.array(lim_v, dtype=float)[:, None] * ones, ts)
        written += _write_family(fh, "kube_pod_container_status_restarts_total", "counter",
                                 [_lab(**ksm[i]) for i in range(n)], restart_counts, ts)
        reason = np.where(restart_counts[sorted(ooms)] > 0, 1.0, np.nan) if ooms else np.zeros((0, ts.size))
        written += _write_family(fh, "kube_pod_container_status_last_terminated_reason", "gauge",
                                 [_lab(**ksm[k], reason="OOMKilled") for k in sorted(ooms)], reason, ts)
        pods = c["pods"]
        written += _write_family(fh, "kube_pod_owner", "gauge", [
            _lab(namespace=ns, pod=pod, owner_kind=ok, owner_name=on, owner_is_controller="true", uid=f"uid-{i:06d}",
                 job="kube-state-metrics") for i, (ns, pod, _k, _n, ok, on, _node) in enumerate(pods)],
            np.ones((len(pods), ts.size)), ts)
        written += _write_family(fh, "kube_pod_info", "gauge", [
            _lab(namespace=ns, pod=pod, node=node, created_by_kind=ok, created_by_name=on, uid=f"uid-{i:06d}",
                 job="kube-state-metrics") for i, (ns, pod, _k, _n, ok, on, node) in enumerate(pods)],
            np.ones((len(pods), ts.size)), ts)
        rs = sorted({(ns, on, name) for ns, _p, kind, name, ok, on, _node in pods if ok == "ReplicaSet"})
        written += _write_family(fh, "kube_replicaset_owner", "gauge", [
            _lab(namespace=ns, replicaset=r, owner_kind="Deployment", owner_name=name, owner_is_controller="true",
                 job="kube-state-metrics") for ns, r, name in rs], np.ones((len(rs), ts.size)), ts)
        deps = sorted({(ns, name) for ns, _p, kind, name, *_ in pods if kind == "Deployment"})
        hpa = deps[::4]
        written += _write_family(fh, "kube_deployment_spec_replicas", "gauge", [
            _lab(namespace=ns, deployment=d, job="kube-state-metrics") for ns, d in deps], 4 * np.ones((len(deps), ts.size)),
            ts)
        written += _write_family(fh, "kube_horizontalpodautoscaler_info", "gauge", [
            _lab(namespace=ns, horizontalpodautoscaler=d, scaletargetref_kind="Deployment", scaletargetref_name=d,
                 job="kube-state-metrics") for ns, d in hpa], np.ones((len(hpa), ts.size)), ts)
        written += _write_family(fh, "kube_horizontalpodautoscaler_spec_min_replicas", "gauge", [
            _lab(namespace=ns, horizontalpodautoscaler=d, job="kube-state-metrics") for ns, d in hpa],
            2 * np.ones((len(hpa), ts.size)), ts)
        written += _write_family(fh, "kube_horizontalpodautoscaler_spec_max_replicas", "gauge", [
            _lab(namespace=ns, horizontalpodautoscaler=d, job="kube-state-metrics") for ns, d in hpa],
            10 * np.ones((len(hpa), ts.size)), ts)
        written += _write_family(fh, "kube_horizontalpodautoscaler_spec_target_metric", "gauge", [
            _lab(namespace=ns, horizontalpodautoscaler=d, metric_name="cpu", metric_target_type="utilization",
                 job="kube-state-metrics") for ns, d in hpa], 70 * np.ones((len(hpa), ts.size)), ts)
        nodes = sorted({r["node"] for r in rows})
        spot = {nd: i % 3 == 0 for i, nd in enumerate(nodes)}
        gpu_nodes = sorted({rows[i]["node"] for i in np.flatnonzero(frame["gpu"].to_numpy())})
        written += _write_family(fh, "kube_node_labels", "gauge", [
            _lab(node=nd, label_node_kubernetes_io_instance_type="g5.xlarge" if nd in gpu_nodes else "m5.2xlarge",
                 label_topology_kubernetes_io_zone=f"us-east-1{'abc'[i % 3]}", label_topology_kubernetes_io_region="us-east-1",
                 label_karpenter_sh_capacity_type="spot" if spot[nd] else "on-demand", job="kube-state-metrics")
            for i, nd in enumerate(nodes)], np.ones((len(nodes), ts.size)), ts)
        cap_p, cap_v = [], []
        for nd in nodes:
            cap_p += [_lab(node=nd, resource="cpu", unit="core", job="kube-state-metrics"),
                      _lab(node=nd, resource="memory", unit="byte", job="kube-state-metrics")]
            cap_v += [8.0, 32.0 * 2**30]
        written += _write_family(fh, "kube_node_status_capacity", "gauge", cap_p, np.array(cap_v)[:, None] * ones, ts)
        written += _write_family(fh, "kube_node_status_allocatable", "gauge", cap_p,
                                 np.array(cap_v)[:, None] * 0.92 * ones, ts)
        written += _write_family(fh, "node_total_hourly_cost", "gauge", [
            _lab(node=nd, instance_type="g5.xlarge" if nd in gpu_nodes else "m5.2xlarge", region="us-east-1",
                 provider_id=f"aws:///us-east-1a/i-{i:017x}", job="opencost") for i, nd in enumerate(nodes)],
            np.array([1.006 if nd in gpu_nodes else 0.384 * (0.4 if spot[nd] else 1) for nd in nodes])[:, None] * ones, ts)
        gpu_rows = [(i, rows[i]) for i in np.flatnonzero(frame["gpu"].to_numpy())]
        dcgm = [_lab(gpu="0", UUID=f"GPU-{i:08x}-0000-0000-0000-000000000000", device="nvidia0", modelName="NVIDIA A10G",
                     Hostname=r["node"], namespace=r["namespace"], pod=r["pod"], container=r["container"], job="dcgm")
                for i, r in gpu_rows]
        util = np.round(np.clip(cpu[[i for i, _ in gpu_rows]] * 80, 0, 100)) if gpu_rows else np.zeros((0, ts.size))
        written += _write_family(fh, "DCGM_FI_DEV_GPU_UTIL", "gauge", dcgm, util, ts)
        used = np.round(mem[[i for i, _ in gpu_rows]] / 2**20) % 20000 if gpu_rows else np.zeros((0, ts.size))
        written += _write_family(fh, "DCGM_FI_DEV_FB_USED", "gauge", dcgm, used, ts)
        written += _write_family(fh, "DCGM_FI_DEV_FB_FREE", "gauge", dcgm, 22888 - used, ts)
        fh.write(b"# EOF\n")
    return written


def build_tsdb(containers: int, days: int, scrape: int, tsdb: Path, slice_days: int, pods_per_workload: int = 4) -> dict:
    c = cluster(containers, pods_per_workload=pods_per_workload)
    state: dict = {}
    total_samples, text_bytes, gen_s, fill_s = 0, 0, 0.0, 0.0
    scratch = tsdb.parent / "om"
    scratch.mkdir(parents=True, exist_ok=True)
    end = T0 + days * DAY
    pending: tuple[subprocess.Popen, Path] | None = None
    for s0 in range(T0, end, slice_days * DAY):
        ts = np.arange(s0, min(s0 + slice_days * DAY, end + 1), scrape, dtype=np.int64)
        if s0 + slice_days * DAY >= end and ts[-1] != end:
            ts = np.append(ts, end)
        t = time.perf_counter()
        path = scratch / f"slice-{s0}.om"
        total_samples += write_slice(path, c, ts, state)
        text_bytes += path.stat().st_size
        gen_s += time.perf_counter() - t
        if pending:
            t = time.perf_counter()
            _finish(*pending)
            fill_s += time.perf_counter() - t
        print(f"  slice {time.strftime('%Y-%m-%d', time.gmtime(s0))}: {path.stat().st_size / 1e9:.1f} GB text",
              flush=True)
        pending = (subprocess.Popen(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                                     "--max-block-duration=744h", str(path), str(tsdb)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
    t = time.perf_counter()
    _finish(*pending)
    fill_s += time.perf_counter() - t
    shutil.rmtree(scratch, ignore_errors=True)
    return {"samples_written": total_samples, "text_gb": text_bytes / 1e9, "generate_s": gen_s, "backfill_wait_s": fill_s}


def _finish(proc: subprocess.Popen, path: Path) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"promtool failed on {path}: {err.decode()[-2000:]}")
    path.unlink()


# ---------------------------------------------------------------------------------------------
# The measured run (a fresh interpreter, so its peak RSS is the collector's alone)

HWM = r"""
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

DRIVER = HWM + r"""
import json, sys, time
from datetime import datetime, UTC
sys.path.insert(0, sys.argv[1])
from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus
url, start, end, out = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
config = PrometheusConfig(url=url, timeout=300)
client = PrometheusClient(config)
t0 = time.perf_counter()
snap = collect_prometheus(config, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
                          client=client)
wall = time.perf_counter() - t0
t1 = time.perf_counter()
snap.write(out)
write_s = time.perf_counter() - t1
print(json.dumps({
    "wall_s": wall, "write_s": write_s, "requests": len(client.log),
    "log": [dict(zip(["what", "path", "seconds", "status", "bytes"], e)) for e in client.log.entries],
    "peak_rss_mb": hwm(),
    "rows": {k: v.height for k, v in snap.frames().items()}, "step": snap.manifest.step_seconds,
    "warnings": snap.manifest.warnings, "absent": snap.manifest.absent,
}))
"""

LIBRARY = HWM + r"""
import json, sys, time
from datetime import datetime, UTC
from prometheus_api_client import PrometheusConnect
url, query, start, end, step = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
prom = PrometheusConnect(url=url, timeout=300, headers={"Accept-Encoding": "identity"})
t0 = time.perf_counter()
data = prom.custom_query_range(query, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), step)
points = sum(len(s["values"]) for s in data)
print(json.dumps({"seconds": time.perf_counter() - t0, "points": points,
                  "peak_rss_mb": hwm()}))
"""

OURS = HWM + r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig
url, query, start, end, step = sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
client = PrometheusClient(PrometheusConfig(url=url, timeout=300, max_points_per_request=10**9))
t0 = time.perf_counter()
shards = client.range(query, start, end, step, "cpu")
print(json.dumps({"seconds": time.perf_counter() - t0, "points": sum(m.points for m in shards),
                  "peak_rss_mb": hwm()}))
"""


def _server_requests(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{"):
            handler = line.split('handler="')[1].split('"')[0]
            out[handler] = out.get(handler, 0) + float(line.rsplit(" ", 1)[1])
    return out


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_ = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop_.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except OSError:
                return
            time.sleep(0.05)


def truth_check(c: dict, snap_dir: Path, days: int, scrape: int, step: int) -> dict:
    """Compare the written snapshot with the generator: requests, peak memory, p95 CPU."""
    from analyzer.snapshot import load_snapshot

    snap = load_snapshot(snap_dir)
    frame = c["containers"].with_row_index("k")
    ts = np.arange(T0, T0 + days * DAY + 1, scrape, dtype=np.int64)
    cpu, mem = usage(c, ts)
    per = step // scrape
    # Mean CPU over each step ending at a multiple of the step (what rate() over the step gives).
    ends = np.flatnonzero((ts % step == 0) & (ts - T0 >= step))
    cum = np.concatenate([np.zeros((cpu.shape[0], 1)), np.cumsum(cpu, axis=1)], axis=1)
    means = (cum[:, ends + 1] - cum[:, ends + 1 - per]) / per
    truth = frame.select("k", "namespace", "pod", "container", "cpu_request", "memory_request", "memory_limit").with_columns(
        pl.Series("p95_cpu", np.quantile(means, 0.95, axis=1, method="linear")),
        pl.Series("max_mem", mem.max(axis=1)))
    got = snap.usage.with_columns(pl.col("namespace", "pod", "container").cast(pl.String)).group_by(
        "namespace", "pod", "container", "resource").agg(
        pl.col("value").quantile(0.95, interpolation="linear").alias("p95"), pl.col("value").max().alias("max"))
    cpu_got = got.filter(pl.col("resource") == "cpu").select("namespace", "pod", "container", "p95")
    mem_got = got.filter(pl.col("resource") == "memory").select("namespace", "pod", "container", "max")
    cont = snap.containers.with_columns(pl.col("namespace", "pod", "container").cast(pl.String))
    j = truth.join(cpu_got, on=["namespace", "pod", "container"], how="left").join(
        mem_got, on=["namespace", "pod", "container"], how="left").join(
        cont.select("namespace", "pod", "container", pl.col("cpu_request").alias("got_cpu_req"),
                    pl.col("memory_request").alias("got_mem_req"), pl.col("memory_limit").alias("got_mem_lim")),
        on=["namespace", "pod", "container"], how="left")
    rel = ((j["p95"] - j["p95_cpu"]).abs() / j["p95_cpu"]).to_numpy()
    return {
        "containers_expected": truth.height, "containers_found": cont.height,
        "p95_cpu_max_rel_err": float(np.nanmax(rel)), "p95_cpu_within_2pct": float(np.mean(rel <= 0.02)),
        "max_memory_exact": float((j["max"] == j["max_mem"]).mean()),
        "requests_exact": float(((j["got_cpu_req"] == j["cpu_request"]) & (j["got_mem_req"] == j["memory_request"])
                                 & (j["got_mem_lim"] == j["memory_limit"])).mean()),
        "oom_events": snap.events.filter(pl.col("reason") == "OOMKilled").height,
        "oom_expected": sum(len(v) for v in oom_times(c, T0, T0 + days * DAY).values()),
        "gpu_rows": snap.usage.filter(pl.col("resource") == "gpu").height,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--containers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--scrape", type=int, default=60, help="scrape interval of the generated data, seconds")
    ap.add_argument("--slice-days", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kubetune-bench-prometheus")
    ap.add_argument("--fresh", action="store_true", help="rebuild the TSDB even if one with these parameters exists")
    ap.add_argument("--skip-library", action="store_true", help="skip the prometheus-api-client decoding comparison")
    args = ap.parse_args()
    need("prometheus", "promtool")
    if not args.skip_library and importlib.util.find_spec("prometheus_api_client") is None:
        print("prometheus-api-client is not installed (pip install -e '.[bench]'): skipping the decoding "
              "comparison.", file=sys.stderr)
        args.skip_library = True
    key = f"c{args.containers}-d{args.days}-s{args.scrape}"
    base = args.workdir / key
    tsdb = base / "tsdb"
    meta_file = base / "build.json"
    if args.fresh or not meta_file.exists():
        shutil.rmtree(base, ignore_errors=True)
        tsdb.mkdir(parents=True)
        print(f"generating and backfilling {args.containers} containers x {args.days} d at {args.scrape} s into {tsdb}",
              flush=True)
        t = time.perf_counter()
        meta = build_tsdb(args.containers, args.days, args.scrape, tsdb, args.slice_days)
        meta["build_s"] = time.perf_counter() - t
        meta["samples_in_tsdb"] = block_samples(tsdb)
        meta["tsdb_mb"] = sum(f.stat().st_size for f in tsdb.rglob("*") if f.is_file()) / 1e6
        meta_file.write_text(json.dumps(meta, indent=2))
    meta = json.loads(meta_file.read_text())
    print(json.dumps(meta, indent=2), flush=True)
    c = cluster(args.containers)
    work = base / "run"
    shutil.rmtree(work, ignore_errors=True)
    server = start_prometheus(tsdb, work, extra_args=("--storage.tsdb.min-block-duration=2h",
                                                      "--storage.tsdb.max-block-duration=2h"))
    try:
        time.sleep(2)
        rss_before = server.peak_rss_bytes()
        before = _server_requests(server.url)
        sampler = RssSampler(server.pid)
        sampler.start()
        start, end = T0, T0 + args.days * DAY
        out = work / "snapshot"
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), server.url, str(start), str(end), str(out)],
                              capture_output=True, text=True, timeout=1800)
        sampler.stop_.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"collector failed: {proc.stderr[-3000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        after = _server_requests(server.url)
        server_requests = {h: after.get(h, 0) - before.get(h, 0) for h in after if after.get(h, 0) != before.get(h, 0)}
        server_requests.pop("/metrics", None)
        check = truth_check(c, out, args.days, args.scrape, run["step"])
        lib = ours = None
        if not args.skip_library:
            from analyzer.collectors import promql as q

            query = q.cpu_usage(q.Scope(), run["step"], args.scrape, "prometheus", aggregate=False)
            argv = [server.url, query, str(start), str(end), str(run["step"])]
            ours = json.loads(subprocess.run([sys.executable, "-c", OURS, str(ROOT), *argv], capture_output=True,
                                             text=True, check=True, timeout=1800).stdout)
            lib = json.loads(subprocess.run([sys.executable, "-c", LIBRARY, *argv], capture_output=True, text=True,
                                            check=True, timeout=1800).stdout)
    finally:
        server.stop()
    result = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}, prometheus "
                   + subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split()[2],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "dataset": {"containers": args.containers, "days": args.days, "scrape_s": args.scrape, **meta},
        "collect": {k: run[k] for k in ("wall_s", "write_s", "requests", "peak_rss_mb", "rows", "step", "absent",
                                        "warnings")},
        "server_requests": server_requests,
        "server_rss_mb": {"before": (rss_before or 0) / 1e6, "peak_during_collect": sampler.peak / 1e6},
        "truth": check, "cpu_query_decode": {"kubetune": ours, "prometheus_api_client": lib},
        "per_request": [(e["what"], round(e["seconds"], 2), round(e["bytes"] / 1e6, 1)) for e in run["log"]],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
