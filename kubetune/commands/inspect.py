"""`kubetune info` and `kubetune report`: what a snapshot holds, and the HTML/JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from analyzer.units import human_bytes
from kubetune.console import err_console, note, out_console, spinner
from kubetune.options import FormatOpt, OutOpt, with_source
from kubetune.output import Format, emit
from kubetune.sources import Source, load_source


@with_source
def info(
    source: Source,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
) -> None:
    """Show what a snapshot holds: window, step, source, rows per frame, absent parts.

    Example: kubetune info --snapshot snap/
    """
    snap = load_source(source, note=note)
    m = snap.manifest
    rows = [
        ("cluster", m.cluster), ("source", m.source), ("start", m.start.isoformat()), ("end", m.end.isoformat()),
        ("step_seconds", str(m.step_seconds)), ("absent", ", ".join(m.absent) or "-"),
    ] + [(f"rows.{name}", f"{df.height}") for name, df in snap.frames().items()]
    emit(pl.DataFrame(rows, schema=["field", "value"], orient="row"), format, title="snapshot", out=out)
    for w in m.warnings:
        note(f"warning: {w}")


@with_source
def report(
    source: Source,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for report.html and report.json.")] = Path("report"),
) -> None:
    """Write the HTML and JSON report: cluster size and requested vs used CPU, memory and GPU.

    Example: kubetune report --snapshot snap/ --out report/
    """
    from analyzer.summary import summarize
    from dashboards.report import write_report

    snap = load_source(source, note=note)
    with spinner() as progress:
        progress.add_task("analysing", total=None)
        summary = summarize(snap)
        files = write_report(summary, out)
    for r in summary.resources:
        used = human_bytes(r.used_avg) if r.resource == "memory" else f"{(r.used_avg or 0):.2f}"
        req = human_bytes(r.requested) if r.resource == "memory" else f"{(r.requested or 0):.2f}"
        util = f"{r.utilization * 100:.0f}%" if r.utilization is not None else "-"
        err_console.print(f"  {r.resource:<7} requested {req:>12}  used {used:>12}  utilization {util}")
    out_console.print(f"Report written: {files['report.html']} and {files['report.json']}")
