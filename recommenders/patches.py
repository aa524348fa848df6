"""Recommendations -> one strategic-merge patch per workload + a kustomization, ready for review.

Each patch names the workload (apiVersion, kind, namespace, name) so kustomize finds its target,
and holds only the fields the recommendations change, under the pod spec path of the controller
kind. It opens with a comment block saying, in plain words, what changes, why, and what it saves.
Cluster-side objects a change needs (e.g. a GPU time-slicing ConfigMap) go to ``cluster/``, not into
the kustomization: they belong to whoever runs the GPU operator, and must be applied first.
The directory appears whole or not at all (``analyzer.atomic.atomic_directory``).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import yamlio
from analyzer.atomic import atomic_directory
from analyzer.units import human_value
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
    return "".join(f"# {line}\n" for line in _wrap(lines))


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


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", "--".join(parts).lower()).strip("-")


@dataclass
class WrittenPatches:
    """What ``write_patches`` wrote: the patches the kustomization lists, and the ones it could not
    (target or container not in ``--base``), set aside in ``unmatched/`` with the reason."""

    files: list[Path] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def _names(fragment: dict[str, Any]) -> dict[str, set[str]]:
    return {k: {c["name"] for c in fragment.get(k, [])} for k in MERGE_BY_NAME if fragment.get(k)}


def write_patches(result: RecommendationSet, directory: str | os.PathLike[str], *,
                  base: str | None = None) -> WrittenPatches:
    """Write ``directory``: one patch per workload, kustomization.yaml, cluster/ extras and
    recommendations.json. ``base``: a path (relative to the directory) to the workloads' manifests,
    written as the kustomization's resource; without it, add your base before ``kubectl apply -k``.

    A local base is read first (``recommenders.base_manifests``): container order comes from it, and
    a patch whose workload or container the base lacks goes to ``unmatched/`` instead of the
    kustomization (it would fail the build, or add an imageless container)."""
    groups: dict[tuple[str, str, str], list[Recommendation]] = defaultdict(list)
    for r in result.recommendations:
        if r.pod_spec_patch:
            groups[(r.target.namespace, r.target.workload_kind, r.target.workload)].append(r)
    target = Path(directory)
    manifests: BaseManifests | None = None
    local = resolve_base(target, base) if base else None
    if local is not None:
        manifests = read_base(local)
    out = WrittenPatches()
    with atomic_directory(target) as tmp:
        names = []
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
                (tmp / "unmatched").mkdir(exist_ok=True)
                (tmp / "unmatched" / fname).write_text(f"# Not in kustomization.yaml: {why}.\n" + text)
                out.unmatched.append(why)
                continue
            (tmp / fname).write_text(text)
            names.append(fname)
        extras = [m for r in result.recommendations for m in r.extra_manifests]
        seen = set()
        if extras:
            (tmp / "cluster").mkdir()
            for m in extras:
                meta = m.get("metadata", {})
                fname = _slug(m.get("kind", "object"), meta.get("namespace", ""), meta.get("name", "x")) + ".yaml"
                if fname in seen:
                    continue
                seen.add(fname)
                (tmp / "cluster" / fname).write_text(
                    "# Cluster-side configuration some GPU changes need; apply it (and let the node\n"
                    "# reconfigure) before the workload patches that use it.\n" + yamlio.dump(m))
        kust: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        if base:
            kust["resources"] = [base]
        kust["patches"] = [{"path": n} for n in names]
        head = ("# Generated by kubetune. Each patch changes only the fields named in its comment.\n" +
                ("" if base else "# Add your workloads' manifests (or your base) under `resources:` before "
                 "`kubectl apply -k`.\n"))
        (tmp / "kustomization.yaml").write_text(head + yamlio.dump(kust))
        (tmp / "recommendations.json").write_text(json.dumps(
            {"recommendations": [r.to_dict() for r in result.recommendations],
             "skipped": [s.row() for s in result.skipped], "notes": result.notes,
             "cluster_notes": result.cluster_notes, "unmatched": out.unmatched}, indent=2, default=str))
        out.files = [target / n for n in names]
    return out
