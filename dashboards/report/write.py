"""Writing a report atomically: a temp directory beside the target, renamed into place whole.

``--out DIR`` is replaced as a whole (only if it is new, empty, or an earlier kubetune report: a
directory of someone else's files is refused, never deleted). ``--history-dir`` gets a new run
directory and a swapped ``latest`` link (``history.commit_run``). The temp directory is created
before any analysis, so an unwritable target fails in a second, not after minutes of work; any
failure removes it and leaves the previous report as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analyzer.atomic import readable_mode
from analyzer.envelope import window_of
from analyzer.errors import InputError, KubetuneError
from analyzer.snapshot import Snapshot
from dashboards.report import history as hist
from dashboards.report.figures import REPORT_FORMAT, ReportOptions, build_document, current_requests
from dashboards.report.html import render_html
from dashboards.report.markdown import render_markdown
from recommenders.patches import write_patches

FILES = ("report.html", "report.md", "report.json")


@dataclass
class WrittenReport:
    directory: Path  # where the report is now (the run directory with --history-dir)
    document: dict[str, Any]
    out: Path | None = None
    run: Path | None = None
    pruned: list[str] = field(default_factory=list)


def _is_report(path: Path) -> bool:
    try:
        return json.loads((path / "report.json").read_text(encoding="utf-8")).get("format") == REPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_targets(out: Path | None, history: Path | None) -> None:
    """Refuse targets kubetune must not replace, before any work."""
    if out is not None and out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out} is a file; give a directory.")
        if any(out.iterdir()) and not _is_report(out):
            raise InputError(f"--out {out} holds files that are not a kubetune report; choose a new or empty directory "
                             "(the report replaces the whole directory).")
    if history is not None:
        if history.exists() and not history.is_dir():
            raise InputError(f"--history-dir {history} is a file; give a directory.")
        latest = history / hist.LATEST
        if latest.exists() and not latest.is_symlink():
            raise InputError(f"{latest} exists and is not a link; move it away or choose another --history-dir.")


def _staging(parent: Path) -> Path:
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise KubetuneError(f"cannot write the report into {parent}: {existing} is a file, not a directory.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".kubetune-report.tmp-", dir=parent))
        os.chmod(tmp, readable_mode(directory=True))
    except OSError as exc:
        raise KubetuneError(f"cannot write the report into {parent} ({exc.strerror or exc}).") from None
    return tmp


def check_writable(out: Path | None, history: Path | None) -> None:
    """Fail in a second, before any work, when a target is refused or cannot be written."""
    out = Path(out).absolute() if out is not None else None
    history = Path(history).absolute() if history is not None else None
    check_targets(out, history)
    for parent in {history if history is not None else out.parent} | ({out.parent} if out and history else set()):
        shutil.rmtree(_staging(parent), ignore_errors=True)


def _swap(tmp: Path, out: Path) -> None:
    """Put ``tmp`` at ``out``; an earlier report there is moved aside first and removed after."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    had = out.exists()
    try:
        if had:
            out.rename(old)
        tmp.rename(out)
    except OSError as exc:
        if had and old.exists() and not out.exists():
            old.rename(out)
        hint = " (a volume's mount point cannot be replaced: use --history-dir there)" if exc.errno in (16, 18) else ""
        raise KubetuneError(f"cannot replace {out} ({exc.strerror or exc}){hint}.") from None
    if had:
        shutil.rmtree(old, ignore_errors=True)


def _render(tmp: Path, doc: dict[str, Any], recs, snapshot: Snapshot, source: str) -> None:
    (tmp / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    (tmp / "report.html").write_text(render_html(doc), encoding="utf-8")
    (tmp / "report.md").write_text(render_markdown(doc), encoding="utf-8")
    # the same recommendations.json envelope as `recommend --patches`: where the data came from, its window
    write_patches(recs, tmp / "patches", source=source, window=window_of(snapshot.manifest))


def write_report(snapshot: Snapshot, *, out: Path | None, history: Path | None = None, keep: int = 12,
                 options: ReportOptions | None = None, source: str = "") -> WrittenReport:
    """Compute and write the report into ``out`` and/or a new run of ``history``."""
    if out is None and history is None:
        raise InputError("give --out DIR and/or --history-dir DIR.")
    opts = options or ReportOptions()
    out = Path(out).absolute() if out is not None else None
    history = Path(history).absolute() if history is not None else None
    check_targets(out, history)
    tmp = _staging(history if history is not None else out.parent)
    out_tmp = _staging(out.parent) if out is not None and history is not None else None
    try:
        doc, recs = build_document(snapshot, opts, source=source)
        doc["team_label"] = opts.team_label
        now = datetime.now(UTC)
        name = hist.run_name(now, history) if history is not None else now.strftime("%Y%m%dT%H%M%SZ")
        doc["run_id"] = name
        if history is not None:
            opts.progress("reading earlier runs")
            earlier, notes = hist.earlier_documents(history)
            doc["notes"] += notes
            doc["history"] = hist.history_section(name, doc, earlier, current_requests(snapshot))
        opts.progress("writing the report")
        _render(tmp, doc, recs, snapshot, source)
        result = WrittenReport(directory=tmp, document=doc)
        if history is not None:
            result.run, result.pruned = hist.commit_run(history, tmp, name, keep)
            result.directory = result.run
            if out_tmp is not None:
                shutil.copytree(result.run, out_tmp, dirs_exist_ok=True, symlinks=True)
                _swap(out_tmp, out)
                result.out = out
        else:
            _swap(tmp, out)
            result.directory = result.out = out
        return result
    except OSError as exc:
        where = history if history is not None else out
        raise KubetuneError(f"cannot write the report into {where} ({exc.strerror or exc}).") from None
    finally:
        for t in (tmp, out_tmp):
            if t is not None and t.exists():
                shutil.rmtree(t, ignore_errors=True)
