"""A small hand-written cluster as genuine API objects, for the Kubernetes collector's tests.

Every object is what ``kubectl get -o json`` shows for a real cluster (validated against the
Kubernetes OpenAPI schemas in ``test_kubernetes_fixtures``), chosen so each owner chain,
quantity form, node label family and status shape the collector handles appears once:

- shop/web: Deployment -> ReplicaSet -> 3 pods; istio sidecar (restartPolicy Always init
  container) and a plain init container; HPA (cpu 70 %, memory 1Gi AverageValue, a Pods
  metric); PDB minAvailable 2; emptyDir; preferred spot affinity; one pod OOMKilled.
- shop/checkout: a Deployment whose pods' ReplicaSet is listed, scaled by HPA without metrics.
- shop/canary: an Argo Rollout -> ReplicaSet -> 2 pods (rollouts-pod-template-hash).
- shop/debug: a bare pod.
- data/redis: StatefulSet with local-storage claim templates, PDB maxUnavailable 1.
- data/nightly: CronJob -> Job -> a Succeeded pod (Completed); data/backfill: a bare Job.
- monitoring/node-exporter: DaemonSet, tolerates everything.
- ml/mig-infer: pod asking for a MIG slice by limit only, on a MIG node.
- kube-system/coredns: excluded by default.
- nodes on Karpenter (on-demand, spot), EKS managed (ON_DEMAND), GKE (spot, regular), AKS
  (spot, tainted) and a p4d MIG node.
"""

from __future__ import annotations

import copy
from typing import Any

T0 = "2026-11-20T08:00:00Z"
T_OOM = "2026-11-23T10:15:00Z"
T_RUN = "2026-11-23T10:15:04Z"


def meta(name: str, namespace: str | None = None, labels: dict | None = None, annotations: dict | None = None,
         owner: tuple[str, str, str] | None = None, created: str = T0) -> dict:
    m: dict[str, Any] = {"name": name, "uid": f"uid-{namespace or 'cluster'}-{name}", "resourceVersion": "1",
                         "creationTimestamp": created}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    if owner:
        api_version, kind, oname = owner
        m["ownerReferences"] = [{"apiVersion": api_version, "kind": kind, "name": oname,
                                 "uid": f"uid-{namespace}-{oname}", "controller": True, "blockOwnerDeletion": True}]
    return m


def container(name: str, requests: dict | None = None, limits: dict | None = None, **extra: Any) -> dict:
    c: dict[str, Any] = {"name": name, "image": f"registry.example.com/{name}:1.0", "resources": {}}
    if requests:
        c["resources"]["requests"] = requests
    if limits:
        c["resources"]["limits"] = limits
    c.update(extra)
    return c


def running(name: str, restarts: int = 0, last: dict | None = None, started: str = T0) -> dict:
    s: dict[str, Any] = {"name": name, "ready": True, "restartCount": restarts, "image": f"registry.example.com/{name}:1.0",
                         "imageID": "", "started": True, "state": {"running": {"startedAt": started}}, "lastState": {}}
    if last:
        s["lastState"] = {"terminated": last}
    return s


def pod(name: str, namespace: str, spec: dict, labels: dict | None = None, owner=None, node: str | None = "node-od",
        phase: str = "Running", statuses: list | None = None, init_statuses: list | None = None,
        start: str = T0, **status_extra: Any) -> dict:
    spec = copy.deepcopy(spec)
    if node:
        spec["nodeName"] = node
    st: dict[str, Any] = {"phase": phase, "startTime": start, "qosClass": "Burstable"}
    if statuses is not None:
        st["containerStatuses"] = statuses
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    st.update(status_extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, namespace, labels, owner=owner), "spec": spec,
            "status": st}


# ---------------------------------------------------------------------------------------------

WEB_SPEC = {
    "initContainers": [
        container("istio-init", {"cpu": "10m", "memory": "10Mi"}, {"cpu": "2", "memory": "1Gi"}),
        container("istio-proxy", {"cpu": "100m", "memory": "128Mi"}, {"cpu": "2", "memory": "1Gi"},
                  restartPolicy="Always"),
    ],
    "containers": [container("app", {"cpu": "250m", "memory": "512Mi"}, {"memory": "768Mi"})],
    "volumes": [{"name": "cache", "emptyDir": {}}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}}]}},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
}
CHECKOUT_SPEC = {"containers": [container("server", {"cpu": "1.5", "memory": "1G"}, {"cpu": "2", "memory": "1.5Gi"})],
                 "nodeSelector": {"karpenter.sh/nodepool": "general"}}
CANARY_SPEC = {"containers": [container("api", {"cpu": "0.5", "memory": "256Mi"}, {"cpu": "1", "memory": "256Mi"})]}
REDIS_SPEC = {"containers": [container("redis", {"cpu": "500m", "memory": "3Gi"}, {"cpu": "500m", "memory": "4Gi"}),
                             container("metrics", {"cpu": "50m", "memory": "64Mi"}, {"cpu": "200m", "memory": "128Mi"})],
              "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                  {"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                                         "values": ["on-demand", "reserved"]},
                                        {"key": "kubernetes.io/arch", "operator": "Exists"}]}]}}}}
NIGHTLY_SPEC = {"restartPolicy": "OnFailure",
                "initContainers": [container("fetch", {"cpu": "250m", "memory": "256Mi"}, {"memory": "512Mi"})],
                "containers": [container("job", {"cpu": "2", "memory": "2e9"}, {"memory": "3Gi"})]}
BACKFILL_SPEC = {"restartPolicy": "Never", "containers": [container("main", {"cpu": "1", "memory": "1Gi"},
                                                                    {"cpu": "2", "memory": "1Gi"})]}
EXPORTER_SPEC = {"containers": [container("node-exporter", {"cpu": "100m", "memory": "128Mi"},
                                          {"cpu": "250m", "memory": "180Mi"})],
                 "tolerations": [{"operator": "Exists"}], "hostNetwork": True}
MIG_SPEC = {"containers": [container("server", {"cpu": "500m", "memory": "2Gi"},
                                     {"memory": "2Gi", "nvidia.com/mig-1g.5gb": "1"})],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"karpenter.sh/nodepool": "gpu-mig"}}
DEBUG_SPEC = {"containers": [container("shell", limits={"cpu": "100m", "memory": "64Mi"})]}
COREDNS_SPEC = {"containers": [container("coredns", {"cpu": "100m", "memory": "70Mi"}, {"memory": "170Mi"})]}


def _template(labels: dict, spec: dict) -> dict:
    return {"metadata": {"labels": labels}, "spec": copy.deepcopy(spec)}


def namespaces() -> list[dict]:
    def ns(name: str, **labels: str) -> dict:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": meta(name, labels={"kubernetes.io/metadata.name": name, **labels}),
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    return [ns("shop", team="web", **{"cost-center": "cc-1001"}), ns("data", team="data-platform"),
            ns("monitoring", team="platform"), ns("ml", team="ml"), ns("kube-system")]


def node(name: str, itype: str, labels: dict, cpu: str = "8", alloc_cpu: str = "7910m", mem: str = "32408312Ki",
         alloc_mem: str = "31390456Ki", provider_id: str | None = None, taints: list | None = None,
         extra_capacity: dict | None = None) -> dict:
    lab = {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
           "node.kubernetes.io/instance-type": itype, **labels}
    spec: dict[str, Any] = {}
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = taints
    cap = {"cpu": cpu, "memory": mem, "pods": "58", "ephemeral-storage": "104845292Ki", **(extra_capacity or {})}
    alloc = {"cpu": alloc_cpu, "memory": alloc_mem, "pods": "58", "ephemeral-storage": "95551679124",
             **(extra_capacity or {})}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, labels=lab), "spec": spec,
            "status": {"capacity": cap, "allocatable": alloc, "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": T0, "lastTransitionTime": T0,
                 "reason": "KubeletReady", "message": "kubelet is posting ready status"}]}}


def nodes() -> list[dict]:
    aws = {"topology.kubernetes.io/region": "us-east-1"}
    return [
        node("node-od", "m5.2xlarge", {**aws, "topology.kubernetes.io/zone": "us-east-1a",
                                       "karpenter.sh/nodepool": "general", "karpenter.sh/capacity-type": "on-demand"},
             provider_id="aws:///us-east-1a/i-0a1b2c3d4e5f60001"),
        node("node-spot", "c5.2xlarge", {**aws, "topology.kubernetes.io/zone": "us-east-1b",
                                         "karpenter.sh/nodepool": "spot", "karpenter.sh/capacity-type": "spot"},
             mem="16069080Ki", alloc_mem="15051224Ki", provider_id="aws:///us-east-1b/i-0a1b2c3d4e5f60002"),
        node("node-eks", "m5.xlarge", {**aws, "topology.kubernetes.io/zone": "us-east-1c",
                                       "eks.amazonaws.com/capacityType": "ON_DEMAND",
                                       "eks.amazonaws.com/nodegroup": "ng-1"}, cpu="4", alloc_cpu="3920m"),
        node("node-gpu", "p4d.24xlarge", {**aws, "topology.kubernetes.io/zone": "us-east-1a",
                                          "karpenter.sh/nodepool": "gpu-mig", "karpenter.sh/capacity-type": "on-demand",
                                          "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
                                          "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "40960",
                                          "nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/mig.config": "all-1g.5gb",
                                          "nvidia.com/mig.strategy": "mixed"},
             cpu="96", alloc_cpu="95690m", mem="1176475156Ki", alloc_mem="1165162516Ki",
             provider_id="aws:///us-east-1a/i-0a1b2c3d4e5f60003",
             taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
             extra_capacity={"nvidia.com/gpu": "0", "nvidia.com/mig-1g.5gb": "56"}),
        node("gke-spot-1", "e2-standard-8", {"topology.kubernetes.io/region": "us-central1",
                                             "topology.kubernetes.io/zone": "us-central1-a",
                                             "cloud.google.com/gke-nodepool": "spot", "cloud.google.com/gke-spot": "true"}),
        node("gke-std-1", "n2-standard-8", {"topology.kubernetes.io/region": "us-central1",
                                            "topology.kubernetes.io/zone": "us-central1-b",
                                            "cloud.google.com/gke-nodepool": "general"},
             provider_id="gce://proj/us-central1-b/gke-std-1"),
        node("aks-spot-1", "Standard_D8s_v5", {"topology.kubernetes.io/region": "eastus",
                                               "topology.kubernetes.io/zone": "eastus-1",
                                               "kubernetes.azure.com/agentpool": "spot",
                                               "kubernetes.azure.com/scalesetpriority": "spot"},
             taints=[{"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}]),
        node("gpu-ts", "g5.xlarge", {**aws, "topology.kubernetes.io/zone": "us-east-1a",
                                     "nvidia.com/gpu.product": "NVIDIA-A10G-SHARED", "nvidia.com/gpu.replicas": "4",
                                     "nvidia.com/gpu.sharing-strategy": "time-slicing"},
             cpu="4", alloc_cpu="3920m", extra_capacity={"nvidia.com/gpu": "4"}),
    ]


def workloads() -> list[dict]:
    web_labels = {"app": "web", "team": "web"}
    objs = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": meta("web", "shop", web_labels, {"deployment.kubernetes.io/revision": "7",
                                                      "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": 1}"}),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                  "template": _template({"app": "web"}, WEB_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": meta("web-5d9f8b7c6d", "shop", {"app": "web", "pod-template-hash": "5d9f8b7c6d"},
                          owner=("apps/v1", "Deployment", "web")),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d9f8b7c6d"}},
                  "template": _template({"app": "web", "pod-template-hash": "5d9f8b7c6d"}, WEB_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("checkout", "shop", {"app": "checkout"}),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}}, "strategy": {"type": "Recreate"},
                  "template": _template({"app": "checkout"}, CHECKOUT_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": meta("checkout-7f6b5c4d3e", "shop", {"app": "checkout", "pod-template-hash": "7f6b5c4d3e"},
                          owner=("apps/v1", "Deployment", "checkout")),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout", "pod-template-hash": "7f6b5c4d3e"}},
                  "template": _template({"app": "checkout", "pod-template-hash": "7f6b5c4d3e"}, CHECKOUT_SPEC)}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta("canary", "shop", {"app": "canary"}),
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "canary"}},
                  "strategy": {"canary": {"maxSurge": "50%", "steps": [{"setWeight": 20}, {"pause": {}}]}},
                  "template": _template({"app": "canary"}, CANARY_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": meta("canary-6c8d9e7f5b", "shop", {"app": "canary", "rollouts-pod-template-hash": "6c8d9e7f5b"},
                          owner=("argoproj.io/v1alpha1", "Rollout", "canary")),
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "canary", "rollouts-pod-template-hash": "6c8d9e7f5b"}},
                  "template": _template({"app": "canary", "rollouts-pod-template-hash": "6c8d9e7f5b"}, CANARY_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("redis", "data", {"app": "redis"}),
         "spec": {"replicas": 2, "serviceName": "redis", "selector": {"matchLabels": {"app": "redis"}},
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                  "template": _template({"app": "redis"}, REDIS_SPEC),
                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                      "accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                      "resources": {"requests": {"storage": "50Gi"}}}}]}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("nightly", "data", {"app": "nightly"}),
         "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": _template({"app": "nightly"},
                                                                                           NIGHTLY_SPEC)}}}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": meta("nightly-29400120", "data", {"app": "nightly"}, owner=("batch/v1", "CronJob", "nightly")),
         "spec": {"parallelism": 1, "completions": 1, "template": _template({"app": "nightly"}, NIGHTLY_SPEC)}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("backfill", "data", {"app": "backfill"}),
         "spec": {"parallelism": 2, "template": _template({"app": "backfill"}, BACKFILL_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("node-exporter", "monitoring", {"app": "ne"}),
         "spec": {"selector": {"matchLabels": {"app": "ne"}}, "template": _template({"app": "ne"}, EXPORTER_SPEC),
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}}},
         "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0,
                    "numberReady": 2}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("mig-infer", "ml", {"app": "mig-infer"}),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mig-infer"}},
                  "template": _template({"app": "mig-infer"}, MIG_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": meta("mig-infer-55d6c7b8f9", "ml", {"app": "mig-infer", "pod-template-hash": "55d6c7b8f9"},
                          owner=("apps/v1", "Deployment", "mig-infer")),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mig-infer", "pod-template-hash": "55d6c7b8f9"}},
                  "template": _template({"app": "mig-infer", "pod-template-hash": "55d6c7b8f9"}, MIG_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("coredns", "kube-system", {"k8s-app": "kube-dns"}),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                  "template": _template({"k8s-app": "kube-dns"}, COREDNS_SPEC)}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": meta("coredns-5d78c9869d", "kube-system", {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"},
                          owner=("apps/v1", "Deployment", "coredns")),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                  "template": _template({"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"}, COREDNS_SPEC)}},
        # autoscaling and disruption
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("web", "shop"),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 3, "maxReplicas": 12, "metrics": [
                      {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                  "averageUtilization": 70}}},
                      {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                                     "averageValue": "1Gi"}}},
                      {"type": "Pods", "pods": {"metric": {"name": "http_requests_per_second"},
                                                "target": {"type": "AverageValue", "averageValue": "250m"}}}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("checkout", "shop"),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                  "maxReplicas": 4}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("web-pdb", "shop"),
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("redis", "data"),
         "spec": {"maxUnavailable": 1, "selector": {"matchExpressions": [
             {"key": "app", "operator": "In", "values": ["redis", "valkey"]}]}}},
    ]
    return objs


def pods() -> list[dict]:
    web_owner = ("apps/v1", "ReplicaSet", "web-5d9f8b7c6d")
    web_labels = {"app": "web", "pod-template-hash": "5d9f8b7c6d"}
    done = {"exitCode": 0, "reason": "Completed", "startedAt": T0, "finishedAt": "2026-11-20T08:00:03Z"}
    out = []
    for k, suffix in enumerate(("abcde", "fghij", "klmno")):
        last = {"exitCode": 137, "reason": "OOMKilled", "startedAt": T0, "finishedAt": T_OOM} if k == 0 else None
        out.append(pod(f"web-5d9f8b7c6d-{suffix}", "shop", WEB_SPEC, web_labels, web_owner,
                       node=("node-od", "node-spot", "node-eks")[k],
                       statuses=[running("app", restarts=4 if k == 0 else 0, last=last, started=T_RUN if k == 0 else T0)],
                       init_statuses=[{"name": "istio-init", "ready": True, "restartCount": 0, "image": "istio",
                                       "imageID": "", "state": {"terminated": done}, "lastState": {}},
                                      running("istio-proxy")]))
    out.append(pod("checkout-7f6b5c4d3e-x1y2z", "shop", CHECKOUT_SPEC, {"app": "checkout", "pod-template-hash": "7f6b5c4d3e"},
                   ("apps/v1", "ReplicaSet", "checkout-7f6b5c4d3e"), statuses=[running("server", restarts=2)]))
    for suffix in ("p1q2r", "s3t4u"):
        out.append(pod(f"canary-6c8d9e7f5b-{suffix}", "shop", CANARY_SPEC,
                       {"app": "canary", "rollouts-pod-template-hash": "6c8d9e7f5b"},
                       ("apps/v1", "ReplicaSet", "canary-6c8d9e7f5b"), statuses=[running("api")]))
    out.append(pod("debug", "shop", DEBUG_SPEC, {"run": "debug"}, None, statuses=[running("shell")]))
    for k in range(2):
        out.append(pod(f"redis-{k}", "data", REDIS_SPEC, {"app": "redis", "statefulset.kubernetes.io/pod-name": f"redis-{k}"},
                       ("apps/v1", "StatefulSet", "redis"), statuses=[running("redis"), running("metrics")]))
    finished = "2026-11-23T03:12:00Z"
    out.append(pod("nightly-29400120-h7k2m", "data", NIGHTLY_SPEC, {"app": "nightly", "job-name": "nightly-29400120"},
                   ("batch/v1", "Job", "nightly-29400120"), phase="Succeeded", start="2026-11-23T02:00:00Z",
                   statuses=[{"name": "job", "ready": False, "restartCount": 0, "image": "job", "imageID": "",
                              "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                       "startedAt": "2026-11-23T02:05:00Z", "finishedAt": finished}},
                              "lastState": {}}]))
    out.append(pod("backfill-9xk2p", "data", BACKFILL_SPEC, {"app": "backfill", "job-name": "backfill"},
                   ("batch/v1", "Job", "backfill"), statuses=[running("main")]))
    for n, suffix in (("node-od", "x7k2p"), ("node-spot", "m4n8q")):
        out.append(pod(f"node-exporter-{suffix}", "monitoring", EXPORTER_SPEC, {"app": "ne"},
                       ("apps/v1", "DaemonSet", "node-exporter"), node=n, statuses=[running("node-exporter")]))
    out.append(pod("mig-infer-55d6c7b8f9-m1n2o", "ml", MIG_SPEC, {"app": "mig-infer", "pod-template-hash": "55d6c7b8f9"},
                   ("apps/v1", "ReplicaSet", "mig-infer-55d6c7b8f9"), node="node-gpu", statuses=[running("server")]))
    out.append(pod("coredns-5d78c9869d-aaaaa", "kube-system", COREDNS_SPEC,
                   {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"},
                   ("apps/v1", "ReplicaSet", "coredns-5d78c9869d"), statuses=[running("coredns")]))
    return out


def objects() -> list[dict]:
    """Every object, each with apiVersion and kind (as in a ``kind: List``)."""
    return namespaces() + nodes() + workloads() + pods()


def kubectl_list(objs: list[dict] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objs or objects()}
