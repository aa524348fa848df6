"""Render a Snapshot as the real exporters would expose it, as OpenMetrics text for backfill.

The output feeds ``promtool tsdb create-blocks-from openmetrics`` so that tests and benchmarks
run the Prometheus collector against a real server holding a cluster whose truth is known.
Metric names and labels follow cAdvisor (via the kubelet), kube-state-metrics, NVIDIA's
dcgm-exporter and OpenCost (``docs/domain-reference.md`` sections 2-4 in ../shared).

Decisions worth knowing:

- One sample per series at every snapshot timestamp (the snapshot's step is the scrape
  interval). promtool wants timestamps in seconds, strictly increasing within a series,
  every family and series contiguous, one ``# TYPE`` per family, and ``# EOF`` last.
- ``container_cpu_usage_seconds_total`` is the integral of the CPU samples: each sample adds
  ``cores x step``, so ``increase`` over one step gives back the sample exactly. The counter
  restarts from 0 after every ``OOMKilled``/``Error`` event of the container (a new container
  process), as cAdvisor's does; ``rate``/``increase`` handle the reset.
- CFS periods count 10 per second (100 ms periods) for containers with a CPU limit; the
  throttled share grows as usage approaches the limit.
- kube-state-metrics series exist only while the pod exists (``started_at``..``ended_at``;
  for pods without those, while they have usage samples or for the whole window).
- DCGM: one series per device (whole GPU or MIG instance ``<UUID>/<GPU_I_ID>``); a device
  carries ``namespace/pod/container`` while the snapshot has a pod's samples on it and reports
  0 busy without pod labels otherwise. ``DCGM_FI_DEV_GPU_UTIL`` is absent on MIG instances, as
  on real hardware. The node label is ``Hostname`` (released exporters) or ``hostname``.
- Noise a collector must survive, on by default: pod-level cgroup series (``container=""``)
  and the pause container (``container="POD"``); with ``duplicate_job`` every cAdvisor series
  is scraped a second time by a ``cadvisor`` job.
- Everything is vectorised: series label strings are built once per series, samples are
  joined to them by integer id and written with Polars' CSV writer.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO

import polars as pl

from analyzer.snapshot import Snapshot

_KEY = ["namespace", "pod", "container"]
_RESTART_REASONS = ["OOMKilled", "Error"]
_DRIVER = "550.54.15"
_PAUSE_CPU = 0.0002
_PAUSE_MEMORY = 458752.0


def _uid(text: str) -> str:
    h = hashlib.sha1(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def sanitize(key: str) -> str:
    """kube-state-metrics' label-name sanitizer: anything not [a-zA-Z0-9_] becomes '_'."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _labels(columns: list[str], rename: dict[str, str] | None = None) -> pl.Expr:
    """Build ``a="x",b="y"`` from string columns (nulls become empty values)."""
    rename = rename or {}
    parts = []
    for i, col in enumerate(columns):
        name = rename.get(col, col)
        parts.append(pl.lit(("," if i else "") + f'{name}="'))
        parts.append(pl.col(col).cast(pl.String).fill_null(""))
        parts.append(pl.lit('"'))
    return pl.concat_str(parts)


class _Writer:
    """Writes families; counts families, series and samples for the caller."""

    def __init__(self, fh: IO[bytes]):
        self.fh = fh
        self.counts: dict[str, dict[str, int]] = {}

    def family(self, name: str, kind: str, series: pl.DataFrame, samples: pl.DataFrame) -> None:
        """``series``: sid, labels; ``samples``: sid, ts (int seconds), value. Writes nothing if empty."""
        samples = samples.drop_nulls(["value"])
        if samples.is_empty():
            return
        self.fh.write(f"# TYPE {name} {kind}\n".encode())
        lines = (
            samples.join(series.select("sid", "labels"), on="sid", how="inner")
            .sort(["labels", "ts"])
            .unique(subset=["labels", "ts"], keep="first", maintain_order=True)
            .select(
                pl.concat_str([pl.lit(name + "{"), pl.col("labels"), pl.lit("}")]).alias("m"),
                pl.col("value"),
                pl.col("ts"),
            )
        )
        lines.write_csv(self.fh, separator=" ", include_header=False, quote_style="never", float_precision=None)
        self.counts[name] = {"series": lines.get_column("m").n_unique(), "samples": lines.height}


def write_openmetrics(
    snapshot: Snapshot,
    path: str | os.PathLike[str],
    *,
    hostname_label: str = "Hostname",
    duplicate_job: bool = False,
    pod_level_series: bool = True,
) -> dict[str, dict[str, int]]:
    """Write the snapshot as OpenMetrics text (atomically); return series/sample counts per family."""
    if hostname_label not in ("Hostname", "hostname"):
        raise ValueError("hostname_label must be 'Hostname' or 'hostname'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = _Writer(fh)
            ctx = _Context(snapshot)
            _cadvisor(writer, ctx, duplicate_job, pod_level_series)
            _kube_state_metrics(writer, ctx)
            _dcgm(writer, ctx, hostname_label)
            _opencost(writer, ctx)
            fh.write(b"# EOF\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return writer.counts


class _Context:
    """Frames with string keys, pod identities and the sample grid, computed once."""

    def __init__(self, snap: Snapshot):
        m = snap.manifest
        self.step = int(m.step_seconds)
        strings = lambda df: df.with_columns(  # noqa: E731
            pl.col(c).cast(pl.String) for c, d in df.schema.items() if d == pl.Categorical or isinstance(d, pl.Enum)
        )
        self.usage = strings(snap.usage).with_columns(pl.col("timestamp").dt.epoch("s").alias("ts"))
        self.containers = strings(snap.containers)
        self.workloads = strings(snap.workloads)
        self.nodes = strings(snap.nodes)
        self.events = strings(snap.events).with_columns(pl.col("timestamp").dt.epoch("s").alias("ts"))
        self.gpus = strings(snap.gpus)
        self.namespaces = strings(snap.namespaces)
        start, end = int(m.start.timestamp()), int(m.end.timestamp())
        self.grid = pl.DataFrame({"ts": pl.int_range(start, end + 1, self.step, eager=True)})
        self.window = (start, end)
        pods = self.containers.select(
            "namespace", "pod", "workload_kind", "workload", "owner_kind", "owner_name", "node",
            pl.col("started_at").dt.epoch("s").alias("t0"), pl.col("ended_at").dt.epoch("s").alias("t1"),
        ).unique(["namespace", "pod"], keep="first").sort(["namespace", "pod"])
        seen = self.usage.group_by("namespace", "pod").agg(pl.col("ts").min().alias("u0"), pl.col("ts").max().alias("u1"))
        pods = pods.join(seen, on=["namespace", "pod"], how="left").with_columns(
            pl.coalesce("t0", "u0", pl.lit(start)).clip(start, end).alias("t0"),
            pl.coalesce("t1", "u1", pl.lit(end)).clip(start, end).alias("t1"),
        ).drop("u0", "u1")
        uids = [_uid(f"{ns}/{p}") for ns, p in pods.select("namespace", "pod").iter_rows()]
        self.pods = pods.with_columns(pl.Series("uid", uids, dtype=pl.String))
        self.restarts = (
            self.events.filter(pl.col("reason").is_in(_RESTART_REASONS))
            .sort("ts")
            .with_columns(pl.int_range(1, pl.len() + 1).over(_KEY).alias("n"))
            .select(*_KEY, "ts", "n", "reason", "exit_code")
        )

    def pod_grid(self, frame: pl.DataFrame, on: list[str] | None = None) -> pl.DataFrame:
        """Rows of ``frame`` (keyed by namespace/pod) times the grid points while the pod exists."""
        on = on or ["namespace", "pod"]
        lifetimes = frame.join(self.pods.select(*on, "t0", "t1"), on=on, how="left")
        return lifetimes.join(self.grid, how="cross").filter(
            (pl.col("ts") >= pl.col("t0") - self.step + 1) & (pl.col("ts") <= pl.col("t1"))
        ).drop("t0", "t1")


def _with_sid(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_row_index("sid")


def _cadvisor(w: _Writer, ctx: _Context, duplicate_job: bool, pod_level: bool) -> None:
    containers = ctx.containers.join(ctx.pods.select("namespace", "pod", "uid"), on=["namespace", "pod"])
    series = containers.select(
        *_KEY, "node", "uid", "workload",
        pl.concat_str([pl.lit("/kubepods/burstable/pod"), pl.col("uid"), pl.lit("/"), pl.col("container")]).alias("id"),
        pl.concat_str([pl.lit("registry.example.com/"), pl.col("workload"), pl.lit("/"), pl.col("container"),
                       pl.lit(":1.0")]).alias("image"),
        pl.concat_str([pl.lit("k8s_"), pl.col("container"), pl.lit("_"), pl.col("pod"), pl.lit("_"),
                       pl.col("namespace"), pl.lit("_"), pl.col("uid"), pl.lit("_0")]).alias("name"),
    )
    jobs = [("kubelet", ":10250", "/metrics/cadvisor")] + ([("cadvisor", ":8080", "/metrics")] if duplicate_job else [])

    def labelled(frame: pl.DataFrame, extra: list[str]) -> pl.DataFrame:
        out = []
        for job, port, mpath in jobs:
            out.append(frame.with_columns(
                pl.lit(job).alias("job"), (pl.col("node") + pl.lit(port)).alias("instance"), pl.lit(mpath).alias("metrics_path"),
            ))
        both = pl.concat(out)
        return _with_sid(both).with_columns(
            _labels(["namespace", "pod", "container", "id", "image", "name", *extra, "instance", "job", "metrics_path"])
            .alias("labels")
        )

    cpu = ctx.usage.filter(pl.col("resource") == "cpu").select(*_KEY, "ts", "value")
    mem = ctx.usage.filter(pl.col("resource") == "memory").select(*_KEY, "ts", "value")
    if pod_level:
        pod_keys = ctx.pods.select("namespace", "pod", "node", "uid", "workload")
        pod_series = pod_keys.with_columns(
            pl.lit("").alias("container"),
            pl.concat_str([pl.lit("/kubepods/burstable/pod"), pl.col("uid")]).alias("id"),
            pl.lit("").alias("image"), pl.lit("").alias("name"),
        )
        pause = pod_keys.with_columns(
            pl.lit("POD").alias("container"),
            pl.concat_str([pl.lit("/kubepods/burstable/pod"), pl.col("uid"), pl.lit("/pause")]).alias("id"),
            pl.lit("registry.k8s.io/pause:3.9").alias("image"),
            pl.concat_str([pl.lit("k8s_POD_"), pl.col("pod"), pl.lit("_"), pl.col("namespace"), pl.lit("_"),
                           pl.col("uid"), pl.lit("_0")]).alias("name"),
        )
        series = pl.concat([series, pod_series.select(series.columns), pause.select(series.columns)])
        pod_cpu = cpu.group_by("namespace", "pod", "ts").agg(pl.col("value").sum() + _PAUSE_CPU).with_columns(
            pl.lit("").alias("container"))
        pod_mem = mem.group_by("namespace", "pod", "ts").agg(pl.col("value").sum() + _PAUSE_MEMORY).with_columns(
            pl.lit("").alias("container"))
        pause_grid = ctx.pod_grid(ctx.pods.select("namespace", "pod")).with_columns(pl.lit("POD").alias("container"))
        cpu = pl.concat([cpu, pod_cpu.select(cpu.columns), pause_grid.with_columns(pl.lit(_PAUSE_CPU).alias("value")).select(cpu.columns)])
        mem = pl.concat([mem, pod_mem.select(mem.columns), pause_grid.with_columns(pl.lit(_PAUSE_MEMORY).alias("value")).select(mem.columns)])

    cpu_series = labelled(series.with_columns(pl.lit("total").alias("cpu")), ["cpu"])
    other = labelled(series, [])

    # CPU counter: cumulative cores x step, restarting at each restart event of the container.
    counter = _segment(cpu, ctx).with_columns(
        (pl.col("value") * ctx.step).cum_sum().over([*_KEY, "segment"]).round(6).alias("value"))
    w.family("container_cpu_usage_seconds_total", "counter", cpu_series, _attach(cpu_series, counter))
    w.family("container_memory_working_set_bytes", "gauge", other, _attach(other, mem))

    limited = ctx.containers.filter(pl.col("cpu_limit").is_not_null()).select(*_KEY, "cpu_limit")
    cfs = _segment(cpu.join(limited, on=_KEY, how="inner"), ctx).with_columns(
        pl.lit(ctx.step * 10.0).alias("periods"),
        (ctx.step * 10.0 * ((pl.col("value") / pl.col("cpu_limit") - 0.6) / 0.4).clip(0, 1)).floor().alias("throttled"),
    )
    periods = cfs.with_columns(pl.col("periods").cum_sum().over([*_KEY, "segment"]).alias("value"))
    throttled = cfs.with_columns(pl.col("throttled").cum_sum().over([*_KEY, "segment"]).alias("value"))
    w.family("container_cpu_cfs_periods_total", "counter", other, _attach(other, periods))
    w.family("container_cpu_cfs_throttled_periods_total", "counter", other, _attach(other, throttled))

    ooms = ctx.restarts.filter(pl.col("reason") == "OOMKilled").select(*_KEY).unique()
    oom_samples = (
        mem.join(ooms, on=_KEY, how="inner")
        .sort("ts")
        .join_asof(
            ctx.restarts.filter(pl.col("reason") == "OOMKilled")
            .with_columns(pl.int_range(1, pl.len() + 1).over(_KEY).alias("k")).select(*_KEY, "ts", "k").sort("ts"),
            on="ts", by=_KEY, strategy="backward", check_sortedness=False,
        )
        .with_columns(pl.col("k").fill_null(0).cast(pl.Float64).alias("value"))
    )
    w.family("container_oom_events_total", "counter", other, _attach(other, oom_samples))


def _segment(samples: pl.DataFrame, ctx: _Context) -> pl.DataFrame:
    """Number of restarts before each sample: a counter restarts from zero after each one."""
    restarts = ctx.restarts.select(*_KEY, "ts", "n").sort("ts")
    return (
        samples.sort("ts")
        .join_asof(restarts, on="ts", by=_KEY, strategy="backward", check_sortedness=False)
        .with_columns(pl.col("n").fill_null(0).alias("segment"))
        .drop("n")
        .sort([*_KEY, "ts"])
    )


def _attach(series: pl.DataFrame, samples: pl.DataFrame, on: list[str] | None = None) -> pl.DataFrame:
    """Give samples the sid of every series they belong to (several jobs -> several copies)."""
    on = on or _KEY
    return samples.join(series.select("sid", *on), on=on, how="inner").select("sid", "ts", "value")


_KSM = {"job": "kube-state-metrics", "instance": "kube-state-metrics.monitoring:8080"}


def _ksm_labels(columns: list[str], rename: dict[str, str] | None = None) -> pl.Expr:
    return _labels([*columns, "job", "instance"], rename)


def _ksm(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(_KSM["job"]).alias("job"), pl.lit(_KSM["instance"]).alias("instance"))


def _constant(w: _Writer, name: str, series: pl.DataFrame, grid: pl.DataFrame, value: str | float = 1.0,
              kind: str = "gauge") -> None:
    """A series that exists over ``grid`` rows (sid, ts) with a constant or per-series value."""
    vals = pl.col(value) if isinstance(value, str) else pl.lit(float(value))
    samples = grid.join(series.select("sid", vals.cast(pl.Float64).alias("value")), on="sid").select("sid", "ts", "value")
    w.family(name, kind, series, samples)


def _kube_state_metrics(w: _Writer, ctx: _Context) -> None:
    pods = _ksm(ctx.pods)
    containers = _ksm(ctx.containers.join(ctx.pods.select("namespace", "pod", "uid"), on=["namespace", "pod"]))

    # Requests and limits, one series per container and resource.
    rows = []
    for kind in ("request", "limit"):
        for col, resource, unit in (("cpu", "cpu", "core"), ("memory", "memory", "byte")):
            rows.append(containers.filter(pl.col(f"{col}_{kind}").is_not_null()).select(
                *_KEY, "node", "uid", "job", "instance", pl.lit(kind).alias("kind"), pl.lit(resource).alias("resource"),
                pl.lit(unit).alias("unit"), pl.col(f"{col}_{kind}").cast(pl.Float64).alias("v")))
        gpu = containers.filter(pl.col("gpu_resource").is_not_null() & pl.col(f"gpu_{kind}").is_not_null())
        rows.append(gpu.select(
            *_KEY, "node", "uid", "job", "instance", pl.lit(kind).alias("kind"),
            pl.col("gpu_resource").str.replace_all(r"[^a-zA-Z0-9_]", "_").alias("resource"),
            pl.lit("integer").alias("unit"), pl.col(f"gpu_{kind}").cast(pl.Float64).alias("v")))
    resources = _with_sid(pl.concat(rows).join(containers.select(*_KEY, "container_type"), on=_KEY)).with_columns(
        _ksm_labels(["namespace", "pod", "container", "node", "resource", "unit", "uid"]).alias("labels"))
    grid = ctx.pod_grid(resources.select("sid", "namespace", "pod"))
    # Init containers and sidecars (restartPolicy: Always init containers) have their own families.
    for kind, family in (("request", "resource_requests"), ("limit", "resource_limits")):
        for init, prefix in ((False, "kube_pod_container_"), (True, "kube_pod_init_container_")):
            subset = resources.filter((pl.col("kind") == kind) & ((pl.col("container_type") != "app") == init))
            _constant(w, prefix + family, subset, grid.join(subset.select("sid"), on="sid"), "v")

    # Owners: pod -> controller, replicaset -> deployment, job -> cronjob.
    owner = _with_sid(pods.with_columns(
        pl.col("owner_kind").fill_null("<none>"), pl.col("owner_name").fill_null("<none>"),
        pl.when(pl.col("owner_kind").is_null()).then(pl.lit("false")).otherwise(pl.lit("true")).alias("owner_is_controller"),
    )).with_columns(_ksm_labels(["namespace", "pod", "owner_kind", "owner_name", "owner_is_controller", "uid"]).alias("labels"))
    pod_grid = ctx.pod_grid(owner.select("sid", "namespace", "pod"))
    _constant(w, "kube_pod_owner", owner, pod_grid)
    info = owner.with_columns(
        pl.col("owner_kind").alias("created_by_kind"), pl.col("owner_name").alias("created_by_name"),
        pl.lit("").alias("priority_class"), pl.lit("false").alias("host_network"),
    ).with_columns(_ksm_labels(["namespace", "pod", "node", "created_by_kind", "created_by_name", "uid", "priority_class",
                                "host_network"]).alias("labels"))
    _constant(w, "kube_pod_info", info, pod_grid)

    def controller_lifetimes(kind: str) -> pl.DataFrame:
        return (pods.filter(pl.col("owner_kind") == kind)
                .group_by("namespace", "owner_name", "workload_kind", "workload")
                .agg(pl.col("t0").min(), pl.col("t1").max()))

    def lifetime_grid(series: pl.DataFrame) -> pl.DataFrame:
        return series.select("sid", "t0", "t1").join(ctx.grid, how="cross").filter(
            (pl.col("ts") >= pl.col("t0") - ctx.step + 1) & (pl.col("ts") <= pl.col("t1"))).select("sid", "ts")

    rs = _with_sid(_ksm(controller_lifetimes("ReplicaSet")).with_columns(
        pl.col("owner_name").alias("replicaset"), pl.lit("Deployment").alias("okind"), pl.col("workload").alias("oname"),
        pl.lit("true").alias("owner_is_controller"),
    )).with_columns(_ksm_labels(["namespace", "replicaset", "okind", "oname", "owner_is_controller"],
                                {"okind": "owner_kind", "oname": "owner_name"}).alias("labels"))
    _constant(w, "kube_replicaset_owner", rs, lifetime_grid(rs))
    jobs = _with_sid(_ksm(controller_lifetimes("Job")).with_columns(
        pl.col("owner_name").alias("job_name"),
        pl.when(pl.col("workload_kind") == "CronJob").then(pl.lit("CronJob")).otherwise(pl.lit("<none>")).alias("okind"),
        pl.when(pl.col("workload_kind") == "CronJob").then(pl.col("workload")).otherwise(pl.lit("<none>")).alias("oname"),
        pl.when(pl.col("workload_kind") == "CronJob").then(pl.lit("true")).otherwise(pl.lit("false")).alias("owner_is_controller"),
    )).with_columns(_ksm_labels(["namespace", "job_name", "okind", "oname", "owner_is_controller"],
                                {"okind": "owner_kind", "oname": "owner_name"}).alias("labels"))
    _constant(w, "kube_job_owner", jobs, lifetime_grid(jobs))

    # Container info, restarts and last termination.
    cinfo = _with_sid(containers.with_columns(
        pl.concat_str([pl.lit("registry.example.com/"), pl.col("workload"), pl.lit("/"), pl.col("container"),
                       pl.lit(":1.0")]).alias("image"),
        pl.concat_str([pl.lit("containerd://"), pl.col("uid").str.replace_all("-", ""), pl.col("container")]).alias("container_id"),
        pl.when(pl.col("container_type") == "sidecar").then(pl.lit("Always")).otherwise(pl.lit("")).alias("restart_policy"),
    )).with_columns(
        pl.when(pl.col("container_type") == "app")
        .then(_ksm_labels(["namespace", "pod", "container", "image", "container_id", "uid"]))
        .otherwise(_ksm_labels(["namespace", "pod", "container", "image", "container_id", "restart_policy", "uid"]))
        .alias("labels"))
    c_grid = ctx.pod_grid(cinfo.select("sid", "namespace", "pod"))
    for init, name in ((False, "kube_pod_container_info"), (True, "kube_pod_init_container_info")):
        subset = cinfo.filter((pl.col("container_type") != "app") == init)
        _constant(w, name, subset, c_grid.join(subset.select("sid"), on="sid"))
    status = _with_sid(containers.select(*_KEY, "uid", "job", "instance")).with_columns(
        _ksm_labels(["namespace", "pod", "container", "uid"]).alias("labels"))
    s_grid = ctx.pod_grid(status.select("sid", "namespace", "pod")).join(status.select("sid", *_KEY), on="sid", how="left",
                                                                         suffix="_s")
    s_grid = s_grid.select("sid", "ts", *_KEY).sort("ts").join_asof(
        ctx.restarts.sort("ts"), on="ts", by=_KEY, strategy="backward", check_sortedness=False)
    w.family("kube_pod_container_status_restarts_total", "counter", status,
             s_grid.select("sid", "ts", pl.col("n").fill_null(0).cast(pl.Float64).alias("value")))
    terminated = s_grid.filter(pl.col("reason").is_not_null())
    reason_series = _with_sid(
        terminated.select(*_KEY, "reason").unique().join(containers.select(*_KEY, "uid", "job", "instance"), on=_KEY)
    ).with_columns(_ksm_labels(["namespace", "pod", "container", "reason", "uid"]).alias("labels"))
    w.family("kube_pod_container_status_last_terminated_reason", "gauge", reason_series,
             terminated.drop("sid").join(reason_series.select("sid", *_KEY, "reason"), on=[*_KEY, "reason"])
             .select("sid", "ts", pl.lit(1.0).alias("value")))
    w.family("kube_pod_container_status_last_terminated_exitcode", "gauge", status,
             terminated.select("sid", "ts", pl.col("exit_code").cast(pl.Float64).alias("value")))

    # Nodes.
    nodes = _ksm(ctx.nodes.with_columns(
        pl.col("first_seen").dt.epoch("s").fill_null(ctx.window[0]).alias("t0"),
        pl.col("last_seen").dt.epoch("s").fill_null(ctx.window[1]).alias("t1"),
    ))
    node_grid_all = nodes.select("node", "t0", "t1").join(ctx.grid, how="cross").filter(
        (pl.col("ts") >= pl.col("t0") - ctx.step + 1) & (pl.col("ts") <= pl.col("t1"))).select("node", "ts")
    label_strings = []
    for node, labels in nodes.select("node", "labels").iter_rows():  # nodes: hundreds at most
        pairs = sorted({f'label_{sanitize(kv["key"])}="{kv["value"]}"' for kv in labels or []})
        label_strings.append(",".join([f'node="{node}"', *pairs, f'job="{_KSM["job"]}"', f'instance="{_KSM["instance"]}"']))
    node_labels = _with_sid(nodes.select("node").with_columns(pl.Series("labels", label_strings, dtype=pl.String)))
    _constant(w, "kube_node_labels", node_labels, node_grid_all.join(node_labels.select("sid", "node"), on="node"))
    node_info = _with_sid(nodes.select("node", "job", "instance", pl.lit("v1.31.4").alias("kubelet_version"),
                                       pl.lit("containerd://1.7.22").alias("container_runtime_version"),
                                       pl.lit("Amazon Linux 2023").alias("os_image"))).with_columns(
        _ksm_labels(["node", "kubelet_version", "container_runtime_version", "os_image"]).alias("labels"))
    _constant(w, "kube_node_info", node_info, node_grid_all.join(node_info.select("sid", "node"), on="node"))
    for which in ("capacity", "allocatable"):
        parts = [
            nodes.select("node", "job", "instance", pl.lit("cpu").alias("resource"), pl.lit("core").alias("unit"),
                         pl.col(f"cpu_{which}").cast(pl.Float64).alias("v")),
            nodes.select("node", "job", "instance", pl.lit("memory").alias("resource"), pl.lit("byte").alias("unit"),
                         pl.col(f"memory_{which}").cast(pl.Float64).alias("v")),
            nodes.select("node", "job", "instance", pl.lit("pods").alias("resource"), pl.lit("integer").alias("unit"),
                         pl.lit(110.0).alias("v")),
            nodes.filter(pl.col("gpu_count").fill_null(0) > 0).select(
                "node", "job", "instance", pl.lit("nvidia_com_gpu").alias("resource"), pl.lit("integer").alias("unit"),
                pl.col("gpu_count").cast(pl.Float64).alias("v")),
        ]
        cap = _with_sid(pl.concat(parts).drop_nulls("v")).with_columns(
            _ksm_labels(["node", "resource", "unit"]).alias("labels"))
        _constant(w, f"kube_node_status_{which}", cap, node_grid_all.join(cap.select("sid", "node"), on="node"), "v")

    # HorizontalPodAutoscalers, over the whole window.
    hpas = _ksm(ctx.workloads.filter(pl.col("hpa_name").is_not_null()))
    whole = lambda series: series.select("sid").join(ctx.grid, how="cross")  # noqa: E731
    hinfo = _with_sid(hpas.with_columns(
        pl.col("hpa_name").alias("horizontalpodautoscaler"), pl.col("workload_kind").alias("scaletargetref_kind"),
        pl.col("workload").alias("scaletargetref_name"),
    )).with_columns(_ksm_labels(["namespace", "horizontalpodautoscaler", "scaletargetref_kind",
                                 "scaletargetref_name"]).alias("labels"))
    _constant(w, "kube_horizontalpodautoscaler_info", hinfo, whole(hinfo))
    hbase = hinfo.with_columns(_ksm_labels(["namespace", "horizontalpodautoscaler"]).alias("labels"))
    _constant(w, "kube_horizontalpodautoscaler_spec_min_replicas", hbase, whole(hbase), "hpa_min_replicas")
    _constant(w, "kube_horizontalpodautoscaler_spec_max_replicas", hbase, whole(hbase), "hpa_max_replicas")
    metrics = hpas.select("namespace", "hpa_name", "job", "instance", "hpa_metrics").explode("hpa_metrics").drop_nulls(
        "hpa_metrics").unnest("hpa_metrics")
    if metrics.height:
        target = _with_sid(metrics.with_columns(
            pl.col("hpa_name").alias("horizontalpodautoscaler"), pl.col("metric").alias("metric_name"),
            pl.col("target_type").replace({"Utilization": "utilization", "AverageValue": "average", "Value": "value"})
            .alias("metric_target_type"),
        )).with_columns(_ksm_labels(["namespace", "horizontalpodautoscaler", "metric_name",
                                     "metric_target_type"]).alias("labels"))
        _constant(w, "kube_horizontalpodautoscaler_spec_target_metric", target, whole(target), "target")

    # Namespace labels.
    ns_strings = []
    for ns, labels in ctx.namespaces.select("namespace", "labels").iter_rows():
        pairs = sorted({f'label_{sanitize(kv["key"])}="{kv["value"]}"' for kv in labels or []})
        ns_strings.append(",".join([f'namespace="{ns}"', *pairs, f'job="{_KSM["job"]}"', f'instance="{_KSM["instance"]}"']))
    ns_series = _with_sid(ctx.namespaces.select("namespace").with_columns(pl.Series("labels", ns_strings, dtype=pl.String)))
    _constant(w, "kube_namespace_labels", ns_series, whole(ns_series))


def _dcgm(w: _Writer, ctx: _Context, hostname_label: str) -> None:
    if ctx.gpus.is_empty():
        return
    devices = ctx.gpus.with_columns(
        pl.col("device").str.split("/").list.get(0).alias("UUID"),
        pl.col("device").str.split("/").list.get(1, null_on_oob=True).alias("GPU_I_ID"),
        pl.col("gpu_index").cast(pl.String).alias("gpu"),
        pl.concat_str([pl.lit("nvidia"), pl.col("gpu_index").cast(pl.String)]).alias("dev"),
        pl.format("00000000:{}:00.0", (pl.col("gpu_index") + 16).cast(pl.String)).alias("pci_bus_id"),
        pl.col("mig_profile").alias("GPU_I_PROFILE"),
    ).select("node", "device", "UUID", "GPU_I_ID", "gpu", "dev", "pci_bus_id", "model", "GPU_I_PROFILE", "memory_total")
    node_span = ctx.nodes.select(
        "node", pl.col("first_seen").dt.epoch("s").fill_null(ctx.window[0]).alias("t0"),
        pl.col("last_seen").dt.epoch("s").fill_null(ctx.window[1]).alias("t1"))
    grid = devices.select("node", "device").join(node_span, on="node", how="left").with_columns(
        pl.col("t0").fill_null(ctx.window[0]), pl.col("t1").fill_null(ctx.window[1])
    ).join(ctx.grid, how="cross").filter(
        (pl.col("ts") >= pl.col("t0") - ctx.step + 1) & (pl.col("ts") <= pl.col("t1"))).select("device", "ts")
    busy = ctx.usage.filter(pl.col("resource") == "gpu").select("device", "ts", "namespace", "pod", "container",
                                                                pl.col("value").alias("busy"))
    fb = ctx.usage.filter(pl.col("resource") == "gpu_memory").select("device", "ts", pl.col("value").alias("fb"))
    samples = (
        grid.join(busy, on=["device", "ts"], how="left")
        .join(fb, on=["device", "ts"], how="left")
        .with_columns(pl.col("busy").fill_null(0.0), pl.col("fb").fill_null(0.0))
        .join(devices, on="device", how="left")
    )
    host = "Hostname" if hostname_label == "Hostname" else "hostname"
    mig_cols = ["GPU_I_PROFILE", "GPU_I_ID"]
    base = ["gpu", "UUID", "pci_bus_id", "dev", "modelName"]
    samples = samples.with_columns(
        pl.lit(_DRIVER).alias("DCGM_FI_DRIVER_VERSION"), pl.col("node").alias("host"), pl.col("model").alias("modelName"),
        pl.lit("dcgm-exporter").alias("job"), (pl.col("node") + pl.lit(":9400")).alias("instance"),
    )
    whole = samples.filter(pl.col("GPU_I_ID").is_null())
    mig = samples.filter(pl.col("GPU_I_ID").is_not_null())

    def label_expr(is_mig: bool, assigned: bool) -> pl.Expr:
        cols = base + (mig_cols if is_mig else []) + ["host", "DCGM_FI_DRIVER_VERSION"]
        cols += ["namespace", "pod", "container"] if assigned else []
        return _labels(cols + ["instance", "job"], {"dev": "device", "host": host})

    def labelled(frame: pl.DataFrame, is_mig: bool) -> pl.DataFrame:
        return frame.with_columns(
            pl.when(pl.col("pod").is_not_null()).then(label_expr(is_mig, True)).otherwise(label_expr(is_mig, False))
            .alias("labels"))

    parts = [labelled(whole, False), labelled(mig, True)]
    allrows = pl.concat([p for p in parts if p.height])
    series = allrows.select("labels").unique(maintain_order=True).with_row_index("sid")
    allrows = allrows.join(series, on="labels")
    fb_mib = (pl.col("fb") / 2**20).round(0)
    w.family("DCGM_FI_DEV_GPU_UTIL", "gauge", series,
             allrows.filter(pl.col("GPU_I_ID").is_null()).select("sid", "ts", (pl.col("busy") * 100).round(0).alias("value")))
    w.family("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", series, allrows.select("sid", "ts", pl.col("busy").alias("value")))
    w.family("DCGM_FI_DEV_FB_USED", "gauge", series, allrows.select("sid", "ts", fb_mib.alias("value")))
    w.family("DCGM_FI_DEV_FB_FREE", "gauge", series, allrows.select(
        "sid", "ts", ((pl.col("memory_total") / 2**20).round(0) - fb_mib).clip(0).alias("value")))


def _opencost(w: _Writer, ctx: _Context) -> None:
    priced = ctx.nodes.filter(pl.col("hourly_price").is_not_null())
    if priced.is_empty():
        return
    series = _with_sid(priced.with_columns(
        pl.col("instance_type").fill_null(""), pl.col("region").fill_null(""),
        pl.concat_str([pl.lit("aws:///"), pl.col("zone").fill_null(""), pl.lit("/i-"), pl.col("node")]).alias("provider_id"),
        pl.lit("amd64").alias("arch"), pl.lit("opencost").alias("job"), pl.lit("opencost.opencost:9003").alias("instance"),
    )).with_columns(_labels(["node", "instance_type", "region", "provider_id", "arch", "instance", "job"]).alias("labels"))
    _constant(w, "node_total_hourly_cost", series, series.select("sid").join(ctx.grid, how="cross"), "hourly_price")
