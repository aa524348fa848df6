"""Forecast scale benchmark (issue 6): 10,000 series x 14 days hourly, fit + predict 7 days.

Synthetic seasonal series (daily cycle, noise, some growth); reports wall time and peak RSS of this
process. Usage: python benchmarks/forecast_scale.py [--series N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from forecasting.models import GlobalQuantileForecaster


def make(n: int, hours: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    base = rng.lognormal(0, 1, (n, 1))
    amp = rng.uniform(0, 0.8, (n, 1))
    trend = rng.normal(0, 0.001, (n, 1))
    return base * (1 + amp * np.sin(2 * np.pi * t / 24) + trend * t) * rng.lognormal(0, 0.15, (n, hours))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    args = ap.parse_args()
    Y = make(args.series, 14 * 24)
    t = time.perf_counter()
    est = GlobalQuantileForecaster(horizon=168).fit(Y)
    fit = time.perf_counter() - t
    pred = est.predict()
    total = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"{args.series} series x {Y.shape[1]} h: fit {fit:.1f}s, fit+predict 7 d {total:.1f}s (target < 60 s), "
          f"peak RSS {rss:.2f} GB (target < 4 GB); output {pred.shape}, NaN: {int(np.isnan(pred).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
