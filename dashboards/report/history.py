"""--history-dir: one timestamped directory per run, a ``latest`` link, the oldest pruned past
--keep, and the week-over-week trend read back from earlier runs' report.json.

Layout (shared with the dashboard and the PR bot): ``HISTORY/<YYYYmmddTHHMMSSZ>/`` holding a whole
report, and ``HISTORY/latest`` a relative symlink to the newest. A run directory is renamed into
place whole, then the link is swapped with one rename, so a reader never sees half a run; the
history directory itself is never renamed (it is usually a volume's mount point).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

RUN_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
LATEST = "latest"
TAKEN_WITHIN = 0.10  # a recommendation is taken when the request moved to within 10% of it
TRACKED_KINDS = ("rightsize", "raise-memory")


def run_name(now: datetime, history: Path) -> str:
    """``YYYYmmddTHHMMSSZ`` (UTC); a second run within the same second gets ``-2``, ``-3``, ..."""
    base = now.strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while (history / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def runs(history: Path) -> list[Path]:
    """Run directories, oldest first (names sort by time)."""
    if not history.is_dir():
        return []
    return sorted(p for p in history.iterdir() if RUN_NAME.match(p.name) and p.is_dir() and not p.is_symlink())


def earlier_documents(history: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(run name, report.json) of every readable earlier run, oldest first, and notes on unreadable ones."""
    docs, notes = [], []
    for run in runs(history):
        try:
            doc = json.loads((run / "report.json").read_text(encoding="utf-8"))
            if doc.get("format") != "kubetune-report" or "headline" not in doc:
                raise ValueError("not a kubetune report (version 2 or later)")
        except (OSError, ValueError) as exc:
            notes.append(f"history run {run.name} was not read ({exc.__class__.__name__}).")
            continue
        docs.append((run.name, doc))
    return docs, notes


def taken_recommendations(earlier: list[tuple[str, dict[str, Any]]], requests_now: pl.DataFrame) -> list[dict[str, Any]]:
    """Earlier right-sizing proposals whose request has since moved to within 10% of the proposal.

    The newest earlier proposal per container and resource counts; one whose request was already
    within 10% when proposed is not "taken" (nothing moved)."""
    proposals: dict[tuple, dict[str, Any]] = {}
    for name, doc in earlier:
        for r in doc.get("recommendations", []):
            if r.get("kind") in TRACKED_KINDS and r.get("proposed_request"):
                key = (r["namespace"], r["workload_kind"], r["workload"], r["container"], r["resource"])
                proposals[key] = {**r, "proposed_in": name}
    if not proposals or requests_now.is_empty():
        return []
    now = {(r["namespace"], r["workload_kind"], r["workload"], r["container"], r["resource"]): r["request"]
           for r in requests_now.iter_rows(named=True)}
    taken = []
    for key, r in proposals.items():
        request, proposed, before = now.get(key), r["proposed_request"], r.get("current_request")
        if request is None:
            continue
        close = abs(request - proposed) <= TAKEN_WITHIN * proposed
        was_close = before is not None and abs(before - proposed) <= TAKEN_WITHIN * proposed
        if close and not was_close:
            taken.append({"namespace": key[0], "workload_kind": key[1], "workload": key[2], "container": key[3],
                          "resource": key[4], "kind": r["kind"], "previous_request": before,
                          "proposed_request": proposed, "request_now": request,
                          "monthly_saving_usd": r.get("monthly_saving_usd", 0.0), "proposed_in": r["proposed_in"]})
    return sorted(taken, key=lambda t: -t["monthly_saving_usd"])


def _point(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    h = doc["headline"]
    hist = doc.get("history") or {}
    return {"run_id": name, "generated_at": doc.get("generated_at"), "monthly_cost_usd": h["monthly_cost_usd"],
            "idle_monthly_usd": h["idle_monthly_usd"], "waste_monthly_usd": h["waste_monthly_usd"],
            "potential_saving_monthly_usd": h["potential_saving_monthly_usd"],
            "taken_saving_monthly_usd": hist.get("taken_saving_monthly_usd")}


def history_section(name: str, doc: dict[str, Any], earlier: list[tuple[str, dict[str, Any]]],
                    requests_now: pl.DataFrame) -> dict[str, Any]:
    """The trend (earlier runs, then this one) and the recommendations taken since earlier runs."""
    taken = taken_recommendations(earlier, requests_now)
    saving = round(sum(t["monthly_saving_usd"] for t in taken), 2)
    current = _point(name, {**doc, "history": {"taken_saving_monthly_usd": saving}})
    return {"runs": [_point(n, d) for n, d in earlier] + [current], "taken": taken,
            "taken_saving_monthly_usd": saving}


def commit_run(history: Path, tmp: Path, name: str, keep: int) -> tuple[Path, list[str]]:
    """Rename the finished temp dir to ``HISTORY/name``, point ``latest`` at it, prune past ``keep``.

    Only run directories (timestamp names) are ever removed; anything else in HISTORY is left alone."""
    final = history / name
    tmp.rename(final)
    link = history / f".{LATEST}.tmp-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(name, target_is_directory=True)
    latest = history / LATEST
    if latest.exists() and not latest.is_symlink():
        link.unlink()
        raise OSError(f"{latest} exists and is not a link")
    os.replace(link, latest)
    removed = []
    all_runs = runs(history)
    for old in all_runs[: max(0, len(all_runs) - keep)]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
    return final, removed
