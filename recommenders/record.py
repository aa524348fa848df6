"""Typed records at the recommenders' boundary: a Recommendation, its Evidence, and a Skip.

Every recommender (rightsizing, GPU, spot) returns these; the patch writer, the CLI, the report
and the PR bot read only these. Values are in base units: CPU in cores, memory in bytes, GPUs in
devices; ``None`` means "not set" (e.g. no limit). Human units appear only when rendered.

``pod_spec_patch`` is a strategic-merge fragment of the *pod spec* (``containers``,
``initContainers``, ``nodeSelector``, ``tolerations``, ``affinity``): the patch writer wraps it in the
controller's path (``spec.template.spec`` for Deployments, ``spec.jobTemplate.spec.template.spec`` for
CronJobs, ``spec`` for bare Pods) and merges all fragments of one workload into one patch.
``extra_manifests`` are cluster-side objects a change needs (a time-slicing ConfigMap, a MIG node
label note); they are written beside the patches, not into the workload kustomization.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["rightsize", "raise-memory", "gpu-remove", "gpu-share", "gpu-optimize", "spot"]
KINDS: tuple[str, ...] = ("rightsize", "raise-memory", "gpu-remove", "gpu-share", "gpu-optimize", "spot")

# Flat columns every output format carries, in this order (JSON adds ``evidence``/``patch`` objects).
COLUMNS: tuple[str, ...] = (
    "namespace", "workload_kind", "workload", "container", "container_type", "kind", "resource",
    "current_request", "proposed_request", "current_limit", "proposed_limit", "replicas",
    "monthly_saving_usd", "risk", "confidence", "confidence_label", "reason",
)


@dataclass(frozen=True)
class Target:
    """What a recommendation changes: a container of a workload (container "" = the whole pod)."""

    namespace: str
    workload_kind: str
    workload: str
    container: str = ""
    container_type: str = "app"  # app, init, sidecar


@dataclass(frozen=True)
class Evidence:
    """Why: the data behind a recommendation, in base units, enough to audit it by hand."""

    reason: str
    history_start: datetime | None = None
    history_end: datetime | None = None
    history_hours: float = 0.0
    post_drift_start: datetime | None = None  # history before this was ignored (a change point)
    drift_kind: str | None = None
    observed: dict[str, float] = field(default_factory=dict)  # e.g. p50, p95, p99, peak
    forecast: dict[str, float] = field(default_factory=dict)  # e.g. p99 over the horizon, peak
    quantile_used: str | None = None  # which quantile set the value, e.g. "forecast p99"
    margin: float = 0.0
    ooms: int = 0
    hpa: str | None = None
    notes: tuple[str, ...] = ()
    policy: str | None = None  # memory: guaranteed or burstable
    expected_oom_risk: float | None = None  # memory: calibrated chance the next peak beats the limit
    expected_memory_above_request: float | None = None  # memory: calibrated (use - request)+ / use


@dataclass(frozen=True)
class Recommendation:
    """One proposed change to one resource of one container (or the pod's placement)."""

    target: Target
    kind: str  # one of KINDS
    resource: str  # cpu, memory, nvidia.com/gpu, nvidia.com/mig-1g.10gb, placement
    current_request: float | None
    proposed_request: float | None
    current_limit: float | None
    proposed_limit: float | None
    monthly_saving_usd: float  # negative = the change costs money (e.g. raising memory)
    risk: float  # estimated fraction of hours short of the proposal (CPU) or OOM probability (memory)
    confidence: float  # 0..1
    evidence: Evidence
    replicas: int = 1
    pod_spec_patch: dict[str, Any] = field(default_factory=dict)
    extra_manifests: tuple[dict[str, Any], ...] = ()
    saving_basis: str = "node prices"  # or "fallback rates (no node prices in the snapshot)"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown recommendation kind {self.kind!r}")

    @property
    def confidence_label(self) -> str:
        return "high" if self.confidence >= 0.75 else "medium" if self.confidence >= 0.4 else "low"

    def row(self) -> dict[str, Any]:
        """Flat record (table/CSV/JSON): COLUMNS in base units."""
        t = self.target
        return {
            "namespace": t.namespace, "workload_kind": t.workload_kind, "workload": t.workload,
            "container": t.container, "container_type": t.container_type, "kind": self.kind,
            "resource": self.resource, "current_request": self.current_request,
            "proposed_request": self.proposed_request, "current_limit": self.current_limit,
            "proposed_limit": self.proposed_limit, "replicas": self.replicas,
            "monthly_saving_usd": round(float(self.monthly_saving_usd), 2), "risk": float(self.risk),
            "confidence": round(float(self.confidence), 3), "confidence_label": self.confidence_label,
            "reason": self.evidence.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        """Full record for JSON/YAML: the flat row plus evidence, patch and extra manifests."""
        ev = asdict(self.evidence)
        for k in ("history_start", "history_end", "post_drift_start"):
            ev[k] = ev[k].isoformat() if ev[k] is not None else None
        ev["notes"] = list(ev["notes"])
        return {**self.row(), "saving_basis": self.saving_basis, "evidence": ev,
                "pod_spec_patch": self.pod_spec_patch, "extra_manifests": list(self.extra_manifests)}


@dataclass(frozen=True)
class Skip:
    """No recommendation, and why (too little data, unknown GPU model, HPA conflict, ...)."""

    target: Target
    kind: str  # the kind that was considered
    resource: str
    reason: str

    def row(self) -> dict[str, Any]:
        t = self.target
        return {"namespace": t.namespace, "workload_kind": t.workload_kind, "workload": t.workload,
                "container": t.container, "container_type": t.container_type, "kind": f"skip:{self.kind}",
                "resource": self.resource, "reason": self.reason}


@dataclass
class RecommendationSet:
    """All recommenders' output for one snapshot, plus notes the user must see (e.g. fallback rates)."""

    recommendations: list[Recommendation] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cluster_notes: dict[str, Any] = field(default_factory=dict)  # e.g. GPUs the cluster could release
    # (namespace, kind, workload) -> {"containers": [names], "initContainers": [names]} in pod-spec order,
    # so patches keep the order (kustomize moves patched list items first otherwise)
    container_order: dict[tuple[str, str, str], dict[str, list[str]]] = field(default_factory=dict)

    def extend(self, other: RecommendationSet) -> RecommendationSet:
        self.recommendations += other.recommendations
        self.skipped += other.skipped
        self.notes += [n for n in other.notes if n not in self.notes]
        self.cluster_notes.update(other.cluster_notes)
        self.container_order.update(other.container_order)
        return self

    @property
    def monthly_saving_usd(self) -> float:
        return float(sum(r.monthly_saving_usd for r in self.recommendations))
