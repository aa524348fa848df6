"""A Snapshot as the Kubernetes API server would list it: genuine API objects, as plain dicts.

``kube_lists(snapshot)`` returns one API list object per resource (``PodList``,
``DeploymentList``, ... ``NamespaceList``), ``kubectl_list(snapshot)`` the single ``kind: List``
that ``kubectl get pods,deploy,sts,ds,rs,job,cronjob,hpa,pdb,nodes,ns -A -o json`` prints, and
``write_kube_json(snapshot, directory)`` writes ``<resource>.json`` per list plus ``all.json``
(into a temporary directory beside the target, renamed into place).

Decisions (each object validates against the Kubernetes OpenAPI schema, strict):

- **The moment.** The objects are the cluster at the snapshot's end (``manifest.end``): pods
  still running, plus finished pods the API server keeps: those of bare Jobs, of the newest
  three finished Jobs of each CronJob (``successfulJobsHistoryLimit: 3``) and bare pods.
  Finished Deployment/StatefulSet/DaemonSet pods were deleted by their controller and are
  absent; their ReplicaSets stay (``replicas: 0``), as ``revisionHistoryLimit`` keeps them.
  Nodes whose ``last_seen`` is before the end are gone.
- **Identity.** ``uid`` is a UUID5 of kind, namespace and name (``object_uid``), so the same
  snapshot always gives the same objects and the exporter rendering
  (``analyzer.simulator.openmetrics``) carries the same pod uids, IPs, images and container
  IDs (the helpers below are shared). ``resourceVersion`` is derived from the uid.
- **Owners.** Every controlled object has one ``ownerReference`` with ``controller: true``:
  Pod -> ReplicaSet -> Deployment (or Argo Rollout), Pod -> Job -> CronJob, Pod ->
  StatefulSet / DaemonSet. Pod labels carry what the controllers add (``pod-template-hash``,
  ``controller-revision-hash``, ``batch.kubernetes.io/job-name``, ...).
- **Specs.** Containers and resources come from the ``containers`` frame (the pod template of
  a controller from its newest pod). Quantities are Kubernetes strings (``250m``, ``512Mi``,
  ``nvidia.com/gpu: "1"``) that parse back exactly to the snapshot's numbers; a memory size
  that is not a whole Ki/Mi/Gi is written in bytes. As the API server defaults it, a
  request that is not set but has a limit shows the limit. Sidecars are ``initContainers``
  with ``restartPolicy: Always``. ``emptyDir`` when ``uses_empty_dir``; local storage as a
  ``local-storage`` claim template (StatefulSets) or generic ephemeral volume (others). The
  one-line ``affinity`` summary is parsed back into ``nodeAffinity``.
- **Status.** Phase ``Running`` (or ``Succeeded``/``Failed`` for finished pods);
  ``restartCount`` from the events' ``restart_count`` (else the number of restarts), and
  ``lastState.terminated`` from the last termination event (``OOMKilled``, exit code 137).
- **Controllers** carry replicas, selector (``app: <name>`` unless the labels have one),
  template and strategy (``maxUnavailable``/``maxSurge`` as written: ``1`` an integer, ``25%`` a
  string); HPAs are autoscaling/v2 (cpu/memory as ``Resource`` metrics, ``name (container)``
  as ``ContainerResource``, other names ``Pods`` (AverageValue) or ``External`` (Value)); PDBs
  policy/v1 with ``minAvailable``/``maxUnavailable`` as written. A CronJob's schedule is
  inferred from its Jobs' names (the scheduled minute since the epoch, as the controller names
  them), hourly when they do not say.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.atomic import atomic_directory
from analyzer.kube import parse_affinity
from analyzer.snapshot import Snapshot
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


def _resource_version(uid: str) -> str:
    return str(int(uid.replace("-", "")[:8], 16) % 90_000_000 + 10_000_000)


def _kv(pairs: list[dict] | None) -> dict[str, str]:
    return {p["key"]: p["value"] for p in pairs or [] if p.get("key") is not None and p.get("value") is not None}


# ---------------------------------------------------------------------------------------------
# Building the objects

_LISTS = (
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
RESOURCES = tuple(r for r, _, _ in _LISTS)
_OWNER_API = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
              "Job": "batch/v1", "CronJob": "batch/v1", "Rollout": "argoproj.io/v1alpha1"}
_TERMINATIONS_NOT = ("Restart", "Evicted")  # event reasons that are not a container termination
_NOT_RESTARTS = ("Completed", "Evicted")  # event reasons that do not restart a container
_JOB_HISTORY = 3
_NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def _str_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


class _Builder:
    def __init__(self, snapshot: Snapshot):
        self.s = snapshot
        m = snapshot.manifest
        self.end = m.end if m.end.tzinfo else m.end.replace(tzinfo=UTC)
        self.start = m.start if m.start.tzinfo else m.start.replace(tzinfo=UTC)
        self.containers = _str_frame(snapshot.containers)
        self.workloads = _str_frame(snapshot.workloads)
        self.nodes = _str_frame(snapshot.nodes)
        self.gpus = _str_frame(snapshot.gpus)
        self.events = _str_frame(snapshot.events).sort("timestamp")
        self.namespaces_df = _str_frame(snapshot.namespaces)
        self.wl = {(r["namespace"], r["workload_kind"], r["workload"]): r for r in self.workloads.to_dicts()}
        self.node_rows = {r["node"]: r for r in self.nodes.to_dicts()}
        self.spans = self._usage_spans()
        self.events_by = defaultdict(list)
        for e in self.events.to_dicts():
            self.events_by[(e["namespace"], e["pod"], e["container"])].append(e)
        self.pods = self._pods()
        self.pods_by_wl: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for p in self.pods:
            self.pods_by_wl[(p["namespace"], p["workload_kind"], p["workload"])].append(p)

    # -- inputs ---------------------------------------------------------------------------------

    def _usage_spans(self) -> dict[tuple[str, str, str], tuple[datetime, datetime]]:
        u = self.s.usage
        if u.height == 0:
            return {}
        spans = u.group_by("namespace", "pod", "container").agg(
            pl.col("timestamp").min().alias("a"), pl.col("timestamp").max().alias("b"))
        return {(r["namespace"], r["pod"], r["container"]): (r["a"], r["b"]) for r in _str_frame(spans).to_dicts()}

    def _pods(self) -> list[dict[str, Any]]:
        """One record per pod in the snapshot with its containers (frame order), lifetime, owner."""
        pods: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.containers.to_dicts():
            key = (r["namespace"], r["pod"])
            p = pods.get(key)
            if p is None:
                p = pods[key] = {"namespace": r["namespace"], "pod": r["pod"], "workload_kind": r["workload_kind"],
                                 "workload": r["workload"], "owner_kind": r["owner_kind"],
                                 "owner_name": r["owner_name"], "node": r["node"], "started": r["started_at"],
                                 "ended": r["ended_at"], "running": r["ended_at"] is None, "containers": []}
            p["containers"].append(r)
            if r["started_at"] is not None and (p["started"] is None or r["started_at"] < p["started"]):
                p["started"] = r["started_at"]
            if r["ended_at"] is None:
                p["running"] = True
            elif p["ended"] is None or r["ended_at"] > p["ended"]:
                p["ended"] = r["ended_at"]
            p["node"] = p["node"] or r["node"]
        out = []
        for p in pods.values():
            if p["started"] is None:
                first = [self.spans[(p["namespace"], p["pod"], c["container"])][0] for c in p["containers"]
                         if (p["namespace"], p["pod"], c["container"]) in self.spans]
                p["started"] = min(first) if first else self.start
            if p["running"]:
                p["ended"] = None
            if p["owner_kind"] is None and p["workload_kind"] not in ("Pod", None):
                p["owner_kind"], p["owner_name"] = p["workload_kind"], p["workload"]
            out.append(p)
        return out

    # -- which objects exist at the end ---------------------------------------------------------

    def kept_pods(self) -> list[dict[str, Any]]:
        jobs: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for p in self.pods:
            if p["owner_kind"] == "Job":
                jobs[(p["namespace"], p["owner_name"])].append(p)
        kept_jobs = set()
        by_cron: dict[tuple[str, str], list[tuple[datetime, bool, str]]] = defaultdict(list)
        for (ns, job), pods in jobs.items():
            top = pods[0]
            finished = all(not q["running"] for q in pods)
            begun = min(q["started"] for q in pods)
            if top["workload_kind"] == "CronJob":
                by_cron[(ns, top["workload"])].append((begun, finished, job))
            else:
                kept_jobs.add((ns, job))
        for (ns, _cron), runs in by_cron.items():
            done = sorted((r for r in runs if r[1]), reverse=True)[:_JOB_HISTORY]
            kept_jobs.update((ns, r[2]) for r in runs if not r[1])
            kept_jobs.update((ns, r[2]) for r in done)
        self.kept_jobs = kept_jobs
        out = []
        for p in self.pods:
            if p["started"] > self.end:
                continue
            if p["running"]:
                out.append(p)
            elif p["owner_kind"] == "Job":
                if (p["namespace"], p["owner_name"]) in kept_jobs:
                    out.append(p)
            elif p["owner_kind"] is None:
                out.append(p)
        return sorted(out, key=lambda p: (p["namespace"], p["pod"]))

    # -- metadata -------------------------------------------------------------------------------

    @staticmethod
    def meta(kind: str, namespace: str | None, name: str, created: datetime | None, labels: dict | None = None,
             annotations: dict | None = None, owner: tuple[str, str] | None = None,
             generate_name: str | None = None) -> dict[str, Any]:
        uid = object_uid(kind, namespace, name)
        m: dict[str, Any] = {"name": name}
        if generate_name:
            m["generateName"] = generate_name
        if namespace is not None:
            m["namespace"] = namespace
        m["uid"] = uid
        m["resourceVersion"] = _resource_version(uid)
        m["creationTimestamp"] = rfc3339(created)
        if labels:
            m["labels"] = dict(sorted(labels.items()))
        if annotations:
            m["annotations"] = dict(sorted(annotations.items()))
        if owner:
            okind, oname = owner
            m["ownerReferences"] = [{"apiVersion": _OWNER_API.get(okind, "v1"), "kind": okind, "name": oname,
                                     "uid": object_uid(okind, namespace, oname), "controller": True,
                                     "blockOwnerDeletion": True}]
        return m

    def workload_row(self, ns: str, kind: str, name: str) -> dict[str, Any]:
        return self.wl.get((ns, kind, name)) or {"namespace": ns, "workload_kind": kind, "workload": name}

    @staticmethod
    def selector_labels(w: dict[str, Any]) -> dict[str, str]:
        labels = _kv(w.get("labels"))
        return {"app": labels["app"]} if "app" in labels else {"app": w["workload"]}

    def template_labels(self, w: dict[str, Any]) -> dict[str, str]:
        return {**_kv(w.get("labels")), **self.selector_labels(w)}

    # -- pod spec -------------------------------------------------------------------------------

    @staticmethod
    def resources(c: dict[str, Any]) -> dict[str, Any]:
        req: dict[str, str] = {}
        lim: dict[str, str] = {}
        if c.get("cpu_limit") is not None:
            lim["cpu"] = cpu_quantity(c["cpu_limit"])
        if c.get("memory_limit") is not None:
            lim["memory"] = memory_quantity(c["memory_limit"])
        cpu_r = c.get("cpu_request") if c.get("cpu_request") is not None else c.get("cpu_limit")
        mem_r = c.get("memory_request") if c.get("memory_request") is not None else c.get("memory_limit")
        if cpu_r is not None:
            req["cpu"] = cpu_quantity(cpu_r)
        if mem_r is not None:
            req["memory"] = memory_quantity(mem_r)
        gpu = c.get("gpu_resource")
        if gpu:
            g_lim = c.get("gpu_limit") if c.get("gpu_limit") is not None else c.get("gpu_request")
            g_req = c.get("gpu_request") if c.get("gpu_request") is not None else g_lim
            if g_lim is not None:
                lim[gpu] = count_quantity(g_lim)
            if g_req is not None:
                req[gpu] = count_quantity(g_req)
        out: dict[str, Any] = {}
        if lim:
            out["limits"] = lim
        if req:
            out["requests"] = req
        return out

    def pod_spec(self, w: dict[str, Any], containers: list[dict[str, Any]], pod_name: str | None,
                 restart_policy: str) -> dict[str, Any]:
        ns, wname = w["namespace"], w["workload"]
        mounts: list[dict] = []
        volumes: list[dict] = []
        if w.get("uses_empty_dir"):
            volumes.append({"name": "scratch", "emptyDir": {}})
            mounts.append({"name": "scratch", "mountPath": "/scratch"})
        if w.get("uses_local_storage"):
            if w.get("workload_kind") == "StatefulSet":
                if pod_name:
                    volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": f"data-{pod_name}"}})
            else:
                volumes.append({"name": "local-data", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                    "resources": {"requests": {"storage": "50Gi"}}}}}})
            mounts.append({"name": "data" if w.get("workload_kind") == "StatefulSet" else "local-data",
                           "mountPath": "/data"})
        init, app = [], []
        for c in containers:
            spec: dict[str, Any] = {"name": c["container"], "image": image_for(ns, wname, c["container"]),
                                    "imagePullPolicy": "IfNotPresent", "resources": self.resources(c),
                                    "terminationMessagePath": "/dev/termination-log",
                                    "terminationMessagePolicy": "File"}
            if c["container_type"] == "sidecar":
                spec["restartPolicy"] = "Always"
            if c["container_type"] == "app" and mounts and not app:
                spec["volumeMounts"] = copy.deepcopy(mounts)
            (app if c["container_type"] == "app" else init).append(spec)
        if not app:  # a pod always has a container; the snapshot lists none for this one
            app.append({"name": "app", "image": image_for(ns, wname, "app"), "imagePullPolicy": "IfNotPresent",
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"})
        out: dict[str, Any] = {}
        if init:
            out["initContainers"] = init
        out["containers"] = app
        out.update({"restartPolicy": restart_policy, "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
                    "schedulerName": "default-scheduler"})
        selector = _kv(w.get("node_selector"))
        if selector:
            out["nodeSelector"] = dict(sorted(selector.items()))
        affinity = parse_affinity(w.get("affinity"))
        if affinity:
            out["affinity"] = affinity
        tolerations = [{k: v for k, v in t.items() if v is not None} for t in w.get("tolerations") or []]
        if tolerations:
            out["tolerations"] = tolerations
        if volumes:
            out["volumes"] = volumes
        return out

    # -- pods -----------------------------------------------------------------------------------

    def pod_labels(self, p: dict[str, Any], w: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        labels = self.template_labels(w)
        okind, oname = p["owner_kind"], p["owner_name"]
        generate = None
        if okind == "ReplicaSet":
            h = oname[len(w["workload"]) + 1:] if oname.startswith(w["workload"] + "-") else _short_hash(oname)
            labels["rollouts-pod-template-hash" if p["workload_kind"] == "Rollout" else "pod-template-hash"] = h
            generate = f"{oname}-"
        elif okind == "StatefulSet":
            labels["controller-revision-hash"] = f"{oname}-{_short_hash(oname, 10)}"
            labels["statefulset.kubernetes.io/pod-name"] = p["pod"]
            m = re.search(r"-(\d+)$", p["pod"])
            if m:
                labels["apps.kubernetes.io/pod-index"] = m[1]
        elif okind == "DaemonSet":
            labels["controller-revision-hash"] = _short_hash(oname, 10)
            labels["pod-template-generation"] = "1"
            generate = f"{oname}-"
        elif okind == "Job":
            juid = object_uid("Job", p["namespace"], oname)
            labels.update({"batch.kubernetes.io/controller-uid": juid, "batch.kubernetes.io/job-name": oname,
                           "controller-uid": juid, "job-name": oname})
            generate = f"{oname}-"
        return labels, generate

    def container_status(self, p: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
        ns, pod, name = p["namespace"], p["pod"], c["container"]
        image = image_for(ns, p["workload"], name)
        evs = [e for e in self.events_by.get((ns, pod, name), []) if e["timestamp"] <= self.end]
        restarts = [e for e in evs if e["reason"] not in _NOT_RESTARTS]
        terms = [e for e in evs if e["reason"] not in _TERMINATIONS_NOT]
        count = 0
        if restarts:
            last = restarts[-1]
            count = last["restart_count"] if last.get("restart_count") is not None else len(restarts)
        cid = "containerd://" + container_id(ns, pod, name)
        st: dict[str, Any] = {"name": name, "image": image, "imageID": image_id(image), "containerID": cid,
                              "restartCount": int(count)}
        started = p["started"]
        span = self.spans.get((ns, pod, name))
        if not p["running"] or c["container_type"] == "init":
            finished = p["ended"] if not p["running"] else (span[1] if span else started)
            final = terms[-1] if terms and p["ended"] is not None and terms[-1]["timestamp"] >= p["ended"] else None
            code = int(final["exit_code"]) if final and final.get("exit_code") is not None else 0
            reason = final["reason"] if final else ("Completed" if code == 0 else "Error")
            st["state"] = {"terminated": {"exitCode": code, "reason": reason, "startedAt": rfc3339(started),
                                          "finishedAt": rfc3339(max(finished, started)), "containerID": cid}}
            st["ready"] = False
            st["started"] = False
            previous = [e for e in terms if final is None or e is not final]
        else:
            since = restarts[-1]["timestamp"] if restarts else started
            st["state"] = {"running": {"startedAt": rfc3339(max(since, started))}}
            st["ready"] = True
            st["started"] = True
            previous = terms
        if previous:
            e = previous[-1]
            term: dict[str, Any] = {"exitCode": int(e["exit_code"]) if e.get("exit_code") is not None else 1,
                                    "reason": e["reason"], "finishedAt": rfc3339(e["timestamp"]), "containerID": cid}
            st["lastState"] = {"terminated": term}
        else:
            st["lastState"] = {}
        return {k: st[k] for k in ("name", "state", "lastState", "ready", "restartCount", "image", "imageID",
                                   "containerID", "started")}

    def pod(self, p: dict[str, Any]) -> dict[str, Any]:
        w = self.workload_row(p["namespace"], p["workload_kind"], p["workload"])
        labels, generate = self.pod_labels(p, w)
        owner = (p["owner_kind"], p["owner_name"]) if p["owner_kind"] else None
        meta = self.meta("Pod", p["namespace"], p["pod"], p["started"], labels, None, owner, generate)
        restart_policy = "Never" if p["owner_kind"] == "Job" else "Always"
        spec = self.pod_spec(w, p["containers"], p["pod"], restart_policy)
        if p["node"]:
            spec["nodeName"] = p["node"]
        init = [c for c in p["containers"] if c["container_type"] != "app"]
        app = [c for c in p["containers"] if c["container_type"] == "app"]
        statuses = [self.container_status(p, c) for c in app]
        init_statuses = [self.container_status(p, c) for c in init]
        if p["running"]:
            phase = "Running"
        else:
            failed = any(s["state"].get("terminated", {}).get("exitCode", 0) != 0 for s in statuses)
            phase = "Failed" if failed else "Succeeded"
        ready = "True" if phase == "Running" else "False"
        when = rfc3339(p["started"])
        conditions = [{"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": when}
                      for t, s in (("PodReadyToStartContainers", ready), ("Initialized", "True"), ("Ready", ready),
                                   ("ContainersReady", ready), ("PodScheduled", "True"))]
        host = node_ip(p["node"]) if p["node"] else None
        status: dict[str, Any] = {"phase": phase, "conditions": conditions}
        if host:
            status["hostIP"] = host
            status["hostIPs"] = [{"ip": host}]
        if p["running"]:
            ip = pod_ip(p["namespace"], p["pod"])
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        status["startTime"] = when
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        status["containerStatuses"] = statuses
        status["qosClass"] = qos_class(p["containers"])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}

    # -- controllers ----------------------------------------------------------------------------

    def template(self, w: dict[str, Any], pods: list[dict[str, Any]], restart_policy: str = "Always",
                 extra_labels: dict | None = None) -> dict[str, Any]:
        newest = max(pods, key=lambda p: (p["started"], p["pod"])) if pods else None
        containers = newest["containers"] if newest else []
        labels = {**self.template_labels(w), **(extra_labels or {})}
        spec = self.pod_spec(w, containers, None, restart_policy)
        return {"metadata": {"labels": dict(sorted(labels.items()))}, "spec": spec}

    def pods_of(self, ns: str, kind: str, name: str) -> list[dict[str, Any]]:
        return self.pods_by_wl.get((ns, kind, name), [])

    def created(self, pods: list[dict[str, Any]]) -> datetime:
        return min((p["started"] for p in pods), default=self.start) - timedelta(minutes=1)

    def controllers(self, kept: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {r: [] for r in ("deployments", "statefulsets", "daemonsets",
                                                                "replicasets", "jobs", "cronjobs",
                                                                "horizontalpodautoscalers", "poddisruptionbudgets")}
        kept_keys = {(p["namespace"], p["pod"]) for p in kept}
        pods_by_wl = self.pods_by_wl
        keys = list(self.wl) + [k for k in pods_by_wl if k not in self.wl]
        for key in sorted(keys):
            ns, kind, name = key
            w = self.workload_row(*key)
            pods = pods_by_wl.get(key, [])
            running = [p for p in pods if p["running"] and (p["namespace"], p["pod"]) in kept_keys]
            if kind == "Deployment":
                out["deployments"].append(self.deployment(w, pods, running))
                out["replicasets"].extend(self.replicasets(w, pods, running))
            elif kind == "Rollout":
                out["replicasets"].extend(self.replicasets(w, pods, running))
            elif kind == "StatefulSet":
                out["statefulsets"].append(self.statefulset(w, pods, running))
            elif kind == "DaemonSet":
                out["daemonsets"].append(self.daemonset(w, pods, running))
            elif kind == "CronJob":
                out["cronjobs"].append(self.cronjob(w, pods))
                out["jobs"].extend(self.jobs(w, pods))
            elif kind == "Job":
                out["jobs"].extend(self.jobs(w, pods))
            if kind in ("Deployment", "StatefulSet", "ReplicaSet", "Rollout") and w.get("hpa_name"):
                out["horizontalpodautoscalers"].append(self.hpa(w, len(running)))
            if w.get("pdb_name") and (w.get("pdb_min_available") is not None
                                      or w.get("pdb_max_unavailable") is not None):
                out["poddisruptionbudgets"].append(self.pdb(w, len(running)))
        return out

    def _workload_meta(self, kind: str, w: dict[str, Any], pods: list[dict]) -> dict[str, Any]:
        return self.meta(kind, w["namespace"], w["workload"], self.created(pods), _kv(w.get("labels")),
                         _kv(w.get("annotations")))

    def deployment(self, w: dict[str, Any], pods: list[dict], running: list[dict]) -> dict[str, Any]:
        replicas = int(w["replicas"]) if w.get("replicas") is not None else len(running)
        stype = w.get("update_strategy") or "RollingUpdate"
        strategy: dict[str, Any] = {"type": stype}
        if stype == "RollingUpdate":
            mu, ms = int_or_string(w.get("max_unavailable")), int_or_string(w.get("max_surge"))
            strategy["rollingUpdate"] = {"maxUnavailable": "25%" if mu is None else mu,
                                         "maxSurge": "25%" if ms is None else ms}
        n = len(running)
        status: dict[str, Any] = {"observedGeneration": 1, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                                  "availableReplicas": n}
        if n < replicas:
            status["unavailableReplicas"] = replicas - n
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": self._workload_meta("Deployment", w, pods),
                "spec": {"replicas": replicas, "selector": {"matchLabels": self.selector_labels(w)},
                         "template": self.template(w, pods), "strategy": strategy, "revisionHistoryLimit": 10,
                         "progressDeadlineSeconds": 600},
                "status": status}

    def replicasets(self, w: dict[str, Any], pods: list[dict], running: list[dict]) -> list[dict[str, Any]]:
        by_rs: dict[str, list[dict]] = defaultdict(list)
        for p in pods:
            if p["owner_kind"] == "ReplicaSet" and p["owner_name"]:
                by_rs[p["owner_name"]].append(p)
        order = sorted(by_rs, key=lambda rs: min(p["started"] for p in by_rs[rs]))
        revision = _kv(w.get("annotations")).get("deployment.kubernetes.io/revision")
        top = int(revision) if revision and revision.isdigit() else len(order)
        out = []
        for i, rs in enumerate(order):
            rs_pods = by_rs[rs]
            live = [p for p in running if p["owner_name"] == rs]
            hash_key = "rollouts-pod-template-hash" if w["workload_kind"] == "Rollout" else "pod-template-hash"
            h = rs[len(w["workload"]) + 1:] if rs.startswith(w["workload"] + "-") else _short_hash(rs)
            labels = {**self.template_labels(w), hash_key: h}
            rev = max(top - (len(order) - 1 - i), 1)
            replicas = len(live) if i < len(order) - 1 else max(len(live), int(w.get("replicas") or 0))
            annotations = {"deployment.kubernetes.io/revision": str(rev),
                           "deployment.kubernetes.io/desired-replicas": str(int(w.get("replicas") or replicas)),
                           "deployment.kubernetes.io/max-replicas": str(int(w.get("replicas") or replicas) + 1)}
            meta = self.meta("ReplicaSet", w["namespace"], rs, self.created(rs_pods), labels, annotations,
                             (w["workload_kind"], w["workload"]))
            template = self.template(w, rs_pods, extra_labels={hash_key: h})
            n = len(live)
            out.append({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
                        "spec": {"replicas": replicas,
                                 "selector": {"matchLabels": {**self.selector_labels(w), hash_key: h}},
                                 "template": template},
                        "status": {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n,
                                   "availableReplicas": n, "observedGeneration": 1}})
        return out

    def statefulset(self, w: dict[str, Any], pods: list[dict], running: list[dict]) -> dict[str, Any]:
        replicas = int(w["replicas"]) if w.get("replicas") is not None else len(running)
        stype = w.get("update_strategy") or "RollingUpdate"
        strategy: dict[str, Any] = {"type": stype}
        if stype == "RollingUpdate":
            ru: dict[str, Any] = {"partition": 0}
            if w.get("max_unavailable") is not None:
                ru["maxUnavailable"] = int_or_string(w["max_unavailable"])
            strategy["rollingUpdate"] = ru
        spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": self.selector_labels(w)},
                                "serviceName": w["workload"], "template": self.template(w, pods),
                                "podManagementPolicy": "OrderedReady", "updateStrategy": strategy,
                                "revisionHistoryLimit": 10}
        if w.get("uses_local_storage"):
            spec["volumeClaimTemplates"] = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                             "metadata": {"name": "data"},
                                             "spec": {"accessModes": ["ReadWriteOnce"],
                                                      "storageClassName": "local-storage",
                                                      "resources": {"requests": {"storage": "100Gi"}},
                                                      "volumeMode": "Filesystem"}}]
        n = len(running)
        revision = f"{w['workload']}-{_short_hash(w['workload'], 10)}"
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": self._workload_meta("StatefulSet", w, pods),
                "spec": spec,
                "status": {"observedGeneration": 1, "replicas": n, "readyReplicas": n, "currentReplicas": n,
                           "updatedReplicas": n, "availableReplicas": n, "currentRevision": revision,
                           "updateRevision": revision, "collisionCount": 0}}

    def daemonset(self, w: dict[str, Any], pods: list[dict], running: list[dict]) -> dict[str, Any]:
        stype = w.get("update_strategy") or "RollingUpdate"
        strategy: dict[str, Any] = {"type": stype}
        if stype == "RollingUpdate":
            strategy["rollingUpdate"] = {
                "maxUnavailable": int_or_string(w["max_unavailable"]) if w.get("max_unavailable") is not None else 1,
                "maxSurge": int_or_string(w["max_surge"]) if w.get("max_surge") is not None else 0}
        n = len(running)
        desired = int(w["replicas"]) if w.get("replicas") is not None else n
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": self._workload_meta("DaemonSet", w, pods),
                "spec": {"selector": {"matchLabels": self.selector_labels(w)}, "template": self.template(w, pods),
                         "updateStrategy": strategy, "revisionHistoryLimit": 10},
                "status": {"currentNumberScheduled": n, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
                           "numberReady": n, "numberAvailable": n, "updatedNumberScheduled": n,
                           "observedGeneration": 1}}

    def jobs(self, w: dict[str, Any], pods: list[dict]) -> list[dict[str, Any]]:
        by_job: dict[str, list[dict]] = defaultdict(list)
        for p in pods:
            if p["owner_kind"] == "Job" and p["owner_name"]:
                by_job[p["owner_name"]].append(p)
        out = []
        parallelism = int(w.get("replicas") or 1)
        for job in sorted(by_job):
            if (w["namespace"], job) not in self.kept_jobs:
                continue
            jp = by_job[job]
            juid = object_uid("Job", w["namespace"], job)
            owner = ("CronJob", w["workload"]) if w["workload_kind"] == "CronJob" else None
            tlabels = {"batch.kubernetes.io/controller-uid": juid, "batch.kubernetes.io/job-name": job,
                       "controller-uid": juid, "job-name": job}
            labels = _kv(w.get("labels")) or {**self.template_labels(w), **tlabels}  # defaulted from the template
            annotations = {}
            begun = min(p["started"] for p in jp)
            if owner:
                annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = rfc3339(begun)
            else:
                annotations = _kv(w.get("annotations"))
            meta = self.meta("Job", w["namespace"], job, begun, labels, annotations, owner)
            template = self.template(w, jp, "Never", tlabels)
            finished = all(not p["running"] for p in jp)
            ok = [p for p in jp if not p["running"]]
            status: dict[str, Any] = {"startTime": rfc3339(begun)}
            if finished:
                done = max(p["ended"] for p in jp)
                status["completionTime"] = rfc3339(done)
                status["conditions"] = [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": rfc3339(done),
                     "lastTransitionTime": rfc3339(done)},
                    {"type": "Complete", "status": "True", "lastProbeTime": rfc3339(done),
                     "lastTransitionTime": rfc3339(done)}]
            else:
                status["active"] = len([p for p in jp if p["running"]])
                status["ready"] = status["active"]
            status["succeeded"] = len(ok)
            status["terminating"] = 0
            status["uncountedTerminatedPods"] = {}
            out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                        "spec": {"parallelism": parallelism, "completions": parallelism, "backoffLimit": 6,
                                 "completionMode": "NonIndexed", "suspend": False, "manualSelector": False,
                                 "podReplacementPolicy": "TerminatingOrFailed",
                                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": juid}},
                                 "template": template},
                        "status": status})
        return out

    def cronjob(self, w: dict[str, Any], pods: list[dict]) -> dict[str, Any]:
        jobs = sorted({p["owner_name"] for p in pods if p["owner_kind"] == "Job" and p["owner_name"]})
        schedule = _schedule(jobs, w["workload"])
        template = self.template(w, pods, "Never")
        status: dict[str, Any] = {}
        starts = [p["started"] for p in pods]
        if starts:
            status["lastScheduleTime"] = rfc3339(max(starts))
        done = [p["ended"] for p in pods if not p["running"]]
        if done:
            status["lastSuccessfulTime"] = rfc3339(max(done))
        active = sorted({p["owner_name"] for p in pods if p["running"] and p["owner_kind"] == "Job"})
        if active:
            status["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j, "namespace": w["namespace"],
                                 "uid": object_uid("Job", w["namespace"], j),
                                 "resourceVersion": _resource_version(object_uid("Job", w["namespace"], j))}
                                for j in active]
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": self._workload_meta("CronJob", w, pods),
                "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False,
                         "successfulJobsHistoryLimit": _JOB_HISTORY, "failedJobsHistoryLimit": 1,
                         "jobTemplate": {"metadata": {"labels": dict(sorted(_kv(w.get("labels")).items()))},
                                         "spec": {"parallelism": int(w.get("replicas") or 1), "backoffLimit": 6,
                                                  "template": template}}},
                "status": status}

    def hpa(self, w: dict[str, Any], current: int) -> dict[str, Any]:
        metrics = [_hpa_metric(m) for m in w.get("hpa_metrics") or [] if m and m.get("metric")]
        spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": _OWNER_API.get(w["workload_kind"], "apps/v1"),
                                                   "kind": w["workload_kind"], "name": w["workload"]},
                                "minReplicas": int(w.get("hpa_min_replicas") or 1),
                                "maxReplicas": int(w.get("hpa_max_replicas") or max(int(w.get("hpa_min_replicas") or 1),
                                                                                   int(w.get("replicas") or 1)))}
        if metrics:
            spec["metrics"] = metrics
        desired = int(w.get("replicas") or current or spec["minReplicas"])
        meta = self.meta("HorizontalPodAutoscaler", w["namespace"], w["hpa_name"], self.created(
            self.pods_of(w["namespace"], w["workload_kind"], w["workload"])), _kv(w.get("labels")))
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta, "spec": spec,
                "status": {"currentReplicas": current, "desiredReplicas": desired}}

    def pdb(self, w: dict[str, Any], healthy: int) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if w.get("pdb_min_available") is not None:
            spec["minAvailable"] = int_or_string(w["pdb_min_available"])
        else:
            spec["maxUnavailable"] = int_or_string(w["pdb_max_unavailable"])
        spec["selector"] = {"matchLabels": self.selector_labels(w)}
        expected = int(w.get("replicas") or healthy)
        desired = _pdb_desired(spec, expected)
        meta = self.meta("PodDisruptionBudget", w["namespace"], w["pdb_name"], self.created(
            self.pods_of(w["namespace"], w["workload_kind"], w["workload"])), _kv(w.get("labels")))
        return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta, "spec": spec,
                "status": {"observedGeneration": 1, "currentHealthy": healthy, "desiredHealthy": desired,
                           "disruptionsAllowed": max(healthy - desired, 0), "expectedPods": expected}}

    # -- nodes and namespaces -------------------------------------------------------------------

    def node_objects(self) -> list[dict[str, Any]]:
        out = []
        gpus: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for g in self.gpus.to_dicts():
            res = f"nvidia.com/mig-{g['mig_profile']}" if g.get("mig_profile") else "nvidia.com/gpu"
            gpus[g["node"]][res] += 1
        for n in sorted(self.node_rows.values(), key=lambda r: r["node"]):
            if n.get("last_seen") is not None and n["last_seen"] < self.end:
                continue
            name = n["node"]
            labels = _kv(n.get("labels"))
            labels.setdefault("kubernetes.io/hostname", name)
            ext = node_extended_resources(n, dict(gpus.get(name, {})))
            cap = _node_resources(n.get("cpu_capacity"), n.get("memory_capacity"), ext)
            alloc = _node_resources(n.get("cpu_allocatable"), n.get("memory_allocatable"), ext)
            created = n.get("first_seen") or self.start
            meta = self.meta("Node", None, name, created, labels,
                             {"node.alpha.kubernetes.io/ttl": "0",
                              "volumes.kubernetes.io/controller-managed-attach-detach": "true"})
            spec: dict[str, Any] = {}
            pid = provider_id(name, n.get("provider"), n.get("zone"))
            if pid:
                spec["providerID"] = pid
            taints = [{k: v for k, v in t.items() if v is not None} for t in n.get("taints") or []]
            if taints:
                spec["taints"] = taints
            ip = node_ip(name)
            when = rfc3339(created)
            conditions = [{"type": t, "status": s, "reason": r, "message": msg, "lastHeartbeatTime": rfc3339(self.end),
                           "lastTransitionTime": when}
                          for t, s, r, msg in _NODE_CONDITIONS]
            status = {
                "capacity": cap, "allocatable": alloc, "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name},
                              {"type": "InternalDNS", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {**node_system_info(name), "kernelVersion": KERNEL, "osImage": OS_IMAGE,
                             "containerRuntimeVersion": CONTAINER_RUNTIME, "kubeletVersion": KUBELET_VERSION,
                             "kubeProxyVersion": KUBELET_VERSION,
                             "operatingSystem": "linux", "architecture": labels.get("kubernetes.io/arch", "amd64")},
            }
            out.append({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": status})
        return out

    def namespace_objects(self) -> list[dict[str, Any]]:
        labels_of = {r["namespace"]: _kv(r.get("labels")) for r in self.namespaces_df.to_dicts()}
        names = set(labels_of) | {p["namespace"] for p in self.pods} | {k[0] for k in self.wl}
        out = []
        for ns in sorted(names):
            labels = {"kubernetes.io/metadata.name": ns, **labels_of.get(ns, {})}
            created = min((p["started"] for p in self.pods if p["namespace"] == ns), default=self.start)
            meta = self.meta("Namespace", None, ns, created - timedelta(days=1), labels)
            out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
                        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        return out

    def build(self) -> dict[str, list[dict[str, Any]]]:
        kept = self.kept_pods()
        lists: dict[str, list[dict[str, Any]]] = {"pods": [self.pod(p) for p in kept]}
        lists.update(self.controllers(kept))
        lists["nodes"] = self.node_objects()
        lists["namespaces"] = self.namespace_objects()
        return lists


# ---------------------------------------------------------------------------------------------
# Pure helpers


def _short_hash(text: str, n: int = 10) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the controllers' SafeEncodeString alphabet
    d = _digest("hash", text)
    return "".join(alphabet[b % len(alphabet)] for b in d[:n])


def _schedule(jobs: list[str], cron: str) -> str:
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


def _hpa_metric(m: dict[str, Any]) -> dict[str, Any]:
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


def _pdb_desired(spec: dict[str, Any], expected: int) -> int:
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


def _node_resources(cpu: float | None, memory: int | None, ext: dict[str, int]) -> dict[str, str]:
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


# ---------------------------------------------------------------------------------------------
# Public API


def kube_lists(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """One Kubernetes API list object per resource (``pods`` -> a ``PodList``, ...), at the snapshot's end."""
    lists = _Builder(snapshot).build()
    out = {}
    for resource, kind, api in _LISTS:
        items = lists.get(resource, [])
        version = str(10_000_000 + sum(int(i["metadata"]["resourceVersion"]) for i in items) % 80_000_000)
        out[resource] = {"apiVersion": api, "kind": f"{kind}List", "metadata": {"resourceVersion": version},
                         "items": items}
    return out


def kubectl_list(snapshot: Snapshot, lists: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What ``kubectl get pods,deploy,sts,ds,rs,job,cronjob,hpa,pdb,nodes,ns -A -o json`` prints."""
    lists = lists if lists is not None else kube_lists(snapshot)
    items = [item for resource in RESOURCES for item in lists[resource]["items"]]
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def write_kube_json(snapshot: Snapshot, directory: str | os.PathLike[str]) -> Path:
    """Write ``<resource>.json`` per list and ``all.json`` (the kubectl List), atomically.

    The files go to a temporary directory beside ``directory``, which is then renamed into
    place (an existing directory is replaced only once the new one is complete).
    """
    target = Path(directory).resolve()
    lists = kube_lists(snapshot)
    with atomic_directory(target) as tmp:
        for resource, obj in lists.items():
            (tmp / f"{resource}.json").write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        (tmp / "all.json").write_text(json.dumps(kubectl_list(snapshot, lists), indent=2) + "\n", encoding="utf-8")
    return target


__all__ = ["RESOURCES", "container_id", "image_for", "image_id", "kube_lists", "kubectl_list",
           "node_extended_resources", "node_ip", "node_system_info", "object_uid", "parse_affinity", "pod_cgroup",
           "pod_ip", "provider_id", "qos_class", "sandbox_id", "write_kube_json"]
