"""`kubetune cost`: cost per namespace, workload, node or label, with idle cost and waste."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from analyzer.atomic import check_file_target
from analyzer.units import parse_duration
from kubetune.console import note, out_console, spinner, warn
from kubetune.options import with_source
from kubetune.output import Format, emit, emit_document, plain_rows
from kubetune.sources import Source, load_source
from kubetune.tables import COST_TABLE_COLUMNS, WASTE_TABLE_COLUMNS, human_table


class IdleShare(str, Enum):
    none = "none"
    even = "even"
    proportional = "proportional"


@with_source
def cost(
    source: Source,
    by: Annotated[
        str,
        typer.Option(help="Group by: cluster, namespace, workload, pod, container, node, instance_type, capacity_type, "
                          "zone, label:KEY (workload label, else namespace label), namespace_label:KEY, node_label:KEY; "
                          "comma lists combine them."),
    ] = "namespace",
    window: Annotated[str | None, typer.Option(help="Only the last part of the snapshot, e.g. 7d.")] = None,
    pricing: Annotated[
        Path | None, typer.Option(help="Your prices (YAML): custom instance types, discounts, on-prem rates.")
    ] = None,
    idle_share: Annotated[
        IdleShare, typer.Option(help="Idle cost: none (own __idle__ row), even or proportional share-back.")
    ] = IdleShare.none,
    top: Annotated[int, typer.Option(min=0, help="How many of the most wasteful workloads to list (table/json).")] = 10,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Cost per namespace, workload, node or label, with idle cost, efficiency and waste in $/month.

    Allocation follows OpenCost: max(request, usage) x the node's per-resource hourly rate,
    prices from the snapshot (OpenCost metrics) first, then the bundled catalog, then fallback
    rates (said in a warning). Table amounts are USD; JSON/CSV/Parquet keep base units.

    Example: kubetune cost --by namespace --window 7d
    """
    from datetime import timedelta

    from analyzer.cost import analyze_cost, rollup, top_waste

    if out is not None:
        check_file_target(out)
    snap = load_source(source, note=note)
    span = timedelta(seconds=parse_duration(window)) if window else None
    with spinner() as progress:
        progress.add_task("allocating node cost", total=None)
        result = analyze_cost(snap, window=span, pricing_file=pricing, idle_share=idle_share.value)
        table = rollup(result, by)
        waste = top_waste(result, top) if top else None
    for warning in result.warnings:
        warn(warning)
    if format is Format.json or format is Format.yaml:
        payload = {
            "summary": result.summary(),
            "by": by,
            "rows": plain_rows(table),
            "top_waste": plain_rows(waste) if waste is not None else [],
            "prices": plain_rows(result.prices),
            "gpus": plain_rows(result.gpus),
        }
        emit_document(payload, format, out)
        return
    if format is not Format.table:
        emit(table, format, out=out)
        return
    key_cols = table.columns[: table.columns.index("cpu_cost")] if "cpu_cost" in table.columns else []
    shown, formatters = human_table(table, [(c, c, None) for c in key_cols] + COST_TABLE_COLUMNS)
    s = result.summary()
    title = (f"Cost by {by}: {result.cluster}, {result.hours:.0f} h window, total ${s['total_cost']:,.2f} "
             f"(${s['total_cost_monthly']:,.0f}/month), " + _idle(s.get("idle_fraction")))
    emit(shown, Format.table, title=title, formatters=formatters, out=out, console=out_console)
    if waste is not None and waste.height and out is None:
        shown, formatters = human_table(waste, WASTE_TABLE_COLUMNS)
        emit(shown, Format.table, formatters=formatters, console=out_console,
             title=f"Top {waste.height} wasteful workloads ($/month of requested-but-unused capacity)")
    if out is None and result.prices.height:
        sources = sorted({f"{r['source']} ({r['date']})" for r in result.prices.iter_rows(named=True)})
        note("Prices used: " + "; ".join(sources))


def _idle(fraction: float | None) -> str:
    """Idle share for the title; unknown without nodes (import snapshots have none)."""
    return "idle unknown (no nodes in the snapshot)" if fraction is None else f"idle {fraction * 100:.0f}%"
