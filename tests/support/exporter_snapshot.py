"""A small hand-made cluster Snapshot covering every shape the exporter renderings handle.

Three hours at 5 minutes (36 samples) from 2026-11-02T00:00Z:

- shop/web: Deployment -> ReplicaSet web-7d9f8c6b5d -> 2 pods; app container with a CPU limit
  it runs close to (throttling), an ``istio-proxy`` sidecar and an ``istio-init`` init container;
  HPA (cpu 70 %, memory 1Gi AverageValue), PDB minAvailable 1, emptyDir, preferred spot
  affinity; pod ``-abcde``'s app OOM-killed twice (restart counts 1 and 2).
- shop/db: StatefulSet with local storage, PDB maxUnavailable 1.
- monitoring/node-exporter: DaemonSet on both nodes, tolerates everything.
- batch/nightly: CronJob -> Job nightly-29893050 -> one pod that runs 00:30-01:10:07 (Completed).
- ml/infer: Deployment on a MIG slice (``nvidia.com/mig-1g.5gb``); ml/train-llm: a bare Job on a
  whole GPU; a second whole GPU and a MIG slice serve nobody.
- tools/debug: a bare pod without requests (BestEffort).
- Nodes: a priced on-demand m5.xlarge and a spot p4d.24xlarge with MIG (mixed) and a GPU taint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from analyzer.snapshot import Manifest, Snapshot

START = datetime(2026, 11, 2, tzinfo=UTC)
STEP = 300
STEPS = 36
MI = 2**20
GI = 2**30
CPU_NODE = "ip-10-0-1-10.ec2.internal"
GPU_NODE = "ip-10-0-3-30.ec2.internal"
NIGHTLY_POD = "nightly-29893050-q7x2z"
OOM_POD = "web-7d9f8c6b5d-abcde"
OOM_STEPS = (20, 28)
LONG_AGO = START - timedelta(days=40)


def t(i: int) -> datetime:
    return START + timedelta(seconds=STEP * i)


# (namespace, kind, workload, pod, container, type, owner kind, owner name, node,
#  cpu req, cpu lim, mem req, mem lim, gpu resource, gpus, started, ended)
_CONTAINERS = [
    ("shop", "Deployment", "web", OOM_POD, "istio-init", "init", "ReplicaSet", "web-7d9f8c6b5d", CPU_NODE,
     0.01, 0.1, 10 * MI, 50 * MI, None, None, LONG_AGO, None),
    ("shop", "Deployment", "web", OOM_POD, "istio-proxy", "sidecar", "ReplicaSet", "web-7d9f8c6b5d", CPU_NODE,
     0.1, None, 128 * MI, 256 * MI, None, None, LONG_AGO, None),
    ("shop", "Deployment", "web", OOM_POD, "app", "app", "ReplicaSet", "web-7d9f8c6b5d", CPU_NODE,
     0.5, 1.0, 512 * MI, GI, None, None, LONG_AGO, None),
    ("shop", "Deployment", "web", "web-7d9f8c6b5d-fghij", "istio-init", "init", "ReplicaSet", "web-7d9f8c6b5d",
     CPU_NODE, 0.01, 0.1, 10 * MI, 50 * MI, None, None, LONG_AGO, None),
    ("shop", "Deployment", "web", "web-7d9f8c6b5d-fghij", "istio-proxy", "sidecar", "ReplicaSet", "web-7d9f8c6b5d",
     CPU_NODE, 0.1, None, 128 * MI, 256 * MI, None, None, LONG_AGO, None),
    ("shop", "Deployment", "web", "web-7d9f8c6b5d-fghij", "app", "app", "ReplicaSet", "web-7d9f8c6b5d", CPU_NODE,
     0.5, 1.0, 512 * MI, GI, None, None, LONG_AGO, None),
    ("shop", "StatefulSet", "db", "db-0", "postgres", "app", "StatefulSet", "db", CPU_NODE,
     1.0, 2.0, 2 * GI, 2 * GI, None, None, LONG_AGO, None),
    ("monitoring", "DaemonSet", "node-exporter", "node-exporter-x1b2c", "exporter", "app", "DaemonSet",
     "node-exporter", CPU_NODE, 0.05, 0.2, 64 * MI, 128 * MI, None, None, LONG_AGO, None),
    ("monitoring", "DaemonSet", "node-exporter", "node-exporter-k9d8e", "exporter", "app", "DaemonSet",
     "node-exporter", GPU_NODE, 0.05, 0.2, 64 * MI, 128 * MI, None, None, LONG_AGO, None),
    ("batch", "CronJob", "nightly", NIGHTLY_POD, "job", "app", "Job", "nightly-29893050", CPU_NODE,
     1.0, None, GI, 2 * GI, None, None, START + timedelta(minutes=30), START + timedelta(minutes=70, seconds=7)),
    ("ml", "Deployment", "infer", "infer-5c8d7b9f6d-kq2mn", "server", "app", "ReplicaSet", "infer-5c8d7b9f6d",
     GPU_NODE, 2.0, 4.0, 8 * GI, 8 * GI, "nvidia.com/mig-1g.5gb", 1, LONG_AGO, None),
    ("ml", "Job", "train-llm", "train-llm-x8k2p", "trainer", "app", "Job", "train-llm", GPU_NODE,
     8.0, None, 32 * GI, 32 * GI, "nvidia.com/gpu", 1, START - timedelta(hours=5), None),
    ("tools", "Pod", "debug", "debug", "shell", "app", None, None, CPU_NODE,
     None, None, None, None, None, None, START - timedelta(hours=1), None),
]
_CCOLS = ["namespace", "workload_kind", "workload", "pod", "container", "container_type", "owner_kind", "owner_name",
          "node", "cpu_request", "cpu_limit", "memory_request", "memory_limit", "gpu_resource", "gpu_request",
          "started_at", "ended_at"]

# device -> (namespace, pod, container) using it, with its busy fraction
GPU_USE = {"GPU-aaaa0000-0000-4000-8000-000000000001": ("ml", "train-llm-x8k2p", "trainer", 0.9),
           "GPU-bbbb0000-0000-4000-8000-000000000002/7": ("ml", "infer-5c8d7b9f6d-kq2mn", "server", 0.35)}


def _cpu(pod: str, container: str, i: int) -> float:
    if container == "app" and pod.startswith("web-"):
        return 0.95 if i % 6 == 0 else 0.3 + 0.004 * i  # bursts to 95 % of its 1-core limit
    return {"istio-proxy": 0.02, "postgres": 0.4, "exporter": 0.01, "job": 0.8, "server": 1.5, "trainer": 6.0,
            "shell": 0.001}.get(container, 0.05)


def _memory(container: str, i: int) -> float:
    return float({"istio-proxy": 80 * MI, "postgres": GI + 4096 * i, "exporter": 30 * MI, "job": 700 * MI,
                  "server": 5 * GI, "trainer": 20 * GI, "shell": 4 * MI}.get(container, 400 * MI + 4096 * i))


def small_cluster() -> Snapshot:
    containers = pl.DataFrame(_CONTAINERS, schema=_CCOLS, orient="row").with_columns(
        pl.col("gpu_request").alias("gpu_limit"))
    rows = []
    for c in containers.iter_rows(named=True):
        if c["container_type"] == "init":
            continue  # ran before the window
        for i in range(STEPS):
            ts = t(i)
            if ts < c["started_at"] or (c["ended_at"] is not None and ts > c["ended_at"]):
                continue
            key = (ts, c["namespace"], c["workload_kind"], c["workload"], c["pod"], c["container"])
            rows.append((*key, "cpu", None, _cpu(c["pod"], c["container"], i)))
            rows.append((*key, "memory", None, _memory(c["container"], i)))
    for device, (ns, pod, container, busy) in GPU_USE.items():
        c = containers.filter((pl.col("pod") == pod) & (pl.col("container") == container)).row(0, named=True)
        for i in range(STEPS):
            key = (t(i), ns, c["workload_kind"], c["workload"], pod, container)
            rows.append((*key, "gpu", device, round(busy + 0.01 * (i % 5), 3)))
            rows.append((*key, "gpu_memory", device, float((3 if "/" in device else 30) * GI + i * MI)))
    usage = pl.DataFrame(rows, schema=["timestamp", "namespace", "workload_kind", "workload", "pod", "container",
                                       "resource", "device", "value"], orient="row", infer_schema_length=None)
    workloads = pl.DataFrame([
        {"namespace": "shop", "workload_kind": "Deployment", "workload": "web", "replicas": 2,
         "labels": [{"key": "app", "value": "web"}, {"key": "team", "value": "storefront"}],
         "annotations": [{"key": "deployment.kubernetes.io/revision", "value": "3"}],
         "hpa_name": "web", "hpa_min_replicas": 2, "hpa_max_replicas": 6,
         "hpa_metrics": [{"metric": "cpu", "target_type": "Utilization", "target": 70.0},
                         {"metric": "memory", "target_type": "AverageValue", "target": float(GI)}],
         "pdb_name": "web-pdb", "pdb_min_available": "1", "update_strategy": "RollingUpdate",
         "max_unavailable": "25%", "max_surge": "1", "uses_empty_dir": True, "uses_local_storage": False,
         "affinity": "preferred: karpenter.sh/capacity-type In [spot]"},
        {"namespace": "shop", "workload_kind": "StatefulSet", "workload": "db", "replicas": 1,
         "labels": [{"key": "app", "value": "db"}], "pdb_name": "db-pdb", "pdb_max_unavailable": "1",
         "update_strategy": "RollingUpdate", "uses_empty_dir": False, "uses_local_storage": True},
        {"namespace": "monitoring", "workload_kind": "DaemonSet", "workload": "node-exporter", "replicas": 2,
         "labels": [{"key": "app", "value": "node-exporter"}], "update_strategy": "RollingUpdate",
         "max_unavailable": "10%", "max_surge": "0",
         "tolerations": [{"key": None, "operator": "Exists", "value": None, "effect": None}]},
        {"namespace": "batch", "workload_kind": "CronJob", "workload": "nightly", "replicas": 1,
         "labels": [{"key": "app", "value": "nightly"}]},
        {"namespace": "ml", "workload_kind": "Deployment", "workload": "infer", "replicas": 1,
         "labels": [{"key": "app", "value": "infer"}], "update_strategy": "Recreate",
         "node_selector": [{"key": "nvidia.com/mig.config", "value": "all-balanced"}],
         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": None, "effect": "NoSchedule"}]},
        {"namespace": "ml", "workload_kind": "Job", "workload": "train-llm", "replicas": 1,
         "labels": [{"key": "app", "value": "train-llm"}],
         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": None, "effect": "NoSchedule"}]},
        {"namespace": "tools", "workload_kind": "Pod", "workload": "debug", "replicas": 1,
         "labels": [{"key": "run", "value": "debug"}]},
    ])
    gpu_labels = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
                  "nvidia.com/gpu.count": "3", "nvidia.com/gpu.memory": "40960", "nvidia.com/mig.strategy": "mixed",
                  "nvidia.com/mig.config": "all-balanced"}

    def node_labels(name: str, itype: str, capacity: str, extra: dict | None = None) -> list[dict]:
        d = {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
             "node.kubernetes.io/instance-type": itype, "topology.kubernetes.io/region": "us-east-1",
             "topology.kubernetes.io/zone": "us-east-1a", "karpenter.sh/capacity-type": capacity, **(extra or {})}
        return [{"key": k, "value": v} for k, v in d.items()]

    nodes = pl.DataFrame([
        {"node": CPU_NODE, "instance_type": "m5.xlarge", "provider": "aws", "region": "us-east-1",
         "zone": "us-east-1a", "capacity_type": "on-demand", "cpu_capacity": 4.0, "cpu_allocatable": 3.92,
         "memory_capacity": 16 * GI, "memory_allocatable": 16138633216, "gpu_count": 0, "hourly_price": 0.192,
         "price_source": "catalog", "labels": node_labels(CPU_NODE, "m5.xlarge", "on-demand"), "taints": [],
         "first_seen": t(0), "last_seen": t(STEPS - 1)},
        {"node": GPU_NODE, "instance_type": "p4d.24xlarge", "provider": "aws", "region": "us-east-1",
         "zone": "us-east-1a", "capacity_type": "spot", "cpu_capacity": 96.0, "cpu_allocatable": 95.69,
         "memory_capacity": 1152 * GI, "memory_allocatable": 1228077531136, "gpu_count": 3,
         "gpu_model": "NVIDIA-A100-SXM4-40GB", "gpu_memory": 40 * GI, "mig_strategy": "mixed",
         "mig_config": "all-balanced", "gpu_sharing": "none",
         "labels": node_labels(GPU_NODE, "p4d.24xlarge", "spot", gpu_labels),
         "taints": [{"key": "nvidia.com/gpu", "value": None, "effect": "NoSchedule"}],
         "first_seen": t(0), "last_seen": t(STEPS - 1)},
    ])
    model = "NVIDIA A100-SXM4-40GB"
    gpus = pl.DataFrame([
        {"node": GPU_NODE, "device": "GPU-aaaa0000-0000-4000-8000-000000000001", "gpu_index": 0, "model": model,
         "mig_profile": None, "memory_total": 40 * GI, "namespace": "ml", "pod": "train-llm-x8k2p",
         "container": "trainer"},
        {"node": GPU_NODE, "device": "GPU-bbbb0000-0000-4000-8000-000000000002/7", "gpu_index": 1, "model": model,
         "mig_profile": "1g.5gb", "memory_total": 5 * GI, "namespace": "ml", "pod": "infer-5c8d7b9f6d-kq2mn",
         "container": "server"},
        {"node": GPU_NODE, "device": "GPU-bbbb0000-0000-4000-8000-000000000002/8", "gpu_index": 1, "model": model,
         "mig_profile": "1g.5gb", "memory_total": 5 * GI},
        {"node": GPU_NODE, "device": "GPU-cccc0000-0000-4000-8000-000000000003", "gpu_index": 2, "model": model,
         "mig_profile": None, "memory_total": 40 * GI},
    ])
    oom = [{"timestamp": t(i), "namespace": "shop", "workload_kind": "Deployment", "workload": "web", "pod": OOM_POD,
            "container": "app", "reason": "OOMKilled", "exit_code": 137, "restart_count": n, "memory_limit": GI}
           for n, i in enumerate(OOM_STEPS, start=1)]
    done = [{"timestamp": START + timedelta(minutes=70, seconds=7), "namespace": "batch", "workload_kind": "CronJob",
             "workload": "nightly", "pod": NIGHTLY_POD, "container": "job", "reason": "Completed", "exit_code": 0,
             "restart_count": 0, "memory_limit": 2 * GI}]
    events = pl.DataFrame(oom + done)
    namespaces = pl.DataFrame([{"namespace": ns, "labels": [{"key": "kubernetes.io/metadata.name", "value": ns},
                                                             {"key": "team", "value": team}]}
                               for ns, team in (("shop", "storefront"), ("monitoring", "platform"),
                                                ("batch", "data"), ("ml", "ml"), ("tools", "platform"))])
    manifest = Manifest(cluster="small", start=t(0), end=t(STEPS - 1), step_seconds=STEP,
                        source="tests/support/exporter_snapshot.py")
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes,
                          events=events, gpus=gpus, namespaces=namespaces)
