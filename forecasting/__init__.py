"""Demand forecasting and drift detection (scikit-learn estimator contract)."""

from forecasting.api import backtest_matrix, backtest_snapshot, detect_drift, forecast_snapshot, forecast_summary
from forecasting.drift import detect
from forecasting.models import GlobalQuantileForecaster, HistoricalPercentile, SeasonalNaive
from forecasting.series import SeriesSet, extract_series

__all__ = [
    "GlobalQuantileForecaster", "HistoricalPercentile", "SeasonalNaive", "SeriesSet", "backtest_matrix",
    "backtest_snapshot", "detect", "detect_drift", "extract_series", "forecast_snapshot", "forecast_summary",
]
