"""Recommendations -> edited files in a scratch copy of the repository, each edit checked.

Reads a saved ``recommendations.json`` (or takes a RecommendationSet), keeps the kinds asked for
and the workloads saving at least ``--min-saving`` $/month (memory raises for OOM-killed
containers always pass: they are safety fixes), finds each workload (``locate``), and edits it:
in place for a plain file or a file of the cluster's own overlay, through a ``kubetune-*.yaml``
patch listed in the overlay's kustomization when the file is a base other clusters share, or in
a Helm values file. Afterwards every edit is checked the way the cluster would see it: the
kustomize root is rendered again (or the file re-read) and must equal the old objects with the
proposed fields changed and nothing else; a mismatch stops the run.
"""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from analyzer import yamlio

from analyzer.errors import InputError
from analyzer.units import parse_cpu, parse_memory
from recommenders.gitops.edit import EditError, append_to_list, apply_fragment, set_values
from recommenders.gitops.locate import Key, Location, RepoIndex, render
from recommenders.patches import merge_fragments, pod_fragment, pod_spec_path, workload_patch
from recommenders.record import Evidence, Recommendation, RecommendationSet, Target

KIND_GROUPS = {"rightsize": ("rightsize", "raise-memory"), "gpu": ("gpu-remove", "gpu-share", "gpu-optimize"),
               "spot": ("spot",)}


def load_recommendations(path: Path) -> RecommendationSet:
    """A saved ``recommendations.json`` (written beside the patches) as records."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        recs = [_record(r) for r in data["recommendations"]]
    except FileNotFoundError:
        raise InputError(f"--recommendations {path} does not exist.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--recommendations {path} is not a kubetune recommendations.json ({type(exc).__name__}: "
                         f"{str(exc)[:80]}).") from None
    return RecommendationSet(recommendations=recs, notes=list(data.get("notes") or []))


def _when(v: Any) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _record(r: dict[str, Any]) -> Recommendation:
    ev = dict(r.get("evidence") or {"reason": r.get("reason", "")})
    for k in ("history_start", "history_end", "post_drift_start"):
        ev[k] = _when(ev.get(k))
    ev["notes"] = tuple(ev.get("notes") or ())
    known = set(Evidence.__dataclass_fields__)
    return Recommendation(
        target=Target(r["namespace"], r["workload_kind"], r["workload"], r.get("container") or "",
                      r.get("container_type") or "app"),
        kind=r["kind"], resource=r["resource"], current_request=r.get("current_request"),
        proposed_request=r.get("proposed_request"), current_limit=r.get("current_limit"),
        proposed_limit=r.get("proposed_limit"), monthly_saving_usd=float(r.get("monthly_saving_usd") or 0.0),
        risk=float(r.get("risk") or 0.0), confidence=float(r.get("confidence") or 0.0),
        evidence=Evidence(**{k: v for k, v in ev.items() if k in known}), replicas=int(r.get("replicas") or 1),
        pod_spec_patch=dict(r.get("pod_spec_patch") or {}), saving_basis=r.get("saving_basis") or "node prices")


def parse_kinds(kinds: list[str] | None) -> tuple[str, ...]:
    names = [k.strip() for part in (kinds or ["rightsize,gpu,spot"]) for k in part.split(",") if k.strip()]
    bad = [k for k in names if k not in KIND_GROUPS]
    if bad:
        raise InputError(f"--kind {bad[0]} is not one of {', '.join(KIND_GROUPS)}.")
    return tuple(x for k in names for x in KIND_GROUPS[k])


@dataclass
class WorkloadChange:
    key: Key
    recs: list[Recommendation]
    location: Location | None = None
    files: list[str] = field(default_factory=list)
    problem: str | None = None  # why it was not changed

    @property
    def saving(self) -> float:
        return float(sum(r.monthly_saving_usd for r in self.recs))


@dataclass
class Plan:
    changes: list[WorkloadChange] = field(default_factory=list)
    below_min: list[WorkloadChange] = field(default_factory=list)
    edited: dict[str, str] = field(default_factory=dict)  # repo-relative path -> new text
    original: dict[str, str | None] = field(default_factory=dict)  # path -> text before (None: a new file)

    @property
    def applied(self) -> list[WorkloadChange]:
        return [c for c in self.changes if c.problem is None]

    @property
    def not_applied(self) -> list[WorkloadChange]:
        return [c for c in self.changes if c.problem is not None]


def select(result: RecommendationSet, kinds: tuple[str, ...], min_saving: float) -> Plan:
    groups: dict[Key, list[Recommendation]] = defaultdict(list)
    for r in result.recommendations:
        if r.kind in kinds and r.pod_spec_patch:
            groups[(r.target.namespace, r.target.workload_kind, r.target.workload)].append(r)
    plan = Plan()
    for key, recs in sorted(groups.items()):
        change = WorkloadChange(key, recs)
        keep = change.saving >= min_saving or any(r.kind == "raise-memory" for r in recs)
        (plan.changes if keep else plan.below_min).append(change)
    return plan


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(parts).lower()).strip("-")


def apply_plan(plan: Plan, tree: Path, index: RepoIndex) -> Plan:
    """Edit the files under ``tree`` (a scratch checkout), filling ``plan.edited``; workloads that
    are not in the repository, or whose file cannot be edited safely, get a ``problem``."""
    for change in plan.changes:
        change.location = index.found.get(change.key)
    before = {r: render(tree / r) for r in sorted({c.location.overlay for c in plan.changes
                                                   if c.location and c.location.overlay})}
    originals: dict[str, str | None] = {}
    for change in plan.changes:
        loc = change.location
        if loc is None:
            change.problem = index.ambiguous.get(change.key, "not found in the repository (plain YAML, kustomize or "
                                                             "the Helm mapping)")
            continue
        fragment = pod_fragment(change.recs)
        before_change: dict[str, str | None] = {}
        try:
            files = _edit(change, loc, fragment, tree, _Reads(originals, before_change))
        except EditError as exc:
            change.problem = str(exc)
            for path, text in before_change.items():  # no half edit of this workload stays behind
                if text is None:
                    (tree / path).unlink(missing_ok=True)
                else:
                    (tree / path).write_text(text, encoding="utf-8")
            continue
        if all(_text(tree, f) == before_change.get(f) for f in files):
            change.problem = "already as proposed in the repository"
            continue
        change.files = files
    for path, old in originals.items():
        new = _text(tree, path)
        if new is not None and new != old:
            plan.edited[path] = new
            plan.original[path] = old
    _verify(plan, tree, before, originals)
    return plan


@dataclass
class _Reads:
    """Texts as first read: for the whole run (the diff) and for the current workload (to undo it)."""

    run: dict[str, str | None]
    change: dict[str, str | None]


def _text(tree: Path, path: str) -> str | None:
    p = tree / path
    return p.read_text(encoding="utf-8") if p.exists() else None


def _read(tree: Path, path: str, originals: _Reads) -> str:
    text = _text(tree, path)
    originals.run.setdefault(path, text)
    originals.change.setdefault(path, text)
    return text or ""


def _edit(change: WorkloadChange, loc: Location, fragment: dict[str, Any], tree: Path, originals: _Reads) -> list[str]:
    ns, kind, name = change.key
    if loc.helm:
        if set(fragment) - {"containers", "initContainers"}:
            raise EditError(f"{loc.file} is a Helm values file, and placement changes need a values key kubetune "
                            "does not know; apply the spot/GPU patch by hand")
        text = _read(tree, loc.file, originals)
        for c in [*fragment.get("containers", []), *fragment.get("initContainers", [])]:
            path = loc.helm.get(c["name"]) or loc.helm.get("*")
            if path is None:
                raise EditError(f"container {c['name']} has no values path in the helm mapping for {ns}/{kind}/{name}")
            text = set_values(text, loc.file, path.split("."), c.get("resources") or {})
        (tree / loc.file).write_text(text, encoding="utf-8")
        return [loc.file]
    if loc.shared:
        assert loc.overlay is not None
        fname = f"kubetune-{_slug(kind, loc.source_name)}.yaml"
        rel = f"{loc.overlay}/{fname}"
        previous = _read(tree, rel, originals)
        if previous:  # an earlier kubetune change, already merged: keep what this one does not touch
            try:
                node = yamlio.load(previous) or {}
                for step in pod_spec_path(kind):
                    node = node[step]
            except (yamlio.YAMLError, KeyError, TypeError):
                raise EditError(f"{rel} exists but is not a kubetune patch for {kind} {loc.source_name}") from None
            fragment = merge_fragments(node, fragment)
        body = workload_patch(kind, loc.source_namespace or "", loc.source_name, fragment)
        if not loc.source_namespace:
            del body["metadata"]["namespace"]
        head = (f"# kubetune: resource/placement changes for {kind} {ns}/{name} in this overlay only;\n"
                f"# the base {loc.file} is shared and stays as it is. Delete this file to roll back.\n")
        (tree / rel).write_text(head + yamlio.dump(body), encoding="utf-8")
        kfile = next(f"{loc.overlay}/{k}" for k in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                     if (tree / loc.overlay / k).is_file())
        ktext = _read(tree, kfile, originals)
        (tree / kfile).write_text(append_to_list(ktext, kfile, "patches", {"path": fname}), encoding="utf-8")
        return [rel, kfile]
    text = _read(tree, loc.file, originals)
    new = apply_fragment(text, loc.file, loc.doc_index, pod_spec_path(kind), fragment)
    (tree / loc.file).write_text(new, encoding="utf-8")
    return [loc.file]


# ---- checking the result as the cluster would see it ---------------------------------------------

def _smp(base: Any, patch: Any) -> Any:
    """A strategic merge of a pod-spec fragment: containers by name, maps by key, null removes."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k in ("containers", "initContainers") and isinstance(out.get(k), list):
            by_name = {c.get("name"): c for c in v}
            out[k] = [_smp(c, {x: y for x, y in by_name[c.get("name")].items()}) if c.get("name") in by_name else c
                      for c in out[k]]
        else:
            out[k] = _smp(out.get(k), v)
    return {k: v for k, v in out.items() if v != {} or k not in ("limits", "requests")}


def _norm(obj: Any, parent: str = "") -> Any:
    """Quantities compared by value (``0.5`` == ``500m``), everything else as is."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if parent in ("requests", "limits") and v is not None:
                v = parse_cpu(v) if k == "cpu" else parse_memory(v) if k == "memory" else str(v)
            out[k] = _norm(v, k)
        if parent == "resources":
            out = {k: v for k, v in out.items() if v not in ({}, None)}
        return out
    if isinstance(obj, list):
        return [_norm(v, parent) for v in obj]
    return obj


def _expected(obj: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    path = pod_spec_path(str(obj.get("kind")))
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = _smp(node.get(path[-1]) or {}, fragment)
    return out


def _verify(plan: Plan, tree: Path, before: dict[str, list[dict[str, Any]]], originals: dict[str, str | None]) -> None:
    by_root: dict[str, dict[Key, dict[str, Any]]] = defaultdict(dict)
    for c in plan.applied:
        assert c.location is not None
        frag = pod_fragment(c.recs)
        if c.location.overlay:
            by_root[c.location.overlay][c.key] = frag
        elif not c.location.helm:
            old = list(yamlio.load_all(originals[c.location.file]))[c.location.doc_index]
            new = list(yamlio.load_all((tree / c.location.file).read_text(encoding="utf-8")))[c.location.doc_index]
            if _norm(new) != _norm(_expected(old, frag)):
                raise InputError(f"editing {c.location.file} for {'/'.join(c.key)} did not give the proposed values "
                                 "and nothing else; nothing was changed (please report this file's layout).")
    for root, frags in by_root.items():
        after = render(tree / root)
        want = []
        for obj in before[root]:
            m = obj.get("metadata") or {}
            key = (m.get("namespace") or "default", str(obj.get("kind")), str(m.get("name")))
            want.append(_expected(obj, frags[key]) if key in frags else obj)
        if len(after) != len(want) or any(_norm(a) != _norm(w) for a, w in zip(after, want, strict=True)):
            bad = next((f"{a.get('kind')} {(a.get('metadata') or {}).get('name')}" for a, w in zip(after, want)
                        if _norm(a) != _norm(w)), "the object list")
            raise InputError(f"after the edits, kubectl kustomize {root} renders {bad} differently from the proposal; "
                             "nothing was changed (a patch in the overlay may override these fields).")
