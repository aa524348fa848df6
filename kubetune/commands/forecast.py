"""`kubetune forecast`: demand quantiles per container, backtests and drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.atomic import check_file_target
from analyzer.errors import InputError
from analyzer.units import parse_duration
from kubetune.console import note, out_console, say, spinner
from kubetune.options import with_source
from kubetune.output import Format, emit
from kubetune.sources import Source, load_source


@with_source
def forecast(
    source: Source,
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 7d.")] = "7d",
    backtest: Annotated[bool, typer.Option(help="Compare the model with the baselines on held-out history.")] = False,
    drift: Annotated[bool, typer.Option(help="List detected behaviour changes (level, variance, growth) instead.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Forecast demand quantiles (p50/p90/p95/p99/peak) per workload container, backtest, or list drift.

    One global quantile model over all series, calibrated (split-conformal); series too short to
    learn fall back to a seasonal baseline, said in the `model` column. Values are in base units
    (cores, bytes, GPU busy fraction).

    Examples:
      kubetune forecast --horizon 7d --format json --out forecast.json
      kubetune forecast --backtest snap/
      kubetune forecast --drift
    """
    from datetime import timedelta

    from forecasting import backtest_snapshot, detect_drift, forecast_snapshot

    if out is not None:
        check_file_target(out)
    if backtest and drift:
        raise InputError("give either --backtest or --drift, not both.")
    snap = load_source(source, note=note)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to forecast (collect from Prometheus or import usage).")
    span = timedelta(seconds=parse_duration(horizon))
    with spinner() as progress:
        progress.add_task("backtesting" if backtest else "detecting drift" if drift else "forecasting", total=None)
        if backtest:
            table, title = backtest_snapshot(snap, horizon=span), "Backtest: model vs baselines (lower pinball is better)"
        elif drift:
            table, title = detect_drift(snap), "Detected drift"
        else:
            table, title = forecast_snapshot(snap, horizon=span), f"Forecast, next {horizon}"
    emit(table, format, title=title, out=out, console=out_console)
    if out is not None:
        say(f"Wrote {table.height:,} rows to {out}.")
