"""Recommendations -> one strategic-merge patch per workload + a kustomization, ready for review.

Each patch names the workload (apiVersion, kind, namespace, name) and holds only the fields the
recommendations change, under the pod spec path of the controller
kind. It opens with a comment block saying, in plain words, what changes, why, and what it saves.
Cluster-side objects a change needs (e.g. a GPU time-slicing ConfigMap) go to ``cluster/``, not into
the kustomization: they belong to whoever runs the GPU operator, and must be applied first.
The directory appears whole or not at all (``analyzer.atomic.atomic_directory``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import yamlio
from analyzer.atomic import atomic_directory
from analyzer.envelope import envelope
from analyzer.units import human_value
from analyzer.untrusted import visible
from recommenders.base_manifests import BaseManifests, read_base, resolve_base
from recommenders.record import Recommendation, RecommendationSet


API_VERSION = {
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
    "Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1", "Rollout": "argoproj.io/v1alpha1",
}
MERGE_BY_NAME = ("containers", "initContainers")


def pod_spec_path(kind: str) -> list[str]:
    """Where the pod spec lives in a controller of this kind."""
    if kind == "CronJob":
        return ["spec", "jobTemplate", "spec", "template", "spec"]
    if kind == "Pod":
        return ["spec"]
    return ["spec", "template", "spec"]


def merge_fragments(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two pod-spec fragments the way the API server would: container lists by name,
    maps key by key; any other list is replaced (as strategic merge does for tolerations)."""
    out = dict(a)
    for key, value in b.items():
        if key in MERGE_BY_NAME and isinstance(out.get(key), list):
            by_name = {c["name"]: dict(c) for c in out[key]}
            for c in value:
                by_name[c["name"]] = merge_fragments(by_name.get(c["name"], {}), c)
            out[key] = list(by_name.values())
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_fragments(out[key], value)
        else:
            out[key] = value
    return out


def _comment(recs: list[Recommendation]) -> str:
    lines = ["kubetune recommendation - review before applying."]
    total = sum(r.monthly_saving_usd for r in recs)
    basis = recs[0].saving_basis
    lines.append(f"Saving: ${total:,.2f}/month in total ({basis})." if total >= 0 else
                 f"Cost: ${-total:,.2f}/month more in total ({basis}), to make it safe.")
    for r in recs:
        who = f"container {r.target.container}" if r.target.container else "pod placement"
        if r.kind == "spot":
            head = f"- {who}: move to spot capacity"
        else:
            head = (f"- {who} {r.resource} request {human_value(r.resource, r.current_request)} -> "
                    f"{human_value(r.resource, r.proposed_request)}")
            if r.proposed_limit != r.current_limit:
                head += f", limit {human_value(r.resource, r.current_limit)} -> {human_value(r.resource, r.proposed_limit)}"
        head += f" ({r.kind}, ${r.monthly_saving_usd:,.2f}/month, confidence {r.confidence_label})"
        lines.append(head)
        ev = r.evidence
        lines.append(f"  why: {ev.reason}")
        if ev.history_start and ev.history_end:
            lines.append(f"  history: {ev.history_start:%Y-%m-%d %H:%M} .. {ev.history_end:%Y-%m-%d %H:%M} UTC "
                         f"({ev.history_hours:.0f} h)" + (f", after the change at {ev.post_drift_start:%Y-%m-%d %H:%M}"
                                                          if ev.post_drift_start else ""))
        if ev.observed:
            obs = ", ".join(f"{k} {human_value(r.resource, v) if r.resource in ('cpu', 'memory') else f'{v:.3g}'}"
                            for k, v in ev.observed.items())
            lines.append(f"  observed: {obs}")
        if ev.policy:
            risks = [f"expected OOM risk {ev.expected_oom_risk:.1%}" if ev.expected_oom_risk is not None else "",
                     f"memory above request {ev.expected_memory_above_request:.2%} of use"
                     if ev.expected_memory_above_request is not None else ""]
            lines.append(f"  memory policy: {ev.policy}, quantile {ev.quantile_used}"
                         + "".join(f", {x}" for x in risks if x))
        if ev.ooms:
            lines.append(f"  OOM kills seen: {ev.ooms}")
        lines += [f"  note: {n}" for n in ev.notes]
    return "".join(f"# {line}\n" for line in _wrap([visible(line) for line in lines]))


def _wrap(lines: list[str], width: int = 110) -> list[str]:
    out = []
    for line in lines:
        indent = "    " if line.startswith("  ") else "  " if line.startswith("- ") else ""
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            if cut <= len(indent):
                break
            out.append(line[:cut])
            line = indent + line[cut + 1:]
        out.append(line)
    return out


def keep_order(fragment: dict[str, Any], order: dict[str, list[str]] | None) -> dict[str, Any]:
    """List every container of a touched list by name, in pod-spec order: kustomize puts patched
    items first otherwise, and init-container order is execution order."""
    if not order:
        return fragment
    out = dict(fragment)
    for key in MERGE_BY_NAME:
        names = order.get(key) or []
        if key in out and names and {c["name"] for c in out[key]} <= set(names):
            patched = {c["name"]: c for c in out[key]}
            out[key] = [patched.get(n, {"name": n}) for n in names]
    return out


def pod_fragment(recs: list[Recommendation]) -> dict[str, Any]:
    """The recommendations' pod-spec changes merged into one fragment."""
    fragment: dict[str, Any] = {}
    for r in recs:
        fragment = merge_fragments(fragment, r.pod_spec_patch)
    return fragment


def workload_patch(kind: str, namespace: str, name: str, fragment: dict[str, Any],
                   order: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The strategic-merge patch object for one workload, from its ``pod_fragment``."""
    fragment = keep_order(fragment, order)
    body: dict[str, Any] = fragment
    for key in reversed(pod_spec_path(kind)):
        body = {key: body}
    return {"apiVersion": API_VERSION.get(kind, "apps/v1"), "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, **body}


_PLAIN = re.compile(r"[a-z0-9](?:[a-z0-9.]|-(?!-))*(?<!-)")
_KINDS = {*API_VERSION, "ConfigMap"}
_LOWER_KINDS = {k.lower() for k in _KINDS}
MAX_NAME = 120  # well under the 255 bytes a file name may have, with room for ".yaml"


def _slug(*parts: str) -> str:
    """A file or directory name for one object (``ns, kind, name``) or namespace, injective and
    bounded: the parts joined by ``--`` when each is a plain Kubernetes name (lower case, no ``--``)
    or a kind we know, else a readable prefix plus ``_`` and a hash of the exact parts (``_`` never
    occurs in a plain name, so the two never meet)."""
    parts = tuple(str(p) for p in parts)
    readable = "--".join(parts).lower()
    # a name spelled like a lower-cased kind ("deployment") is hashed, so it never meets the kind itself
    plain = all(p in _KINDS or (not p and i == 0) or (_PLAIN.fullmatch(p) and p not in _LOWER_KINDS)
                for i, p in enumerate(parts))
    if plain and len(readable) <= MAX_NAME:
        return readable
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    prefix = re.sub(r"[^a-z0-9.-]+", "-", readable)[:MAX_NAME - 13].strip("-.")
    return f"{prefix}_{digest}"


@dataclass
class WrittenPatches:
    """What ``write_patches`` wrote: the patches the kustomization lists, and the ones it could not
    (target or container not in ``--base``), set aside in ``unmatched/`` with the reason."""

    files: list[Path] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


@dataclass
class PatchFiles:
    """The patch directory as ``{relative path: bytes}`` (what ``write_patches`` writes; the dashboard
    zips it as is), the patch paths the kustomization lists, and why others were set aside."""

    files: dict[str, bytes] = field(default_factory=dict)
    patches: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def _names(fragment: dict[str, Any]) -> dict[str, set[str]]:
    return {k: {c["name"] for c in fragment.get(k, [])} for k in MERGE_BY_NAME if fragment.get(k)}


COMPONENT = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component"}
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
NAMESPACES_DIR = "namespaces"


def _target(kind: str, namespace: str, name: str) -> dict[str, str]:
    """A kustomize patch target: matches exactly this workload, and nothing when it is absent."""
    group, _, version = API_VERSION.get(kind, "apps/v1").rpartition("/")
    target = {"group": group, "version": version, "kind": kind, "name": name, "namespace": namespace}
    return {k: v for k, v in target.items() if v}


def recommendation_summary(result: RecommendationSet, skipped: bool = True,
                           unmatched: list[str] | None = None) -> dict[str, Any]:
    """The envelope's ``summary`` for recommendations: the total, skips, cluster-wide notes."""
    out: dict[str, Any] = {"monthly_saving_usd": result.monthly_saving_usd,
                           "recommendations": len(result.recommendations), "skipped_count": len(result.skipped),
                           "cluster_notes": result.cluster_notes}
    if skipped:
        out["skipped"] = [s.row() for s in result.skipped]
    if unmatched is not None:
        out["unmatched"] = list(unmatched)
    return out


def patch_files(result: RecommendationSet, *, base: str | None = None, manifests: BaseManifests | None = None,
                source: str = "", window: dict[str, Any] | None = None) -> PatchFiles:
    """The patch directory's files. Without ``base``: kustomize Components (``kind: Component``), one per
    namespace under ``namespaces/NS/`` whose ``patches:`` carry ``target:`` selectors (an overlay that
    lacks a workload still builds: the patch matches nothing), and one at the top including them all.
    With ``base``: one Kustomization over the base (``manifests``, when read, sets container order and
    sends patches the base cannot take to ``unmatched/``)."""
    groups: dict[tuple[str, str, str], list[Recommendation]] = defaultdict(list)
    for r in result.recommendations:
        if r.pod_spec_patch:
            groups[(r.target.namespace, r.target.workload_kind, r.target.workload)].append(r)
    out = PatchFiles()
    per_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (ns, kind, name), recs in sorted(groups.items()):
        fname = _slug(ns, kind, name) + ".yaml"
        order = result.container_order.get((ns, kind, name))
        fragment = pod_fragment(recs)
        why = None
        if manifests is not None:
            why = manifests.missing(ns, kind, name, _names(fragment))
            order = manifests.order(ns, kind, name) or order
        text = _comment(recs) + yamlio.dump(workload_patch(kind, ns, name, fragment, order))
        if why is not None:
            out.files[f"unmatched/{fname}"] = (f"# Not in kustomization.yaml: {visible(why)}.\n" + text).encode()
            out.unmatched.append(why)
            continue
        if base:
            out.files[fname] = text.encode()
            out.patches.append(fname)
        else:
            ns_dir = f"{NAMESPACES_DIR}/{_slug(ns)}"
            short = _slug(kind, name) + ".yaml"
            out.files[f"{ns_dir}/{short}"] = text.encode()
            out.patches.append(f"{ns_dir}/{short}")
            per_ns[ns_dir].append({"path": short, "target": _target(kind, ns, name)})
    seen = set()
    for r in result.recommendations:
        for m in r.extra_manifests:
            meta = m.get("metadata", {})
            fname = "cluster/" + _slug(str(meta.get("namespace", "")), str(m.get("kind", "object")),
                                       str(meta.get("name", "x"))) + ".yaml"
            if fname in seen:
                continue
            seen.add(fname)
            out.files[fname] = (
                "# Cluster-side configuration some GPU changes need; apply it (and let the node\n"
                "# reconfigure) before the workload patches that use it.\n" + yamlio.dump(m)).encode()
    head = "# Generated by kubetune. Each patch changes only the fields named in its comment.\n"
    if base:
        kust = {**KUSTOMIZATION, "resources": [base], "patches": [{"path": n} for n in out.patches]}
        out.files["kustomization.yaml"] = (head + yamlio.dump(kust)).encode()
    else:
        for ns_dir, entries in sorted(per_ns.items()):
            comp = {**COMPONENT, "patches": entries}
            out.files[f"{ns_dir}/kustomization.yaml"] = (
                head + f"# A kustomize Component for namespace {ns_dir.rsplit('/', 1)[-1]}: list it under an overlay's "
                "`components:`.\n" + yamlio.dump(comp)).encode()
        top = {**COMPONENT, "components": sorted(per_ns)}
        out.files["kustomization.yaml"] = (
            head + "# A kustomize Component: list this directory under `components:` in the overlay that has your\n"
            "# workloads as resources; patches whose workload the overlay lacks match nothing (no-op).\n"
            + yamlio.dump(top)).encode()
    doc = envelope(source=source, window=window, items=[r.to_dict() for r in result.recommendations],
                   notes=result.notes, summary=recommendation_summary(result, unmatched=out.unmatched))
    out.files["recommendations.json"] = (json.dumps(doc, indent=2, default=str) + "\n").encode()
    return out


def write_patches(result: RecommendationSet, directory: str | os.PathLike[str], *,
                  base: str | None = None, source: str = "", window: dict[str, Any] | None = None) -> WrittenPatches:
    """Write ``directory`` (whole or not at all) from ``patch_files``: the patches, their kustomization
    or components, cluster/ extras and recommendations.json (the versioned envelope). ``base``: a
    path (relative to the directory) to the workloads' manifests, read first when local."""
    target = Path(directory)
    local = resolve_base(target, base) if base else None
    manifests = read_base(local) if local is not None else None
    files = patch_files(result, base=base, manifests=manifests, source=source, window=window)
    with atomic_directory(target) as tmp:
        for rel, data in files.files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return WrittenPatches(files=[target / p for p in files.patches], unmatched=files.unmatched)
