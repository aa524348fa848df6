"""Prometheus answers into Snapshot frames: label sets -> columns, sanitized labels -> keys, epochs -> times.

Pure functions over Polars; no HTTP here (``promclient``) and no collection order (``prometheus``).
"""


from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import polars as pl

from analyzer.collectors import promql as q
from analyzer.errors import InputError
from analyzer.kube import KNOWN_NODE_LABELS, capacity_type_expr
from analyzer.schema import TIMESTAMP, USAGE
from analyzer.units import MIB

USAGE_COLUMNS = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "device",
                  "value"]
DEVICE_SCHEMA = {"node": pl.String, "device": pl.String, "gpu_index": pl.Int64, "model": pl.String,
                  "mig_profile": pl.String, "memory_total": pl.Int64}


# ---------------------------------------------------------------------------------------------
# Helpers: label sets -> frames


def labels_frame(labels: list[dict[str, str]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame({c: pl.Series(c, [lab.get(c) for lab in labels], dtype=pl.String) for c in columns})


def tagged(labels: list[dict[str, str]], values: np.ndarray) -> dict[str, pl.DataFrame]:
    """Split a ``kt``-tagged union answer into one frame per tag (all labels as columns + value)."""
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab.get("kt", ""), []).append(i)
    out = {}
    for tag_, idx in groups.items():
        cols = sorted({k for i in idx for k in labels[i] if k != "kt"})
        # A label called "value" (kube_node_spec_taint has one) becomes "label_value".
        data = {("label_value" if c == "value" else c): pl.Series(c, [labels[i].get(c) for i in idx], dtype=pl.String)
                for c in cols}
        data["value"] = pl.Series("value", values[idx], dtype=pl.Float64)
        out[tag_] = pl.DataFrame(data)
    return out


def empty_frame(columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in columns})


def usage_empty() -> pl.DataFrame:
    return USAGE.empty()


def _device_expr() -> pl.Expr:
    mig = pl.col("GPU_I_ID").is_not_null() & (pl.col("GPU_I_ID") != "")
    return pl.when(mig).then(pl.concat_str(pl.col("UUID"), pl.lit("/"), pl.col("GPU_I_ID"))).otherwise(pl.col("UUID"))


def dcgm_labels(labels: list[dict[str, str]]) -> pl.DataFrame:
    frame = labels_frame(labels, list(q.DCGM_LABELS))
    return frame.select("namespace", "pod", "container", _device_expr().alias("device"),
                        pl.coalesce(pl.col("Hostname").replace("", None), pl.col("hostname").replace("", None))
                        .alias("node"))


def devices_frame(labels: list[dict[str, str]], values: np.ndarray) -> pl.DataFrame:
    rows = tagged(labels, values)
    frames = []
    for tag_, frame in rows.items():
        for c in ("UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE", "Hostname", "hostname"):
            if c not in frame.columns:
                frame = frame.with_columns(pl.lit(None, pl.String).alias(c))
        frames.append(frame.with_columns(pl.lit(tag_).alias("kt")))
    if not frames:
        return pl.DataFrame(schema=DEVICE_SCHEMA)
    all_ = pl.concat([f.select("kt", "UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE", "Hostname", "hostname",
                               "value") for f in frames])
    all_ = all_.with_columns(
        _device_expr().alias("device"),
        pl.coalesce(pl.col("Hostname").replace("", None), pl.col("hostname").replace("", None)).alias("node"))
    per = all_.group_by(["node", "device"]).agg(
        pl.col("gpu").drop_nulls().first().cast(pl.Int64, strict=False).alias("gpu_index"),
        pl.col("modelName").drop_nulls().first().alias("model"),
        pl.col("GPU_I_PROFILE").drop_nulls().first().replace("", None).alias("mig_profile"),
        pl.when(pl.col("kt") == "total").then(pl.col("value")).max().alias("_mib"))
    out = per.with_columns((pl.col("_mib") * MIB).round(0).cast(pl.Int64).alias("memory_total"))
    return out.filter(pl.col("device").is_not_null() & pl.col("node").is_not_null()).select(list(DEVICE_SCHEMA))


# Well-known label keys, so kube_node_labels' / kube_namespace_labels' sanitized names
# (label_<key with every non-alphanumeric as _>) can be read back. Other keys stay sanitized
# (e.g. cost-center -> cost_center): the original cannot be recovered from the metric.
_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")
_KNOWN = {("label_" + _SANITIZE.sub("_", k)).lower(): k for k in KNOWN_NODE_LABELS}


def _label_key(column: str) -> str:
    return _KNOWN.get(column.lower(), column.removeprefix("label_"))


def node_labels_frame(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    if frame is None or "node" not in frame.columns:
        return None
    cols = [c for c in frame.columns if c.startswith("label_")]
    frame = frame.unique("node", keep="last")
    if not cols:
        return frame.select("node", pl.lit([], dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String})))
                            .alias("labels"))
    long = frame.select("node", *cols).unpivot(index="node", on=cols, variable_name="_col", value_name="value").filter(
        pl.col("value").is_not_null() & (pl.col("value") != ""))
    keys = {c: _label_key(c) for c in cols}
    long = long.with_columns(pl.col("_col").replace_strict(keys, return_dtype=pl.String).alias("key"))
    return frame.select("node").join(
        long.sort(["node", "key"]).group_by("node").agg(pl.struct("key", "value").alias("labels")), on="node",
        how="left")


def namespaces_frame(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    if frame is None or "namespace" not in frame.columns:
        return None
    cols = [c for c in frame.columns if c.startswith("label_")]
    frame = frame.unique("namespace", keep="last").sort("namespace")
    if not cols:
        return frame.select("namespace")
    long = frame.select("namespace", *cols).unpivot(index="namespace", on=cols, variable_name="_col",
                                                     value_name="value").filter(
        pl.col("value").is_not_null() & (pl.col("value") != ""))
    keys = {c: _label_key(c) for c in cols}
    long = long.with_columns(pl.col("_col").replace_strict(keys, return_dtype=pl.String).alias("key"))
    return frame.select("namespace").join(
        long.sort(["namespace", "key"]).group_by("namespace").agg(pl.struct("key", "value").alias("labels")),
        on="namespace", how="left", maintain_order="left")


def node_label(name: str) -> pl.Expr:
    """The value of node label ``name`` from the ``labels`` list column (null if absent)."""
    return (pl.col("labels").list.eval(pl.element().filter(pl.element().struct.field("key") == name)
                                       .struct.field("value")).list.first())


def finish_nodes(nodes: pl.DataFrame) -> pl.DataFrame:
    for col, dtype in (("labels", pl.List(pl.Struct({"key": pl.String, "value": pl.String}))),
                       ("_cap_cpu", pl.Float64), ("_cap_memory", pl.Float64), ("_cap_nvidia_com_gpu", pl.Float64),
                       ("_alloc_cpu", pl.Float64), ("_alloc_memory", pl.Float64), ("_provider_id", pl.String),
                       ("_oc_instance_type", pl.String), ("_oc_region", pl.String), ("_oc_provider_id", pl.String),
                       ("hourly_price", pl.Float64), ("_kc_spot", pl.Float64), ("_dcgm_count", pl.UInt32),
                       ("_dcgm_model", pl.String), ("_dcgm_mem", pl.Int64), ("_dcgm_any_model", pl.String),
                       ("_dcgm_mig", pl.Boolean)):
        if col not in nodes.columns:
            nodes = nodes.with_columns(pl.lit(None, dtype).alias(col))
    cap_type = (
        pl.when(capacity_type_expr(node_label).is_not_null()).then(capacity_type_expr(node_label))
        .when(pl.col("_kc_spot") == 1).then(pl.lit("spot"))
        .when(pl.col("_kc_spot") == 0).then(pl.lit("on-demand"))
        .otherwise(pl.lit("unknown"))
    )
    provider_id = pl.coalesce("_provider_id", "_oc_provider_id").fill_null("")
    provider = (
        pl.when(provider_id.str.starts_with("aws")).then(pl.lit("aws"))
        .when(provider_id.str.starts_with("gce")).then(pl.lit("gcp"))
        .when(provider_id.str.starts_with("azure")).then(pl.lit("azure"))
        .when(node_label("eks.amazonaws.com/capacityType").is_not_null()
              | node_label("karpenter.k8s.aws/instance-gpu-name").is_not_null()).then(pl.lit("aws"))
        .when(node_label("cloud.google.com/gke-nodepool").is_not_null()).then(pl.lit("gcp"))
        .when(node_label("kubernetes.azure.com/agentpool").is_not_null()).then(pl.lit("azure"))
        .otherwise(pl.lit("unknown"))
    )
    gpu_label = node_label("nvidia.com/gpu.count").cast(pl.Int64, strict=False)
    replicas = node_label("nvidia.com/gpu.replicas").cast(pl.Int64, strict=False)
    cap_gpu = pl.col("_cap_nvidia_com_gpu").round(0).cast(pl.Int64)
    out = nodes.with_columns(
        pl.coalesce(node_label("node.kubernetes.io/instance-type"), node_label("beta.kubernetes.io/instance-type"),
                    "_oc_instance_type").alias("instance_type"),
        provider.alias("provider"),
        pl.coalesce(node_label("topology.kubernetes.io/region"), node_label("failure-domain.beta.kubernetes.io/region"),
                    "_oc_region").alias("region"),
        pl.coalesce(node_label("topology.kubernetes.io/zone"), node_label("failure-domain.beta.kubernetes.io/zone"))
        .alias("zone"),
        cap_type.alias("capacity_type"),
        pl.col("_cap_cpu").alias("cpu_capacity"),
        pl.col("_alloc_cpu").alias("cpu_allocatable"),
        pl.col("_cap_memory").round(0).cast(pl.Int64).alias("memory_capacity"),
        pl.col("_alloc_memory").round(0).cast(pl.Int64).alias("memory_allocatable"),
        pl.coalesce(gpu_label, pl.col("_dcgm_count").cast(pl.Int64),
                    pl.when(replicas.is_null()).then(cap_gpu),
                    # Known capacity or labels without any GPU: none.
                    pl.when(pl.col("_cap_cpu").is_not_null() | pl.col("labels").is_not_null()).then(pl.lit(0)))
        .alias("gpu_count"),
        pl.coalesce(node_label("nvidia.com/gpu.product"), "_dcgm_model", "_dcgm_any_model").alias("gpu_model"),
        pl.coalesce((node_label("nvidia.com/gpu.memory").cast(pl.Int64, strict=False) * MIB), "_dcgm_mem")
        .alias("gpu_memory"),
        pl.coalesce(node_label("nvidia.com/mig.strategy"),
                    pl.when(pl.col("_dcgm_mig")).then(pl.lit("mixed")),
                    pl.when(pl.coalesce(gpu_label, pl.col("_dcgm_count").cast(pl.Int64), cap_gpu) > 0)
                    .then(pl.lit("none"))).alias("mig_strategy"),
        node_label("nvidia.com/mig.config").alias("mig_config"),
        node_label("nvidia.com/gpu.sharing-strategy").alias("gpu_sharing"),
        replicas.alias("gpu_replicas"),
        pl.when(pl.col("hourly_price").is_not_null()).then(pl.lit("opencost node_total_hourly_cost"))
        .alias("price_source"),
    )
    return out.drop([c for c in out.columns if c.startswith("_")])


_GPU_RESOURCE = re.compile(r"^(nvidia|amd)_com_(.+)$")
_MIG = re.compile(r"^mig_(\d+)g_(\d+)gb(_me)?$")


def resource_name(sanitized: str | None) -> str | None:
    """kube-state-metrics' sanitized extended-resource name back to the Kubernetes one."""
    if sanitized is None:
        return None
    m = _GPU_RESOURCE.match(sanitized)
    if not m:
        return sanitized
    vendor, rest = m.groups()
    mig = _MIG.match(rest)
    if mig:
        return f"{vendor}.com/mig-{mig[1]}g.{mig[2]}gb" + ("+me" if mig[3] else "")
    return f"{vendor}.com/" + rest.replace("_", ".")


# ---------------------------------------------------------------------------------------------
# Helpers: time


def to_epoch(value: datetime) -> float:
    if not isinstance(value, datetime):
        raise InputError(f"{value!r} is not a date and time.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def epoch_series(seconds: pl.Series) -> pl.Series:
    return (seconds * 1_000_000).round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def epoch_expr(column: str) -> pl.Expr:
    return (pl.col(column) * 1_000_000).round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def pods_frame(rows: dict[str, pl.DataFrame], *, guess_rs: bool, guess_job: bool) -> pl.DataFrame:
    """One row per pod from the tagged owner rows (``q.owners``): workload_kind, workload, owner_kind,
    owner_name, node, started/ended. Without ReplicaSet or Job owner metrics (``guess_rs``,
    ``guess_job``) Deployments and CronJobs are guessed from the owners' names."""
    pod_owner = rows.get("pod_owner",
                         empty_frame(["namespace", "pod", "owner_kind", "owner_name", "owner_is_controller"]))
    pod_owner = (
        pod_owner.with_columns(pl.col("owner_is_controller").fill_null("").eq("true").alias("_ctl"))
        .sort(["namespace", "pod", "_ctl"], descending=[False, False, True])
        .unique(["namespace", "pod"], keep="first")
        .select("namespace", "pod", "owner_kind", "owner_name")
    )
    rs = rows.get("rs_owner", empty_frame(["namespace", "replicaset", "owner_kind", "owner_name"])).select(
        "namespace", pl.col("replicaset").alias("owner_name"), pl.col("owner_kind").alias("_rs_kind"),
        pl.col("owner_name").alias("_rs_name")).unique(["namespace", "owner_name"])
    jobs = rows.get("job_owner", empty_frame(["namespace", "job_name", "owner_kind", "owner_name"])).select(
        "namespace", pl.col("job_name").alias("owner_name"), pl.col("owner_kind").alias("_job_kind"),
        pl.col("owner_name").alias("_job_name")).unique(["namespace", "owner_name"])
    none = pl.col("owner_kind").is_null() | pl.col("owner_kind").is_in(["<none>", "", "Node"])
    rs_owned = pl.col("_rs_kind").is_not_null() & ~pl.col("_rs_kind").is_in(["<none>", ""])
    job_owned = pl.col("_job_kind").is_not_null() & ~pl.col("_job_kind").is_in(["<none>", ""])
    pods = pod_owner.join(rs, on=["namespace", "owner_name"], how="left").join(
        jobs, on=["namespace", "owner_name"], how="left")
    rs_guess = pl.col("owner_name").str.replace(r"-[a-z0-9]{5,10}$", "")
    job_guess = pl.col("owner_name").str.replace(r"-\d{6,}$", "")
    kind = (
        pl.when(none).then(pl.lit("Pod"))
        .when((pl.col("owner_kind") == "ReplicaSet") & rs_owned).then(pl.col("_rs_kind"))
        .when((pl.col("owner_kind") == "ReplicaSet") & pl.lit(guess_rs)).then(pl.lit("Deployment"))
        .when((pl.col("owner_kind") == "Job") & job_owned).then(pl.col("_job_kind"))
        .when((pl.col("owner_kind") == "Job") & pl.lit(guess_job) & pl.col("owner_name").str.contains(r"-\d{6,}$"))
        .then(pl.lit("CronJob"))
        .otherwise(pl.col("owner_kind"))
    )
    name = (
        pl.when(none).then(pl.col("pod"))
        .when((pl.col("owner_kind") == "ReplicaSet") & rs_owned).then(pl.col("_rs_name"))
        .when((pl.col("owner_kind") == "ReplicaSet") & pl.lit(guess_rs)).then(rs_guess)
        .when((pl.col("owner_kind") == "Job") & job_owned).then(pl.col("_job_name"))
        .when((pl.col("owner_kind") == "Job") & pl.lit(guess_job) & pl.col("owner_name").str.contains(r"-\d{6,}$"))
        .then(job_guess)
        .otherwise(pl.col("owner_name"))
    )
    pods = pods.select(
        "namespace", "pod", kind.alias("workload_kind"), name.alias("workload"),
        pl.when(none).then(None).otherwise(pl.col("owner_kind")).alias("owner_kind"),
        pl.when(none).then(None).otherwise(pl.col("owner_name")).alias("owner_name"),
    )
    info = rows.get("pod_info")
    if info is not None and "node" in info.columns:
        pods = pods.join(info.select("namespace", "pod", "node").unique(["namespace", "pod"]), on=["namespace", "pod"],
                         how="full", coalesce=True)
    else:
        pods = pods.with_columns(pl.lit(None, pl.String).alias("node"))
    for tag_, col in (("pod_start", "started_at"), ("pod_completion", "ended_at")):
        frame = rows.get(tag_)
        if frame is not None:
            pods = pods.join(frame.select("namespace", "pod", epoch_expr("value").alias(col))
                             .unique(["namespace", "pod"]), on=["namespace", "pod"], how="left")
        else:
            pods = pods.with_columns(pl.lit(None, TIMESTAMP).alias(col))
    return pods.with_columns(
        pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"))
