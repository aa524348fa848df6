"""Simulated Pod objects (spec, labels, container statuses) from a Snapshot's containers and events."""


from __future__ import annotations

import copy
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from analyzer.kube import parse_affinity
from analyzer.simulator.kube_identity import (
    JOB_HISTORY,
    NOT_RESTARTS,
    OWNER_API,
    TERMINATIONS_NOT,
    container_id,
    count_quantity,
    cpu_quantity,
    image_for,
    image_id,
    label_map,
    memory_quantity,
    node_ip,
    object_uid,
    pod_ip,
    qos_class,
    resource_version,
    rfc3339,
    short_hash,
    str_frame,
)
from analyzer.snapshot import Snapshot


class PodObjects:
    """Pods (and the pod templates, metadata and statuses they share with controllers) from a Snapshot."""

    def __init__(self, snapshot: Snapshot):
        self.s = snapshot
        m = snapshot.manifest
        self.end = m.end if m.end.tzinfo else m.end.replace(tzinfo=UTC)
        self.start = m.start if m.start.tzinfo else m.start.replace(tzinfo=UTC)
        self.containers = str_frame(snapshot.containers)
        self.workloads = str_frame(snapshot.workloads)
        self.nodes = str_frame(snapshot.nodes)
        self.gpus = str_frame(snapshot.gpus)
        self.events = str_frame(snapshot.events).sort("timestamp")
        self.namespaces_df = str_frame(snapshot.namespaces)
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
        return {(r["namespace"], r["pod"], r["container"]): (r["a"], r["b"]) for r in str_frame(spans).to_dicts()}

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
            done = sorted((r for r in runs if r[1]), reverse=True)[:JOB_HISTORY]
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
        m["resourceVersion"] = resource_version(uid)
        m["creationTimestamp"] = rfc3339(created)
        if labels:
            m["labels"] = dict(sorted(labels.items()))
        if annotations:
            m["annotations"] = dict(sorted(annotations.items()))
        if owner:
            okind, oname = owner
            m["ownerReferences"] = [{"apiVersion": OWNER_API.get(okind, "v1"), "kind": okind, "name": oname,
                                     "uid": object_uid(okind, namespace, oname), "controller": True,
                                     "blockOwnerDeletion": True}]
        return m

    def workload_row(self, ns: str, kind: str, name: str) -> dict[str, Any]:
        return self.wl.get((ns, kind, name)) or {"namespace": ns, "workload_kind": kind, "workload": name}

    @staticmethod
    def selector_labels(w: dict[str, Any]) -> dict[str, str]:
        labels = label_map(w.get("labels"))
        return {"app": labels["app"]} if "app" in labels else {"app": w["workload"]}

    def template_labels(self, w: dict[str, Any]) -> dict[str, str]:
        return {**label_map(w.get("labels")), **self.selector_labels(w)}

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
        selector = label_map(w.get("node_selector"))
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
            h = oname[len(w["workload"]) + 1:] if oname.startswith(w["workload"] + "-") else short_hash(oname)
            labels["rollouts-pod-template-hash" if p["workload_kind"] == "Rollout" else "pod-template-hash"] = h
            generate = f"{oname}-"
        elif okind == "StatefulSet":
            labels["controller-revision-hash"] = f"{oname}-{short_hash(oname, 10)}"
            labels["statefulset.kubernetes.io/pod-name"] = p["pod"]
            m = re.search(r"-(\d+)$", p["pod"])
            if m:
                labels["apps.kubernetes.io/pod-index"] = m[1]
        elif okind == "DaemonSet":
            labels["controller-revision-hash"] = short_hash(oname, 10)
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
        restarts = [e for e in evs if e["reason"] not in NOT_RESTARTS]
        terms = [e for e in evs if e["reason"] not in TERMINATIONS_NOT]
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
