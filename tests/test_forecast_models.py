"""Forecasting (issue 6): estimator contract, quantile ordering, calibration, baselines, bad input."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from forecasting import (
    GlobalQuantileForecaster,
    HistoricalPercentile,
    SeasonalNaive,
    backtest_matrix,
    extract_series,
    forecast_snapshot,
)

FAST = dict(max_iter=10, max_rows=5_000, n_origins=6)


def seasonal(n=30, days=21, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    base = rng.lognormal(0, 0.5, (n, 1))
    return base * (1 + 0.5 * np.sin(2 * np.pi * t / 24)) * rng.lognormal(0, 0.1, (n, len(t)))


def test_estimator_contract_and_clone():
    est = GlobalQuantileForecaster(horizon=24, **FAST)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "models_")
    c.fit(seasonal(10, 14))
    for attr in ("models_", "calibration_", "coverage_", "learnable_", "history_"):
        assert hasattr(c, attr)
    for model in (SeasonalNaive(24, 24), HistoricalPercentile(48, 24)):
        assert clone(model).get_params() == model.get_params()


def test_quantiles_ordered_nonnegative_and_shape():
    pred = GlobalQuantileForecaster(horizon=48, **FAST).fit(seasonal()).predict()
    assert pred.shape == (30, 48, 4)
    assert np.isfinite(pred).all() and (pred >= 0).all()
    assert (np.diff(pred, axis=-1) >= 0).all()


def test_calibrated_coverage_on_seasonal_data():
    Y = seasonal(60, 21, seed=1)
    table = backtest_matrix(Y, origins=[14 * 24], horizon=7 * 24, **FAST)
    me = table.filter(pl.col("model") == "kubetune-global").row(0, named=True)
    assert 0.85 <= me["coverage_p95"] <= 1.0
    assert 0.35 <= me["coverage_p50"] <= 0.65
    naive = table.filter(pl.col("model") == "seasonal-naive-weekly").row(0, named=True)
    assert me["pinball_p50"] < 1.5 * naive["pinball_p50"]


def test_baselines():
    Y = np.tile(np.arange(24, dtype=float), (2, 3))  # exact daily cycle
    p = SeasonalNaive(24, 24, (0.5, 0.95)).fit(Y).predict()
    np.testing.assert_allclose(p[:, :, 0], np.tile(np.arange(24.0), (2, 1)))
    h = HistoricalPercentile(72, 10, (0.5, 0.95)).fit(Y).predict()
    np.testing.assert_allclose(h[0, :, 1], np.quantile(Y[0], 0.95))
    assert (h[:, :, 0] == h[:, :1, 0]).all()


def test_bad_input_series_never_nan():
    T = 21 * 24
    rows = [
        np.full(T, 0.0),                      # all zero
        np.full(T, 3.0),                      # constant
        np.where(np.arange(T) % 7 == 0, np.nan, 1.0 + np.arange(T) % 24),  # gaps
        np.r_[np.full(T - 1, np.nan), 5.0],  # single point
        np.r_[np.full(T // 2, np.inf), np.full(T - T // 2, 2.0)],  # Inf
        np.where(np.arange(T) % 11 == 0, -4.0, 2.0),  # negative glitches
        np.full(T, np.nan),                   # nothing
    ]
    Y = np.vstack(rows + [seasonal(10, 21)[i] for i in range(10)])
    for est in (GlobalQuantileForecaster(horizon=24, **FAST), SeasonalNaive(24, 24), HistoricalPercentile(48, 24)):
        pred = est.fit(Y).predict()
        assert np.isfinite(pred).all() and (pred >= 0).all()
    g = GlobalQuantileForecaster(horizon=24, **FAST).fit(Y)
    assert "short history" in g.model_[3] and "short history" in g.model_[6]
    assert g.model_[7] == "global-hgb-quantile"


def test_beats_seasonal_naive_on_daily_seasonality_with_noise():
    """Daily cycle + multiplicative noise + occasional bursts: the calibrated global model must beat
    daily seasonal naive on P95 pinball (seasonal naive carries one day's noise into every forecast)."""
    rng = np.random.default_rng(3)
    n, T = 80, 21 * 24
    t = np.arange(T)
    base = rng.lognormal(0, 0.7, (n, 1))
    Y = base * (1 + 0.6 * np.sin(2 * np.pi * (t + rng.integers(0, 24, (n, 1))) / 24)) * rng.lognormal(0, 0.25, (n, T))
    Y = Y * np.where(rng.random((n, T)) < 0.02, 3.0, 1.0)
    table = backtest_matrix(Y, origins=[14 * 24], horizon=7 * 24, max_iter=30, max_rows=20_000)
    me = table.filter(pl.col("model") == "kubetune-global").row(0, named=True)
    sn = table.filter(pl.col("model") == "seasonal-naive-daily").row(0, named=True)
    assert me["pinball_p95"] < 0.97 * sn["pinball_p95"]
    assert me["mase_p50"] < sn["mase_p50"]
    assert 0.9 <= me["coverage_p95"] <= 0.99


def test_all_gap_series_no_runtime_warning():
    Y = np.vstack([np.full(21 * 24, np.nan), seasonal(12, 21)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for est in (GlobalQuantileForecaster(horizon=24, **FAST), SeasonalNaive(24, 24), HistoricalPercentile(48, 24)):
            pred = est.fit(Y).predict()
            assert np.isfinite(pred).all() and (pred[0] == 0).all()


def test_bad_input_only_series():
    """Nothing learnable at all (every series bad): fall back everywhere, no crash, no NaN."""
    T = 10 * 24
    Y = np.vstack([np.full(T, 0.0), np.full(T, np.nan), np.full(T, -1.0), np.full(T, np.inf), np.full(T, 2.0)])
    g = GlobalQuantileForecaster(horizon=24, **FAST).fit(Y)
    pred = g.predict()
    assert np.isfinite(pred).all() and (pred >= 0).all() and (np.diff(pred, axis=-1) >= 0).all()
    assert len(g.model_) == 5
    peak = g.predict_peak(pred)
    assert np.isfinite(peak).all()


def test_calibration_factors_and_coverage_reported():
    g = GlobalQuantileForecaster(horizon=48, **FAST).fit(seasonal(40, 21, seed=2))
    assert g.calibration_.shape == (4,) and np.all((g.calibration_ >= 0.5) & (g.calibration_ <= 2.0))
    assert np.all(np.abs(g.coverage_ - np.array([0.5, 0.9, 0.95, 0.99])) < 0.05)  # out-of-fold, calibrated


def test_median_blend_keeps_flat_quantised_series_exact():
    # idle workloads often sit on one quantised value (e.g. 10m CPU) with rare blips; the baselines agree
    # on it exactly, so the median P50 is exact where a mean with the model's estimate would be off
    rng = np.random.default_rng(3)
    flat = np.full((20, 21 * 24), 0.01)
    flat[rng.random(flat.shape) < 0.01] = 0.015
    Y = np.vstack([seasonal(40, 21, seed=4), flat])
    pred = GlobalQuantileForecaster(horizon=24, **FAST).fit(Y).predict()
    p50 = pred[40:, :, 0]
    assert np.allclose(p50, 0.01, rtol=0.01)  # where yesterday had a blip the median of four averages two
    assert (np.abs(p50 - 0.01) < 1e-9).mean() > 0.95
    mean = GlobalQuantileForecaster(horizon=24, blend=(1, 1, 1, 1), **FAST).fit(Y).predict()
    assert np.isfinite(mean).all() and mean.shape == pred.shape


def test_invalid_blend_is_refused_before_fitting():
    for bad in ("mean", (1, 1, 1), (1, -1, 1, 1), (0, 0, 0, 0)):
        with pytest.raises(ValueError, match="blend"):
            GlobalQuantileForecaster(horizon=24, blend=bad, **FAST).fit(seasonal(5, 3))


def test_short_everything_falls_back():
    pred = GlobalQuantileForecaster(horizon=12, **FAST).fit(np.ones((3, 5))).predict()
    assert pred.shape == (3, 12, 4) and np.isfinite(pred).all()


def _usage(values: np.ndarray, wl="w") -> pl.DataFrame:
    n = len(values)
    ts = pl.datetime_range(pl.datetime(2026, 1, 5, time_zone="UTC"), pl.datetime(2026, 1, 5, time_zone="UTC")
                           + timedelta(minutes=30 * (n - 1)), "30m", eager=True)
    return pl.DataFrame({"timestamp": ts, "namespace": "ns", "workload_kind": "Deployment", "workload": wl,
                         "pod": [f"{wl}-{i % 2}" for i in range(n)], "container": "app", "resource": "cpu",
                         "device": None, "value": values}, schema_overrides={"device": pl.String})


def test_series_extraction_max_and_cleaning():
    v = np.array([1.0, 3.0, np.nan, -1.0, np.inf, 2.0, 0.5, 0.25])
    ss = extract_series(_usage(v))
    assert ss.values.shape == (1, 4)
    np.testing.assert_allclose(ss.values[0], [3.0, np.nan, 2.0, 0.5])  # bucket max; bad values dropped


class _Snap:
    def __init__(self, usage):
        self.usage = usage


def test_forecast_snapshot_columns():
    rng = np.random.default_rng(0)
    usage = pl.concat([_usage(1 + rng.random(16 * 48), "a"), _usage(rng.random(10), "b")])
    out = forecast_snapshot(_Snap(usage), horizon=timedelta(days=1), **FAST)
    assert out.columns == ["namespace", "workload_kind", "workload", "container", "resource", "timestamp",
                           "p50", "p90", "p95", "p99", "peak", "model"]
    assert out.height == 2 * 24
    assert out.select(pl.all().null_count()).sum_horizontal().item() == 0
    assert (out["peak"] >= out["p99"]).all()
    assert set(out.filter(pl.col("workload") == "b")["model"]) == {"seasonal-naive-daily (short history)"}


def test_series_extracted_part_by_part_equal_the_whole(monkeypatch):
    """Bounded memory: the hourly series are built a few workloads at a time; same matrix as in one pass."""
    import analyzer.parts
    import forecasting.series as fs
    from analyzer.simulator import simulate

    snap = simulate(workloads=10, days=3, step_seconds=600, seed=5)
    whole = extract_series(snap.usage)
    made = []
    parts = analyzer.parts.workload_parts
    monkeypatch.setattr(fs, "workload_parts", lambda u, rows=None: made.append(p := parts(u, rows, part_rows=_rows(u, rows) // 4)) or p)
    split = extract_series(snap.usage)
    assert len(made[0]) >= 4
    assert split.keys.equals(whole.keys) and (split.times == whole.times).all()
    assert np.array_equal(split.values, whole.values, equal_nan=True)
    assert np.array_equal(split.high, whole.high, equal_nan=True)
    assert whole.n_series > 20


def _rows(usage, rows=None) -> int:
    return rows if rows is not None else usage.select(pl.len()).collect().item()
