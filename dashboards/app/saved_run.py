"""Reading what `kubetune report` left behind: one report directory, or a history of them.

Layout (docs: CONVENTIONS, `kubetune report`): ``RUN/{report.json, patches/recommendations.json, ...}``;
a history directory holds ``<UTC timestamp>/`` runs and a ``latest`` link. Everything here is read
defensively: a run written by an older or newer kubetune may lack a section, and the pages then
say what is missing instead of failing. Records go back into ``recommenders.record`` dataclasses
so the patch download is written by the same code as ``kubetune recommend --patches``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target

RUN_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")  # as report.json run_id: a second run in one second gets -1


def is_saved_run(path: Path) -> bool:
    return (path / "report.json").is_file() or (path / "patches" / "recommendations.json").is_file()


def is_history_dir(path: Path) -> bool:
    return (path / "latest").exists() or any(RUN_NAME.match(p.name) for p in _children(path))


def _children(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def history_runs(history: Path) -> list[Path]:
    """The timestamped runs in a history directory, oldest first (``latest`` is not listed twice)."""
    return sorted((p for p in _children(history) if RUN_NAME.match(p.name) and is_saved_run(p)), key=lambda p: p.name)


def latest_run(history: Path) -> Path:
    link = history / "latest"
    if link.exists() and is_saved_run(link):
        return link.resolve()
    runs = history_runs(history)
    if not runs:
        raise InputError(f"{history} holds no saved runs (expected <timestamp>/report.json or a `latest` link).")
    return runs[-1]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as JSON ({exc}).") from None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def record_from_dict(d: dict[str, Any]) -> Recommendation:
    """A ``Recommendation.to_dict()`` record back into the dataclass (unknown keys are ignored)."""
    ev = d.get("evidence") or {}
    evidence = Evidence(
        reason=str(ev.get("reason") or d.get("reason") or ""),
        history_start=_when(ev.get("history_start")), history_end=_when(ev.get("history_end")),
        history_hours=float(ev.get("history_hours") or 0.0), post_drift_start=_when(ev.get("post_drift_start")),
        drift_kind=ev.get("drift_kind"), observed=dict(ev.get("observed") or {}), forecast=dict(ev.get("forecast") or {}),
        quantile_used=ev.get("quantile_used"), margin=float(ev.get("margin") or 0.0), ooms=int(ev.get("ooms") or 0),
        hpa=ev.get("hpa"), notes=tuple(ev.get("notes") or ()),
    )
    target = Target(str(d["namespace"]), str(d["workload_kind"]), str(d["workload"]), str(d.get("container") or ""),
                    str(d.get("container_type") or "app"))
    return Recommendation(
        target=target, kind=str(d["kind"]), resource=str(d["resource"]),
        current_request=_float(d.get("current_request")), proposed_request=_float(d.get("proposed_request")),
        current_limit=_float(d.get("current_limit")), proposed_limit=_float(d.get("proposed_limit")),
        monthly_saving_usd=float(d.get("monthly_saving_usd") or 0.0), risk=float(d.get("risk") or 0.0),
        confidence=float(d.get("confidence") or 0.0), evidence=evidence, replicas=int(d.get("replicas") or 1),
        pod_spec_patch=dict(d.get("pod_spec_patch") or {}), extra_manifests=tuple(d.get("extra_manifests") or ()),
        saving_basis=str(d.get("saving_basis") or "node prices"),
    )


def recommendations_from_json(doc: Any, source: Path) -> RecommendationSet:
    """``patches/recommendations.json`` -> a set: the versioned envelope (records in ``items``, skips and
    cluster notes in ``summary``), or the older object with ``recommendations`` or a bare list."""
    if isinstance(doc, dict) and "items" in doc:
        summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
        doc = {"recommendations": doc["items"], "skipped": summary.get("skipped"), "notes": doc.get("notes"),
               "cluster_notes": summary.get("cluster_notes")}
    rows = doc.get("recommendations", []) if isinstance(doc, dict) else doc if isinstance(doc, list) else None
    if rows is None:
        raise InputError(f"{source} holds no `recommendations` list.")
    out = RecommendationSet()
    try:
        out.recommendations = [record_from_dict(r) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{source} has a recommendation record that cannot be read ({exc}).") from None
    if isinstance(doc, dict):
        for s in doc.get("skipped") or []:
            try:
                out.skipped.append(Skip(Target(s["namespace"], s["workload_kind"], s["workload"], s.get("container") or "",
                                               s.get("container_type") or "app"),
                                        str(s.get("kind", "")).removeprefix("skip:"), s.get("resource") or "", s.get("reason") or ""))
            except (KeyError, TypeError):
                continue
        out.notes = [str(n) for n in doc.get("notes") or []]
        out.cluster_notes = dict(doc.get("cluster_notes") or {})
    return out


@dataclass
class SavedRun:
    """One report directory as read: its report.json (as a dict), its recommendations, its snapshot if kept."""

    path: Path
    report: dict[str, Any] = field(default_factory=dict)
    recommendations: RecommendationSet | None = None
    snapshot_dir: Path | None = None


def read_run(path: Path) -> SavedRun:
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory.")
    report = _read_json(path / "report.json")
    if report is not None and not isinstance(report, dict):
        raise InputError(f"{path / 'report.json'} is not a JSON object.")
    recs_path = path / "patches" / "recommendations.json"
    if not recs_path.is_file() and (path / "recommendations.json").is_file():
        recs_path = path / "recommendations.json"
    doc = _read_json(recs_path)
    recs = recommendations_from_json(doc, recs_path) if doc is not None else None
    if recs is None and isinstance(report, dict) and isinstance(report.get("recommendations"), list | dict):
        recs = recommendations_from_json(report["recommendations"], path / "report.json")
    return SavedRun(path=path, report=report or {}, recommendations=recs, snapshot_dir=_snapshot_of(path, report or {}))


def _snapshot_of(path: Path, report: dict[str, Any]) -> Path | None:
    """The snapshot the run was computed from, when it still exists: ``RUN/snapshot/`` or a path in report.json."""
    candidates = [path / "snapshot"]
    for key in ("snapshot", "snapshot_dir", "source_path"):
        value = find(report, key, f"source.{key}", f"summary.{key}")
        if isinstance(value, str):
            p = Path(value)
            candidates.append(p if p.is_absolute() else path / p)
    return next((c for c in candidates if (c / "manifest.json").is_file()), None)


def find(doc: Any, *paths: str) -> Any:
    """The first value found at one of the dotted ``paths`` in a JSON document (None if none)."""
    for dotted in paths:
        cur = doc
        for part in dotted.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
            if cur is None:
                break
        if cur is not None:
            return cur
    return None


def run_headline(run: SavedRun) -> dict[str, Any]:
    """Monthly cost, idle, waste and net saving of one run, from its report.json (format version 2)."""
    r = run.report
    saving = find(r, "headline.net_saving_monthly_usd", "headline.potential_saving_monthly_usd",
                  "headline.saving_monthly")
    if saving is None and run.recommendations is not None:
        saving = run.recommendations.monthly_saving_usd
    when = find(r, "generated_at", "summary.end", "window.end")
    return {
        "run": run.path.name,
        "generated_at": str(when) if when else run.path.name,
        "cost_monthly": _float(find(r, "headline.monthly_cost_usd", "cost.monthly_cost_usd")),
        "idle_monthly": _float(find(r, "headline.idle_monthly_usd", "cost.idle_monthly_usd")),
        "waste_monthly": _float(find(r, "headline.waste_monthly_usd", "cost.waste_monthly_usd")),
        "saving_monthly": _float(saving),
    }
