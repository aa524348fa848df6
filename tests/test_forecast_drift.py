"""Drift detection on injected changes (issue 6), and the Bitbrains import path (skips without data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from forecasting.drift import detect

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_injected_level_shifts_detected_few_false_alarms():
    from drift_detection import make, score

    Y, changed, cp = make(n=300, days=21, seed=3)
    rate, false = score(Y, changed, cp)
    assert rate >= 0.85
    assert false <= 0.08


def test_growth_trend_and_flat_series():
    T = 21 * 24
    t = np.arange(T)
    rng = np.random.default_rng(0)
    Y = np.vstack([1e9 * (1 + 0.1 * t / 24) * rng.lognormal(0, 0.01, T), np.full(T, 2.0), np.zeros(T),
                   np.full(T, np.nan)])
    kinds = {(int(s), k) for ss, _, _, _, k in detect(Y) for s in ss}
    assert (0, "growth_trend") in kinds
    assert not any(s in (1, 2, 3) for s, _ in kinds)


def test_event_fields():
    T = 14 * 24
    Y = np.ones((1, T)) * 10
    Y[0, 200:] = 30
    ev = [(s, t, b, a, k) for s, t, b, a, k in detect(Y) if len(s)]
    s, t, b, a, k = ev[0]
    assert k == "level_shift" and abs(int(t[0]) - 200) <= 6
    assert b[0] == pytest.approx(10) and a[0] == pytest.approx(30)


@pytest.mark.skipif(not (REAL / "bitbrains-rnd-2013-07").exists(), reason=f"{REAL} is absent (real traces not shipped)")
def test_bitbrains_import_and_forecast():
    from datetime import timedelta

    from forecast_accuracy import bitbrains_snapshot

    from forecasting import forecast_snapshot

    snap = bitbrains_snapshot(limit=3)
    out = forecast_snapshot(snap, horizon=timedelta(days=1), max_iter=10, max_rows=10_000, n_origins=3)
    assert out.height == 6 * 24
    assert out.select("p50", "p95", "peak").to_numpy().min() >= 0
    assert not out.select("p50", "p95", "peak").to_numpy().__array__().astype(float).__ne__(
        out.select("p50", "p95", "peak").to_numpy()).any()


def test_pair_losses_hand_checked():
    # the concentration analysis scores pairs exactly as the backtest does: P95 pinball / training mean
    from forecast_accuracy import _pair_losses

    Y = np.tile(np.where(np.arange(504) % 5 == 0, 1.5, 2.0), (3, 1))  # not constant: the naive MAE is > 0
    level = Y[0, :336].mean()
    Y[0, 336:] = 4.0  # level doubles in the test week: under-forecast by 2 at every hour
    Y[1, 336:] = 1.0  # halves: over-forecast by 1
    Y[2, :336] = np.nan  # no training data: not scored
    out = _pair_losses(Y, 336, {"flat": np.full(3, 2.0)})["flat"]
    assert out[0] == pytest.approx(0.95 * 2 / level)
    assert out[1] == pytest.approx(0.05 * 1 / level)
    assert np.isnan(out[2])
