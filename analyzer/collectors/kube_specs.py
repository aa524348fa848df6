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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from analyzer.errors import InputError
from analyzer.schema import CONTAINERS, EVENTS, NAMESPACES, NODES, TIMESTAMP, WORKLOADS
from analyzer.units import parse_count, parse_cpu, parse_memory, parse_quantity

MIB = 2**20
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True)
class Kind:
    """One list the collector reads: its API path parts and what it is called in RBAC."""

    resource: str  # plural, as in the URL and in RBAC rules
    kind: str
    group: str  # "" = the core group
    version: str
    namespaced: bool = True
    optional_api: bool = False  # a CRD: 404 means "not installed" and is not worth a warning

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def rbac(self) -> str:
        """``resource.group`` as ``kubectl auth can-i`` and RBAC errors name it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def short(self) -> str:
        return self.kind + "s"


KINDS: tuple[Kind, ...] = (
    Kind("namespaces", "Namespace", "", "v1", namespaced=False),
    Kind("nodes", "Node", "", "v1", namespaced=False),
    Kind("deployments", "Deployment", "apps", "v1"),
    Kind("statefulsets", "StatefulSet", "apps", "v1"),
    Kind("daemonsets", "DaemonSet", "apps", "v1"),
    Kind("replicasets", "ReplicaSet", "apps", "v1"),
    Kind("cronjobs", "CronJob", "batch", "v1"),
    Kind("jobs", "Job", "batch", "v1"),
    Kind("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2"),
    Kind("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1"),
    Kind("rollouts", "Rollout", "argoproj.io", "v1alpha1", optional_api=True),
    Kind("pods", "Pod", "", "v1"),
)
BY_RESOURCE = {k.resource: k for k in KINDS}
BY_KIND = {k.kind: k for k in KINDS}

# Controllers that are a workload of their own (the top of an owner chain).
_TOP_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Rollout")
# Extended resources that are GPUs (or slices of one).
_GPU_RESOURCE = re.compile(r"^(nvidia\.com/(gpu(\.shared)?|mig-.+)|amd\.com/gpu|gpu\.intel\.com/.+)$")
_LOCAL_CLASS = re.compile(r"local|hostpath|host-path|topolvm|lvm", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Small helpers


class _Malformed(Exception):
    """Raised inside object handlers; turned into one InputError naming the object."""


def _dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{what} is not a list")
    return value


def _str_map(value: Any, what: str) -> dict[str, str]:
    d = _dict(value, what)
    for k, v in d.items():
        if not isinstance(v, str):
            raise _Malformed(f"{what} {k!r} is not a string")
    return d


def _time(value: Any, what: str) -> str | None:
    """An RFC 3339 time as the API writes it (a string); parsed later, column-wise."""
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(f"{what} is {value!r}, not an RFC 3339 time string")


def _kv(d: dict[str, str] | None) -> list[dict[str, str]]:
    """A map as key/value pairs sorted by key (as the API server's Go encoder orders them)."""
    return [{"key": k, "value": v} for k, v in sorted((d or {}).items())]


def _as_written(value: Any) -> str | None:
    """An int-or-string field (maxUnavailable, minAvailable) as the user wrote it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Malformed(f"{value!r} is neither an integer nor a percentage")
    return str(value)


def _int(value: Any, default: int | None, what: str) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{what} is {value!r}, not an integer")
    return value


class _Quantities:
    """Memoised quantity parsing: a cluster repeats a few dozen strings thousands of times."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Any], Any] = {}
        self._parsers: dict[str, Callable[[Any], Any]] = {
            "cpu": parse_cpu, "memory": parse_memory, "count": parse_count,
            "float": lambda q: float(parse_quantity(q)),
        }

    def __call__(self, unit: str, value: Any, what: str) -> Any:
        if value is None:
            return None
        key = (unit, value)
        try:
            return self._cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list or an object): not a quantity
            raise _Malformed(f"{what} is {value!r}, not a Kubernetes quantity") from None
        try:
            parsed = self._parsers[unit](value)
        except InputError:
            raise _Malformed(f"{what} is {value!r}, not a Kubernetes quantity") from None
        self._cache[key] = parsed
        return parsed


def _controller(meta: dict) -> tuple[str, str] | None:
    """The owner reference marked ``controller: true`` (else the first one), as (kind, name)."""
    refs = _list(meta.get("ownerReferences"), "metadata.ownerReferences")
    if not refs:
        return None
    chosen = next((r for r in refs if isinstance(r, dict) and r.get("controller")), refs[0])
    if not isinstance(chosen, dict) or not all(isinstance(chosen.get(k), str) for k in ("kind", "name")):
        raise _Malformed("metadata.ownerReferences has an entry without kind and name")
    return chosen["kind"], chosen["name"]


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A ``LabelSelector`` against labels. ``None`` selects nothing, ``{}`` everything (policy/v1)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def affinity_summary(affinity: dict | None) -> str | None:
    """Node affinity in one line: ``required: karpenter.sh/capacity-type In [spot]``.

    Expressions of one term are joined with `` and ``, terms with `` or ``; the required and
    preferred parts with ``; ``. Pod (anti-)affinity is not node placement and is left out.
    """
    node = _dict(_dict(affinity, "affinity").get("nodeAffinity"), "affinity.nodeAffinity")
    if not node:
        return None

    def term(t: dict) -> str:
        parts = []
        for e in (t.get("matchExpressions") or []) + (t.get("matchFields") or []):
            op = e.get("operator")
            if op in ("Exists", "DoesNotExist"):
                parts.append(f"{e.get('key')} {op}")
            else:
                parts.append(f"{e.get('key')} {op} [{', '.join(str(v) for v in e.get('values') or [])}]")
        return " and ".join(parts)

    out = []
    required = _dict(node.get("requiredDuringSchedulingIgnoredDuringExecution"), "nodeAffinity.required")
    terms = [term(t) for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    if any(terms):
        out.append("required: " + " or ".join(t for t in terms if t))
    preferred = [term(_dict(p.get("preference"), "preference")) for p in
                 _list(node.get("preferredDuringSchedulingIgnoredDuringExecution"), "nodeAffinity.preferred")
                 if isinstance(p, dict)]
    if any(preferred):
        out.append("preferred: " + " or ".join(t for t in preferred if t))
    return "; ".join(out) or None


# ---------------------------------------------------------------------------------------------
# Node facts


def _low(labels: dict[str, str], key: str) -> str | None:
    v = labels.get(key)
    return v.lower() if isinstance(v, str) else None


def capacity_type(labels: dict[str, str]) -> str:
    """on-demand, spot, reserved or unknown, from the provider labels (domain-reference section 6)."""
    karpenter = _low(labels, "karpenter.sh/capacity-type")
    if karpenter in ("spot", "on-demand", "reserved"):
        return karpenter
    eks = _low(labels, "eks.amazonaws.com/capacitytype") or _low(labels, "eks.amazonaws.com/capacityType")
    if eks == "spot":
        return "spot"
    if eks == "on_demand":
        return "on-demand"
    if eks == "capacity_block":
        return "reserved"
    if "true" in (_low(labels, "cloud.google.com/gke-spot"), _low(labels, "cloud.google.com/gke-preemptible")):
        return "spot"
    if _low(labels, "kubernetes.azure.com/scalesetpriority") == "spot":
        return "spot"
    if _low(labels, "node.kubernetes.io/lifecycle") == "spot" or _low(labels, "lifecycle") == "ec2spot":
        return "spot"
    if "cloud.google.com/reservation-name" in labels:
        return "reserved"
    # GKE and AKS label only their spot nodes; a node of a known pool without that label is regular.
    if "cloud.google.com/gke-nodepool" in labels or "kubernetes.azure.com/agentpool" in labels:
        return "on-demand"
    return "unknown"


_AWS_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|metal|\d*x?large)(-\d+xl)?$")
_GCP_TYPE = re.compile(
    r"^[a-z][a-z0-9]*-(standard|highmem|highcpu|highgpu|megagpu|ultragpu|edgegpu|custom|micro|small|medium)")


def provider_of(provider_id: str | None, labels: dict[str, str]) -> str:
    pid = (provider_id or "").lower()
    for prefix, name in (("aws", "aws"), ("gce", "gcp"), ("azure", "azure")):
        if pid.startswith(prefix + "://"):
            return name
    keys = labels.keys()
    if any(k.startswith(("eks.amazonaws.com/", "karpenter.k8s.aws/", "k8s.amazonaws.com/")) for k in keys):
        return "aws"
    if any(k.startswith("cloud.google.com/") for k in keys):
        return "gcp"
    if any(k.startswith("kubernetes.azure.com/") for k in keys):
        return "azure"
    itype = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type") or ""
    if itype.startswith("Standard_"):
        return "azure"
    if _AWS_TYPE.match(itype):
        return "aws"
    if _GCP_TYPE.match(itype):
        return "gcp"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# Collected tables


@dataclass(slots=True)
class _Workload:
    namespace: str
    kind: str
    name: str
    replicas: int | None
    labels: dict[str, str]
    annotations: dict[str, str]
    facts: _Template
    strategy: tuple[str | None, str | None, str | None] = (None, None, None)
    workload_ref: tuple[str, str] | None = None  # Rollout.spec.workloadRef (kind, name)


@dataclass(slots=True)
class _Template:
    """What the workloads frame needs from a pod template, extracted (and checked) at intake."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    uses_empty_dir: bool = False
    uses_local_storage: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    affinity: str | None = None
    empty: bool = True  # no pod spec at all (a Rollout with a workloadRef)


def _template_facts(template: dict, claim_templates: Any = None) -> _Template:
    tmeta = _dict(template.get("metadata"), "template.metadata")
    tspec = _dict(template.get("spec"), "template.spec")
    volumes = [_dict(v, "template volume") for v in _list(tspec.get("volumes"), "template volumes")]
    tolerations = []
    for t in _list(tspec.get("tolerations"), "template tolerations"):
        t = _dict(t, "template toleration")
        tolerations.append({"key": t.get("key"), "operator": t.get("operator"), "value": t.get("value"),
                            "effect": t.get("effect")})
    claims = _list(claim_templates, "spec.volumeClaimTemplates")
    return _Template(
        labels=_str_map(tmeta.get("labels"), "template labels"),
        annotations=_str_map(tmeta.get("annotations"), "template annotations"),
        uses_empty_dir=any("emptyDir" in v for v in volumes),
        uses_local_storage=_local_storage(volumes, claims),
        node_selector=_str_map(tspec.get("nodeSelector"), "template nodeSelector"),
        tolerations=tolerations,
        affinity=affinity_summary(tspec.get("affinity")),
        empty=not tspec,
    )


class _Pods:
    """Pods reduced to columns as they arrive, page by page (the raw dicts are not kept)."""

    POD_COLS = ("namespace", "pod", "owner_kind", "owner_name", "node", "started", "ended", "rs_hash", "rollout_hash")
    CONTAINER_COLS = ("i", "container", "container_type", "cpu_request", "cpu_limit", "memory_request",
                      "memory_limit", "gpu_resource", "gpu_request", "gpu_limit")
    EVENT_COLS = ("i", "container", "timestamp", "reason", "exit_code", "restart_count", "memory_limit")

    def __init__(self) -> None:
        self.p: dict[str, list] = {c: [] for c in self.POD_COLS}
        self.c: dict[str, list] = {c: [] for c in self.CONTAINER_COLS}
        self.e: dict[str, list] = {c: [] for c in self.EVENT_COLS}
        self.labels: list[dict[str, str]] = []
        self.bare: dict[int, tuple[dict, Any]] = {}  # pod index -> (annotations, template facts), bare pods only


@dataclass
class _Hpa:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int | None
    metrics: list[dict]


@dataclass
class _Pdb:
    namespace: str
    name: str
    selector: dict | None
    min_available: str | None
    max_unavailable: str | None


class SpecBuilder:
    """Collects API objects kind by kind and builds the snapshot frames from them.

    ``start(resource)`` (re)starts one kind's list, so a list that had to be read again from
    scratch (410 Gone on a continue token) never leaves duplicates; ``add(resource, items)``
    takes one page; ``finish()`` resolves owners and returns the frames.
    """

    def __init__(self, source: str = "kubernetes", namespaces: Sequence[str] = (), include_kube_system: bool = False):
        self.source = source
        self.namespaces = frozenset(namespaces)
        self.include_kube_system = include_kube_system or "kube-system" in self.namespaces
        self.q = _Quantities()
        self.seen: set[str] = set()
        self.counts: dict[str, int] = {}
        self.controllers: dict[str, list[_Workload]] = {}
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
            self.pods = _Pods()
        elif resource == "replicasets":
            self.rs_owner: dict[tuple[str, str], tuple[str, str] | None] = {}
            self.rs_top: list[_Workload] = []
        elif resource == "jobs":
            self.job_owner: dict[tuple[str, str], tuple[str, str] | None] = {}
            self.job_top: list[_Workload] = []
        elif resource == "horizontalpodautoscalers":
            self.hpas: list[_Hpa] = []
        elif resource == "poddisruptionbudgets":
            self.pdbs: list[_Pdb] = []
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
        owner = _controller(meta)
        if owner is not None and owner[0] == "Node":  # a static pod's mirror: no controller of its own
            owner = None
        labels = _str_map(meta.get("labels"), "metadata.labels")
        phase = status.get("phase")
        started = _time(status.get("startTime") or meta.get("creationTimestamp"), "status.startTime")
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
                gpu_name = next((r for r in lim if _GPU_RESOURCE.match(r)), None) or next(
                    (r for r in req if _GPU_RESOURCE.match(r)), None)
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
            ended = max((_time(c.get("lastTransitionTime"), "lastTransitionTime") for c in
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
            P.bare[i] = (_str_map(meta.get("annotations"), "metadata.annotations"),
                         _template_facts({"metadata": {"labels": labels}, "spec": spec}))

    def _pod_events(self, i: int, status: dict, limits: dict) -> str | None:
        """Events from container statuses; returns the latest ``state.terminated.finishedAt``."""
        last_finish = None
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in _list(status.get(key), f"status.{key}"):
                cs = _dict(cs, f"status.{key}[]")
                cname = cs.get("name")
                restarts = _int(cs.get("restartCount"), None, f"{cname} restartCount")
                mem = limits.get(cname)
                prev = _dict(_dict(cs.get("lastState"), "lastState").get("terminated"), "lastState.terminated")
                if prev:
                    self._event(i, cname, _time(prev.get("finishedAt") or prev.get("startedAt"), "finishedAt"),
                                prev.get("reason") or "Terminated", prev.get("exitCode"), restarts, mem)
                state = _dict(cs.get("state"), "state")
                now = _dict(state.get("terminated"), "state.terminated")
                if now:
                    at = _time(now.get("finishedAt") or now.get("startedAt"), "finishedAt")
                    if not (key == "initContainerStatuses" and now.get("exitCode") == 0):  # init done: no event
                        self._event(i, cname, at, now.get("reason") or "Terminated", now.get("exitCode"), restarts, mem)
                    if at and (last_finish is None or at > last_finish):
                        last_finish = at
                elif restarts and not prev:
                    running = _dict(state.get("running"), "state.running")
                    self._event(i, cname, _time(running.get("startedAt"), "startedAt"), "Restart", None, restarts, mem)
        return last_finish

    def _event(self, i, container, at, reason, exit_code, restarts, memory_limit) -> None:
        e = self.pods.e
        e["i"].append(i)
        e["container"].append(container)
        e["timestamp"].append(at)
        e["reason"].append(str(reason))
        e["exit_code"].append(_int(exit_code, None, f"{container} exitCode"))
        e["restart_count"].append(restarts)
        e["memory_limit"].append(memory_limit)

    def _workload(self, kind: str, item: dict, meta: dict, ns: str, name: str) -> _Workload:
        spec = _dict(item.get("spec"), "spec")
        status = _dict(item.get("status"), "status")
        annotations = _str_map(meta.get("annotations"), "metadata.annotations")
        annotations = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        labels = _str_map(meta.get("labels"), "metadata.labels")
        template, claims, strategy, ref = _dict(spec.get("template"), "spec.template"), None, (None, None, None), None
        if kind in ("Deployment", "StatefulSet", "ReplicaSet", "Rollout"):
            replicas = _int(spec.get("replicas"), 1, "spec.replicas")
        elif kind == "DaemonSet":
            replicas = _int(status.get("desiredNumberScheduled"), None, "status.desiredNumberScheduled")
        elif kind == "Job":
            replicas = _int(spec.get("parallelism"), 1, "spec.parallelism")
        else:  # CronJob
            job = _dict(_dict(spec.get("jobTemplate"), "spec.jobTemplate").get("spec"), "spec.jobTemplate.spec")
            replicas = _int(job.get("parallelism"), 1, "spec.jobTemplate.spec.parallelism")
            template = _dict(job.get("template"), "spec.jobTemplate.spec.template")
        if kind == "Deployment":
            s = _dict(spec.get("strategy"), "spec.strategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.strategy.rollingUpdate")
            strategy = (stype, _as_written(ru.get("maxUnavailable", "25%")), _as_written(ru.get("maxSurge", "25%"))) \
                if stype == "RollingUpdate" else (stype, None, None)
        elif kind == "StatefulSet":
            s = _dict(spec.get("updateStrategy"), "spec.updateStrategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
            strategy = (stype, _as_written(ru.get("maxUnavailable")), None)
            claims = spec.get("volumeClaimTemplates")
        elif kind == "DaemonSet":
            s = _dict(spec.get("updateStrategy"), "spec.updateStrategy")
            stype = s.get("type") or "RollingUpdate"
            ru = _dict(s.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
            strategy = (stype, _as_written(ru.get("maxUnavailable", 1)), _as_written(ru.get("maxSurge", 0))) \
                if stype == "RollingUpdate" else (stype, None, None)
        elif kind == "Rollout":
            s = _dict(spec.get("strategy"), "spec.strategy")
            if "canary" in s:
                c = _dict(s.get("canary"), "spec.strategy.canary")
                strategy = ("Canary", _as_written(c.get("maxUnavailable", 0)), _as_written(c.get("maxSurge", "25%")))
            elif "blueGreen" in s:
                strategy = ("BlueGreen", None, None)
            ref_obj = _dict(spec.get("workloadRef"), "spec.workloadRef")
            if ref_obj.get("kind") and ref_obj.get("name"):
                ref = (ref_obj["kind"], ref_obj["name"])
        return _Workload(ns, kind, name, replicas, labels, annotations, _template_facts(template, claims), strategy,
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
        owner = _controller(meta)
        self.rs_owner[(ns, name)] = owner
        if owner is None:
            self.rs_top.append(self._workload("ReplicaSet", item, meta, ns, name))

    def _jobs(self, item: dict, meta: dict, ns: str, name: str) -> None:
        owner = _controller(meta)
        self.job_owner[(ns, name)] = owner
        if owner is None:
            self.job_top.append(self._workload("Job", item, meta, ns, name))

    def _horizontalpodautoscalers(self, item: dict, meta: dict, ns: str, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        ref = _dict(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
        if not isinstance(ref.get("kind"), str) or not isinstance(ref.get("name"), str):
            raise _Malformed("spec.scaleTargetRef lacks kind or name")
        metrics = []
        for m in _list(spec.get("metrics"), "spec.metrics") or [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": 80}}}]:
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
                value = _int(target.get("averageUtilization"), None, "averageUtilization")
                value = None if value is None else float(value)
            elif ttype == "AverageValue":
                value = self.q("float", target.get("averageValue"), f"{metric} averageValue")
            else:
                value = self.q("float", target.get("value"), f"{metric} value")
            metrics.append({"metric": None if metric is None else str(metric), "target_type": ttype, "target": value})
        self.hpas.append(_Hpa(ns, name, ref["kind"], ref["name"], _int(spec.get("minReplicas"), 1, "minReplicas"),
                              _int(spec.get("maxReplicas"), None, "maxReplicas"), metrics))

    def _poddisruptionbudgets(self, item: dict, meta: dict, ns: str, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        selector = spec.get("selector")
        if selector is not None:
            selector = _dict(selector, "spec.selector")
            _str_map(selector.get("matchLabels"), "spec.selector.matchLabels")
            for e in _list(selector.get("matchExpressions"), "spec.selector.matchExpressions"):
                _list(_dict(e, "spec.selector.matchExpressions[]").get("values"), "matchExpressions values")
        self.pdbs.append(_Pdb(ns, name, selector, _as_written(spec.get("minAvailable")),
                              _as_written(spec.get("maxUnavailable"))))

    def _nodes(self, item: dict, meta: dict, ns: str | None, name: str) -> None:
        spec = _dict(item.get("spec"), "spec")
        status = _dict(item.get("status"), "status")
        labels = _str_map(meta.get("labels"), "metadata.labels")
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
            "labels": _kv(labels),
            "taints": taints,
            "first_seen": None,
            "last_seen": None,
            "_created": _time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        }
        for k, v in row.items():
            self.nodes[k].append(v)

    def _namespaces(self, item: dict, meta: dict, ns: str | None, name: str) -> None:
        if not self.keep(name):
            return
        self.ns_rows.append({"namespace": name, "labels": _kv(_str_map(meta.get("labels"), "metadata.labels"))})

    # -- output ---------------------------------------------------------------------------

    def finish(self, collected_at: datetime | None = None) -> dict[str, pl.DataFrame]:
        """Resolve owners and build the frames (containers, workloads, nodes, events, namespaces)."""
        now = (collected_at or datetime.now(UTC)).astimezone(UTC)
        P = self.pods
        n = len(P.p["pod"])
        # 1. Each pod's top controller: dict lookups only (no scan per pod).
        top_kind: list[str] = [""] * n
        top_name: list[str] = [""] * n
        rs_owner, job_owner = self.rs_owner, self.job_owner
        inferred: dict[tuple[str, str, str], int] = {}  # (ns, kind, name) -> a pod index, for tops with no object
        for i in range(n):
            ns, okind, oname = P.p["namespace"][i], P.p["owner_kind"][i], P.p["owner_name"][i]
            if okind is None:
                kind, name = "Pod", P.p["pod"][i]
            elif okind == "ReplicaSet":
                if (ns, oname) in rs_owner:
                    up = rs_owner[(ns, oname)]
                    kind, name = up if up is not None else ("ReplicaSet", oname)
                else:
                    kind, name = _guess_from_hash(oname, P.p["rs_hash"][i], P.p["rollout_hash"][i])
            elif okind == "Job":
                up = job_owner.get((ns, oname))
                kind, name = up if up is not None else ("Job", oname)
            else:
                kind, name = okind, oname
            top_kind[i], top_name[i] = kind, name
            inferred.setdefault((ns, kind, name), i)
        pods = pl.DataFrame({
            "_i": pl.Series(range(n), dtype=pl.Int64),
            "namespace": pl.Series(P.p["namespace"], dtype=pl.String),
            "workload_kind": pl.Series(top_kind, dtype=pl.String),
            "workload": pl.Series(top_name, dtype=pl.String),
            "pod": pl.Series(P.p["pod"], dtype=pl.String),
            "owner_kind": pl.Series(P.p["owner_kind"], dtype=pl.String),
            "owner_name": pl.Series(P.p["owner_name"], dtype=pl.String),
            "node": pl.Series(P.p["node"], dtype=pl.String),
            "started_at": self._times(P.p["started"], "pod startTime"),
            "ended_at": self._times(P.p["ended"], "container finishedAt"),
        })
        cont = pl.DataFrame({
            "_i": pl.Series(P.c["i"], dtype=pl.Int64),
            "container": pl.Series(P.c["container"], dtype=pl.String),
            "container_type": pl.Series(P.c["container_type"], dtype=pl.String),
            "cpu_request": pl.Series(P.c["cpu_request"], dtype=pl.Float64),
            "cpu_limit": pl.Series(P.c["cpu_limit"], dtype=pl.Float64),
            "memory_request": pl.Series(P.c["memory_request"], dtype=pl.Int64),
            "memory_limit": pl.Series(P.c["memory_limit"], dtype=pl.Int64),
            "gpu_resource": pl.Series(P.c["gpu_resource"], dtype=pl.String),
            "gpu_request": pl.Series(P.c["gpu_request"], dtype=pl.Int64),
            "gpu_limit": pl.Series(P.c["gpu_limit"], dtype=pl.Int64),
        })
        pod_cols = ["namespace", "workload_kind", "workload", "pod"]
        containers = cont.join(pods, on="_i", how="left").select(
            [c.name for c in CONTAINERS.columns]).with_columns(_casts(CONTAINERS))
        ev = pl.DataFrame({
            "_i": pl.Series(P.e["i"], dtype=pl.Int64),
            "container": pl.Series(P.e["container"], dtype=pl.String),
            "timestamp": self._times(P.e["timestamp"], "container finishedAt"),
            "reason": pl.Series(P.e["reason"], dtype=pl.String),
            "exit_code": pl.Series(P.e["exit_code"], dtype=pl.Int64),
            "restart_count": pl.Series(P.e["restart_count"], dtype=pl.Int64),
            "memory_limit": pl.Series(P.e["memory_limit"], dtype=pl.Int64),
        }).with_columns(pl.col("timestamp").fill_null(pl.lit(now).cast(TIMESTAMP)))
        events = ev.join(pods.select("_i", *pod_cols), on="_i", how="left").select(
            [c.name for c in EVENTS.columns]).unique(subset=["namespace", "pod", "container", "timestamp", "reason"],
                                                    keep="first", maintain_order=True).with_columns(_casts(EVENTS))
        workloads = self._workloads_frame(inferred, top_kind, top_name)
        nodes = self._nodes_frame(now)
        namespaces = pl.DataFrame(self.ns_rows, schema=NAMESPACES.schema) if self.ns_rows else NAMESPACES.empty()
        return {"containers": containers, "workloads": workloads, "nodes": nodes, "events": events,
                "namespaces": namespaces}

    def _times(self, values: list[str | None], what: str) -> pl.Series:
        raw = pl.Series(values, dtype=pl.String)
        parsed = raw.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        bad = parsed.is_null() & raw.is_not_null()
        if bad.any():
            raise InputError(f"{self.source}: {what} {raw.filter(bad)[0]!r} is not an RFC 3339 time.")
        return parsed

    def _workloads_frame(self, inferred: dict[tuple[str, str, str], int], top_kind: list[str],
                         top_name: list[str]) -> pl.DataFrame:
        records: list[_Workload] = []
        for resource in ("deployments", "statefulsets", "daemonsets", "cronjobs", "rollouts"):
            records.extend(self.controllers.get(resource, []))
        records.extend(self.rs_top)
        records.extend(self.job_top)
        known = {(w.namespace, w.kind, w.name) for w in records}
        deployments = {(w.namespace, w.name): w for w in self.controllers.get("deployments", [])}
        P = self.pods
        # Pod counts per top, for DaemonSets without status and for tops known only through their pods.
        pod_count: dict[tuple[str, str, str], int] = {}
        for i, ns in enumerate(P.p["namespace"]):
            if P.p["ended"][i] is None:
                key = (ns, top_kind[i], top_name[i])
                pod_count[key] = pod_count.get(key, 0) + 1
        for key, i in inferred.items():
            if key in known:
                continue
            ns, kind, name = key
            if kind == "Pod":
                annotations, facts = P.bare[i]
                records.append(_Workload(ns, "Pod", name, 1, P.labels[i], annotations, facts))
            else:  # known only through its pods: what one of them carries
                records.append(_Workload(ns, kind, name, pod_count.get(key, 0), {}, {}, _Template(labels=P.labels[i])))
            known.add(key)
        # HPAs by target; RS/Job targets are lifted to their top controller.
        hpa_by: dict[tuple[str, str, str], _Hpa] = {}
        for h in sorted(self.hpas, key=lambda h: h.name):
            kind, name = h.target_kind, h.target_name
            if kind == "ReplicaSet" and self.rs_owner.get((h.namespace, name)):
                kind, name = self.rs_owner[(h.namespace, name)]
            hpa_by.setdefault((h.namespace, kind, name), h)
        pdbs_by_ns: dict[str, list[_Pdb]] = {}
        for p in sorted(self.pdbs, key=lambda p: p.name):
            pdbs_by_ns.setdefault(p.namespace, []).append(p)
        rows = []
        for w in records:
            t = w.facts
            if w.workload_ref and t.empty and w.workload_ref[0] == "Deployment":
                ref = deployments.get((w.namespace, w.workload_ref[1]))
                t = ref.facts if ref else t
            replicas = w.replicas
            if replicas is None:
                replicas = pod_count.get((w.namespace, w.kind, w.name), 0)
            hpa = hpa_by.get((w.namespace, w.kind, w.name))
            pdb = next((p for p in pdbs_by_ns.get(w.namespace, ()) if selector_matches(p.selector, t.labels)), None)
            rows.append({
                "namespace": w.namespace, "workload_kind": w.kind, "workload": w.name, "replicas": replicas,
                # pod-level annotations (safe-to-evict, spot opt-in) live on the template: they win
                "labels": _kv(w.labels), "annotations": _kv({**w.annotations, **t.annotations}),
                "hpa_name": hpa.name if hpa else None,
                "hpa_min_replicas": hpa.min_replicas if hpa else None,
                "hpa_max_replicas": hpa.max_replicas if hpa else None,
                "hpa_metrics": hpa.metrics if hpa else None,
                "pdb_name": pdb.name if pdb else None,
                "pdb_min_available": pdb.min_available if pdb else None,
                "pdb_max_unavailable": pdb.max_unavailable if pdb else None,
                "update_strategy": w.strategy[0], "max_unavailable": w.strategy[1], "max_surge": w.strategy[2],
                "uses_empty_dir": t.uses_empty_dir, "uses_local_storage": t.uses_local_storage,
                "node_selector": _kv(t.node_selector), "tolerations": t.tolerations, "affinity": t.affinity,
            })
        if not rows:
            return WORKLOADS.empty()
        return pl.DataFrame(rows, schema=WORKLOADS.schema)

    def _nodes_frame(self, now: datetime) -> pl.DataFrame:
        cols = dict(self.nodes)
        created = self._times(cols.pop("_created"), "node creationTimestamp")
        df = pl.DataFrame({c.name: pl.Series(c.name, cols[c.name], dtype=_plain(c.dtype), strict=False)
                           for c in NODES.columns if c.name not in ("first_seen", "last_seen")})
        return df.with_columns(created.alias("first_seen"), pl.lit(now).cast(TIMESTAMP).alias("last_seen")).select(
            [c.name for c in NODES.columns]).with_columns(_casts(NODES))


def _plain(dtype: pl.DataType) -> pl.DataType:
    if dtype == pl.Categorical or isinstance(dtype, pl.Enum):
        return pl.String
    return dtype


def _casts(frame) -> list[pl.Expr]:
    return [pl.col(c.name).cast(c.dtype) for c in frame.columns]


def _guess_from_hash(rs: str, rs_hash: str | None, rollout_hash: str | None) -> tuple[str, str]:
    """A pod's top controller when its ReplicaSet could not be read: the name minus the hash."""
    if rollout_hash and rs.endswith("-" + rollout_hash):
        return "Rollout", rs[: -len(rollout_hash) - 1]
    if rs_hash and rs.endswith("-" + rs_hash):
        return "Deployment", rs[: -len(rs_hash) - 1]
    return "ReplicaSet", rs


def _local_storage(volumes: list[dict], claim_templates: list) -> bool:
    """Local persistent volumes: claim templates or ephemeral volumes of a local storage class."""
    classes = []
    for ct in claim_templates:
        if isinstance(ct, dict):
            classes.append(_dict(ct.get("spec"), "volumeClaimTemplates[].spec").get("storageClassName"))
    for v in volumes:
        eph = v.get("ephemeral")
        if isinstance(eph, dict):
            vct = _dict(eph.get("volumeClaimTemplate"), "ephemeral.volumeClaimTemplate")
            classes.append(_dict(vct.get("spec"), "volumeClaimTemplate.spec").get("storageClassName"))
    return any(isinstance(c, str) and _LOCAL_CLASS.search(c) for c in classes)

