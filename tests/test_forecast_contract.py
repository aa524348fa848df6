"""Every forecaster keeps the scikit-learn estimator contract it claims (checks from sklearn itself)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_set_params,
)

from forecasting import GlobalQuantileForecaster, HistoricalPercentile, SeasonalNaive

FAST = dict(max_iter=10, max_rows=5_000, n_origins=6)
MODELS = [
    pytest.param(lambda: SeasonalNaive(24, 12), id="seasonal-naive"),
    pytest.param(lambda: HistoricalPercentile(48, 12), id="historical-percentile"),
    pytest.param(lambda: GlobalQuantileForecaster(horizon=12, **FAST), id="global-quantile"),
]


def _series(n: int, days: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    return rng.lognormal(0, 0.5, (n, 1)) * (1 + 0.5 * np.sin(2 * np.pi * t / 24)) * rng.lognormal(0, 0.1, (n, len(t)))


@pytest.mark.parametrize("make", MODELS)
def test_sklearn_checks(make):
    est = make()
    name = type(est).__name__
    check_estimator_cloneable(name, est)
    check_no_attributes_set_in_init(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, est)
    check_do_not_raise_errors_in_init_or_set_params(name, est)


@pytest.mark.parametrize("make", MODELS)
def test_clone_round_trip_fit_returns_self_and_not_fitted_error(make):
    est = make()
    params = est.get_params()
    twin = clone(est).set_params(**params)
    assert twin.get_params() == params and twin is not est
    with pytest.raises(NotFittedError):
        est.predict()
    Y = _series(30)
    assert est.fit(Y) is est
    pred = est.predict()
    assert pred.shape == (30, 12, len(est.quantiles))
    assert clone(est).get_params() == params and not hasattr(clone(est), "history_")  # clone drops the fit


@pytest.mark.parametrize("make", MODELS)
def test_predict_on_series_it_was_not_fitted_on(make):
    est = make().fit(_series(30, seed=1))
    other = _series(5, seed=2)
    if isinstance(est, GlobalQuantileForecaster):
        assert est.models_ is not None  # a trained model, not the fallback
        pred = est.predict(other)  # a global model forecasts new series from their own history
        assert pred.shape == (5, 12, len(est.quantiles)) and np.isfinite(pred).all()
        assert (np.diff(pred, axis=2) >= -1e-9).all()
        assert not np.allclose(pred, est.predict()[:5])  # their forecast, not the fitted series'
        assert est.predict_peak(pred, other).shape == (5, 12)
    else:
        with pytest.raises(ValueError, match="fitted on"):
            est.predict(other)
