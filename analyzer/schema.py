"""The Snapshot schema: every frame, column, dtype and unit, written once.

Collectors produce frames in this shape, analysis reads them, the README documents them
(``python -m analyzer.schema`` prints the Markdown tables). Units are explicit and never
human: CPU in cores (float), memory in bytes, GPU busy as a 0..1 fraction of one device,
prices in USD per hour, times in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

FORMAT_NAME = "kubetune-snapshot"
SCHEMA_VERSION = 1

TIMESTAMP = pl.Datetime("us", "UTC")
RESOURCES = ("cpu", "memory", "gpu", "gpu_memory")
RESOURCE = pl.Enum(list(RESOURCES))
CONTAINER_TYPES = ("app", "init", "sidecar")
CONTAINER_TYPE = pl.Enum(list(CONTAINER_TYPES))
CAPACITY_TYPES = ("on-demand", "spot", "reserved", "unknown")
CAPACITY_TYPE = pl.Enum(list(CAPACITY_TYPES))
KEY_VALUE = pl.Struct({"key": pl.String, "value": pl.String})
LABELS = pl.List(KEY_VALUE)
TOLERATION = pl.Struct({"key": pl.String, "operator": pl.String, "value": pl.String, "effect": pl.String})
HPA_METRIC = pl.Struct({"metric": pl.String, "target_type": pl.String, "target": pl.Float64})
TAINT = pl.Struct({"key": pl.String, "value": pl.String, "effect": pl.String})

# Units of the ``usage.value`` column by resource.
RESOURCE_UNITS = {
    "cpu": "cores",
    "memory": "bytes (working set)",
    "gpu": "busy fraction of one device, 0..1",
    "gpu_memory": "bytes (framebuffer used)",
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    unit: str
    doc: str
    nullable: bool = True


@dataclass(frozen=True)
class Frame:
    name: str
    doc: str
    columns: tuple[Column, ...]
    required: bool = True

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def file(self) -> str:
        return f"{self.name}.parquet"

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema)


def _c(name: str, dtype: pl.DataType, unit: str, doc: str, nullable: bool = True) -> Column:
    return Column(name, dtype, unit, doc, nullable)


_WORKLOAD_KEY = (
    _c("namespace", pl.Categorical, "", "Kubernetes namespace", False),
    _c("workload_kind", pl.Categorical, "", "top controller kind: Deployment, StatefulSet, DaemonSet, CronJob, Job, Rollout or Pod", False),
    _c("workload", pl.Categorical, "", "top controller name (bare pods: the pod name)", False),
)

USAGE = Frame(
    "usage",
    "Resource usage samples, long format: one row per container, resource (and GPU device) and timestamp.",
    (
        _c("timestamp", TIMESTAMP, "UTC", "sample time", False),
        *_WORKLOAD_KEY,
        _c("pod", pl.Categorical, "", "pod name", False),
        _c("container", pl.Categorical, "", "container name", False),
        _c("resource", RESOURCE, "", "one of " + ", ".join(RESOURCES), False),
        _c("device", pl.Categorical, "", "GPU device (UUID or MIG instance) for gpu/gpu_memory rows; null otherwise"),
        _c("value", pl.Float64, "see resource", "cpu: cores; memory: bytes; gpu: busy fraction 0..1 of one device; gpu_memory: bytes", False),
    ),
)

CONTAINERS = Frame(
    "containers",
    "One row per pod container with what it asks for. Null request/limit = not set.",
    (
        *_WORKLOAD_KEY,
        _c("pod", pl.Categorical, "", "pod name", False),
        _c("container", pl.Categorical, "", "container name", False),
        _c("container_type", CONTAINER_TYPE, "", "app, init, or sidecar (restartPolicy: Always init container)", False),
        _c("owner_kind", pl.Categorical, "", "the pod's direct owner kind (ReplicaSet, Job, StatefulSet, ...)"),
        _c("owner_name", pl.Categorical, "", "the pod's direct owner name"),
        _c("node", pl.Categorical, "", "node the pod ran on"),
        _c("cpu_request", pl.Float64, "cores", "CPU request"),
        _c("cpu_limit", pl.Float64, "cores", "CPU limit"),
        _c("memory_request", pl.Int64, "bytes", "memory request"),
        _c("memory_limit", pl.Int64, "bytes", "memory limit"),
        _c("gpu_resource", pl.String, "", "extended resource name, e.g. nvidia.com/gpu or nvidia.com/mig-1g.10gb"),
        _c("gpu_request", pl.Int64, "devices", "GPU devices (or MIG slices) requested"),
        _c("gpu_limit", pl.Int64, "devices", "GPU devices (or MIG slices) limited"),
        _c("started_at", TIMESTAMP, "UTC", "pod start, null when unknown"),
        _c("ended_at", TIMESTAMP, "UTC", "pod end, null when still running"),
    ),
)

WORKLOADS = Frame(
    "workloads",
    "One row per top-level controller (or bare pod) with the facts the recommenders need.",
    (
        *_WORKLOAD_KEY,
        _c("replicas", pl.Int64, "pods", "desired replicas (Jobs: parallelism)"),
        _c("labels", LABELS, "", "controller labels as key/value pairs"),
        _c("annotations", LABELS, "", "annotations as key/value pairs: the controller's merged with its pod template's (the template's win, as pod-level keys such as cluster-autoscaler.kubernetes.io/safe-to-evict belong there)"),
        _c("hpa_name", pl.String, "", "HorizontalPodAutoscaler (or KEDA ScaledObject) scaling it"),
        _c("hpa_min_replicas", pl.Int64, "pods", "HPA minReplicas"),
        _c("hpa_max_replicas", pl.Int64, "pods", "HPA maxReplicas"),
        _c("hpa_metrics", pl.List(HPA_METRIC), "", "HPA targets: metric (cpu, memory, or a custom name), target_type (Utilization, AverageValue, Value), target (percent or base unit)"),
        _c("pdb_name", pl.String, "", "PodDisruptionBudget selecting its pods"),
        _c("pdb_min_available", pl.String, "", "PDB minAvailable as written (int or percent)"),
        _c("pdb_max_unavailable", pl.String, "", "PDB maxUnavailable as written (int or percent)"),
        _c("update_strategy", pl.String, "", "RollingUpdate, Recreate or OnDelete"),
        _c("max_unavailable", pl.String, "", "rolling update maxUnavailable as written"),
        _c("max_surge", pl.String, "", "rolling update maxSurge as written"),
        _c("uses_empty_dir", pl.Boolean, "", "pod template mounts an emptyDir volume"),
        _c("uses_local_storage", pl.Boolean, "", "pod template or claim templates use local persistent volumes"),
        _c("node_selector", LABELS, "", "pod template nodeSelector"),
        _c("tolerations", pl.List(TOLERATION), "", "pod template tolerations"),
        _c("affinity", pl.String, "", "short summary of node affinity, e.g. 'required: karpenter.sh/capacity-type In [spot]'"),
    ),
)

NODES = Frame(
    "nodes",
    "One row per node seen in the window.",
    (
        _c("node", pl.Categorical, "", "node name", False),
        _c("instance_type", pl.String, "", "node.kubernetes.io/instance-type"),
        _c("provider", pl.String, "", "aws, gcp, azure or on-prem/unknown"),
        _c("region", pl.String, "", "topology.kubernetes.io/region"),
        _c("zone", pl.String, "", "topology.kubernetes.io/zone"),
        _c("capacity_type", CAPACITY_TYPE, "", "on-demand, spot, reserved or unknown", False),
        _c("cpu_capacity", pl.Float64, "cores", "node capacity"),
        _c("cpu_allocatable", pl.Float64, "cores", "node allocatable"),
        _c("memory_capacity", pl.Int64, "bytes", "node capacity"),
        _c("memory_allocatable", pl.Int64, "bytes", "node allocatable"),
        _c("gpu_count", pl.Int64, "devices", "physical GPUs (nvidia.com/gpu.count)"),
        _c("gpu_model", pl.String, "", "nvidia.com/gpu.product"),
        _c("gpu_memory", pl.Int64, "bytes", "framebuffer per physical GPU"),
        _c("mig_strategy", pl.String, "", "none, single or mixed"),
        _c("mig_config", pl.String, "", "nvidia.com/mig.config label, e.g. all-1g.10gb"),
        _c("gpu_sharing", pl.String, "", "none, time-slicing or mps"),
        _c("gpu_replicas", pl.Int64, "", "time-slicing/MPS replicas per GPU"),
        _c("hourly_price", pl.Float64, "USD/hour", "node price if known (e.g. OpenCost node_total_hourly_cost)"),
        _c("price_source", pl.String, "", "where hourly_price came from"),
        _c("labels", LABELS, "", "node labels"),
        _c("taints", pl.List(TAINT), "", "node taints"),
        _c("first_seen", TIMESTAMP, "UTC", "first time the node existed in the window"),
        _c("last_seen", TIMESTAMP, "UTC", "last time the node existed in the window"),
    ),
)

EVENTS = Frame(
    "events",
    "Container terminations and restarts (OOMKilled first of all).",
    (
        _c("timestamp", TIMESTAMP, "UTC", "when it happened (or was first seen)", False),
        *_WORKLOAD_KEY,
        _c("pod", pl.Categorical, "", "pod name", False),
        _c("container", pl.Categorical, "", "container name", False),
        _c("reason", pl.String, "", "OOMKilled, Error, Evicted, Completed, Restart, ...", False),
        _c("exit_code", pl.Int64, "", "container exit code (137 = SIGKILL)"),
        _c("restart_count", pl.Int64, "", "restart count after the event"),
        _c("memory_limit", pl.Int64, "bytes", "memory limit in force when it happened"),
    ),
)

GPUS = Frame(
    "gpus",
    "One row per GPU device or MIG instance and the container it was assigned to (from DCGM).",
    (
        _c("node", pl.Categorical, "", "node name", False),
        _c("device", pl.Categorical, "", "GPU UUID, or UUID/GPU_I_ID for a MIG instance", False),
        _c("gpu_index", pl.Int64, "", "DCGM gpu label"),
        _c("model", pl.String, "", "modelName"),
        _c("mig_profile", pl.String, "", "GPU_I_PROFILE, e.g. 1g.10gb; null for a whole GPU"),
        _c("memory_total", pl.Int64, "bytes", "framebuffer of the device or slice"),
        _c("namespace", pl.Categorical, "", "assigned pod namespace"),
        _c("pod", pl.Categorical, "", "assigned pod"),
        _c("container", pl.Categorical, "", "assigned container"),
    ),
    required=False,
)

NAMESPACES = Frame(
    "namespaces",
    "Namespace labels (team, cost-center, ...), for roll-ups by namespace label.",
    (
        _c("namespace", pl.Categorical, "", "namespace name", False),
        _c("labels", LABELS, "", "namespace labels"),
    ),
    required=False,
)

FRAMES: dict[str, Frame] = {f.name: f for f in (USAGE, CONTAINERS, WORKLOADS, NODES, EVENTS, GPUS, NAMESPACES)}

# Keys that identify one row; used for de-duplication and equality checks.
KEYS = {
    "usage": ["namespace", "workload_kind", "workload", "pod", "container", "resource", "device", "timestamp"],
    "containers": ["namespace", "pod", "container"],
    "workloads": ["namespace", "workload_kind", "workload"],
    "nodes": ["node"],
    "events": ["namespace", "pod", "container", "timestamp", "reason"],
    "gpus": ["node", "device"],
    "namespaces": ["namespace"],
}


def markdown() -> str:
    """The schema as Markdown tables, for the README."""
    out = [f"Format `{FORMAT_NAME}`, schema version {SCHEMA_VERSION}.\n"]
    for frame in FRAMES.values():
        optional = "" if frame.required else " (optional: may be absent or empty)"
        out.append(f"#### `{frame.file}`{optional}\n\n{frame.doc}\n")
        out.append("| column | dtype | unit | meaning |\n|---|---|---|---|")
        for col in frame.columns:
            null = "" if col.nullable else " (not null)"
            out.append(f"| `{col.name}` | `{col.dtype}` | {col.unit} | {col.doc}{null} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(markdown())
