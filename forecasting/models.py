"""Quantile forecasters over a dense (series x hour) matrix, scikit-learn estimator contract.

All models: ``fit(Y)`` with ``Y`` float (n_series, n_hours), NaN = gap; ``predict()`` returns
(n_series, horizon, n_quantiles) in Y's units for the hours after Y's end, ordered and >= 0.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor

from forecasting.series import fill_gaps

DEFAULT_QUANTILES = (0.5, 0.9, 0.95, 0.99)
DAY, WEEK = 24, 168
N_FEATURES = 18
SPREAD = 16  # index of the last week's scaled standard deviation in the feature vector


def _finish(pred: np.ndarray) -> np.ndarray:
    """No NaN/Inf, non-negative, quantiles non-decreasing."""
    pred = np.nan_to_num(pred, nan=0.0, posinf=0.0, neginf=0.0)
    pred = np.maximum(pred, 0.0)
    return np.maximum.accumulate(pred, axis=-1)


def _clean(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"expected a 2-D (series x time) array, got shape {Y.shape}")
    Y = np.where(np.isfinite(Y) & (Y >= 0), Y, np.nan)
    return fill_gaps(Y), ~np.isnan(Y)


def _seasonal_lag(F: np.ndarray, t0: int, h: np.ndarray, period: int) -> np.ndarray:
    """Value one (or more) seasonal periods before each target t0-1+h, taken from history before t0."""
    tau = t0 - 1 + h
    back = period * np.ceil(h / period).astype(int)
    idx = np.clip(tau - back, 0, max(t0 - 1, 0))
    return F[:, idx]


class SeasonalNaive(BaseEstimator):
    """Last season's value at the same phase; quantiles from the series' seasonal-difference errors."""

    def __init__(self, period: int = DAY, horizon: int = WEEK, quantiles=DEFAULT_QUANTILES):
        self.period = period
        self.horizon = horizon
        self.quantiles = quantiles

    def fit(self, Y, y=None):
        F, obs = _clean(Y)
        self.history_ = F
        p = self.period
        if F.shape[1] > p:
            err = F[:, p:] - F[:, :-p]
            err = np.where(obs[:, p:] & obs[:, :-p], err, np.nan)
            with np.errstate(all="ignore"):
                q = np.nanquantile(err, list(self.quantiles), axis=1).T if err.size else None
            self.offsets_ = np.nan_to_num(q, nan=0.0) if q is not None else np.zeros((F.shape[0], len(self.quantiles)))
        else:
            self.offsets_ = np.zeros((F.shape[0], len(self.quantiles)))
        return self

    def predict(self, X=None):
        F = self.history_
        h = np.arange(1, self.horizon + 1)
        if F.shape[1] == 0:
            return np.zeros((F.shape[0], self.horizon, len(self.quantiles)))
        point = _seasonal_lag(F, F.shape[1], h, self.period)
        return _finish(point[:, :, None] + self.offsets_[:, None, :])


class HistoricalPercentile(BaseEstimator):
    """What KRR and VPA do: a fixed percentile of the last ``window`` hours, flat over the horizon."""

    def __init__(self, window: int = 14 * DAY, horizon: int = WEEK, quantiles=DEFAULT_QUANTILES):
        self.window = window
        self.horizon = horizon
        self.quantiles = quantiles

    def fit(self, Y, y=None):
        Yc = np.asarray(Y, dtype=float)
        Yc = np.where(np.isfinite(Yc) & (Yc >= 0), Yc, np.nan)[:, -self.window:]
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = np.nanquantile(Yc, list(self.quantiles), axis=1).T if Yc.shape[1] else np.full((Yc.shape[0], len(self.quantiles)), np.nan)
        self.levels_ = np.nan_to_num(q, nan=0.0)
        return self

    def predict(self, X=None):
        return _finish(np.repeat(self.levels_[:, None, :], self.horizon, axis=1))


def _features(F: np.ndarray, t0: int, h: np.ndarray, hour0: int, scale: np.ndarray) -> np.ndarray:
    """Feature tensor (n, len(h), k) for targets t0-1+h, using only F[:, :t0]."""
    n = F.shape[0]
    H = len(h)
    hist = F[:, max(0, t0 - WEEK):t0] / scale[:, None]
    last = F[:, max(0, t0 - DAY):t0] / scale[:, None]
    tau = t0 - 1 + h
    hour = (hour0 + tau) % DAY
    dow = ((hour0 + tau) // DAY) % 7
    # hour-of-day profile over the last week (mean and max by phase)
    nd = hist.shape[1] // DAY
    if nd >= 1:
        prof = hist[:, hist.shape[1] - nd * DAY:].reshape(n, nd, DAY)
        phase0 = (t0 - nd * DAY) % DAY  # absolute index of prof's first column mod 24
        cols = (tau - (t0 - nd * DAY)) % DAY
        pmean = prof.mean(axis=1)[:, cols]
        pmax = prof.max(axis=1)[:, cols]
        del phase0
    else:
        pmean = np.repeat(last.mean(axis=1, keepdims=True), H, axis=1)
        pmax = np.repeat(last.max(axis=1, keepdims=True), H, axis=1)
    lag_d = _seasonal_lag(F, t0, h, DAY) / scale[:, None]
    lag_w = _seasonal_lag(F, t0, h, WEEK) / scale[:, None] if t0 >= WEEK else lag_d
    stats = np.stack(
        [last.mean(1), last.max(1), last.std(1), hist.mean(1), hist.max(1), *np.quantile(hist, [0.5, 0.9, 0.95, 0.99], axis=1), hist.std(1),
         last[:, -1]], axis=1
    )
    cols = [
        np.broadcast_to(hour[None, :], (n, H)),
        np.broadcast_to(dow[None, :], (n, H)),
        np.broadcast_to(h[None, :], (n, H)),
        lag_d, lag_w, pmean, pmax,
    ] + [np.repeat(stats[:, i:i + 1], H, axis=1) for i in range(stats.shape[1])]
    return np.stack(cols, axis=-1).astype(np.float32)


class GlobalQuantileForecaster(BaseEstimator):
    """One HistGradientBoosting quantile model per quantile, shared by all series (global model).

    Targets are scaled per series by the 99th percentile of the last week before the origin. Training rows come
    from several rolling origins inside the history (subsampled to ``max_rows``); the last
    ``calibration_hours`` are held out for split-conformal adjustment of each quantile, after which
    optionally the model is refit on all origins (``refit=True``; off by default for speed, and the
    conformal adjustment then belongs to the model that is used). Series with fewer than ``min_history``
    observed hours use the daily seasonal-naive baseline (``model_`` says which).
    """

    def __init__(self, quantiles=DEFAULT_QUANTILES, horizon: int = WEEK, max_iter: int = 60,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, max_rows: int = 80_000,
                 n_origins: int = 8, calibration_hours: int = WEEK, min_history: int = 3 * DAY,
                 refit: bool = False, hour0: int = 0, random_state: int = 0):
        self.quantiles = quantiles
        self.horizon = horizon
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_rows = max_rows
        self.n_origins = n_origins
        self.calibration_hours = calibration_hours
        self.min_history = min_history
        self.refit = refit
        self.hour0 = hour0
        self.random_state = random_state

    # -- helpers
    def _scale(self, F, t0):
        s = np.quantile(F[:, max(0, t0 - WEEK):t0], 0.99, axis=1) if t0 > 0 else np.zeros(F.shape[0])
        alt = F[:, :max(t0, 1)].max(axis=1)
        s = np.where(s > 0, s, np.where(alt > 0, alt, 1.0))
        return s

    def _rows(self, F, obs, origins, end, rng, budget):
        Xs, ys, ss = [], [], []
        for t0 in origins:
            H = min(self.horizon, end - t0)
            if H <= 0:
                continue
            h = np.arange(1, H + 1)
            # subsample series per origin so feature building stays within the row budget
            cand = np.flatnonzero(self.learnable_)
            k = max(1, int(np.ceil(2 * budget / max(len(origins), 1) / H)))
            if len(cand) > k:
                cand = np.sort(rng.choice(cand, k, replace=False))
            Fs = F[cand]
            sc = self._scale(Fs, t0)
            X = _features(Fs, t0, h, self.hour0, sc)
            y = Fs[:, t0:t0 + H] / sc[:, None]
            m = obs[cand, t0:t0 + H]
            Xs.append(X[m])
            ys.append(y[m])
        if not Xs:
            return np.zeros((0, N_FEATURES), np.float32), np.zeros(0)
        X, y = np.concatenate(Xs), np.concatenate(ys)
        if len(y) > budget:
            pick = rng.choice(len(y), budget, replace=False)
            X, y = X[pick], y[pick]
        return X, y

    def _fit_models(self, X, y):
        models = []
        for q in self.quantiles:
            m = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=self.max_iter,
                                              learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
                                              early_stopping=False, random_state=self.random_state)
            models.append(m.fit(X, y))
        return models

    def _origins(self, end):
        first = min(WEEK, max(DAY, end // 3))
        if end - first <= 1:
            return []
        return np.unique(np.linspace(first, end - 1, self.n_origins).astype(int)).tolist()

    def fit(self, Y, y=None):
        F, obs = _clean(Y)
        n, T = F.shape
        rng = np.random.default_rng(self.random_state)
        self.history_ = F
        self.n_observed_ = obs.sum(axis=1)
        self.learnable_ = self.n_observed_ >= self.min_history
        self.fallback_ = SeasonalNaive(DAY, self.horizon, self.quantiles).fit(Y)
        self.calibration_ = np.zeros(len(self.quantiles))
        self.coverage_ = np.full(len(self.quantiles), np.nan)
        self.models_ = None
        if not self.learnable_.any() or T < 2 * DAY:
            self.learnable_ = np.zeros(n, bool)
            return self
        cal = self.calibration_hours if T - self.calibration_hours >= 2 * DAY + DAY else 0
        split = T - cal
        X, yy = self._rows(F, obs, self._origins(split), split, rng, self.max_rows)
        if len(yy) < 50:
            self.learnable_ = np.zeros(n, bool)
            return self
        models = self._fit_models(X, yy)
        if cal:
            H = min(self.horizon, cal)
            h = np.arange(1, H + 1)
            sc = self._scale(F, split)
            Xc = _features(F, split, h, self.hour0, sc)
            m = obs[:, split:split + H] & self.learnable_[:, None]
            spread = Xc[:, :, SPREAD] + 0.05
            Xc, yc, spread = Xc[m], (F[:, split:split + H] / sc[:, None])[m], spread[m]
            if len(yc) > self.max_rows:
                pick = rng.choice(len(yc), self.max_rows, replace=False)
                Xc, yc, spread = Xc[pick], yc[pick], spread[pick]
            if len(yc):
                adj = []
                for q, mod in zip(self.quantiles, models):
                    e = (yc - mod.predict(Xc)) / spread
                    level = min(1.0, np.ceil((len(e) + 1) * q) / len(e))
                    adj.append(np.quantile(e, level))
                self.calibration_ = np.asarray(adj)
                pq = np.stack([mod.predict(Xc) for mod in models], 1) + self.calibration_ * spread[:, None]
                self.coverage_ = (yc[:, None] <= np.maximum.accumulate(pq, axis=1)).mean(axis=0)
            if self.refit:
                X2, y2 = self._rows(F, obs, self._origins(T), T, rng, self.max_rows)
                if len(y2) >= 50:
                    models = self._fit_models(X2, y2)
        self.models_ = models
        return self

    @property
    def model_(self) -> np.ndarray:
        """Per series: which model produced its forecast."""
        return np.where(self.learnable_, "global-hgb-quantile", "seasonal-naive-daily (short history)")

    def predict(self, X=None):
        F = self.history_
        n, T = F.shape
        out = self.fallback_.predict()
        if self.models_ is not None and self.learnable_.any():
            h = np.arange(1, self.horizon + 1)
            sc = self._scale(F, T)
            idx = np.flatnonzero(self.learnable_)
            Xf = _features(F[idx], T, h, self.hour0, sc[idx]).reshape(-1, N_FEATURES)
            pq = np.stack([m.predict(Xf) for m in self.models_], axis=1) + self.calibration_ * (Xf[:, SPREAD:SPREAD + 1] + 0.05)
            out[idx] = pq.reshape(len(idx), self.horizon, -1) * sc[idx, None, None]
        return _finish(out)

    def predict_peak(self, quantile_pred: np.ndarray) -> np.ndarray:
        """Peak per hour: the larger of the top quantile and the max seen at that hour over the last week."""
        F = self.history_
        n, T = F.shape
        top = quantile_pred[:, :, -1]
        if T >= DAY:
            nd = min(T, WEEK) // DAY
            prof = F[:, T - nd * DAY:].reshape(n, nd, DAY).max(axis=1)
            cols = (np.arange(self.horizon)) % DAY
            top = np.maximum(top, prof[:, cols])
        return np.nan_to_num(np.maximum(top, 0.0))
