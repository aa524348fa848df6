"""Kubernetes objects into Snapshot frames: one code path for the live API and for kubectl JSON.

``SpecBuilder`` takes the items of API list objects (``PodList``, ``DeploymentList``, ... as
the API server or ``kubectl get -o json`` returns them, parsed from raw JSON into dicts, never
into the client's model classes) and turns them into the ``containers``, ``workloads``,
``nodes``, ``events`` and ``namespaces`` frames of a Snapshot:

- **Owners.** Pod -> ReplicaSet -> Deployment (or Argo Rollout), Pod -> Job -> CronJob,
  StatefulSet and DaemonSet pods directly; a pod without a controller is its own workload of
  kind ``Pod``. Every lookup is a dict keyed by (namespace, name): linear in the objects.
  When the ReplicaSets could not be read (no permission), a pod whose ReplicaSet name ends in
  its ``pod-template-hash`` label is placed in the Deployment (or, with
  ``rollouts-pod-template-hash``, the Rollout) named by the rest.
- **Quantities** go through ``analyzer.units`` (exactly as Kubernetes parses them), memoised
  because a cluster repeats the same few strings (``100m``, ``512Mi``) thousands of times.
  A request that is not set but has a limit takes the limit, as the API server defaults it.
- **Containers** are ``app``, ``init``, or ``sidecar`` (an init container with
  ``restartPolicy: Always``).
- **Workloads** carry replicas, labels, annotations (their own merged with the pod template's, the template's winning; minus ``last-applied-configuration``),
  the HPA targeting them (``scaleTargetRef``; autoscaling/v2 metrics, defaulted to CPU 80 %
  when none are given, as the API server does), the PDB whose selector matches their pod
  template labels, update strategy with maxUnavailable/maxSurge as written, emptyDir and
  local-storage use, nodeSelector, tolerations and a one-line node-affinity summary.
- **Nodes** carry instance type, provider, region/zone, capacity type from the Karpenter, EKS,
  GKE and AKS labels (docs: domain-reference section 6), capacity/allocatable, GPU count,
  model and memory from GPU Feature Discovery labels, MIG strategy/config, sharing, taints.
- **Events** come from container statuses: ``lastState.terminated`` (OOMKilled, Error, ...),
  ``state.terminated`` (Completed, ...), restarts without a recorded termination, evictions.

A malformed object is one ``InputError`` naming it; nothing half-built is returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from analyzer.collectors.kube_fields import (
    BY_KIND,
    BY_RESOURCE,
    GPU_RESOURCE,
    KINDS,
    LAST_APPLIED,
    HpaRow,
    PdbRow,
    PodRows,
    Quantities,
    WorkloadRow,
    as_written,
    controller_of,
    int_field,
    key_values,
    str_map,
    template_facts,
    time_field,
)
from analyzer.collectors.kube_frames import SpecFrames
from analyzer.errors import InputError
from analyzer.kube import capacity_type, provider_of
from analyzer.kube import as_dict as _dict
from analyzer.kube import Malformed as _Malformed
from analyzer.kube import as_list as _list
from analyzer.schema import NODES
from analyzer.units import MIB


class SpecBuilder(SpecFrames):
    """Collects API objects kind by kind and builds the snapshot frames from them.

    ``start(resource)`` (re)starts one kind's list, so a list that had to be read again from
    scratch (410 Gone on a continue token) never leaves duplicates; ``add(resource, items)``
    takes one page; ``finish()`` resolves owners and returns the frames.
    """

    def __init__(self, source: str = "kubernetes", namespaces: Sequence[str] = (), include_kube_system: bool = False):
        self.source = source
        self.namespaces = frozenset(namespaces)
        self.include_kube_system = include_kube_system or "kube-system" in self.namespaces
        self.q = Quantities()
        self.seen: set[str] = set()
        self.counts: dict[str, int] = {}
        self.controllers: dict[str, list[WorkloadRow]] = {}
        for k in KINDS:
            self.start(k.resource)
        self.seen.clear()

    # -- intake ---------------------------------------------------------------------------

    def keep(self, namespace: str | None) -> bool:
        if namespace is None:
            return True
        if self.namespaces:
            return namespace in self.namespaces
        return self.include_kube_system or namespace != "kube-system"

    def start(self, resource: str) -> None:
        self.seen.add(resource)
        self.counts[resource] = 0
        if resource == "pods":
            self.pods = PodRows()
        elif resource == "replicasets":
            self.rs_owner: dict[tuple[str, str], tuple[str, str] | None] = {}
            self.rs_top: list[WorkloadRow] = []
        elif resource == "jobs":
            self.job_owner: dict[tuple[str, str], tuple[str, str] | None] = {}
            self.job_top: list[WorkloadRow] = []
        elif resource == "horizontalpodautoscalers":
            self.hpas: list[HpaRow] = []
        elif resource == "poddisruptionbudgets":
            self.pdbs: list[PdbRow] = []
        elif resource == "nodes":
            self.nodes: dict[str, list] = {c.name: [] for c in NODES.columns}
            self.nodes["_created"] = []
        elif resource == "namespaces":
            self.ns_rows: list[dict] = []
        if resource in ("deployments", "statefulsets", "daemonsets", "cronjobs", "rollouts"):
            self.controllers[resource] = []

    def add(self, resource: str, items: Iterable[Any]) -> None:
        handler = getattr(self, "_" + resource)
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise InputError(f"{self.source}: item {n + 1} of the {resource} list is not an object.")
            meta = item.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str) or not name:
                raise InputError(f"{self.source}: a {BY_RESOURCE[resource].kind} has no metadata.name.")
            ns = meta.get("namespace")
            if BY_RESOURCE[resource].namespaced and not isinstance(ns, str):
                raise InputError(f"{self.source}: {BY_RESOURCE[resource].kind} {name!r} has no metadata.namespace.")
            if not self.keep(ns if BY_RESOURCE[resource].namespaced else None):
                continue
            try:
                handler(item, meta, ns, name)
            except (_Malformed, TypeError, AttributeError, KeyError, ValueError) as exc:
                what = str(exc) if isinstance(exc, _Malformed) else f"unexpected shape: {type(exc).__name__}"
                where = f"{ns}/{name}" if ns else name
                kind = BY_RESOURCE[resource].kind
                raise InputError(f"{self.source}: {kind} {where} is malformed ({what}).") from None
            self.counts[resource] += 1

    def add_objects(self, items: Iterable[Any]) -> dict[str, int]:
        """Items of mixed kinds (a ``kind: List``); returns the kinds it does not read, with counts."""
        by_resource: dict[str, list] = {}
        ignored: dict[str, int] = {}
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise InputError(f"{self.source}: item {n + 1} is not a Kubernetes object.")
            kind = item.get("kind")
            k = BY_KIND.get(kind) if isinstance(kind, str) else None
            if k is None:
                ignored[str(kind)] = ignored.get(str(kind), 0) + 1
                continue
            by_resource.setdefault(k.resource, []).append(item)
        for resource, objs in by_resource.items():
            self.seen.add(resource)
            self.add(resource, objs)
        return ignored

    # -- handlers: one per kind -----------------------------------------------------------

    def _pods(self, item: dict, meta: dict, ns: str, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        status = _dict(item.get("status"), "status")
        P = self.pods
        i = len(P.p["pod"])
        owner = controller_of(meta)
        if owner is not None and owner[0] == "Node":  # a static pod's mirror: no controller of its own
            owner = None
        labels = str_map(meta.get("labels"), "metadata.labels")
        phase = status.get("phase")
        started = time_field(status.get("startTime") or meta.get("creationTimestamp"), "status.startTime")
        limits: dict[str, int | None] = {}
        q = self.q
        for ctype_default, key in (("init", "initContainers"), ("app", "containers")):
            for c in _list(spec.get(key), f"spec.{key}"):
                c = _dict(c, f"spec.{key}[]")
                cname = c.get("name")
                if not isinstance(cname, str):
                    raise _Malformed(f"a container in spec.{key} has no name")
                ctype = "sidecar" if ctype_default == "init" and c.get("restartPolicy") == "Always" else ctype_default
                res = _dict(c.get("resources"), f"container {cname} resources")
                req = _dict(res.get("requests"), f"container {cname} requests")
                lim = _dict(res.get("limits"), f"container {cname} limits")
                cpu_l = q("cpu", lim.get("cpu"), f"container {cname} cpu limit")
                mem_l = q("memory", lim.get("memory"), f"container {cname} memory limit")
                cpu_r = q("cpu", req.get("cpu"), f"container {cname} cpu request")
                mem_r = q("memory", req.get("memory"), f"container {cname} memory request")
                gpu_name = next((r for r in lim if GPU_RESOURCE.match(r)), None) or next(
                    (r for r in req if GPU_RESOURCE.match(r)), None)
                gpu_l = q("count", lim.get(gpu_name), f"container {cname} {gpu_name} limit") if gpu_name else None
                gpu_r = q("count", req.get(gpu_name), f"container {cname} {gpu_name} request") if gpu_name else None
                cols = P.c
                cols["i"].append(i)
                cols["container"].append(cname)
                cols["container_type"].append(ctype)
                cols["cpu_request"].append(cpu_l if cpu_r is None else cpu_r)  # API-server defaulting
                cols["cpu_limit"].append(cpu_l)
                cols["memory_request"].append(mem_l if mem_r is None else mem_r)
                cols["memory_limit"].append(mem_l)
                cols["gpu_resource"].append(gpu_name)
                cols["gpu_request"].append(gpu_l if gpu_r is None else gpu_r)
                cols["gpu_limit"].append(gpu_l)
                limits[cname] = mem_l
        ended = None
        last_finish = self._pod_events(i, status, limits)
        if phase in ("Succeeded", "Failed"):
            ended = last_finish
        if phase in ("Succeeded", "Failed") and ended is None:
            ended = max((time_field(c.get("lastTransitionTime"), "lastTransitionTime") for c in
                         _list(status.get("conditions"), "status.conditions")
                         if isinstance(c, dict) and c.get("lastTransitionTime")), default=None)
        if status.get("reason") == "Evicted":
            at = ended or started
            for cname, mem in limits.items():
                self._event(i, cname, at, "Evicted", None, None, mem)
        p = P.p
        p["namespace"].append(ns)
        p["pod"].append(name)
        p["owner_kind"].append(owner[0] if owner else None)
        p["owner_name"].append(owner[1] if owner else None)
        p["node"].append(spec.get("nodeName"))
        p["started"].append(started)
        p["ended"].append(ended)
        p["rs_hash"].append(labels.get("pod-template-hash"))
        p["rollout_hash"].append(labels.get("rollouts-pod-template-hash"))
        P.labels.append(labels)
        if owner is None:
            P.bare[i] = (str_map(meta.get("annotations"), "metadata.annotations"),
                         template_facts({"metadata": {"labels": labels}, "spec": spec}))

    def _pod_events(self, i: int, status: dict, limits: dict) -> str | None:
        """Events from container statuses; returns the latest ``state.terminated.finishedAt``."""
        last_finish = None
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in _list(status.get(key), f"status.{key}"):
                cs = _dict(cs, f"status.{key}[]")
                cname = cs.get("name")
                restarts = int_field(cs.get("restartCount"), None, f"{cname} restartCount")
                mem = limits.get(cname)
                prev = _dict(_dict(cs.get("lastState"), "lastState").get("terminated"), "lastState.terminated")
                if prev:
                    self._event(i, cname, time_field(prev.get("finishedAt") or prev.get("startedAt"), "finishedAt"),
                                prev.get("reason") or "Terminated", prev.get("exitCode"), restarts, mem)
                state = _dict(cs.get("state"), "state")
                now = _dict(state.get("terminated"), "state.terminated")
                if now:
                    at = time_field(now.get("finishedAt") or now.get("startedAt"), "finishedAt")
                    if not (key == "initContainerStatuses" and now.get("exitCode") == 0):  # init done: no event
                        self._event(i, cname, at, now.get("reason") or "Terminated", now.get("exitCode"), restarts, mem)
                    if at and (last_finish is None or at > last_finish):
                        last_finish = at
                elif restarts and not prev:
                    running = _dict(state.get("running"), "state.running")
                    self._event(i, cname, time_field(running.get("startedAt"), "startedAt"), "Restart", None, restarts, mem)
        return last_finish

    def _event(self, i, container, at, reason, exit_code, restarts, memory_limit) -> None:
        e = self.pods.e
        e["i"].append(i)
        e["container"].append(container)
        e["timestamp"].append(at)
        e["reason"].append(str(reason))
        e["exit_code"].append(int_field(exit_code, None, f"{container} exitCode"))
        e["restart_count"].append(restarts)
        e["memory_limit"].append(memory_limit)

    def _workload(self, kind: str, item: dict, meta: dict, ns: str, name: str) -> WorkloadRow:
        spec = _dict(item.get("spec"), "spec")
        status = _dict(item.get("status"), "status")
        annotations = str_map(meta.get("annotations"), "metadata.annotations")
        annotations = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        labels = str_map(meta.get("labels"), "metadata.labels")
        template, claims, strategy, ref = _dict(spec.get("template"), "spec.template"), None, (None, None, None), None
        if kind in ("Deployment", "StatefulSet", "ReplicaSet", "Rollout"):
            replicas = int_field(spec.get("replicas"), 1, "spec.replicas")
        elif kind == "DaemonSet":
            replicas = int_field(status.get("desiredNumberScheduled"), None, "status.desiredNumberScheduled")
        elif kind == "Job":
            replicas = int_field(spec.get("parallelism"), 1, "spec.parallelism")
        else:  # CronJob
            job = _dict(_dict(spec.get("jobTemplate"), "spec.jobTemplate").get("spec"), "spec.jobTemplate.spec")
            replicas = int_field(job.get("parallelism"), 1, "spec.jobTemplate.spec.parallelism")
            template = _dict(job.get("template"), "spec.jobTemplate.spec.template")
        if kind == "Deployment":
            s = _dict(spec.get("strategy"), "spec.strategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.strategy.rollingUpdate")
            strategy = (stype, as_written(ru.get("maxUnavailable", "25%")), as_written(ru.get("maxSurge", "25%"))) \
                if stype == "RollingUpdate" else (stype, None, None)
        elif kind == "StatefulSet":
            s = _dict(spec.get("updateStrategy"), "spec.updateStrategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
            strategy = (stype, as_written(ru.get("maxUnavailable")), None)
            claims = spec.get("volumeClaimTemplates")
        elif kind == "DaemonSet":
            s = _dict(spec.get("updateStrategy"), "spec.updateStrategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
            strategy = (stype, as_written(ru.get("maxUnavailable", 1)), as_written(ru.get("maxSurge", 0))) \
                if stype == "RollingUpdate" else (stype, None, None)
        elif kind == "Rollout":
            s = _dict(spec.get("strategy"), "spec.strategy")
            if "canary" in s:
                c = _dict(s.get("canary"), "spec.strategy.canary")
                strategy = ("Canary", as_written(c.get("maxUnavailable", 0)), as_written(c.get("maxSurge", "25%")))
            elif "blueGreen" in s:
                strategy = ("BlueGreen", None, None)
            ref_obj = _dict(spec.get("workloadRef"), "spec.workloadRef")
            if ref_obj.get("kind") and ref_obj.get("name"):
                ref = (ref_obj["kind"], ref_obj["name"])
        return WorkloadRow(ns, kind, name, replicas, labels, annotations, template_facts(template, claims), strategy,
                         ref)

    def _controller_handler(resource: str, kind: str):
        def handler(self, item, meta, ns, name):
            self.controllers[resource].append(self._workload(kind, item, meta, ns, name))
        return handler

    _deployments = _controller_handler("deployments", "Deployment")
    _statefulsets = _controller_handler("statefulsets", "StatefulSet")
    _daemonsets = _controller_handler("daemonsets", "DaemonSet")
    _cronjobs = _controller_handler("cronjobs", "CronJob")
    _rollouts = _controller_handler("rollouts", "Rollout")
    del _controller_handler

    def _replicasets(self, item: dict, meta: dict, ns: str, name: str) -> None:
        owner = controller_of(meta)
        self.rs_owner[(ns, name)] = owner
        if owner is None:
            self.rs_top.append(self._workload("ReplicaSet", item, meta, ns, name))

    def _jobs(self, item: dict, meta: dict, ns: str, name: str) -> None:
        owner = controller_of(meta)
        self.job_owner[(ns, name)] = owner
        if owner is None:
            self.job_top.append(self._workload("Job", item, meta, ns, name))

    def _horizontalpodautoscalers(self, item: dict, meta: dict, ns: str, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        ref = _dict(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
        if not isinstance(ref.get("kind"), str) or not isinstance(ref.get("name"), str):
            raise _Malformed("spec.scaleTargetRef lacks kind or name")
        metrics = []
        cpu_target = spec.get("targetCPUUtilizationPercentage", 80)  # autoscaling/v1 has only this
        for m in _list(spec.get("metrics"), "spec.metrics") or [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": cpu_target}}}]:
            m = _dict(m, "spec.metrics[]")
            mtype = m.get("type")
            body = _dict(m.get({"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
                                "Object": "object", "External": "external"}.get(mtype, "?")), f"{mtype} metric")
            if mtype == "Resource":
                metric = body.get("name")
            elif mtype == "ContainerResource":
                metric = f"{body.get('name')} ({body.get('container')})"
            else:
                metric = _dict(body.get("metric"), f"{mtype} metric").get("name")
            target = _dict(body.get("target"), f"{mtype} metric target")
            ttype = target.get("type")
            if ttype == "Utilization":
                value = int_field(target.get("averageUtilization"), None, "averageUtilization")
                value = None if value is None else float(value)
            elif ttype == "AverageValue":
                value = self.q("float", target.get("averageValue"), f"{metric} averageValue")
            else:
                value = self.q("float", target.get("value"), f"{metric} value")
            metrics.append({"metric": None if metric is None else str(metric), "target_type": ttype, "target": value})
        self.hpas.append(HpaRow(ns, name, ref["kind"], ref["name"], int_field(spec.get("minReplicas"), 1, "minReplicas"),
                              int_field(spec.get("maxReplicas"), None, "maxReplicas"), metrics))

    def _poddisruptionbudgets(self, item: dict, meta: dict, ns: str, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        selector = spec.get("selector")
        if selector is not None:
            selector = _dict(selector, "spec.selector")
            str_map(selector.get("matchLabels"), "spec.selector.matchLabels")
            for e in _list(selector.get("matchExpressions"), "spec.selector.matchExpressions"):
                _list(_dict(e, "spec.selector.matchExpressions[]").get("values"), "matchExpressions values")
        self.pdbs.append(PdbRow(ns, name, selector, as_written(spec.get("minAvailable")),
                              as_written(spec.get("maxUnavailable"))))

    def _nodes(self, item: dict, meta: dict, ns: str | None, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        status = _dict(item.get("status"), "status")
        labels = str_map(meta.get("labels"), "metadata.labels")
        cap = _dict(status.get("capacity"), "status.capacity")
        alloc = _dict(status.get("allocatable"), "status.allocatable")
        q = self.q

        def label_int(key: str) -> int | None:
            v = labels.get(key)
            try:
                return int(v) if v is not None else None
            except ValueError:
                return None

        replicas = label_int("nvidia.com/gpu.replicas")
        gpus = label_int("nvidia.com/gpu.count")
        if gpus is None:
            cap_gpu = q("count", cap.get("nvidia.com/gpu"), "capacity nvidia.com/gpu")
            gpus = (cap_gpu // replicas if replicas and cap_gpu else cap_gpu) or 0
        gpu_mem = label_int("nvidia.com/gpu.memory")
        has_gpu = gpus > 0
        sharing = labels.get("nvidia.com/gpu.sharing-strategy")
        if sharing is None and has_gpu:
            sharing = "time-slicing" if replicas and replicas > 1 else "none"
        taints = []
        for t in _list(spec.get("taints"), "spec.taints"):
            t = _dict(t, "spec.taints[]")
            taints.append({"key": t.get("key"), "value": t.get("value"), "effect": t.get("effect")})
        row = {
            "node": name,
            "instance_type": (labels.get("node.kubernetes.io/instance-type")
                              or labels.get("beta.kubernetes.io/instance-type")),
            "provider": provider_of(spec.get("providerID"), labels),
            "region": (labels.get("topology.kubernetes.io/region")
                       or labels.get("failure-domain.beta.kubernetes.io/region")),
            "zone": labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone"),
            "capacity_type": capacity_type(labels),
            "cpu_capacity": q("cpu", cap.get("cpu"), "capacity cpu"),
            "cpu_allocatable": q("cpu", alloc.get("cpu"), "allocatable cpu"),
            "memory_capacity": q("memory", cap.get("memory"), "capacity memory"),
            "memory_allocatable": q("memory", alloc.get("memory"), "allocatable memory"),
            "gpu_count": gpus,
            "gpu_model": labels.get("nvidia.com/gpu.product"),
            "gpu_memory": gpu_mem * MIB if gpu_mem is not None else None,
            "mig_strategy": labels.get("nvidia.com/mig.strategy") or ("none" if has_gpu else None),
            "mig_config": labels.get("nvidia.com/mig.config"),
            "gpu_sharing": sharing,
            "gpu_replicas": replicas,
            "hourly_price": None,
            "price_source": None,
            "labels": key_values(labels),
            "taints": taints,
            "first_seen": None,
            "last_seen": None,
            "_created": time_field(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        }
        for k, v in row.items():
            self.nodes[k].append(v)

    def _namespaces(self, item: dict, meta: dict, ns: str | None, name: str) -> None:
        if not self.keep(name):
            return
        self.ns_rows.append({"namespace": name, "labels": key_values(str_map(meta.get("labels"), "metadata.labels"))})

    # -- output ---------------------------------------------------------------------------
