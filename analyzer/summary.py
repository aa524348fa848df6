"""Cluster summary: size, and requested vs used CPU, memory and GPU, from any Snapshot.

The first figures a report shows, before cost and recommendations. Requests are weighted by
the share of the window each container existed (a daily batch pod counts for its hours only),
so "requested" and "used" are both averages over the same window and can be compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import polars as pl

from analyzer.parts import workload_parts
from analyzer.snapshot import Snapshot

CONTAINER = ["namespace", "workload_kind", "workload", "pod", "container"]


@dataclass
class ResourceSummary:
    resource: str
    unit: str
    requested: float | None  # time-averaged sum of requests over the window
    used_avg: float | None  # time-averaged cluster usage
    used_p95: float | None  # 95th percentile of cluster usage over time
    used_peak: float | None
    capacity: float | None  # node allocatable, when nodes are known
    containers_without_request: int = 0

    @property
    def utilization(self) -> float | None:
        """used / requested (1.0 = requests match usage exactly)."""
        if not self.requested or self.used_avg is None:
            return None
        return self.used_avg / self.requested


@dataclass
class ClusterSummary:
    cluster: str
    start: str
    end: str
    step_seconds: int
    source: str
    nodes: int
    spot_nodes: int
    gpu_nodes: int
    namespaces: int
    workloads: int
    pods: int
    containers: int
    resources: list[ResourceSummary] = field(default_factory=list)
    by_namespace: pl.DataFrame | None = None
    absent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        out["resources"] = [{**asdict(r), "utilization": r.utilization} for r in self.resources]
        out["by_namespace"] = self.by_namespace.to_dicts() if self.by_namespace is not None else []
        return out


_UNITS = {"cpu": "cores", "memory": "bytes", "gpu": "devices"}


def summarize(snapshot: Snapshot) -> ClusterSummary:
    """The cluster summary the report shows: size, requested vs used per resource, by namespace.

    Length: one pass that fills the summary in reading order; the parts share the per-resource frames.
    """
    m = snapshot.manifest
    total_steps = max(1, int((m.end - m.start).total_seconds() // m.step_seconds) + 1)
    # lazy: each pass filters only the columns it reads (an eager filter copies the whole frame)
    usage = snapshot.usage.lazy()
    containers = snapshot.containers
    nodes = snapshot.nodes

    # Share of the window each container existed, from its CPU (or memory) samples.
    cm = usage.filter(pl.col("resource").is_in(["cpu", "memory"]))
    present = pl.concat([  # per container, a few workloads at a time (bounded memory)
        part.group_by(CONTAINER).agg((pl.col("timestamp").n_unique() / total_steps).clip(0, 1).alias("presence"))
        .collect() for part in workload_parts(cm)], how="vertical_relaxed")
    reqs = containers.join(present, on=CONTAINER, how="left").with_columns(
        pl.col("presence").fill_null(0.0),
        pl.col("gpu_request").fill_null(pl.col("gpu_limit")).alias("gpu_request"),
    )
    requested = reqs.select(
        cpu=(pl.col("cpu_request") * pl.col("presence")).sum(),
        memory=(pl.col("memory_request").cast(pl.Float64) * pl.col("presence")).sum(),
        gpu=(pl.col("gpu_request").cast(pl.Float64) * pl.col("presence")).sum(),
        cpu_missing=(pl.col("cpu_request").is_null() & (pl.col("container_type") != "init")).sum(),
        memory_missing=(pl.col("memory_request").is_null() & (pl.col("container_type") != "init")).sum(),
    ).row(0, named=True)

    # GPU "used" is devices busy: the busy fraction summed over devices at each timestamp.
    per_ts = (
        usage.filter(pl.col("resource").is_in(["cpu", "memory", "gpu"]))
        .group_by(["resource", "timestamp"])
        .agg(pl.col("value").sum())
    )
    # Timestamps with no sample of a resource count as zero usage (e.g. between batch runs).
    stats = per_ts.group_by("resource").agg(
        (pl.col("value").sum() / total_steps).alias("avg"),
        pl.col("value").quantile(0.95, "linear").alias("p95"),
        pl.col("value").max().alias("peak"),
    ).collect()
    stat = {r["resource"]: r for r in stats.to_dicts()}
    capacity = {
        "cpu": nodes.get_column("cpu_allocatable").sum() if nodes.height else None,
        "memory": float(nodes.get_column("memory_allocatable").sum()) if nodes.height else None,
        "gpu": float(nodes.get_column("gpu_count").fill_null(0).sum()) if nodes.height else None,
    }
    resources = []
    for res in ("cpu", "memory", "gpu"):
        s = stat.get(res, {})
        has_requests = res != "gpu" or reqs.get_column("gpu_request").drop_nulls().len() > 0
        if res == "gpu" and not s and not has_requests:
            continue
        resources.append(
            ResourceSummary(
                resource=res,
                unit=_UNITS[res],
                requested=float(requested[res] or 0.0) if "requests" not in m.absent else None,
                used_avg=s.get("avg"),
                used_p95=s.get("p95"),
                used_peak=s.get("peak"),
                capacity=capacity[res],
                containers_without_request=int(requested.get(f"{res}_missing") or 0),
            )
        )

    by_ns = _by_namespace(usage, reqs, total_steps)
    return ClusterSummary(
        cluster=m.cluster,
        start=m.start.isoformat(),
        end=m.end.isoformat(),
        step_seconds=m.step_seconds,
        source=m.source,
        nodes=nodes.height,
        spot_nodes=nodes.filter(pl.col("capacity_type") == "spot").height,
        gpu_nodes=nodes.filter(pl.col("gpu_count").fill_null(0) > 0).height,
        namespaces=containers.get_column("namespace").n_unique(),
        workloads=snapshot.workloads.height,
        pods=containers.select(["namespace", "pod"]).unique().height,
        containers=containers.height,
        resources=resources,
        by_namespace=by_ns,
        absent=list(m.absent),
        warnings=list(m.warnings),
    )


def _by_namespace(usage: pl.LazyFrame, reqs: pl.DataFrame, total_steps: int) -> pl.DataFrame:
    used = (
        usage.filter(pl.col("resource").is_in(["cpu", "memory"]))
        .group_by(["namespace", "resource"])
        .agg((pl.col("value").sum() / total_steps).alias("used"))
        .collect()
        .pivot(on="resource", index="namespace", values="used")
    )
    for res in ("cpu", "memory"):
        if res not in used.columns:
            used = used.with_columns(pl.lit(None, dtype=pl.Float64).alias(res))
    used = used.rename({"cpu": "cpu_used", "memory": "memory_used"})
    requested = reqs.group_by("namespace").agg(
        (pl.col("cpu_request") * pl.col("presence")).sum().alias("cpu_requested"),
        (pl.col("memory_request").cast(pl.Float64) * pl.col("presence")).sum().alias("memory_requested"),
        pl.col("workload").n_unique().alias("workloads"),
    )
    return (
        requested.join(used, on="namespace", how="full", coalesce=True)
        .with_columns(pl.col("namespace").cast(pl.String))
        .sort("cpu_requested", descending=True, nulls_last=True)
        .select(["namespace", "workloads", "cpu_requested", "cpu_used", "memory_requested", "memory_used"])
    )
