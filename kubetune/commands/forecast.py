"""`kubetune forecast`: demand per container over the horizon (summary or hourly), backtests and drift."""

from __future__ import annotations

from typing import Annotated

import typer

from analyzer.atomic import check_file_target
from analyzer.errors import InputError
from analyzer.units import human_value, parse_duration
from kubetune.console import Steps, note, written
from kubetune.options import FormatOpt, OutOpt, with_source
from kubetune.output import Format, document_for, emit, is_table
from kubetune.sources import Source, load_source
from kubetune.tables import Column, forecast_columns


@with_source
def forecast(
    source: Source,
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 7d.")] = "7d",
    hourly: Annotated[bool, typer.Option("--hourly", help="One record per series and hour instead of the summary "
                                                          "(best with -f json/csv/parquet -o FILE).")] = False,
    backtest: Annotated[bool, typer.Option(help="Compare the model with the baselines on held-out history.")] = False,
    drift: Annotated[bool, typer.Option(help="List detected behaviour changes (level, variance, growth) instead.")] = False,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
) -> None:
    """Forecast demand per container and resource: p50/p90/p95/p99/peak over the horizon, trend, drift.

    One row per container and resource: each quantile's highest hourly value over the horizon
    (what to provision for the busiest hour), the trend (the horizon's mean P50 against the last
    horizon of history) and whether a behaviour change was detected. `--hourly` gives the
    per-hour records instead. One global quantile model over all series, calibrated
    (split-conformal); series too short to learn use a seasonal baseline (the `model` column).
    JSON/CSV/Parquet keep base units (cores, bytes, GPU busy fraction); the table shows 250m, 1.5Gi.

    Examples:
      kubetune forecast --horizon 7d
      kubetune forecast --hourly --format parquet --out forecast.parquet
      kubetune forecast --backtest snap/
      kubetune forecast --drift -n payments
    """
    from datetime import timedelta

    from forecasting import backtest_snapshot, detect_drift, forecast_snapshot, forecast_summary

    if out is not None:
        check_file_target(out)
    if sum((backtest, drift, hourly)) > 1:
        raise InputError("give one of --backtest, --drift and --hourly, not several.")
    snap = load_source(source, note=note)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to forecast (collect from Prometheus or import usage).")
    span = timedelta(seconds=parse_duration(horizon))
    columns: list[Column] | None = None
    with Steps("forecast") as steps:
        tell = _progress(steps)
        if backtest:
            with steps.stage("backtest model vs baselines"):
                table = backtest_snapshot(snap, horizon=span)
            title = "Backtest: model vs baselines (lower pinball is better)"
        elif drift:
            with steps.stage("detect drift"):
                table = detect_drift(snap)
            title = "Detected drift"
        elif hourly:
            table, title = forecast_snapshot(snap, horizon=span, progress=tell), f"Hourly forecast, next {horizon}"
        else:
            table = forecast_summary(snap, horizon=span, progress=tell)
            title = f"Forecast, next {horizon}: highest hourly value per quantile (base units in -f json/csv)"
        tell.close()
    if is_table(format) and not (backtest or drift):
        table, columns = _human(table), forecast_columns(["namespace", "workload", "container", "resource"])
    what = "backtest" if backtest else "drift" if drift else "hourly" if hourly else "summary"
    emit(table, format, title=title, out=out, columns=columns,
         document=document_for(source, snap, window=None, summary={"horizon": horizon, "records": what}))
    if out is not None:
        written(f"Wrote {table.height:,} {what} rows to {out}.")


def _human(table):
    """Quantities in human units for the table (250m, 1.5Gi); trend as a percentage."""
    import polars as pl

    values = [c for c in ("p50", "p90", "p95", "p99", "peak") if c in table.columns]
    fmt = lambda s: human_value(s["resource"], s["v"], "-") if s["resource"] in ("cpu", "memory") else (
        "-" if s["v"] is None else f"{s['v']:.3g}")
    return table.with_columns(
        *[pl.struct("resource", pl.col(c).alias("v")).map_elements(fmt, return_dtype=pl.String).alias(c) for c in values],
        *([pl.col("trend").map_elements(lambda v: f"{v * 100:+.0f}%", return_dtype=pl.String)] if "trend" in table.columns else []),
        *([pl.when(pl.col("drift")).then(pl.col("drift_kind")).otherwise(pl.lit("-")).alias("drift")]
          if "drift" in table.columns else []),
    )


class _progress:
    """Turns the forecaster's ``(what, done, total)`` calls into progress stages."""

    def __init__(self, steps: Steps):
        self.steps, self.current, self.ctx = steps, None, None

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.current is None or self.current.description != what:
            self.close()
            self.ctx = self.steps.stage(what, total=total)
            self.current = self.ctx.__enter__()
        self.current.advance(done - self.current.completed)

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(None, None, None)
            self.ctx = self.current = None
