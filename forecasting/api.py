"""Library entry points for the CLI: forecast, backtest and drift over a Snapshot."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import polars as pl

from analyzer.snapshot import Snapshot
from forecasting.drift import detect
from forecasting.series import DEFAULT_QUANTILES, KEY, SeriesSet, extract_series

TIMESTAMP = pl.Datetime("us", "UTC")


def _qname(q: float) -> str:
    return f"p{round(q * 100):g}"


def _hours(d: timedelta) -> int:
    return max(1, int(d.total_seconds() // 3600))


def _series(snapshot: Snapshot | SeriesSet) -> SeriesSet:
    return snapshot if isinstance(snapshot, SeriesSet) else extract_series(snapshot.usage)


def _hour0(ss: SeriesSet) -> int:
    """Hour of the week (Monday 00:00 = 0) of the first bucket, so calendar features are real."""
    if len(ss.times) == 0:
        return 0
    t = ss.times[0].astype("datetime64[h]").astype(np.int64)
    return int((t + 72) % 168)  # 1970-01-01 was a Thursday


def forecast_snapshot(snapshot: Snapshot | SeriesSet, horizon: timedelta = timedelta(days=7),
                      quantiles=DEFAULT_QUANTILES, progress=None, **params) -> pl.DataFrame:
    """One row per (namespace, workload_kind, workload, container, resource, timestamp):
    quantile columns (p50, p90, p95, p99 by default) and ``peak`` in the resource's base unit, plus ``model``.
    ``progress(what, done, total)`` hears of each model fitted and each batch of series forecast."""
    ss = _series(snapshot)
    H = _hours(horizon)
    quantiles = tuple(sorted(quantiles))
    cols = [_qname(q) for q in quantiles]
    schema = {**{k: pl.String for k in KEY}, "timestamp": TIMESTAMP, **{c: pl.Float64 for c in cols},
              "peak": pl.Float64, "model": pl.String}
    if ss.n_series == 0:
        return pl.DataFrame(schema=schema)
    from forecasting.models import GlobalQuantileForecaster  # scikit-learn: loaded only when forecasting

    est = GlobalQuantileForecaster(quantiles=quantiles, horizon=H, hour0=_hour0(ss), **params).fit(
        ss.values, progress=progress)
    pred = est.predict(progress=progress)
    peak = est.predict_peak(pred)
    n = ss.n_series
    ts = ss.times[-1] + np.arange(1, H + 1) * np.timedelta64(ss.bucket_seconds, "s")
    out = ss.keys.select(pl.all().repeat_by(H).explode()).with_columns(
        pl.Series("timestamp", np.tile(ts, n)).dt.replace_time_zone("UTC").cast(TIMESTAMP),
        *[pl.Series(c, pred[:, :, i].ravel()) for i, c in enumerate(cols)],
        pl.Series("peak", peak.ravel()),
        pl.Series("model", np.repeat(est.model_, H)),
    )
    return out.select(list(schema))


def forecast_summary(snapshot: Snapshot | SeriesSet, horizon: timedelta = timedelta(days=7),
                     quantiles=DEFAULT_QUANTILES, progress=None, **params) -> pl.DataFrame:
    """One row per series (container and resource): each quantile's and the peak's highest hourly
    value over the horizon (what to provision for the busiest hour), ``trend`` (the horizon's mean
    P50 over the last ``horizon`` of history, minus 1: +0.10 = 10% more demand expected), ``drift``
    (a behaviour change was detected in the history; ``drift_kind`` the latest) and ``model``."""
    ss = _series(snapshot)
    hourly = forecast_snapshot(ss, horizon, quantiles, progress=progress, **params)
    cols = [_qname(q) for q in sorted(quantiles)]
    H = _hours(horizon)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        recent = np.nanmean(ss.values[:, -H:], axis=1) if ss.n_series else np.zeros(0)
    history = ss.keys.with_columns(pl.Series("_recent", recent, dtype=pl.Float64))
    drift = detect_drift(ss)
    flags = drift.sort("timestamp").group_by(KEY).agg(pl.col("kind").last().alias("drift_kind"))
    out = (hourly.group_by(KEY, maintain_order=True)
           .agg(*[pl.col(c).max() for c in cols], pl.col("peak").max(), pl.col(cols[0]).mean().alias("_mean"),
                pl.col("model").first())
           .join(history, on=KEY, how="left", nulls_equal=True)
           .join(flags, on=KEY, how="left", nulls_equal=True)
           .with_columns(pl.when(pl.col("_recent") > 0).then(pl.col("_mean") / pl.col("_recent") - 1.0)
                         .alias("trend"),
                         pl.col("drift_kind").is_not_null().alias("drift")))
    return out.select(*KEY, *cols, "peak", "trend", "drift", "drift_kind", "model")


def _pinball(y, p, q):
    d = y - p
    return np.maximum(q * d, (q - 1) * d)


def backtest_matrix(Y: np.ndarray, origins, horizon: int = 168, quantiles=DEFAULT_QUANTILES, hour0: int = 0,
                    train_hours: int | None = None, models=None, **params) -> pl.DataFrame:
    """Rolling-origin backtest on a (series x hour) matrix: per model, scaled pinball per quantile,
    coverage per quantile and MASE of the median (scaled by in-sample daily seasonal-naive MAE)."""
    from forecasting.models import GlobalQuantileForecaster, HistoricalPercentile, SeasonalNaive

    quantiles = tuple(sorted(quantiles))
    models = models or {
        "kubetune-global": lambda h0: GlobalQuantileForecaster(quantiles=quantiles, horizon=horizon, hour0=h0, **params),
        "seasonal-naive-daily": lambda h0: SeasonalNaive(24, horizon, quantiles),
        "seasonal-naive-weekly": lambda h0: SeasonalNaive(168, horizon, quantiles),
        "historical-percentile (KRR/VPA)": lambda h0: HistoricalPercentile(14 * 24, horizon, quantiles),
    }
    Y = np.where(np.isfinite(Y) & (Y >= 0), Y, np.nan)
    acc: dict[str, list] = {name: [] for name in models}
    for t0 in origins:
        start = 0 if train_hours is None else max(0, t0 - train_hours)
        train, test = Y[:, start:t0], Y[:, t0:t0 + horizon]
        H = test.shape[1]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            level = np.nanmean(train, axis=1)
            naive = np.nanmean(np.abs(train[:, 24:] - train[:, :-24]), axis=1)
        ok = np.isfinite(level) & (level > 0) & np.isfinite(naive) & (naive > 0)
        mask = ~np.isnan(test) & ok[:, None]
        for name, make in models.items():
            est = make((hour0 + start) % 168).fit(train)
            pred = est.predict()[:, :H]
            yy = np.where(mask, test, 0.0)
            row = {}
            for i, q in enumerate(quantiles):
                pb = np.where(mask, _pinball(yy, pred[:, :, i], q), 0).sum(1) / np.maximum(mask.sum(1), 1) / np.where(ok, level, 1)
                row[f"pinball_{_qname(q)}"] = pb[ok]
                row[f"coverage_{_qname(q)}"] = (np.where(mask, yy <= pred[:, :, i], False).sum(), mask.sum())
            mae = np.where(mask, np.abs(yy - pred[:, :, 0]), 0).sum(1) / np.maximum(mask.sum(1), 1)
            row["mase_p50"] = (mae / np.where(ok, naive, 1))[ok]
            acc[name].append(row)
    rows = []
    for name, parts in acc.items():
        if not parts:
            continue
        rec = {"model": name}
        for k in parts[0]:
            if k.startswith("coverage"):
                hit = sum(p[k][0] for p in parts)
                tot = sum(p[k][1] for p in parts)
                rec[k] = float(hit / tot) if tot else 0.0
            else:
                v = np.concatenate([p[k] for p in parts])
                rec[k] = float(np.mean(v)) if len(v) else 0.0
        rows.append(rec)
    return pl.DataFrame(rows)


def backtest_snapshot(snapshot: Snapshot | SeriesSet, horizon: timedelta = timedelta(days=7),
                      quantiles=DEFAULT_QUANTILES, origins=None, train: timedelta | None = None, **params) -> pl.DataFrame:
    """Model vs baselines table. Default origins: every 2 days from day 14 while a full horizon fits
    (or the last horizon only, for short data)."""
    ss = _series(snapshot)
    H = _hours(horizon)
    T = ss.values.shape[1]
    if origins is None:
        origins = list(range(14 * 24, T - H + 1, 48)) or [max(T - H, 1)]
    return backtest_matrix(ss.values, origins, H, quantiles, _hour0(ss),
                           None if train is None else _hours(train), **params)


def detect_drift(snapshot: Snapshot | SeriesSet, **params) -> pl.DataFrame:
    """Drift events: series key, time (change point), before/after level, kind."""
    ss = _series(snapshot)
    schema = {**{k: pl.String for k in KEY}, "timestamp": TIMESTAMP, "before": pl.Float64, "after": pl.Float64,
              "kind": pl.String}
    if ss.n_series == 0:
        return pl.DataFrame(schema=schema)
    frames = []
    for s, t, before, after, kind in detect(ss.values, **params):
        if len(s) == 0:
            continue
        frames.append(ss.keys[s].with_columns(
            pl.Series("timestamp", ss.times[t]).dt.replace_time_zone("UTC").cast(TIMESTAMP),
            pl.Series("before", np.nan_to_num(before, nan=0.0), dtype=pl.Float64),
            pl.Series("after", np.nan_to_num(after, nan=0.0), dtype=pl.Float64),
            pl.lit(kind).alias("kind"),
        ))
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(list(schema)).sort([*KEY, "timestamp"])
