"""`kubetune info`: what a snapshot holds."""

from __future__ import annotations


import polars as pl

from analyzer.envelope import iso
from kubetune.console import note, warn
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

