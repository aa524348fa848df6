"""Kubernetes vocabulary in one place: selectors, node affinity, capacity type, provider, spot labels.

Collectors (API objects, Prometheus labels), the cost model, the spot recommender and the
simulator all speak about the same labels; they import them from here so a new platform is
added once (``SPOT_PLATFORMS``) and every reader agrees on what "spot" means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl


class Malformed(Exception):
    """An API object has the wrong shape; callers turn it into one InputError naming the object."""


def as_dict(value: Any, what: str) -> dict:
    """``value`` as an object (None -> {}); anything else is ``Malformed``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def as_list(value: Any, what: str) -> list:
    """``value`` as a list (None -> []); anything else is ``Malformed``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{what} is not a list")
    return value


# ---------------------------------------------------------------------------------------------
# Spot labels (docs/domain-reference.md section 6)


@dataclass(frozen=True)
class SpotPlatform:
    """How a platform marks spot nodes: the label (and value) to select them, taints to tolerate."""

    name: str
    provider: str
    key: str
    value: str
    taints: tuple[tuple[str, str | None, str], ...] = ()


# The one spot-label table. Order = preference when a node carries several of these labels.
SPOT_PLATFORMS: dict[str, SpotPlatform] = {
    "karpenter": SpotPlatform("Karpenter", "aws", "karpenter.sh/capacity-type", "spot"),
    "eks": SpotPlatform("EKS managed node groups", "aws", "eks.amazonaws.com/capacityType", "SPOT"),
    "gke": SpotPlatform("GKE", "gcp", "cloud.google.com/gke-spot", "true"),
    "gke-preemptible": SpotPlatform("GKE (preemptible VMs)", "gcp", "cloud.google.com/gke-preemptible", "true"),
    "aks": SpotPlatform("AKS", "azure", "kubernetes.azure.com/scalesetpriority", "spot",
                        (("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),)),
    "lifecycle": SpotPlatform("self-managed (lifecycle label)", "aws", "lifecycle", "Ec2Spot"),
    "node-lifecycle": SpotPlatform("self-managed (node.kubernetes.io/lifecycle)", "unknown",
                                   "node.kubernetes.io/lifecycle", "spot"),
}
# label key -> the value that marks a spot node (compare lower-cased).
SPOT_LABELS: dict[str, str] = {p.key: p.value for p in SPOT_PLATFORMS.values()}

# Well-known label keys: Prometheus' kube_node_labels / kube_namespace_labels sanitize them
# (label_<key with every non-alphanumeric as _>); these are read back by name.
KNOWN_NODE_LABELS = (
    "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type", "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
    "karpenter.sh/capacity-type", "karpenter.sh/nodepool", "karpenter.k8s.aws/instance-gpu-name",
    "eks.amazonaws.com/capacityType", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-spot",
    "cloud.google.com/gke-preemptible", "cloud.google.com/gke-nodepool", "cloud.google.com/gke-provisioning",
    "kubernetes.azure.com/scalesetpriority", "kubernetes.azure.com/agentpool", "lifecycle",
    "node.kubernetes.io/lifecycle", "kops.k8s.io/instancegroup", "node-role.kubernetes.io/control-plane",
    "nvidia.com/gpu.count", "nvidia.com/gpu.product", "nvidia.com/gpu.memory", "nvidia.com/gpu.present",
    "nvidia.com/mig.strategy", "nvidia.com/mig.config", "nvidia.com/gpu.sharing-strategy", "nvidia.com/gpu.replicas",
    "nvidia.com/mps.capable", "nvidia.com/device-plugin.config", "nvidia.com/gpu.deploy.device-plugin",
    "kubernetes.io/metadata.name", "app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
)


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
    if any(_low(labels, k) == v.lower() for k, v in SPOT_LABELS.items()):
        return "spot"
    if "cloud.google.com/reservation-name" in labels:
        return "reserved"
    # GKE and AKS label only their spot nodes; a node of a known pool without that label is regular.
    if "cloud.google.com/gke-nodepool" in labels or "kubernetes.azure.com/agentpool" in labels:
        return "on-demand"
    return "unknown"


def capacity_type_expr(label: Callable[[str], pl.Expr]) -> pl.Expr:
    """The spot/on-demand part of ``capacity_type`` as a Polars expression over ``label(key)`` columns.

    Null where the labels say nothing, so a caller can fall back to other evidence.
    """
    low = lambda key: label(key).str.to_lowercase()  # noqa: E731
    karpenter = low("karpenter.sh/capacity-type")
    expr = (pl.when(karpenter.is_in(["spot", "on-demand", "reserved"])).then(karpenter)
            .when(low("eks.amazonaws.com/capacityType") == "on_demand").then(pl.lit("on-demand")))
    for key, value in SPOT_LABELS.items():
        expr = expr.when(low(key) == value.lower()).then(pl.lit("spot"))
    return expr.otherwise(pl.lit(None, pl.String))


_AWS_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|metal|\d*x?large)(-\d+xl)?$")
_GCP_TYPE = re.compile(
    r"^[a-z][a-z0-9]*-(standard|highmem|highcpu|highgpu|megagpu|ultragpu|edgegpu|custom|micro|small|medium)")


def provider_of(provider_id: str | None, labels: dict[str, str]) -> str:
    """aws, gcp, azure or unknown, from spec.providerID, then provider labels, then the instance type."""
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
# Selectors and node affinity


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
    ``parse_affinity`` reads it back.
    """
    node = as_dict(as_dict(affinity, "affinity").get("nodeAffinity"), "affinity.nodeAffinity")
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
    required = as_dict(node.get("requiredDuringSchedulingIgnoredDuringExecution"), "nodeAffinity.required")
    terms = [term(t) for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    if any(terms):
        out.append("required: " + " or ".join(t for t in terms if t))
    preferred = [term(as_dict(p.get("preference"), "preference")) for p in
                 as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"), "nodeAffinity.preferred")
                 if isinstance(p, dict)]
    if any(preferred):
        out.append("preferred: " + " or ".join(t for t in preferred if t))
    return "; ".join(out) or None


_EXPR = re.compile(r"^(\S+) (In|NotIn|Gt|Lt) \[(.*)\]$")
_EXISTS = re.compile(r"^(\S+) (Exists|DoesNotExist)$")


def parse_affinity(summary: str | None) -> dict | None:
    """The snapshot's one-line node affinity summary back into a ``nodeAffinity`` (None if unreadable).

    ``required: a In [x, y] and b Exists or c NotIn [z]; preferred: d In [v]`` (the format of
    ``affinity_summary``).
    """
    if not summary:
        return None

    def term(text: str) -> dict | None:
        exprs = []
        for part in text.split(" and "):
            part = part.strip()
            m = _EXPR.match(part)
            if m:
                values = [v.strip() for v in m[3].split(",") if v.strip()]
                exprs.append({"key": m[1], "operator": m[2], "values": values})
                continue
            m = _EXISTS.match(part)
            if m:
                exprs.append({"key": m[1], "operator": m[2]})
                continue
            return None
        return {"matchExpressions": exprs} if exprs else None

    node: dict[str, Any] = {}
    for section in summary.split("; "):
        kind, _, body = section.partition(": ")
        terms = [term(t) for t in body.split(" or ")]
        if not terms or any(t is None for t in terms):
            return None
        if kind == "required":
            node["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
        elif kind == "preferred":
            node["preferredDuringSchedulingIgnoredDuringExecution"] = [{"weight": 100, "preference": t} for t in terms]
        else:
            return None
    return {"nodeAffinity": node} if node else None
