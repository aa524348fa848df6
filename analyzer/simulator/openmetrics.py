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
``_spec_target_metric``, ``kube_node_info``/``_labels``/``_status_capacity``/
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
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import polars as pl

from analyzer.atomic import atomic_file
from analyzer.simulator.kube_identity import (
    CONTAINER_RUNTIME,
    KERNEL,
    KUBELET_VERSION,
    OS_IMAGE,
    PAUSE_IMAGE,
    PODS_PER_NODE,
    container_id,
    image_for,
    image_id,
    node_extended_resources,
    node_ip,
    node_system_info,
    object_uid,
    pod_cgroup,
    pod_ip,
    provider_id,
    qos_class,
    sandbox_id,
)
from analyzer.snapshot import Snapshot
from analyzer.units import MIB

US = 1_000_000
CFS_PERIODS_PER_SECOND = 10  # 100 ms CFS periods
PAUSE_CPU = 0.0001  # cores
PAUSE_MEMORY = 512 * 1024  # bytes
DRIVER_VERSION = "550.127.05"
KUBELET_JOB = "kubelet"
DUPLICATE_JOB = "cadvisor"
KSM_JOB = "kube-state-metrics"
KSM_INSTANCE = "10.96.44.17:8080"
DCGM_JOB = "nvidia-dcgm-exporter"
OPENCOST_JOB = "opencost"
NOT_RESTARTS = ("Completed", "Evicted")
NOT_TERMINATIONS = ("Restart", "Evicted")
_KEY = ["namespace", "pod", "container"]
_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")


# ---------------------------------------------------------------------------------------------
# Text helpers


def _escape(expr: pl.Expr) -> pl.Expr:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return (expr.cast(pl.String).fill_null("").str.replace_all("\\", "\\\\", literal=True)
            .str.replace_all('"', '\\"', literal=True).str.replace_all("\n", "\\n", literal=True))


def _escape_text(value: Any) -> str:
    return ("" if value is None else str(value)).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(*items: tuple[str, Any] | tuple[str, Any, pl.Expr]) -> pl.Expr:
    """``{a="x",b="y"}`` from (name, value expr or str[, present-when expr]) items."""
    parts = []
    for item in items:
        name, value = item[0], item[1]
        value_expr = pl.lit(_escape_text(value)) if isinstance(value, str) else _escape(value)
        frag = pl.concat_str(pl.lit(f',{name}="'), value_expr, pl.lit('"'))
        if len(item) == 3:
            frag = pl.when(item[2]).then(frag).otherwise(pl.lit(""))
        parts.append(frag)
    return pl.concat_str(pl.lit("{"), pl.concat_str(parts).str.slice(1), pl.lit("}"))


def _label_text(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(f'{k}="{_escape_text(v)}"' for k, v in pairs) + "}"


def _ts_text(col: str = "ts") -> pl.Expr:
    """Microseconds since the epoch -> seconds as text (fraction only when there is one)."""
    sec = pl.col(col).floordiv(US)
    frac = pl.col(col).mod(US)
    return pl.when(frac == 0).then(sec.cast(pl.String)).otherwise(pl.concat_str(
        sec.cast(pl.String), pl.lit("."), frac.cast(pl.String).str.zfill(6).str.strip_chars_end("0")))


def _num(expr: pl.Expr) -> pl.Expr:
    """A float as sample text."""
    return expr.cast(pl.Float64).cast(pl.String)


def _int(expr: pl.Expr) -> pl.Expr:
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def sanitize_label(name: str) -> str:
    return _SANITIZE.sub("_", name)


def _str(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


def _us(expr: pl.Expr) -> pl.Expr:
    return expr.dt.convert_time_zone("UTC").dt.epoch("us")


# ---------------------------------------------------------------------------------------------
# The writer


class _Family:
    def __init__(self, out: _Out, name: str, mtype: str):
        self.out, self.name, self.mtype = out, name, mtype
        self.sample_name = name + "_total" if mtype == "counter" else name
        self.series = 0
        self.samples = 0
        self.started = False

    def _header(self) -> None:
        if not self.started:
            self.started = True
            self.out.fh.write(f"# TYPE {self.name} {self.mtype}\n".encode())

    def _lines(self, frame: pl.DataFrame) -> None:
        """frame: labels, v, ts (microseconds), already in output order."""
        if frame.height == 0:
            return
        self._header()
        frame.select(pl.concat_str(pl.lit(self.sample_name), pl.col("labels"), pl.lit(" "), pl.col("v"),
                                   pl.lit(" "), _ts_text("ts")).alias("line")).write_csv(
            self.out.fh, include_header=False, quote_style="never")
        self.samples += frame.height

    def samples_by_series(self, labels: pl.Series, samples: pl.DataFrame) -> None:
        """labels: one label set per series id; samples: sid, ts, v sorted by (sid, ts)."""
        if samples.height == 0:
            return
        self.series += samples.get_column("sid").n_unique()
        step = self.out.chunk_lines
        for off in range(0, samples.height, step):
            part = samples.slice(off, step)
            self._lines(part.select(labels.gather(part.get_column("sid")).alias("labels"), "v", "ts"))

    def grid(self, segments: pl.DataFrame) -> None:
        """segments: labels, v, k0, k1 (grid indices, inclusive), in output order."""
        seg = segments.filter(pl.col("k1") >= pl.col("k0"))
        if seg.height == 0:
            return
        self.series += seg.get_column("labels").n_unique()
        n = pl.col("k1") - pl.col("k0") + 1
        seg = seg.with_columns(((n.cum_sum() - n) // self.out.chunk_lines).alias("_chunk"))
        start, step = self.out.start_us, self.out.step_us
        for part in seg.partition_by("_chunk", maintain_order=True):
            lines = part.select("labels", "v", pl.int_ranges(pl.col("k0"), pl.col("k1") + 1).alias("k")).explode("k")
            self._lines(lines.select("labels", "v", (pl.col("k") * step + start).alias("ts")))


class _Out:
    def __init__(self, fh: IO[bytes], start_us: int, step_us: int, chunk_lines: int):
        self.fh, self.start_us, self.step_us, self.chunk_lines = fh, start_us, step_us, chunk_lines
        self.families: list[_Family] = []

    def family(self, name: str, mtype: str) -> _Family:
        f = _Family(self, name, mtype)
        self.families.append(f)
        return f


# ---------------------------------------------------------------------------------------------
# Inputs shared by the exporters


class _Cluster:
    """The snapshot's pods, containers, nodes and devices with the identity the exporters print."""

    def __init__(self, snapshot: Snapshot):
        m = snapshot.manifest
        self.snapshot = snapshot
        self.step_s = int(m.step_seconds)
        self.step_us = self.step_s * US
        self.start_us = int(round(m.start.timestamp() * US))
        self.end_us = int(round(m.end.timestamp() * US))
        self.K = max(int((self.end_us - self.start_us) // self.step_us) + 1, 1)
        self.usage = snapshot.usage
        self.events = _str(snapshot.events).with_columns(_us(pl.col("timestamp")).alias("ts"))
        self._containers()
        self._pods()
        self.nodes = self._nodes()

    # grid indices of a time (microseconds): first grid point at/after, last at/before
    def k_ceil(self, ts: pl.Expr) -> pl.Expr:
        return (-((self.start_us - ts) // self.step_us)).clip(0, self.K)

    def k_floor(self, ts: pl.Expr) -> pl.Expr:
        return ((ts - self.start_us) // self.step_us).clip(-1, self.K - 1)

    def _containers(self) -> None:
        cont = _str(self.snapshot.containers).with_columns(
            _us(pl.col("started_at")).alias("started_us"), _us(pl.col("ended_at")).alias("ended_us"))
        spans = _str(self.usage.group_by(_KEY).agg(
            pl.col("workload_kind").first(), pl.col("workload").first(),
            _us(pl.col("timestamp")).min().alias("first_us"), _us(pl.col("timestamp")).max().alias("last_us")))
        c = cont.join(spans.select(*_KEY, "first_us", "last_us"), on=_KEY, how="left")
        extra = spans.join(cont.select(_KEY), on=_KEY, how="anti").with_columns(
            pl.lit("app").alias("container_type"))
        if extra.height:
            c = pl.concat([c, extra], how="diagonal_relaxed")
        c = c.with_columns(pl.col("container_type").fill_null("app")).sort(["namespace", "pod", "container"])
        rows = c.select(*_KEY, "workload").rows()
        self.containers = c.with_row_index("cid").with_columns(
            pl.Series("container_id", [container_id(ns, p, n) for ns, p, n, _ in rows], dtype=pl.String),
            pl.Series("image", [image_for(ns, w or p, n) for ns, p, n, w in rows], dtype=pl.String))

    def _pods(self) -> None:
        c = self.containers
        win0, win1 = self.start_us, self.end_us
        pods = c.group_by("namespace", "pod").agg(
            pl.col("workload_kind").drop_nulls().first(), pl.col("workload").drop_nulls().first(),
            pl.col("owner_kind").drop_nulls().first(), pl.col("owner_name").drop_nulls().first(),
            pl.col("node").drop_nulls().first(), pl.col("started_us").min(),
            pl.when(pl.col("ended_us").is_null().any()).then(None).otherwise(pl.col("ended_us").max())
            .alias("ended_us"),
            pl.col("first_us").min(), pl.col("last_us").max(),
        ).sort("namespace", "pod")
        t0 = pl.min_horizontal(pl.col("started_us").fill_null(win0), pl.col("first_us"))
        t1 = pl.max_horizontal(pl.col("ended_us").fill_null(win1), pl.col("last_us"))
        pods = pods.with_columns(
            pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"),
            self.k_ceil(t0).alias("k0"), self.k_floor(t1).alias("k1"))
        # Without a recorded direct owner, a controller's pod is owned by the controller itself.
        owned = pl.col("owner_kind").is_null() & (pl.col("workload_kind") != "Pod")
        pods = pods.with_columns(pl.when(owned).then(pl.col("workload_kind")).otherwise(pl.col("owner_kind"))
                                 .alias("owner_kind"),
                                 pl.when(owned).then(pl.col("workload")).otherwise(pl.col("owner_name"))
                                 .alias("owner_name"))
        per_pod: dict[tuple[str, str], list[dict]] = {}
        for r in c.select(*_KEY, "cpu_request", "cpu_limit", "memory_request", "memory_limit").to_dicts():
            per_pod.setdefault((r["namespace"], r["pod"]), []).append(r)
        keys = pods.select("namespace", "pod").rows()
        uids = [object_uid("Pod", ns, p) for ns, p in keys]
        qos = [qos_class(per_pod.get((ns, p), [])) for ns, p in keys]
        self.pods = pods.with_row_index("pid").with_columns(
            pl.Series("uid", uids, dtype=pl.String),
            pl.Series("pod_ip", [pod_ip(ns, p) for ns, p in keys], dtype=pl.String),
            pl.Series("cgroup", [pod_cgroup(u, q) for u, q in zip(uids, qos, strict=True)], dtype=pl.String),
            pl.Series("sandbox", [sandbox_id(ns, p) for ns, p in keys], dtype=pl.String),
        )
        node_names = [n for n in self.pods.get_column("node").unique().drop_nulls().to_list()]
        self.node_ip = {n: node_ip(n) for n in node_names}
        self.pods = self.pods.with_columns(
            pl.col("node").replace_strict(self.node_ip, default=None, return_dtype=pl.String).alias("host_ip"))
        pod_cols = self.pods.select("namespace", "pod", "pid", "uid", "cgroup", "host_ip", "k0", "k1",
                                    pl.col("node").alias("_node"), pl.col("workload_kind").alias("_kind"),
                                    pl.col("workload").alias("_workload"))
        self.containers = self.containers.join(pod_cols, on=["namespace", "pod"], how="left").with_columns(
            pl.coalesce("node", "_node").alias("node"), pl.col("_kind").alias("workload_kind"),
            pl.col("_workload").alias("workload")).drop("_node", "_kind", "_workload").sort("cid")

    def _nodes(self) -> pl.DataFrame:
        n = _str(self.snapshot.nodes).with_columns(
            _us(pl.col("first_seen")).alias("first_us"), _us(pl.col("last_seen")).alias("last_us"))
        known = set(n.get_column("node").to_list())
        missing = sorted({x for x in self.containers.get_column("node").drop_nulls().to_list() if x not in known})
        if missing:
            n = pl.concat([n, pl.DataFrame({"node": missing})], how="diagonal_relaxed")
        n = n.sort("node").with_columns(
            self.k_ceil(pl.col("first_us").fill_null(self.start_us)).alias("k0"),
            self.k_floor(pl.col("last_us").fill_null(self.end_us)).alias("k1"))
        self.node_ip.update({x: node_ip(x) for x in n.get_column("node").to_list()})
        return n

    def restart_runs(self, samples: pl.DataFrame) -> pl.DataFrame:
        """Add ``run``: how many restart events of the sample's container happened at or before it."""
        ev = self.events.filter(~pl.col("reason").is_in(NOT_RESTARTS)).join(
            self.containers.select(*_KEY, "cid"), on=_KEY, how="inner").sort("cid", "ts").select(
            "cid", "ts", (pl.int_range(pl.len()).over("cid") + 1).alias("run"))
        if ev.height == 0:
            return samples.with_columns(pl.lit(0, pl.Int64).alias("run"))
        out = samples.join_asof(ev.with_columns(pl.col("cid").cast(samples.schema["cid"])), on="ts", by="cid",
                                strategy="backward", check_sortedness=False)
        return out.with_columns(pl.col("run").fill_null(0).cast(pl.Int64))


# ---------------------------------------------------------------------------------------------
# cAdvisor


def _cadvisor(out: _Out, cl: _Cluster, duplicate_job: bool, pod_level_series: bool) -> None:
    """cAdvisor's container families (CPU, memory, throttling, OOM events) for every container sample.

    Length: every family is rendered from one per-series label frame, so the label sets stay consistent.
    """
    c = cl.containers
    key = c.select(*_KEY, "cid")
    usage = cl.usage.filter(pl.col("resource").is_in(["cpu", "memory"])).select(
        *_KEY, "resource", _us(pl.col("timestamp")).alias("ts"), "value")
    usage = usage.with_columns(pl.col(k).cast(pl.String) for k in _KEY).join(key, on=_KEY, how="inner").drop(_KEY)
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
        return c.select(_labels(*base[:3], *extra, *base[3:], *scrape).alias("l")).get_column("l")

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
        return pods.select(_labels(*pod_base, ("container", container), *extra, *ident, *pod_scrape).alias("l")
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
    cpu_samples = cpu.select(pl.col("cid").alias("sid"), "ts", _num(pl.col("counter")).alias("v"))
    for scrape in variants:
        fam.samples_by_series(labels([("cpu", "total")], scrape), cpu_samples)
    if pod_cpu is not None:
        fam.samples_by_series(pod_labels("", [("cpu", "total")]), pod_cpu.select(
            pl.col("pid").alias("sid"), "ts", _num(pl.col("counter")).alias("v")))
        fam.samples_by_series(pod_labels("POD", [("cpu", "total")]), pod_cpu.select(
            pl.col("pid").alias("sid"), "ts", _num(pl.col("pause")).alias("v")))
    del cpu_samples

    # container_memory_working_set_bytes
    fam = out.family("container_memory_working_set_bytes", "gauge")
    mem_samples = mem.select(pl.col("cid").alias("sid"), "ts", _int(pl.col("value")).alias("v"))
    for scrape in variants:
        fam.samples_by_series(labels([], scrape), mem_samples)
    if pod_mem is not None:
        fam.samples_by_series(pod_labels("", []), pod_mem.select(
            pl.col("pid").alias("sid"), "ts", _int(pl.col("value") + PAUSE_MEMORY).alias("v")))
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
        s = cfs.select(pl.col("cid").alias("sid"), "ts", _int(pl.col(col)).alias("v"))
        for scrape in variants:
            fam.samples_by_series(labels([], scrape), s)
    del cfs

    # container_oom_events_total: cumulative OOM kills, sampled with the CPU samples.
    ooms = cl.events.filter(pl.col("reason") == "OOMKilled").join(key, on=_KEY, how="inner").sort("cid", "ts").select(
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
# kube-state-metrics


def _ksm(out: _Out, cl: _Cluster) -> None:
    """kube-state-metrics' pod and container families on the scrape grid.

    Length: they share one label frame and one grid; controllers and nodes are separate functions.
    """
    c, pods = cl.containers, cl.pods
    scrape = [("instance", KSM_INSTANCE), ("job", KSM_JOB)]
    one = pl.lit("1")

    def emit(name: str, mtype: str, seg: pl.DataFrame) -> None:
        out.family(name, mtype).grid(seg)

    owner_kind = pl.col("owner_kind").fill_null("<none>")
    owner_name = pl.col("owner_name").fill_null("<none>")
    is_ctl = pl.when(pl.col("owner_kind").is_null()).then(pl.lit("<none>")).otherwise(pl.lit("true"))
    pod_key = [("namespace", pl.col("namespace")), ("pod", pl.col("pod")), ("uid", pl.col("uid"))]
    emit("kube_pod_info", "gauge", pods.select(_labels(
        *pod_key, ("host_ip", pl.col("host_ip")), ("pod_ip", pl.col("pod_ip")), ("node", pl.col("node")),
        ("created_by_kind", owner_kind), ("created_by_name", owner_name), ("priority_class", ""),
        ("host_network", "false"), *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_owner", "gauge", pods.select(_labels(
        *pod_key, ("owner_kind", owner_kind), ("owner_name", owner_name), ("owner_is_controller", is_ctl),
        *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_start_time", "gauge",
         pods.filter(pl.col("started_us").is_not_null()).select(
             _labels(*pod_key, *scrape).alias("labels"), (pl.col("started_us") // US).cast(pl.String).alias("v"),
             "k0", "k1"))

    app = pl.col("container_type") == "app"
    ckey = [("namespace", pl.col("namespace")), ("pod", pl.col("pod")), ("uid", pl.col("uid")),
            ("container", pl.col("container"))]
    info = [("image_spec", pl.col("image")), ("image", pl.col("image")),
            ("image_id", pl.col("image").map_elements(image_id, return_dtype=pl.String)),
            ("container_id", pl.concat_str(pl.lit("containerd://"), pl.col("container_id")))]
    emit("kube_pod_container_info", "gauge", c.filter(app).select(
        _labels(*ckey, *info, *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_init_container_info", "gauge",
         c.filter(~app).select(_labels(*ckey, *info, ("restart_policy", pl.when(pl.col("container_type") == "sidecar")
                                                       .then(pl.lit("Always")).otherwise(pl.lit(""))), *scrape)
                               .alias("labels"), one.alias("v"), "k0", "k1"))

    # Requests and limits, long: one row per container x resource.
    gpu_res = pl.col("gpu_resource").str.replace_all(r"[^a-zA-Z0-9_]", "_")
    cpu_req = pl.coalesce("cpu_request", "cpu_limit")
    mem_req = pl.coalesce("memory_request", "memory_limit")
    gpu_lim = pl.coalesce("gpu_limit", "gpu_request")
    gpu_req = pl.coalesce("gpu_request", "gpu_limit")

    def resources(value_cpu: pl.Expr, value_mem: pl.Expr, value_gpu: pl.Expr) -> pl.DataFrame:
        parts = []
        for res, unit, val, fmt in (("cpu", "core", value_cpu, _num), ("memory", "byte", value_mem, _int),
                                    (None, "integer", value_gpu, _int)):
            sel = c.filter(val.is_not_null() & (pl.col("gpu_resource").is_not_null() if res is None else pl.lit(True)))
            name = gpu_res if res is None else pl.lit(res)
            parts.append(sel.select("cid", "container_type", name.alias("resource"), pl.lit(unit).alias("unit"),
                                    fmt(val).alias("v"), "namespace", "pod", "uid", "container", "node", "k0", "k1"))
        return pl.concat(parts).sort("cid", "resource")

    for kind, frame in (("requests", resources(cpu_req, mem_req, gpu_req)),
                        ("limits", resources(pl.col("cpu_limit"), pl.col("memory_limit"), gpu_lim))):
        lab = _labels(*ckey, ("node", pl.col("node")), ("resource", pl.col("resource")), ("unit", pl.col("unit")),
                      *scrape).alias("labels")
        emit(f"kube_pod_container_resource_{kind}", "gauge",
             frame.filter(pl.col("container_type") == "app").select(lab, "v", "k0", "k1"))
        emit(f"kube_pod_init_container_resource_{kind}", "gauge",
             frame.filter(pl.col("container_type") != "app").select(lab, "v", "k0", "k1"))

    # Restarts, last termination reason and exit code: step functions of the events.
    ev = cl.events.join(c.select(*_KEY, "cid", "k0", "k1", "container_type"), on=_KEY, how="inner").sort("cid", "ts")
    restarts = ev.filter(~pl.col("reason").is_in(NOT_RESTARTS)).with_columns(
        (pl.int_range(pl.len()).over("cid") + 1).alias("n"), cl.k_ceil(pl.col("ts")).alias("k"))
    base = restarts.group_by("cid").agg(
        (pl.col("restart_count").first() - 1).clip(lower_bound=0).fill_null(0).alias("base"))
    breaks = pl.concat([c.select("cid", pl.col("k0").alias("k"), pl.lit(0, pl.Int64).alias("n")),
                        restarts.select("cid", "k", pl.col("n").cast(pl.Int64))])
    breaks = breaks.group_by("cid", "k").agg(pl.col("n").max()).sort("cid", "k").with_columns(
        pl.col("n").cum_max().over("cid"))
    seg = _segments(breaks, c).join(base, on="cid", how="left").with_columns(
        (pl.col("n") + pl.col("base").fill_null(0)).cast(pl.String).alias("v"))
    lab = _labels(*ckey, *scrape).alias("labels")
    span = [pl.col("start").alias("k0"), pl.col("end").alias("k1")]
    emit("kube_pod_container_status_restarts", "counter",
         seg.filter(pl.col("container_type") == "app").sort("cid", "start").select(lab, "v", *span))
    emit("kube_pod_init_container_status_restarts", "counter",
         seg.filter(pl.col("container_type") != "app").sort("cid", "start").select(lab, "v", *span))

    terms = ev.filter(~pl.col("reason").is_in(NOT_TERMINATIONS)).with_columns(cl.k_ceil(pl.col("ts")).alias("k"))
    terms = terms.group_by("cid", "k").agg(pl.col("reason").last(), pl.col("exit_code").last()).sort("cid", "k")
    tseg = _segments(terms, c)
    rlab = _labels(*ckey, ("reason", pl.col("reason")), *scrape).alias("labels")
    emit("kube_pod_container_status_last_terminated_reason", "gauge",
         tseg.filter(pl.col("container_type") == "app").sort("cid", "reason", "start")
         .select(rlab, one.alias("v"), *span))
    emit("kube_pod_init_container_status_last_terminated_reason", "gauge",
         tseg.filter(pl.col("container_type") != "app").sort("cid", "reason", "start")
         .select(rlab, one.alias("v"), *span))
    emit("kube_pod_container_status_last_terminated_exitcode", "gauge",
         tseg.filter((pl.col("container_type") == "app") & pl.col("exit_code").is_not_null()).sort("cid", "start")
         .select(lab, pl.col("exit_code").cast(pl.String).alias("v"), *span))

    _ksm_controllers(out, cl, scrape)
    _ksm_nodes(out, cl, scrape)


def _segments(breaks: pl.DataFrame, c: pl.DataFrame) -> pl.DataFrame:
    """Step segments [start, end] from per-container breakpoints ``k`` (sorted), clipped to the pod's life."""
    seg = breaks.with_columns((pl.col("k").shift(-1).over("cid") - 1).alias("_next")).join(
        c.select(pl.col("cid").cast(breaks.schema["cid"]), "k0", "k1", "container_type", "namespace", "pod", "uid",
                 "container"), on="cid", how="left")
    return seg.with_columns(
        pl.max_horizontal("k", "k0").alias("start"),
        pl.min_horizontal(pl.coalesce("_next", "k1"), "k1").alias("end"),
    ).filter(pl.col("start") <= pl.col("end"))


def _ksm_controllers(out: _Out, cl: _Cluster, scrape: list) -> None:
    pods, K = cl.pods, cl.K
    emit = lambda name, mtype, seg: out.family(name, mtype).grid(seg)
    one = pl.lit("1")

    # ReplicaSets (from their first pod to the end: revisionHistoryLimit keeps them) and Jobs (until their last pod).
    rs = pods.filter(pl.col("owner_kind") == "ReplicaSet").group_by("namespace", "owner_name").agg(
        pl.col("workload_kind").first(), pl.col("workload").first(), pl.col("k0").min()).sort("namespace", "owner_name")
    top = pl.col("workload_kind").is_in(["Deployment", "Rollout"])
    emit("kube_replicaset_owner", "gauge", rs.select(_labels(
        ("namespace", pl.col("namespace")), ("replicaset", pl.col("owner_name")),
        ("owner_kind", pl.when(top).then(pl.col("workload_kind")).otherwise(pl.lit("<none>"))),
        ("owner_name", pl.when(top).then(pl.col("workload")).otherwise(pl.lit("<none>"))),
        ("owner_is_controller", pl.when(top).then(pl.lit("true")).otherwise(pl.lit("<none>"))), *scrape)
        .alias("labels"), one.alias("v"), "k0", pl.lit(K - 1).alias("k1")))
    jobs = pods.filter(pl.col("owner_kind") == "Job").group_by("namespace", "owner_name").agg(
        pl.col("workload_kind").first(), pl.col("workload").first(), pl.col("k0").min(), pl.col("k1").max()
    ).sort("namespace", "owner_name")
    cron = pl.col("workload_kind") == "CronJob"
    emit("kube_job_owner", "gauge", jobs.select(_labels(
        ("namespace", pl.col("namespace")), ("job_name", pl.col("owner_name")),
        ("owner_kind", pl.when(cron).then(pl.lit("CronJob")).otherwise(pl.lit("<none>"))),
        ("owner_name", pl.when(cron).then(pl.col("workload")).otherwise(pl.lit("<none>"))),
        ("owner_is_controller", pl.when(cron).then(pl.lit("true")).otherwise(pl.lit("<none>"))), *scrape)
        .alias("labels"), one.alias("v"), "k0", "k1"))

    # Controllers: replicas and HPAs, from their first pod on.
    wl = _str(cl.snapshot.workloads)
    life = pods.group_by("namespace", "workload_kind", "workload").agg(pl.col("k0").min())
    wl = wl.join(life, on=["namespace", "workload_kind", "workload"], how="left").with_columns(
        pl.col("k0").fill_null(0), pl.lit(K - 1).alias("k1")).sort("namespace", "workload_kind", "workload")
    replicas = pl.col("replicas").cast(pl.String)
    for name, kind, label in (("kube_deployment_spec_replicas", "Deployment", "deployment"),
                              ("kube_statefulset_replicas", "StatefulSet", "statefulset"),
                              ("kube_daemonset_status_desired_number_scheduled", "DaemonSet", "daemonset")):
        emit(name, "gauge", wl.filter((pl.col("workload_kind") == kind) & pl.col("replicas").is_not_null())
             .select(_labels(("namespace", pl.col("namespace")), (label, pl.col("workload")), *scrape).alias("labels"),
                     replicas.alias("v"), "k0", "k1"))
    par = jobs.join(wl.select("namespace", "workload_kind", "workload", "replicas"),
                    on=["namespace", "workload_kind", "workload"], how="left")
    emit("kube_job_spec_parallelism", "gauge",
         par.select(_labels(("namespace", pl.col("namespace")), ("job_name", pl.col("owner_name")), *scrape)
                    .alias("labels"), pl.col("replicas").fill_null(1).cast(pl.String).alias("v"), "k0", "k1"))

    hpa = wl.filter(pl.col("hpa_name").is_not_null())
    hkey = [("namespace", pl.col("namespace")), ("horizontalpodautoscaler", pl.col("hpa_name"))]
    api = pl.col("workload_kind").replace_strict({"Rollout": "argoproj.io/v1alpha1"}, default="apps/v1",
                                                 return_dtype=pl.String)
    emit("kube_horizontalpodautoscaler_info", "gauge", hpa.select(_labels(
        *hkey, ("scaletargetref_api_version", api), ("scaletargetref_kind", pl.col("workload_kind")),
        ("scaletargetref_name", pl.col("workload")), *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_horizontalpodautoscaler_spec_min_replicas", "gauge",
         hpa.select(_labels(*hkey, *scrape).alias("labels"),
                    pl.col("hpa_min_replicas").fill_null(1).cast(pl.String).alias("v"), "k0", "k1"))
    emit("kube_horizontalpodautoscaler_spec_max_replicas", "gauge",
         hpa.filter(pl.col("hpa_max_replicas").is_not_null()).select(
             _labels(*hkey, *scrape).alias("labels"), pl.col("hpa_max_replicas").cast(pl.String).alias("v"),
             "k0", "k1"))
    targets = hpa.select("namespace", "hpa_name", "k0", "k1", "hpa_metrics").explode("hpa_metrics").filter(
        pl.col("hpa_metrics").is_not_null()).unnest("hpa_metrics").filter(pl.col("metric").is_not_null())
    ttype = pl.col("target_type").fill_null("Utilization").replace_strict(
        {"Utilization": "utilization", "AverageValue": "average", "Value": "value"}, default="value",
        return_dtype=pl.String)
    emit("kube_horizontalpodautoscaler_spec_target_metric", "gauge",
         targets.sort("namespace", "hpa_name", "metric").select(_labels(
             *hkey, ("metric_name", pl.col("metric")), ("metric_target_type", ttype), *scrape).alias("labels"),
             _num(pl.col("target").fill_null(0.0)).alias("v"), "k0", "k1"))


def _ksm_nodes(out: _Out, cl: _Cluster, scrape: list) -> None:
    n = cl.nodes
    emit = lambda name, mtype, seg: out.family(name, mtype).grid(seg)
    one = pl.lit("1")
    rows = n.to_dicts()
    scrape_pairs = [(k, v) for k, v in scrape]

    info = []
    for r in rows:
        sysinfo = node_system_info(r["node"])
        info.append(_label_text([
            ("node", r["node"]), ("kernel_version", KERNEL), ("os_image", OS_IMAGE),
            ("container_runtime_version", CONTAINER_RUNTIME), ("kubelet_version", KUBELET_VERSION),
            ("kubeproxy_version", KUBELET_VERSION),
            ("provider_id", provider_id(r["node"], r.get("provider"), r.get("zone")) or ""),
            ("pod_cidr", ""), ("system_uuid", sysinfo["systemUUID"]), ("internal_ip", cl.node_ip[r["node"]]),
            *scrape_pairs]))
    emit("kube_node_info", "gauge",
         n.select(pl.Series("labels", info, dtype=pl.String), one.alias("v"), "k0", "k1"))

    label_sets = []
    for r in rows:
        pairs = [("node", r["node"])] + [(name, value) for name, value in node_label_names(r.get("labels"))]
        label_sets.append(_label_text(pairs + scrape_pairs))
    emit("kube_node_labels", "gauge",
         n.select(pl.Series("labels", label_sets, dtype=pl.String), one.alias("v"), "k0", "k1"))

    devices: dict[str, dict[str, int]] = {}
    for g in _str(cl.snapshot.gpus).to_dicts():
        res = f"nvidia.com/mig-{g['mig_profile']}" if g.get("mig_profile") else "nvidia.com/gpu"
        devices.setdefault(g["node"], {}).setdefault(res, 0)
        devices[g["node"]][res] += 1
    for status, cpu_col, mem_col in (("capacity", "cpu_capacity", "memory_capacity"),
                                     ("allocatable", "cpu_allocatable", "memory_allocatable")):
        seg_rows = []
        for r in rows:
            res: list[tuple[str, str, str]] = []
            if r.get(cpu_col) is not None:
                res.append(("cpu", "core", repr(float(r[cpu_col]))))
            if r.get(mem_col) is not None:
                res.append(("memory", "byte", str(int(r[mem_col]))))
            res.append(("pods", "integer", str(PODS_PER_NODE)))
            for k, v in node_extended_resources(r, devices.get(r["node"], {})).items():
                res.append((sanitize_label(k), "integer", str(v)))
            for resource, unit, value in res:
                seg_rows.append({"labels": _label_text([("node", r["node"]), ("resource", resource), ("unit", unit),
                                                        *scrape_pairs]), "v": value, "k0": r["k0"], "k1": r["k1"]})
        emit(f"kube_node_status_{status}", "gauge",
             pl.DataFrame(seg_rows, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))

    taints = []
    for r in rows:
        for t in r.get("taints") or []:
            taints.append({"labels": _label_text([("node", r["node"]), ("key", t.get("key")), ("value", t.get("value")),
                                                  ("effect", t.get("effect")), *scrape_pairs]),
                           "v": "1", "k0": r["k0"], "k1": r["k1"]})
    emit("kube_node_spec_taint", "gauge",
         pl.DataFrame(taints, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))

    ns_labels = {r["namespace"]: r.get("labels") for r in _str(cl.snapshot.namespaces).to_dicts()}
    names = sorted(set(ns_labels) | set(cl.pods.get_column("namespace").to_list()))
    ns_rows = [{"labels": _label_text([("namespace", ns), *node_label_names(ns_labels.get(ns)), *scrape_pairs]),
                "v": "1", "k0": 0, "k1": cl.K - 1} for ns in names]
    emit("kube_namespace_labels", "gauge",
         pl.DataFrame(ns_rows, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))


def node_label_names(pairs: list[dict] | None) -> list[tuple[str, str]]:
    """Kubernetes labels as kube-state-metrics' ``label_<sanitized>`` label pairs, sorted, with conflicts numbered."""
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for p in sorted(pairs or [], key=lambda p: p["key"]):
        if p.get("key") is None or p.get("value") is None:
            continue
        name = "label_" + sanitize_label(p["key"])
        if name in seen:
            seen[name] += 1
            name = f"{name}_conflict{seen[name]}"
        else:
            seen[name] = 0
        out.append((name, p["value"]))
    return out


# ---------------------------------------------------------------------------------------------
# DCGM exporter


def _dcgm(out: _Out, cl: _Cluster, hostname_label: str) -> None:
    gpus = _str(cl.snapshot.gpus)
    usage = cl.usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"]) & pl.col("device").is_not_null())
    usage = _str(usage.select(*_KEY, "device", "resource", _us(pl.col("timestamp")).alias("ts"), "value"))
    # Devices: the gpus frame, plus any device only the usage names (node from its pod).
    seen = usage.select(*_KEY, "device").unique().join(cl.containers.select(*_KEY, "node"), on=_KEY, how="left")
    extra = seen.join(gpus.select("device"), on="device", how="anti").group_by("device").agg(pl.col("node").first())
    if extra.height:
        node_meta = _str(cl.snapshot.nodes).select("node", pl.col("gpu_model").alias("model"),
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
    wide = usage.pivot(on="resource", index=[*_KEY, "device", "ts"], values="value", aggregate_function="max")
    for col in ("gpu", "gpu_memory"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(col))
    assigned = wide.join(gpus.select("device", "did"), on="device", how="inner")
    series = assigned.select("did", *_KEY).unique().sort("did", *_KEY).with_row_index("sid")
    assigned = assigned.join(series, on=["did", *_KEY], how="left").sort("sid", "ts")
    series = series.join(gpus, on="did", how="left")
    series_labels = series.select(_labels(*dev_labels, ("container", pl.col("container")),
                                          ("namespace", pl.col("namespace")), ("pod", pl.col("pod")), *scrape)
                                  .alias("l")).get_column("l")
    # Idle grid points: the device serves nobody.
    grid = gpus.select("did", pl.int_ranges(pl.col("k0"), pl.col("k1") + 1).alias("k")).explode("k").drop_nulls("k")
    grid = grid.with_columns((pl.col("k") * cl.step_us + cl.start_us).alias("ts")).drop("k")
    idle = grid.join(assigned.select("did", "ts").unique(), on=["did", "ts"], how="anti").sort("did", "ts")
    idle_labels = gpus.select(_labels(*dev_labels, *scrape).alias("l")).get_column("l")
    total_mib = (pl.col("memory_total") / MIB).round(0)
    mem_total = gpus.select("did", "memory_total")
    assigned = assigned.join(mem_total, on="did", how="left", maintain_order="left")
    idle = idle.join(mem_total, on="did", how="left", maintain_order="left")
    whole = gpus.filter(~mig).select("did")

    used = (pl.col("gpu_memory") / MIB).round(0)
    for name, a_val, i_val, a_filter, only_whole in (
            ("DCGM_FI_DEV_GPU_UTIL", _int(pl.col("gpu") * 100), pl.lit("0"), pl.col("gpu").is_not_null(), True),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", _num(pl.col("gpu")), pl.lit("0.0"), pl.col("gpu").is_not_null(), False),
            ("DCGM_FI_DEV_FB_FREE", _int(total_mib - used.fill_null(0)), _int(total_mib),
             pl.col("memory_total").is_not_null(), False),
            ("DCGM_FI_DEV_FB_USED", _int(used), pl.lit("0"), pl.col("gpu_memory").is_not_null(), False)):
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


def _opencost(out: _Out, cl: _Cluster) -> None:
    n = cl.nodes.filter(pl.col("hourly_price").is_not_null())
    rows = []
    for r in n.to_dicts():
        arch = next((p["value"] for p in r.get("labels") or [] if p.get("key") == "kubernetes.io/arch"), "amd64")
        rows.append({"labels": _label_text([
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
    cl = _Cluster(snapshot)
    with atomic_file(target, buffering=1 << 20) as fh:
        out = _Out(fh, cl.start_us, cl.step_us, chunk_lines)
        _cadvisor(out, cl, duplicate_job, pod_level_series)
        _ksm(out, cl)
        _dcgm(out, cl, hostname_label)
        _opencost(out, cl)
        fh.write(b"# EOF\n")
    return {f.sample_name: {"type": f.mtype, "series": f.series, "samples": f.samples}
            for f in out.families if f.samples}


__all__ = ["node_label_names", "sanitize_label", "write_openmetrics"]
