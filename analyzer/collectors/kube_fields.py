"""Reading Kubernetes API objects: the kinds kubetune lists, typed field getters, pod-template facts.

Used by ``kube_specs.SpecBuilder`` while objects arrive page by page; a field of the wrong
shape raises ``Malformed``, which the builder turns into one InputError naming the object.
"""


from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analyzer.errors import InputError
from analyzer.kube import as_dict as _dict
from analyzer.kube import affinity_summary
from analyzer.kube import Malformed as _Malformed
from analyzer.kube import as_list as _list
from analyzer.units import parse_count, parse_cpu, parse_memory, parse_quantity


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
TOP_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Rollout")
# Extended resources that are GPUs (or slices of one).
GPU_RESOURCE = re.compile(r"^(nvidia\.com/(gpu(\.shared)?|mig-.+)|amd\.com/gpu|gpu\.intel\.com/.+)$")
_LOCAL_CLASS = re.compile(r"local|hostpath|host-path|topolvm|lvm", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Small helpers


def str_map(value: Any, what: str) -> dict[str, str]:
    d = _dict(value, what)
    for k, v in d.items():
        if not isinstance(v, str):
            raise _Malformed(f"{what} {k!r} is not a string")
    return d


def time_field(value: Any, what: str) -> str | None:
    """An RFC 3339 time as the API writes it (a string); parsed later, column-wise."""
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(f"{what} is {value!r}, not an RFC 3339 time string")


def key_values(d: dict[str, str] | None) -> list[dict[str, str]]:
    """A map as key/value pairs sorted by key (as the API server's Go encoder orders them)."""
    return [{"key": k, "value": v} for k, v in sorted((d or {}).items())]


def as_written(value: Any) -> str | None:
    """An int-or-string field (maxUnavailable, minAvailable) as the user wrote it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Malformed(f"{value!r} is neither an integer nor a percentage")
    return str(value)


def int_field(value: Any, default: int | None, what: str) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{what} is {value!r}, not an integer")
    return value


class Quantities:
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


def controller_of(meta: dict) -> tuple[str, str] | None:
    """The owner reference marked ``controller: true`` (else the first one), as (kind, name)."""
    refs = _list(meta.get("ownerReferences"), "metadata.ownerReferences")
    if not refs:
        return None
    chosen = next((r for r in refs if isinstance(r, dict) and r.get("controller")), refs[0])
    if not isinstance(chosen, dict) or not all(isinstance(chosen.get(k), str) for k in ("kind", "name")):
        raise _Malformed("metadata.ownerReferences has an entry without kind and name")
    return chosen["kind"], chosen["name"]


# ---------------------------------------------------------------------------------------------
# Collected tables


@dataclass(slots=True)
class WorkloadRow:
    namespace: str
    kind: str
    name: str
    replicas: int | None
    labels: dict[str, str]
    annotations: dict[str, str]
    facts: TemplateFacts
    strategy: tuple[str | None, str | None, str | None] = (None, None, None)
    workload_ref: tuple[str, str] | None = None  # Rollout.spec.workloadRef (kind, name)


@dataclass(slots=True)
class TemplateFacts:
    """What the workloads frame needs from a pod template, extracted (and checked) at intake."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    uses_empty_dir: bool = False
    uses_local_storage: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    affinity: str | None = None
    empty: bool = True  # no pod spec at all (a Rollout with a workloadRef)


def template_facts(template: dict, claim_templates: Any = None) -> TemplateFacts:
    tmeta = _dict(template.get("metadata"), "template.metadata")
    tspec = _dict(template.get("spec"), "template.spec")
    volumes = [_dict(v, "template volume") for v in _list(tspec.get("volumes"), "template volumes")]
    tolerations = []
    for t in _list(tspec.get("tolerations"), "template tolerations"):
        t = _dict(t, "template toleration")
        tolerations.append({"key": t.get("key"), "operator": t.get("operator"), "value": t.get("value"),
                            "effect": t.get("effect")})
    claims = _list(claim_templates, "spec.volumeClaimTemplates")
    return TemplateFacts(
        labels=str_map(tmeta.get("labels"), "template labels"),
        annotations=str_map(tmeta.get("annotations"), "template annotations"),
        uses_empty_dir=any("emptyDir" in v for v in volumes),
        uses_local_storage=local_storage(volumes, claims),
        node_selector=str_map(tspec.get("nodeSelector"), "template nodeSelector"),
        tolerations=tolerations,
        affinity=affinity_summary(tspec.get("affinity")),
        empty=not tspec,
    )


class PodRows:
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
class HpaRow:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int | None
    metrics: list[dict]


@dataclass
class PdbRow:
    namespace: str
    name: str
    selector: dict | None
    min_available: str | None
    max_unavailable: str | None


def guess_from_hash(rs: str, rs_hash: str | None, rollout_hash: str | None) -> tuple[str, str]:
    """A pod's top controller when its ReplicaSet could not be read: the name minus the hash."""
    if rollout_hash and rs.endswith("-" + rollout_hash):
        return "Rollout", rs[: -len(rollout_hash) - 1]
    if rs_hash and rs.endswith("-" + rs_hash):
        return "Deployment", rs[: -len(rs_hash) - 1]
    return "ReplicaSet", rs


def local_storage(volumes: list[dict], claim_templates: list) -> bool:
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
