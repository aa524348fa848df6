"""Demand forecasting and drift detection (scikit-learn estimator contract).

The models (``GlobalQuantileForecaster``, ``SeasonalNaive``, ``HistoricalPercentile``) load
scikit-learn, so they are imported on first use: ``--help``, drift detection and right-sizing
without ``--use-forecast`` do not pay for it.
"""

from forecasting.api import backtest_matrix, backtest_snapshot, detect_drift, forecast_snapshot, forecast_summary
from forecasting.drift import detect
from forecasting.series import SeriesSet, extract_series

_MODELS = ("GlobalQuantileForecaster", "HistoricalPercentile", "SeasonalNaive")

__all__ = [
    *_MODELS, "SeriesSet", "backtest_matrix", "backtest_snapshot", "detect", "detect_drift", "extract_series",
    "forecast_snapshot", "forecast_summary",
]


def __getattr__(name: str):
    if name in _MODELS:
        from forecasting import models

        return getattr(models, name)
    raise AttributeError(f"module 'forecasting' has no attribute {name!r}")
