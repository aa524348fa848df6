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

import json
import os
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from analyzer.atomic import atomic_directory
from analyzer.simulator.kube_identity import (
    CONTAINER_RUNTIME,
    JOB_HISTORY,
    KERNEL,
    KUBELET_VERSION,
    LISTS,
    NODE_CONDITIONS,
    OS_IMAGE,
    OWNER_API,
    RESOURCES,
    cron_schedule,
    hpa_metric,
    int_or_string,
    label_map,
    node_extended_resources,
    node_ip,
    node_resources,
    node_system_info,
    object_uid,
    pdb_desired,
    provider_id,
    resource_version,
    rfc3339,
    short_hash,
)
from analyzer.simulator.kube_pods import PodObjects
from analyzer.snapshot import Snapshot


class _Builder(PodObjects):
    """Controllers, HPAs, PDBs, nodes and namespaces on top of the pods."""

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
        return self.meta(kind, w["namespace"], w["workload"], self.created(pods), label_map(w.get("labels")),
                         label_map(w.get("annotations")))

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
        revision = label_map(w.get("annotations")).get("deployment.kubernetes.io/revision")
        top = int(revision) if revision and revision.isdigit() else len(order)
        out = []
        for i, rs in enumerate(order):
            rs_pods = by_rs[rs]
            live = [p for p in running if p["owner_name"] == rs]
            hash_key = "rollouts-pod-template-hash" if w["workload_kind"] == "Rollout" else "pod-template-hash"
            h = rs[len(w["workload"]) + 1:] if rs.startswith(w["workload"] + "-") else short_hash(rs)
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
        revision = f"{w['workload']}-{short_hash(w['workload'], 10)}"
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
            labels = label_map(w.get("labels")) or {**self.template_labels(w), **tlabels}  # defaulted from the template
            annotations = {}
            begun = min(p["started"] for p in jp)
            if owner:
                annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = rfc3339(begun)
            else:
                annotations = label_map(w.get("annotations"))
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
        schedule = cron_schedule(jobs, w["workload"])
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
                                 "resourceVersion": resource_version(object_uid("Job", w["namespace"], j))}
                                for j in active]
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": self._workload_meta("CronJob", w, pods),
                "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False,
                         "successfulJobsHistoryLimit": JOB_HISTORY, "failedJobsHistoryLimit": 1,
                         "jobTemplate": {"metadata": {"labels": dict(sorted(label_map(w.get("labels")).items()))},
                                         "spec": {"parallelism": int(w.get("replicas") or 1), "backoffLimit": 6,
                                                  "template": template}}},
                "status": status}

    def hpa(self, w: dict[str, Any], current: int) -> dict[str, Any]:
        metrics = [hpa_metric(m) for m in w.get("hpa_metrics") or [] if m and m.get("metric")]
        spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": OWNER_API.get(w["workload_kind"], "apps/v1"),
                                                   "kind": w["workload_kind"], "name": w["workload"]},
                                "minReplicas": int(w.get("hpa_min_replicas") or 1),
                                "maxReplicas": int(w.get("hpa_max_replicas") or max(int(w.get("hpa_min_replicas") or 1),
                                                                                   int(w.get("replicas") or 1)))}
        if metrics:
            spec["metrics"] = metrics
        desired = int(w.get("replicas") or current or spec["minReplicas"])
        meta = self.meta("HorizontalPodAutoscaler", w["namespace"], w["hpa_name"], self.created(
            self.pods_of(w["namespace"], w["workload_kind"], w["workload"])), label_map(w.get("labels")))
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
        desired = pdb_desired(spec, expected)
        meta = self.meta("PodDisruptionBudget", w["namespace"], w["pdb_name"], self.created(
            self.pods_of(w["namespace"], w["workload_kind"], w["workload"])), label_map(w.get("labels")))
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
            labels = label_map(n.get("labels"))
            labels.setdefault("kubernetes.io/hostname", name)
            ext = node_extended_resources(n, dict(gpus.get(name, {})))
            cap = node_resources(n.get("cpu_capacity"), n.get("memory_capacity"), ext)
            alloc = node_resources(n.get("cpu_allocatable"), n.get("memory_allocatable"), ext)
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
                          for t, s, r, msg in NODE_CONDITIONS]
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
        labels_of = {r["namespace"]: label_map(r.get("labels")) for r in self.namespaces_df.to_dicts()}
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
# Public API


def kube_lists(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """One Kubernetes API list object per resource (``pods`` -> a ``PodList``, ...), at the snapshot's end."""
    lists = _Builder(snapshot).build()
    out = {}
    for resource, kind, api in LISTS:
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


__all__ = ["RESOURCES", "kube_lists", "kubectl_list", "write_kube_json"]
