"""`kubetune info`: what a snapshot holds."""

from __future__ import annotations


import polars as pl

from kubetune.console import note
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
