"""Identity and formatting for simulated Kubernetes objects: uids, IDs, IPs, images, quantities.

Deterministic functions of names, shared by the API objects (``kube_objects``) and the
exporter rendering (``openmetrics``), so both describe the same cluster.
"""


from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import polars as pl

from analyzer.units import format_cpu, format_memory, parse_memory


# ---------------------------------------------------------------------------------------------
# Identity shared with the exporter rendering

_UID_NAMESPACE = uuid.UUID("6f1c1f0e-2b7a-4d0e-9a63-6b7574756e65")
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
KUBELET_VERSION = "v1.31.4"
CONTAINER_RUNTIME = "containerd://1.7.23"
KERNEL = "6.1.119-129.201.amzn2023.x86_64"
OS_IMAGE = "Amazon Linux 2023.6.20241212"
PODS_PER_NODE = 110


def object_uid(kind: str, namespace: str | None, name: str) -> str:
    """A deterministic metadata.uid for an object (UUID5 of kind, namespace and name)."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"{kind}/{namespace or ''}/{name}"))


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def container_id(namespace: str, pod: str, container: str) -> str:
    """The 64-hex containerd ID of a container (cAdvisor's ``name``, KSM's ``container_id``)."""
    return _digest("container", namespace, pod, container).hex()


def sandbox_id(namespace: str, pod: str) -> str:
    """The pause (sandbox) container ID of a pod."""
    return _digest("sandbox", namespace, pod).hex()


def image_for(namespace: str, workload: str, container: str) -> str:
    """A container image reference (the snapshot has none): one repository per workload container."""
    return f"registry.example.com/{namespace}/{workload}-{container}:1.0.0"


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0]
    return f"{repo}@sha256:{_digest('image', image).hex()}"


def node_ip(node: str) -> str:
    """The node's InternalIP: taken from ``ip-a-b-c-d`` names, else derived from the name."""
    m = re.match(r"^ip-(\d+)-(\d+)-(\d+)-(\d+)", node)
    if m and all(0 <= int(x) <= 255 for x in m.groups()):
        return ".".join(m.groups())
    d = _digest("node", node)
    return f"10.{d[0] % 64}.{d[1]}.{d[2] % 254 + 1}"


def pod_ip(namespace: str, pod: str) -> str:
    d = _digest("pod", namespace, pod)
    return f"100.{64 + d[0] % 64}.{d[1]}.{d[2] % 254 + 1}"


def provider_id(node: str, provider: str | None, zone: str | None) -> str | None:
    """spec.providerID as each cloud's node controller writes it (None when not a known cloud)."""
    d = _digest("instance", node).hex()
    zone = zone or "zone-a"
    if provider == "aws":
        return f"aws:///{zone}/i-0{d[:16]}"
    if provider == "gcp":
        return f"gce://kubetune-sim/{zone}/{node}"
    if provider == "azure":
        vmss, index = node.rsplit("-", 1)[0], int(d[:4], 16) % 100
        return ("azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_kubetune/providers/"
                f"Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{index}")
    return None


def node_system_info(node: str) -> dict[str, str]:
    """machineID, systemUUID and bootID of a node (status.nodeInfo; KSM's ``system_uuid``)."""
    d = _digest("node", node).hex()
    return {"machineID": d[:32], "systemUUID": str(uuid.UUID(d[32:64])), "bootID": str(uuid.UUID(d[:32]))}


def pod_cgroup(pod_uid: str, qos: str) -> str:
    """The pod's cgroup (systemd driver), as cAdvisor's ``id`` label shows it."""
    uid = pod_uid.replace("-", "_")
    if qos == "Guaranteed":
        return f"/kubepods.slice/kubepods-pod{uid}.slice"
    q = qos.lower()
    return f"/kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{uid}.slice"


def qos_class(containers: list[dict[str, Any]]) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits (all types)."""
    if all(c.get("cpu_request") is None and c.get("cpu_limit") is None and c.get("memory_request") is None
           and c.get("memory_limit") is None for c in containers):
        return "BestEffort"
    for c in containers:
        if c.get("cpu_limit") is None or c.get("memory_limit") is None:
            return "Burstable"
        if (c.get("cpu_request") or c["cpu_limit"]) != c["cpu_limit"] or \
                (c.get("memory_request") or c["memory_limit"]) != c["memory_limit"]:
            return "Burstable"
    return "Guaranteed"


# ---------------------------------------------------------------------------------------------
# Quantities and small formatting helpers


def cpu_quantity(cores: float) -> str:
    return format_cpu(cores)


def memory_quantity(nbytes: float) -> str:
    """A memory quantity that parses back to exactly ``nbytes`` (bytes when no binary unit fits)."""
    n = int(round(nbytes))
    text = format_memory(n)
    return text if parse_memory(text) == n else str(n)


def count_quantity(n: float) -> str:
    return str(int(n))


def number_quantity(x: float) -> str:
    """A plain number as a quantity (HPA targets): ``60``, ``500m``, ``1.25``."""
    if float(x).is_integer():
        return str(int(x))
    milli = round(x * 1000, 9)
    if float(milli).is_integer():
        return f"{int(milli)}m"
    return repr(float(x))


def int_or_string(value: str | None) -> int | str | None:
    """An int-or-string field as written: ``"1"`` -> 1, ``"25%"`` -> ``"25%"``."""
    if value is None:
        return None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"\d+", text) else text


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource_version(uid: str) -> str:
    return str(int(uid.replace("-", "")[:8], 16) % 90_000_000 + 10_000_000)


def label_map(pairs: list[dict] | None) -> dict[str, str]:
    return {p["key"]: p["value"] for p in pairs or [] if p.get("key") is not None and p.get("value") is not None}


# ---------------------------------------------------------------------------------------------
# Building the objects

LISTS = (
    # resource, list kind, apiVersion, kubectl order
    ("pods", "Pod", "v1"),
    ("deployments", "Deployment", "apps/v1"),
    ("statefulsets", "StatefulSet", "apps/v1"),
    ("daemonsets", "DaemonSet", "apps/v1"),
    ("replicasets", "ReplicaSet", "apps/v1"),
    ("jobs", "Job", "batch/v1"),
    ("cronjobs", "CronJob", "batch/v1"),
    ("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling/v2"),
    ("poddisruptionbudgets", "PodDisruptionBudget", "policy/v1"),
    ("nodes", "Node", "v1"),
    ("namespaces", "Namespace", "v1"),
)
RESOURCES = tuple(r for r, _, _ in LISTS)
OWNER_API = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
              "Job": "batch/v1", "CronJob": "batch/v1", "Rollout": "argoproj.io/v1alpha1"}
TERMINATIONS_NOT = ("Restart", "Evicted")  # event reasons that are not a container termination
NOT_RESTARTS = ("Completed", "Evicted")  # event reasons that do not restart a container
JOB_HISTORY = 3
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def str_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


# ---------------------------------------------------------------------------------------------
# Pure helpers


def short_hash(text: str, n: int = 10) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the controllers' SafeEncodeString alphabet
    d = _digest("hash", text)
    return "".join(alphabet[b % len(alphabet)] for b in d[:n])


def cron_schedule(jobs: list[str], cron: str) -> str:
    """A CronJob schedule from its Jobs' names (``<cron>-<scheduled minute since the epoch>``)."""
    minutes = sorted(int(j[len(cron) + 1:]) for j in jobs if j.startswith(cron + "-") and j[len(cron) + 1:].isdigit())
    gaps = [b - a for a, b in zip(minutes, minutes[1:], strict=False) if b > a]
    if not minutes or not gaps:
        return "0 * * * *"
    gap = min(gaps)
    first = minutes[0]
    if gap % 1440 == 0 and gap // 1440 > 1:
        return f"{first % 60} {first // 60 % 24} */{gap // 1440} * *"
    if gap == 1440:
        return f"{first % 60} {first // 60 % 24} * * *"
    if gap % 60 == 0 and 24 % (gap // 60) == 0:
        hours = gap // 60
        return f"{first % 60} */{hours} * * *" if hours > 1 else f"{first % 60} * * * *"
    if 60 % gap == 0:
        return f"*/{gap} * * * *"
    return "0 * * * *"


def hpa_metric(m: dict[str, Any]) -> dict[str, Any]:
    name, ttype, target = str(m["metric"]), m.get("target_type") or "Utilization", m.get("target")
    target = 0.0 if target is None else float(target)
    container = re.fullmatch(r"(cpu|memory) \((.+)\)", name)
    resource = name if name in ("cpu", "memory") else container[1] if container else None

    def quantity(kind: str | None) -> str:
        if kind == "cpu":
            return cpu_quantity(target)
        if kind == "memory":
            return memory_quantity(target)
        return number_quantity(target)

    if resource is not None:
        if ttype == "Utilization":
            tgt = {"type": "Utilization", "averageUtilization": int(round(target))}
        else:
            tgt = {"type": "AverageValue", "averageValue": quantity(resource)}
        if container:
            return {"type": "ContainerResource",
                    "containerResource": {"name": resource, "container": container[2], "target": tgt}}
        return {"type": "Resource", "resource": {"name": resource, "target": tgt}}
    if ttype == "Value":
        return {"type": "External", "external": {"metric": {"name": name},
                                                 "target": {"type": "Value", "value": quantity(None)}}}
    return {"type": "Pods", "pods": {"metric": {"name": name},
                                     "target": {"type": "AverageValue", "averageValue": quantity(None)}}}


def pdb_desired(spec: dict[str, Any], expected: int) -> int:
    if "minAvailable" in spec:
        v = spec["minAvailable"]
        return int(v) if isinstance(v, int) else -(-expected * int(v.rstrip("%")) // 100)
    v = spec["maxUnavailable"]
    down = int(v) if isinstance(v, int) else -(-expected * int(v.rstrip("%")) // 100)
    return max(expected - down, 0)


def node_extended_resources(n: dict[str, Any], devices: dict[str, int]) -> dict[str, int]:
    """GPU resources a node advertises: from its devices (MIG slices apart), else ``gpu_count``."""
    if devices:
        out = dict(devices)
        if any(k.startswith("nvidia.com/mig-") for k in out):
            out.setdefault("nvidia.com/gpu", 0)
    elif n.get("gpu_count"):
        out = {"nvidia.com/gpu": int(n["gpu_count"])}
    else:
        return {}
    if n.get("gpu_sharing") in ("time-slicing", "mps") and n.get("gpu_replicas"):
        out["nvidia.com/gpu"] = out.get("nvidia.com/gpu", 0) * int(n["gpu_replicas"])
    return dict(sorted(out.items()))


def node_resources(cpu: float | None, memory: int | None, ext: dict[str, int]) -> dict[str, str]:
    out: dict[str, str] = {}
    if cpu is not None:
        out["cpu"] = cpu_quantity(cpu)
    out["ephemeral-storage"] = "104845292Ki"
    out["hugepages-1Gi"] = "0"
    out["hugepages-2Mi"] = "0"
    if memory is not None:
        m = int(memory)
        out["memory"] = f"{m // 1024}Ki" if m % 1024 == 0 else str(m)
    out["pods"] = str(PODS_PER_NODE)
    for k, v in ext.items():
        out[k] = str(v)
    return dict(sorted(out.items()))
