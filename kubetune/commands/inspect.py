"""`kubetune info` and `kubetune report`: what a snapshot holds, and the HTML/JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from analyzer.units import human_bytes
from analyzer.envelope import iso
from kubetune.console import Steps, note, warn, written
from kubetune.options import FormatOpt, OutOpt, with_source
from kubetune.output import Format, document_for, emit, emit_document
from kubetune.sources import Source, load_source


@with_source
def info(
    source: Source,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
) -> None:
    """Show what a snapshot holds: window, step, source, rows per frame, absent parts.

    JSON/YAML give one object (`items`) in the versioned envelope; table, CSV and Parquet give
    field/value rows.

    Examples:
      kubetune info --snapshot snap/
      kubetune info snap/ -f json | jq .items.rows.usage
    """
    snap = load_source(source, note=note)
    m = snap.manifest
    facts = {"cluster": m.cluster, "source": m.source, "start": iso(m.start), "end": iso(m.end),
             "step_seconds": int(m.step_seconds), "absent": list(m.absent),
             "rows": {name: df.height for name, df in snap.frames().items()}}
    for w in m.warnings:
        warn(w)
    if format is Format.json or format is Format.yaml:
        emit_document(document_for(source, snap, notes=list(m.warnings))(facts), format, out)
        return
    rows = [(k, ", ".join(v) or "-" if isinstance(v, list) else str(v)) for k, v in facts.items() if k != "rows"]
    rows += [(f"rows.{name}", f"{n:,}") for name, n in facts["rows"].items()]
    emit(pl.DataFrame(rows, schema=["field", "value"], orient="row"), format, title="snapshot", out=out)


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
    with Steps("report") as steps, steps.stage("analyse and write the report"):
        summary = summarize(snap)
        files = write_report(summary, out)
    for r in summary.resources:
        used = human_bytes(r.used_avg) if r.resource == "memory" else f"{(r.used_avg or 0):.2f}"
        req = human_bytes(r.requested) if r.resource == "memory" else f"{(r.requested or 0):.2f}"
        util = f"{r.utilization * 100:.0f}%" if r.utilization is not None else "-"
        written(f"  {r.resource:<7} requested {req:>12}  used {used:>12}  utilization {util}")
    written(f"Report written: {files['report.html']} and {files['report.json']}")
