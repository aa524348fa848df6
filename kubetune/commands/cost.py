"""`kubetune cost`: cost per namespace, workload, node or label, with idle cost and waste."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from analyzer.atomic import check_file_target
from analyzer.units import parse_duration
from analyzer.envelope import window_of
from kubetune.console import Steps, note, warn
from kubetune.options import FormatOpt, OutOpt, with_source
from kubetune.output import Format, document_for, emit, emit_document, is_table, plain_rows
from kubetune.sources import Source, load_source
from kubetune.tables import WASTE_TABLE_COLUMNS, cost_columns


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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list every price used (instance type, "
                                                                  "rates, source and date).")] = False,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
) -> None:
    """Cost per namespace, workload, node or label, with idle cost, efficiency and waste in $/month.

    Allocation follows OpenCost: max(request, usage) x the node's per-resource hourly rate,
    prices from the snapshot (OpenCost metrics) first, then the bundled catalog, then fallback
    rates (said in a warning). One line names the price source; --verbose lists every price.
    Table amounts are USD; JSON/CSV/Parquet keep base units.

    Examples:
      kubetune cost --by namespace --window 7d
      kubetune cost --by label:team -n 'team-.*' -f json | jq '.items[] | {team: ."label:team", total_cost}'
    """
    from datetime import timedelta

    from analyzer.cost import analyze_cost, rollup, top_waste
    from analyzer.cost.rollup import UNLABELED

    if out is not None:
        check_file_target(out)
    snap = load_source(source, note=note)
    span = timedelta(seconds=parse_duration(window)) if window else None
    with Steps("cost") as steps, steps.stage("allocate node cost"):
        result = analyze_cost(snap, window=span, pricing_file=pricing, idle_share=idle_share.value)
        table = rollup(result, by)
        waste = top_waste(result, top) if top else None
    notes = list(result.warnings)
    for key in (k.strip() for k in by.split(",")):
        if ":" in key and key in table.columns:
            values = set(table.get_column(key).cast(pl.String).drop_nulls().to_list()) - {"__idle__"}
            if values <= {UNLABELED}:
                notes.append(f"--by {key} matches no label: every row is {UNLABELED} (check the label's name).")
    for line in notes:
        warn(line)
    prices = price_sources(result.prices)
    if out is None or verbose:
        note(f"Prices: {prices}" + ("" if verbose or not result.prices.height else " (--verbose lists them)."))
    if verbose:
        for r in result.prices.iter_rows(named=True):
            note(f"  {r['instance_type']} {r['capacity']} ({r['provider']}, {r['nodes']} node(s)): "
                 f"${r['cpu_rate']:.4f}/core-h, ${r['memory_rate']:.5f}/GiB-h, ${r['gpu_rate']:.4f}/GPU-h; "
                 f"{r['source']} ({r['date']})")
    if format is Format.json or format is Format.yaml:
        summary = {**result.summary(), "by": by, "top_waste": plain_rows(waste) if waste is not None else [],
                   "prices": plain_rows(result.prices), "gpus": plain_rows(result.gpus)}
        summary.pop("warnings", None)
        build = document_for(source, snap, window=window_of(snap.manifest, result.window_start, result.window_end),
                             notes=notes, summary=summary)
        emit_document(build(plain_rows(table)), format, out)
        return
    if not is_table(format):
        emit(table, format, out=out)
        return
    key_cols = table.columns[: table.columns.index("cpu_cost")] if "cpu_cost" in table.columns else []
    s = result.summary()
    title = (f"Cost by {by}: {result.cluster}, {result.hours:.0f} h window, total ${s['total_cost']:,.2f} "
             f"(${s['total_cost_monthly']:,.0f}/month), " + _idle(s.get("idle_fraction")))
    emit(table, format, title=title, out=out, columns=cost_columns(key_cols))
    if waste is not None and waste.height and out is None:
        emit(waste, format, columns=WASTE_TABLE_COLUMNS,
             title=f"Top {waste.height} wasteful workloads ($/month of requested-but-unused capacity)")


def price_sources(prices: pl.DataFrame) -> str:
    """One line: where the prices came from (provider, capacity, catalog/snapshot/fallback, date)."""
    if not prices.height:
        return "none needed"
    counts = (prices.group_by("provider", "capacity", "kind", "date").agg(pl.col("nodes").sum())
              .sort("nodes", descending=True))
    return "; ".join(f"{r['provider']} {r['capacity']} from the {r['kind']} prices of {r['date']} ({r['nodes']} node(s))"
                     for r in counts.iter_rows(named=True))


def _idle(fraction: float | None) -> str:
    """Idle share for the title; unknown without nodes (import snapshots have none)."""
    return "idle unknown (no nodes in the snapshot)" if fraction is None else f"idle {fraction * 100:.0f}%"
