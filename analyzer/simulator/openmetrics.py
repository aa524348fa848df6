"""A Snapshot rendered as the real exporters would have shown it, in OpenMetrics text.

``write_openmetrics(snapshot, path)`` writes what Prometheus would have scraped from cAdvisor
(the kubelet), kube-state-metrics, NVIDIA dcgm-exporter and OpenCost over the snapshot's
window, in the form ``promtool tsdb create-blocks-from openmetrics`` backfills: timestamps in
seconds, every series contiguous with strictly increasing timestamps, every family contiguous
with one ``# TYPE`` (counters are declared without ``_total`` and sampled with it), no blank
lines, ``# EOF`` last. Metric and label names are the exporters' own
(``shared/docs/domain-reference.md`` sections 2-5). The file is written to a temporary file
beside ``path`` and renamed, so a failure never leaves half a file. It returns the counts per
family, keyed by the sampled metric name: ``{name: {"type": ..., "series": n, "samples": n}}``
(their sum is what ``promtool tsdb list`` must show after the backfill).

Families: cAdvisor ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
``container_cpu_cfs_periods_total``, ``container_cpu_cfs_throttled_periods_total``,
``container_oom_events_total``; kube-state-metrics ``kube_pod_info``/``_owner``/``_start_time``,
``kube_pod_[init_]container_info``, ``kube_pod_[init_]container_resource_requests``/``_limits``,
``kube_pod_[init_]container_status_restarts_total``/``_last_terminated_reason``,
``kube_pod_container_status_last_terminated_exitcode``, ``kube_replicaset_owner``,
``kube_job_owner``, ``kube_deployment_spec_replicas``, ``kube_statefulset_replicas``,
``kube_daemonset_status_desired_number_scheduled``, ``kube_job_spec_parallelism``,
``kube_horizontalpodautoscaler_info``/``_spec_min_replicas``/``_spec_max_replicas``/
``_spec_target_metric``, ``kube_node_info``/``label_set``/``_status_capacity``/
``_status_allocatable``/``_spec_taint``, ``kube_namespace_labels``; dcgm-exporter
``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_PROF_GR_ENGINE_ACTIVE``, ``DCGM_FI_DEV_FB_USED``/``_FREE``;
OpenCost ``node_total_hourly_cost``. Label sets are long, as the real ones are (cgroup paths,
64-hex container IDs, image digests): about 400 bytes a sample. Measured: 100 simulated
workloads x 14 days at 5 min = 39 M samples, 15.5 GB of text, ~70 s, 1.1 GB peak RSS.

Text is generated column-wise: label sets are built once per series with Polars string
expressions and gathered per sample, and lines are assembled with ``pl.concat_str`` and
written in chunks of ``chunk_lines``, so tens of millions of lines need no Python loop per
sample (Python touches only per-pod/per-node identity: uids, IPs, container IDs).

Decisions
---------
- **Sampling.** cAdvisor and DCGM series are sampled at the usage frame's timestamps;
  kube-state-metrics, DCGM's idle devices and OpenCost at the grid ``start + k * step`` up to
  ``end`` (the manifest's window). A pod's KSM series exist at the grid points between its
  ``started_at`` and ``ended_at`` (the window's edges when null), widened to cover its usage
  samples. Controllers (ReplicaSet, Deployment, HPA, ...) exist from their first pod on; a
  Job until its last pod ends. Nodes between ``first_seen`` and ``last_seen``.
- **CPU counter.** ``container_cpu_usage_seconds_total`` is the integral of the usage: a
  sample's cores count for the step that ends at its timestamp (``value * step_seconds``), so
  ``rate()``/``increase()`` over one step give back the snapshot's value exactly. It counts from
  zero one step before the container's first sample (the snapshot knows no earlier usage; a
  larger start would also mislead VictoriaMetrics' guess of where a new counter starts). After a
  restart (an event other than ``Completed``/``Evicted``: an OOM kill first of all) the
  counter restarts from zero at the first sample at or after the event, in the same series:
  real cAdvisor starts a new series under the new container ID; a reset in one series is
  what ``rate()``'s reset handling (and the test of monotonicity) is about.
- **CFS throttling** (containers with a CPU limit): 10 periods per second of each step (100 ms
  CFS periods), of which a share ``clip((u - 0.5) / 0.5, 0, 1) ** 2`` is throttled, ``u`` being
  usage / limit: none at half the limit, a quarter at 75 %, all at the limit. A model, not a
  measurement. Both counters are whole numbers and restart with the container.
- **OOM events.** ``container_oom_events_total`` counts the container's OOMKilled events up to
  each sample and is kept cumulative across restarts (in real cAdvisor the kill is counted in
  the dying cgroup, which a scrape rarely sees; that is why collectors read KSM as well).
- **Pod-level cgroups** (``pod_level_series``): the pod cgroup (``container=""``) holds the sum
  of its containers (CPU never resets: a parent cgroup keeps its dead children's time) plus the
  pause container, which also reports as ``container="POD"`` (0.1 millicore, 512 KiB).
  ``duplicate_job`` repeats every container series under ``job="cadvisor"`` (a standalone
  cAdvisor DaemonSet on ``<node IP>:8080/metrics``), as a second scrape of the same cgroups.
- **kube-state-metrics.** App containers use ``kube_pod_container_*``; init containers and
  sidecars the ``kube_pod_init_container_*`` families KSM uses for ``spec.initContainers``
  (``kube_pod_init_container_info{restart_policy="Always"}`` marks a sidecar). A request that is
  not set but has a limit reports the limit (API-server defaulting). Resource names are
  sanitized (``nvidia.com/mig-1g.5gb`` -> ``nvidia_com_mig_1g_5gb``). The restart counter
  starts at the first restart event's ``restart_count`` minus one (restarts before the window)
  and grows by one per restart event; ``last_terminated_reason``/``_exitcode`` follow the
  latest termination event (not ``Restart``/``Evicted``). Bare pods and owner-less Jobs and
  ReplicaSets report ``owner_kind="<none>"``, as KSM does; a controller's pod whose direct
  owner the snapshot does not record is owned by the controller itself. ``kube_node_labels`` carries every
  node label (``label_`` + the key with characters outside ``[a-zA-Z0-9_]`` as ``_``; a
  collision gets ``_conflictN``), i.e. KSM run with ``--metric-labels-allowlist=nodes=[*]``.
  ``kube_pod_completion_time`` is not emitted (a pod's series end when it does).
- **DCGM.** Per device (GPU, or MIG instance ``UUID/GPU_I_ID``): ``DCGM_FI_DEV_GPU_UTIL`` as a
  whole percent (whole GPUs only: it does not exist for MIG instances),
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` as the ratio, ``DCGM_FI_DEV_FB_USED``/``_FREE`` in whole MiB
  (used + free = the device's framebuffer). Assigned samples carry ``namespace, pod,
  container``; grid points where a device serves nobody report it idle without them.
  ``Hostname`` (dcgm-exporter <= 4.8) or ``hostname`` (newer) holds the node name.
- **OpenCost** ``node_total_hourly_cost`` for nodes with an ``hourly_price`` (honor_labels:
  ``instance`` is the node, as OpenCost sets it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.atomic import atomic_file
from analyzer.simulator.kube_identity import PAUSE_IMAGE, provider_id
from analyzer.simulator.om_format import (
    CFS_PERIODS_PER_SECOND,
    DCGM_JOB,
    DRIVER_VERSION,
    DUPLICATE_JOB,
    KUBELET_JOB,
    OPENCOST_JOB,
    PAUSE_CPU,
    PAUSE_MEMORY,
    SERIES_KEY,
    Cluster,
    Out,
    int_text,
    label_set,
    label_text,
    num_text,
    str_frame,
    to_us,
)
from analyzer.simulator.om_ksm import ksm
from analyzer.snapshot import Snapshot
from analyzer.units import MIB


# ---------------------------------------------------------------------------------------------
# cAdvisor


def _cadvisor(out: Out, cl: Cluster, duplicate_job: bool, pod_level_series: bool) -> None:
    """cAdvisor's container families (CPU, memory, throttling, OOM events) for every container sample.

    Length: every family is rendered from one per-series label frame, so the label sets stay consistent.
    """
    c = cl.containers
    key = c.select(*SERIES_KEY, "cid")
    usage = cl.usage.filter(pl.col("resource").is_in(["cpu", "memory"])).select(
        *SERIES_KEY, "resource", to_us(pl.col("timestamp")).alias("ts"), "value")
    usage = usage.with_columns(pl.col(k).cast(pl.String) for k in SERIES_KEY).join(key, on=SERIES_KEY, how="inner").drop(SERIES_KEY)
    cpu = usage.filter(pl.col("resource") == "cpu").drop("resource").sort("cid", "ts")
    mem = usage.filter(pl.col("resource") == "memory").drop("resource").sort("cid", "ts")
    del usage
    cpu = cl.restart_runs(cpu).with_columns((pl.col("value") * cl.step_s).alias("inc"))
    cpu = cpu.with_columns(pl.col("inc").cum_sum().over("cid", "run").alias("counter"))

    node_ip = pl.col("host_ip").fill_null("")
    base = [("namespace", pl.col("namespace")), ("pod", pl.col("pod")), ("container", pl.col("container")),
            ("id", pl.concat_str(pl.col("cgroup"), pl.lit("/cri-containerd-"), pl.col("container_id"),
                                 pl.lit(".scope"))),
            ("image", pl.col("image")), ("name", pl.col("container_id"))]
    kubelet = [("instance", pl.concat_str(node_ip, pl.lit(":10250"))), ("job", KUBELET_JOB),
               ("metrics_path", "/metrics/cadvisor")]
    dup = [("instance", pl.concat_str(node_ip, pl.lit(":8080"))), ("job", DUPLICATE_JOB), ("metrics_path", "/metrics")]
    variants = [kubelet] + ([dup] if duplicate_job else [])

    def labels(extra: list, scrape: list) -> pl.Series:
        return c.select(label_set(*base[:3], *extra, *base[3:], *scrape).alias("l")).get_column("l")

    # Pod-level cgroup and pause series (kubelet job only, as one scrape sees them).
    pods = cl.pods
    pod_base = [("namespace", pl.col("namespace")), ("pod", pl.col("pod"))]
    pod_scrape = [("instance", pl.concat_str(pl.col("host_ip").fill_null(""), pl.lit(":10250"))), ("job", KUBELET_JOB),
                  ("metrics_path", "/metrics/cadvisor")]

    def pod_labels(container: str, extra: list) -> pl.Series:
        if container == "POD":
            ident = [("id", pl.concat_str(pl.col("cgroup"), pl.lit("/cri-containerd-"), pl.col("sandbox"),
                                          pl.lit(".scope"))), ("image", PAUSE_IMAGE), ("name", pl.col("sandbox"))]
        else:
            ident = [("id", pl.col("cgroup")), ("image", ""), ("name", "")]
        return pods.select(label_set(*pod_base, ("container", container), *extra, *ident, *pod_scrape).alias("l")
                           ).get_column("l")

    pod_cpu = pod_mem = None
    if pod_level_series and cpu.height:
        pid = c.select(pl.col("cid").cast(cpu.schema["cid"]), "pid")
        pod_cpu = (cpu.join(pid, on="cid").group_by("pid", "ts").agg(pl.col("inc").sum()).sort("pid", "ts")
                   .with_columns((pl.int_range(1, pl.len() + 1).over("pid") * (PAUSE_CPU * cl.step_s)).alias("pause")))
        pod_cpu = pod_cpu.with_columns((pl.col("inc").cum_sum().over("pid") + pl.col("pause")).alias("counter"))
        pod_mem = mem.join(pid.with_columns(pl.col("cid").cast(mem.schema["cid"])), on="cid").group_by("pid", "ts").agg(
            pl.col("value").sum()).sort("pid", "ts")

    # container_cpu_usage_seconds_total
    fam = out.family("container_cpu_usage_seconds", "counter")
    cpu_samples = cpu.select(pl.col("cid").alias("sid"), "ts", num_text(pl.col("counter")).alias("v"))
    for scrape in variants:
        fam.samples_by_series(labels([("cpu", "total")], scrape), cpu_samples)
    if pod_cpu is not None:
        fam.samples_by_series(pod_labels("", [("cpu", "total")]), pod_cpu.select(
            pl.col("pid").alias("sid"), "ts", num_text(pl.col("counter")).alias("v")))
        fam.samples_by_series(pod_labels("POD", [("cpu", "total")]), pod_cpu.select(
            pl.col("pid").alias("sid"), "ts", num_text(pl.col("pause")).alias("v")))
    del cpu_samples

    # container_memory_working_set_bytes
    fam = out.family("container_memory_working_set_bytes", "gauge")
    mem_samples = mem.select(pl.col("cid").alias("sid"), "ts", int_text(pl.col("value")).alias("v"))
    for scrape in variants:
        fam.samples_by_series(labels([], scrape), mem_samples)
    if pod_mem is not None:
        fam.samples_by_series(pod_labels("", []), pod_mem.select(
            pl.col("pid").alias("sid"), "ts", int_text(pl.col("value") + PAUSE_MEMORY).alias("v")))
        fam.samples_by_series(pod_labels("POD", []), pod_mem.select(
            pl.col("pid").alias("sid"), "ts", pl.lit(str(PAUSE_MEMORY)).alias("v")))
    del mem_samples, pod_mem

    # CFS periods for containers with a CPU limit
    limits = c.filter(pl.col("cpu_limit").is_not_null() & (pl.col("cpu_limit") > 0)).select(
        pl.col("cid").cast(cpu.schema["cid"]), "cpu_limit")
    cfs = cpu.join(limits, on="cid", how="inner").sort("cid", "ts")
    u = pl.col("value") / pl.col("cpu_limit")
    share = ((u - 0.5) / 0.5).clip(0.0, 1.0).pow(2)
    periods = float(cl.step_s * CFS_PERIODS_PER_SECOND)
    cfs = cfs.with_columns(
        (pl.int_range(1, pl.len() + 1).over("cid", "run") * periods).alias("periods"),
        (share * periods).cum_sum().over("cid", "run").floor().alias("throttled"))
    for name, col in (("container_cpu_cfs_periods", "periods"), ("container_cpu_cfs_throttled_periods", "throttled")):
        fam = out.family(name, "counter")
        s = cfs.select(pl.col("cid").alias("sid"), "ts", int_text(pl.col(col)).alias("v"))
        for scrape in variants:
            fam.samples_by_series(labels([], scrape), s)
    del cfs

    # container_oom_events_total: cumulative OOM kills, sampled with the CPU samples.
    ooms = cl.events.filter(pl.col("reason") == "OOMKilled").join(key, on=SERIES_KEY, how="inner").sort("cid", "ts").select(
        pl.col("cid").cast(cpu.schema["cid"]), "ts", (pl.int_range(pl.len()).over("cid") + 1).alias("n"))
    ticks = cpu.select("cid", "ts")
    if ooms.height:
        ticks = ticks.join_asof(ooms, on="ts", by="cid", strategy="backward", check_sortedness=False)
    else:
        ticks = ticks.with_columns(pl.lit(None, pl.Int64).alias("n"))
    fam = out.family("container_oom_events", "counter")
    s = ticks.select(pl.col("cid").alias("sid"), "ts", pl.col("n").fill_null(0).cast(pl.String).alias("v"))
    for scrape in variants:
        fam.samples_by_series(labels([], scrape), s)


# ---------------------------------------------------------------------------------------------
# DCGM exporter


def _dcgm(out: Out, cl: Cluster, hostname_label: str) -> None:
    gpus = str_frame(cl.snapshot.gpus)
    usage = cl.usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"]) & pl.col("device").is_not_null())
    usage = str_frame(usage.select(*SERIES_KEY, "device", "resource", to_us(pl.col("timestamp")).alias("ts"), "value"))
    # Devices: the gpus frame, plus any device only the usage names (node from its pod).
    seen = usage.select(*SERIES_KEY, "device").unique().join(cl.containers.select(*SERIES_KEY, "node"), on=SERIES_KEY, how="left")
    extra = seen.join(gpus.select("device"), on="device", how="anti").group_by("device").agg(pl.col("node").first())
    if extra.height:
        node_meta = str_frame(cl.snapshot.nodes).select("node", pl.col("gpu_model").alias("model"),
                                                   pl.col("gpu_memory").alias("memory_total"))
        taken = gpus.group_by("node").agg((pl.col("gpu_index").max() + 1).alias("_next"))
        extra = (extra.join(node_meta, on="node", how="left").join(taken, on="node", how="left").sort("node", "device")
                 .with_columns((pl.col("_next").fill_null(0) + pl.int_range(pl.len()).over("node")).alias("gpu_index"),
                               pl.lit(None, pl.String).alias("mig_profile")).drop("_next"))
        gpus = pl.concat([gpus, extra], how="diagonal_relaxed")
    if gpus.height == 0:
        return
    gpus = gpus.filter(pl.col("node").is_not_null()).sort("node", "gpu_index", "device", nulls_last=True)
    gpus = gpus.with_columns(pl.col("gpu_index").fill_null(0)).with_row_index("did")
    gpus = gpus.join(cl.nodes.select("node", "k0", "k1"), on="node", how="left").with_columns(
        pl.col("k0").fill_null(0), pl.col("k1").fill_null(cl.K - 1)).sort("did")
    mig = pl.col("mig_profile").is_not_null()
    uuid = pl.col("device").str.split("/").list.first()
    gi = pl.col("device").str.split("/").list.get(1, null_on_oob=True)
    bus = ((pl.col("gpu_index") + 1) * 16 % 256)
    pci = pl.concat_str(pl.lit("00000000:"), bus.map_elements(lambda b: f"{b:02X}", return_dtype=pl.String),
                        pl.lit(":00.0"))
    dev_labels = [("gpu", pl.col("gpu_index").cast(pl.String)), ("UUID", uuid), ("pci_bus_id", pci),
                  ("device", pl.concat_str(pl.lit("nvidia"), pl.col("gpu_index").cast(pl.String))),
                  ("modelName", pl.col("model")), ("GPU_I_PROFILE", pl.col("mig_profile"), mig),
                  ("GPU_I_ID", gi, mig), (hostname_label, pl.col("node")), ("DCGM_FI_DRIVER_VERSION", DRIVER_VERSION)]
    scrape = [("instance", pl.concat_str(pl.col("node").replace_strict(cl.node_ip, default="", return_dtype=pl.String),
                                         pl.lit(":9400"))), ("job", DCGM_JOB)]

    # Assigned samples: one series per device x container.
    wide = usage.pivot(on="resource", index=[*SERIES_KEY, "device", "ts"], values="value", aggregate_function="max")
    for col in ("gpu", "gpu_memory"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(col))
    assigned = wide.join(gpus.select("device", "did"), on="device", how="inner")
    series = assigned.select("did", *SERIES_KEY).unique().sort("did", *SERIES_KEY).with_row_index("sid")
    assigned = assigned.join(series, on=["did", *SERIES_KEY], how="left").sort("sid", "ts")
    series = series.join(gpus, on="did", how="left")
    series_labels = series.select(label_set(*dev_labels, ("container", pl.col("container")),
                                          ("namespace", pl.col("namespace")), ("pod", pl.col("pod")), *scrape)
                                  .alias("l")).get_column("l")
    # Idle grid points: the device serves nobody.
    grid = gpus.select("did", pl.int_ranges(pl.col("k0"), pl.col("k1") + 1).alias("k")).explode("k").drop_nulls("k")
    grid = grid.with_columns((pl.col("k") * cl.step_us + cl.start_us).alias("ts")).drop("k")
    idle = grid.join(assigned.select("did", "ts").unique(), on=["did", "ts"], how="anti").sort("did", "ts")
    idle_labels = gpus.select(label_set(*dev_labels, *scrape).alias("l")).get_column("l")
    total_mib = (pl.col("memory_total") / MIB).round(0)
    mem_total = gpus.select("did", "memory_total")
    assigned = assigned.join(mem_total, on="did", how="left", maintain_order="left")
    idle = idle.join(mem_total, on="did", how="left", maintain_order="left")
    whole = gpus.filter(~mig).select("did")

    used = (pl.col("gpu_memory") / MIB).round(0)
    for name, a_val, i_val, a_filter, only_whole in (
            ("DCGM_FI_DEV_GPU_UTIL", int_text(pl.col("gpu") * 100), pl.lit("0"), pl.col("gpu").is_not_null(), True),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", num_text(pl.col("gpu")), pl.lit("0.0"), pl.col("gpu").is_not_null(), False),
            ("DCGM_FI_DEV_FB_FREE", int_text(total_mib - used.fill_null(0)), int_text(total_mib),
             pl.col("memory_total").is_not_null(), False),
            ("DCGM_FI_DEV_FB_USED", int_text(used), pl.lit("0"), pl.col("gpu_memory").is_not_null(), False)):
        fam = out.family(name, "gauge")
        a = assigned.filter(a_filter)
        i = idle.filter(pl.col("memory_total").is_not_null()) if name == "DCGM_FI_DEV_FB_FREE" else idle
        if only_whole:
            a = a.join(whole, on="did", how="semi")
            i = i.join(whole, on="did", how="semi")
        fam.samples_by_series(series_labels, a.select("sid", "ts", a_val.alias("v")))
        fam.samples_by_series(idle_labels, i.select(pl.col("did").alias("sid"), "ts", i_val.alias("v")))


# ---------------------------------------------------------------------------------------------
# OpenCost


def _opencost(out: Out, cl: Cluster) -> None:
    n = cl.nodes.filter(pl.col("hourly_price").is_not_null())
    rows = []
    for r in n.to_dicts():
        arch = next((p["value"] for p in r.get("labels") or [] if p.get("key") == "kubernetes.io/arch"), "amd64")
        rows.append({"labels": label_text([
            ("instance", r["node"]), ("job", OPENCOST_JOB), ("node", r["node"]),
            ("instance_type", r.get("instance_type") or ""), ("region", r.get("region") or ""),
            ("provider_id", provider_id(r["node"], r.get("provider"), r.get("zone")) or ""), ("arch", arch)]),
            "v": repr(float(r["hourly_price"])), "k0": r["k0"], "k1": r["k1"]})
    out.family("node_total_hourly_cost", "gauge").grid(
        pl.DataFrame(rows, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))


# ---------------------------------------------------------------------------------------------
# Public API


def write_openmetrics(snapshot: Snapshot, path: str | os.PathLike[str], *, hostname_label: str = "Hostname",
                      duplicate_job: bool = False, pod_level_series: bool = True,
                      chunk_lines: int = 500_000) -> dict[str, dict[str, Any]]:
    """Write the snapshot as cAdvisor, kube-state-metrics, DCGM and OpenCost OpenMetrics text.

    ``hostname_label``: ``"Hostname"`` (dcgm-exporter <= 4.8) or ``"hostname"`` (newer).
    ``duplicate_job``: every cAdvisor container series is scraped twice (two jobs).
    ``pod_level_series``: also the pod cgroup (``container=""``) and pause (``container="POD"``) series.
    Returns ``{metric name: {"type": ..., "series": n, "samples": n}}`` for every family written.
    """
    if hostname_label not in ("Hostname", "hostname"):
        raise ValueError(f"hostname_label must be 'Hostname' or 'hostname', not {hostname_label!r}")
    if chunk_lines < 1:
        raise ValueError("chunk_lines must be positive")
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    cl = Cluster(snapshot)
    with atomic_file(target, buffering=1 << 20) as fh:
        out = Out(fh, cl.start_us, cl.step_us, chunk_lines)
        _cadvisor(out, cl, duplicate_job, pod_level_series)
        ksm(out, cl)
        _dcgm(out, cl, hostname_label)
        _opencost(out, cl)
        fh.write(b"# EOF\n")
    return {f.sample_name: {"type": f.mtype, "series": f.series, "samples": f.samples}
            for f in out.families if f.samples}


__all__ = ["write_openmetrics"]
