"""Quantile forecasters over a dense (series x hour) matrix, scikit-learn estimator contract.

All models: ``fit(Y)`` with ``Y`` float (n_series, n_hours), NaN = gap, returns the model;
``predict()`` returns (n_series, horizon, n_quantiles) in Y's units for the hours after Y's end,
ordered and >= 0. The contract is scikit-learn's: ``__init__`` only stores its parameters
(``clone``, ``get_params``/``set_params`` work), ``predict`` before ``fit`` raises
``NotFittedError``. ``predict(X)`` on other series: the global model forecasts them (it learnt
across series); the per-series baselines only know the series they were fitted on and raise.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from forecasting.series import DEFAULT_QUANTILES, fill_gaps

DAY, WEEK = 24, 168


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


def _only_fitted(model: BaseEstimator, X) -> None:
    """Per-series baselines forecast the series they were fitted on; new series need ``fit(X)``."""
    check_is_fitted(model)
    if X is not None:
        raise ValueError(f"{type(model).__name__} forecasts the series it was fitted on; call fit(X) for others")


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
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-gap series: NaN, then 0 below
                q = np.nanquantile(err, list(self.quantiles), axis=1).T if err.size else None
            self.offsets_ = np.nan_to_num(q, nan=0.0) if q is not None else np.zeros((F.shape[0], len(self.quantiles)))
        else:
            self.offsets_ = np.zeros((F.shape[0], len(self.quantiles)))
        return self

    def predict(self, X=None, progress=None):
        """``progress(what, done, total)``, if given, hears of each batch of series forecast."""
        _only_fitted(self, X)
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
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-gap series: NaN, then 0 below
            q = np.nanquantile(Yc, list(self.quantiles), axis=1).T if Yc.shape[1] else np.full((Yc.shape[0], len(self.quantiles)), np.nan)
        self.levels_ = np.nan_to_num(q, nan=0.0)
        return self

    def predict(self, X=None):
        _only_fitted(self, X)
        return _finish(np.repeat(self.levels_[:, None, :], self.horizon, axis=1))


def _window_scale(Yn: np.ndarray, F: np.ndarray, t0: int, window: int) -> np.ndarray:
    """Per-series scale: observed mean of the last ``window`` hours before t0 (the backtest's normaliser),
    else the filled window's max, else 1."""
    lo = max(0, t0 - window)
    raw = Yn[:, lo:t0]
    cnt = (~np.isnan(raw)).sum(axis=1)
    mean = np.where(cnt > 0, np.nansum(raw, axis=1) / np.maximum(cnt, 1), 0.0)
    mx = F[:, lo:t0].max(axis=1) if t0 > lo else np.zeros(F.shape[0])
    return np.where(mean > 0, mean, np.where(mx > 0, mx, 1.0))


def _obs_quantile(raw: np.ndarray, filled: np.ndarray, qs, axis: int) -> np.ndarray:
    """Quantiles (leading axis = qs) of the observed values along ``axis`` (NaN = gap), linear
    interpolation, vectorised by sorting (gaps sort last); slices without observations use ``filled``.
    Statistics of forward-filled values would let one old value held over a long gap dominate."""
    srt = np.sort(raw, axis=axis)
    cnt = np.expand_dims((~np.isnan(raw)).sum(axis=axis), axis)
    out = []
    for q in qs:
        pos = q * np.maximum(cnt - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
        a, b = np.take_along_axis(srt, lo, axis), np.take_along_axis(srt, hi, axis)
        out.append(np.squeeze(a + (pos - lo) * (b - a), axis))
    out = np.stack(out)
    return np.where(np.isnan(out), np.quantile(filled, list(qs), axis=axis), out)


def _features(F: np.ndarray, Yn: np.ndarray, t0: int, h: np.ndarray, hour0: int, quantiles, window: int):
    """Feature tensor (n, len(h), k) for targets t0-1+h from F[:, :t0] only, scaled per series, and the scale.

    Three baselines the model corrects (and is blended with) have a column per quantile: the hour-of-day
    profile's quantiles, the daily seasonal-naive quantiles (same hour yesterday + quantile of the
    day-over-day changes) and the window's quantiles (what KRR/VPA use).
    Layout: hour, dow, h, lag 1 d, lag 1 w, profile mean, profile max, profile q (k), seasonal-naive q (k),
    window q (k), stats.
    """
    n, H = F.shape[0], len(h)
    qs = list(quantiles)
    sc = _window_scale(Yn, F, t0, window)
    W = F[:, max(0, t0 - window):t0] / sc[:, None]
    R = Yn[:, max(0, t0 - window):t0] / sc[:, None]  # observed only (NaN = gap), for the baselines' quantiles
    if W.shape[1] == 0:
        W = R = np.zeros((n, 1))
    tau = t0 - 1 + h
    nd = W.shape[1] // DAY
    if nd >= 1:
        P = W[:, W.shape[1] - nd * DAY:].reshape(n, nd, DAY)
        c = (tau - (t0 - nd * DAY)) % DAY
        PR = R[:, R.shape[1] - nd * DAY:].reshape(n, nd, DAY)
        prof = [P.mean(axis=1)[:, c], P.max(axis=1)[:, c], *[p[:, c] for p in _obs_quantile(PR, P, qs, 1)]]
    else:
        prof = [np.repeat(np.quantile(W, q, axis=1)[:, None], H, axis=1) for q in [0.5, 1.0, *qs]]
    lag_d = _seasonal_lag(F, t0, h, DAY) / sc[:, None]
    lag_w = _seasonal_lag(F, t0, h, WEEK) / sc[:, None] if t0 >= WEEK else lag_d
    stats = [*_obs_quantile(R, W, qs, 1), W.max(axis=1), W.std(axis=1)]
    for w in (WEEK, DAY, 6):
        x = W[:, -w:]
        stats += [x.mean(axis=1), np.quantile(x, 0.95, axis=1), x.max(axis=1)]
    d = W[:, DAY:] - W[:, :-DAY] if W.shape[1] > DAY else np.zeros((n, 1))
    stats += [*np.quantile(d, [0.05, 0.5, 0.95], axis=1), W[:, -1], np.full(n, min(t0, window) / window)]
    if R.shape[1] > DAY:  # day-over-day changes between observed hours only
        change = _obs_quantile(R[:, DAY:] - R[:, :-DAY], d, qs, 1)
    else:
        change = np.zeros((len(qs), n))
    naive = [np.maximum(lag_d + c[:, None], 0.0) for c in change]
    per_t = [np.broadcast_to(((hour0 + tau) % DAY)[None, :], (n, H)),
             np.broadcast_to((((hour0 + tau) // DAY) % 7)[None, :], (n, H)),
             np.broadcast_to(h[None, :], (n, H)), lag_d, lag_w, *prof, *naive]
    X = np.empty((n, H, len(per_t) + len(stats)), np.float32)
    for i, col in enumerate(per_t):
        X[:, :, i] = col
    for j, col in enumerate(stats):
        X[:, :, len(per_t) + j] = col[:, None]
    return X, sc


def _baseline_cols(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column indices, per quantile, of the three baselines: window quantile (KRR/VPA), hour-of-day
    profile quantile, daily seasonal-naive quantile (the blend's order after the model)."""
    return 7 + 2 * k + np.arange(k), 7 + np.arange(k), 7 + k + np.arange(k)


class GlobalQuantileForecaster(BaseEstimator):
    """Global quantile model (one HistGradientBoosting quantile regressor per quantile, all series at
    once) that learns corrections to the baselines, blended with them and calibrated out of fold.

    - Targets and features are scaled per series by the observed mean of the last ``window`` hours
      before each origin, so the training loss is the backtest's normalised pinball loss.
    - Features: calendar (hour, weekday, horizon), same-hour lags (1 d, 1 w), hour-of-day profile
      (mean, max, quantiles), daily seasonal-naive quantiles and window quantiles -- the seasonal and
      KRR/VPA baselines -- plus window / week / day / 6 h level statistics and daily-difference quantiles.
    - Training rows come from up to ``n_origins`` rolling origins covering the whole history (each
      origin's targets are the hours after it, inside the history; series subsampled per origin to
      stay within ``max_rows``).
    - Series are split in two folds; one model per fold and quantile, each predicting the other fold,
      so every training row has an out-of-fold forecast. The forecast combines four estimates of each
      quantile: the model's, the window's (KRR/VPA), the hour-of-day profile's and the daily seasonal
      naive's. ``blend="median"`` (default) takes their median -- on the real traces the model is wrong
      mostly where the baselines agree (flat, quantised series) and vice versa, and a median follows
      whichever estimates agree; four weights instead give a weighted mean. With ``calibrate`` it is
      multiplied per quantile by the factor that makes out-of-fold coverage equal the quantile
      (split-conformal on held-out series, scale-free). Prediction averages the two fold models
      (``average_folds``; lower variance, slightly conservative) or uses, per series, the fold model
      that did not see it (exactly the calibrated setting, half the predict cost).
    - Series with fewer than ``min_history`` observed hours use the daily seasonal-naive baseline
      (``model_`` says which).
    """

    def __init__(self, quantiles=DEFAULT_QUANTILES, horizon: int = WEEK, max_iter: int = 60,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, max_rows: int = 150_000,
                 n_origins: int = 28, window: int = 14 * DAY, blend="median", calibrate: bool = True,
                 average_folds: bool = True, min_history: int = 3 * DAY, hour0: int = 0, random_state: int = 0):
        self.quantiles = quantiles
        self.horizon = horizon
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_rows = max_rows
        self.n_origins = n_origins
        self.window = window
        self.blend = blend
        self.calibrate = calibrate
        self.average_folds = average_folds
        self.min_history = min_history
        self.hour0 = hour0
        self.random_state = random_state

    def _origins(self, T: int) -> list[int]:
        if T - DAY <= 1:
            return []
        return np.unique(np.linspace(DAY, T - 1, self.n_origins).astype(int)).tolist()

    def _rows(self, F, Yn, obs, rng):
        T = F.shape[1]
        origins = self._origins(T)
        cand = np.flatnonzero(self.learnable_)
        Xs, ys = [], []
        for t0 in origins:
            H = min(self.horizon, T - t0)
            h = np.arange(1, H + 1)
            k = max(1, int(np.ceil(2 * self.max_rows / len(origins) / H)))
            pick = np.sort(rng.choice(cand, k, replace=False)) if len(cand) > k else cand
            X, sc = _features(F[pick], Yn[pick], t0, h, self.hour0, self.quantiles, self.window)
            m = obs[pick, t0:t0 + H]
            Xs.append(X[m])
            ys.append((F[pick, t0:t0 + H] / sc[:, None])[m])
            ys[-1] = np.c_[ys[-1], np.broadcast_to(pick[:, None], m.shape)[m]]
        if not Xs:
            return np.zeros((0, 1), np.float32), np.zeros(0), np.zeros(0, int)
        X, yy = np.concatenate(Xs), np.concatenate(ys)
        if len(yy) > self.max_rows:
            sel = rng.choice(len(yy), self.max_rows, replace=False)
            X, yy = X[sel], yy[sel]
        return X, yy[:, 0], yy[:, 1].astype(int)

    def _blend(self, model_pred: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(rows, k) blend of the model's quantiles with the three baselines' (in scaled units)."""
        parts = np.stack([model_pred, *[X[:, cols] for cols in _baseline_cols(len(self.quantiles))]])
        if isinstance(self.blend, str):
            out = np.median(parts, axis=0)
        else:
            w = np.asarray(self.blend, float)
            out = np.tensordot(w, parts, axes=1) / w.sum()
        return np.maximum.accumulate(out, axis=1)

    def _check_blend(self) -> None:
        if isinstance(self.blend, str):
            if self.blend != "median":
                raise ValueError(f"blend must be 'median' or four weights, got {self.blend!r}")
            return
        w = np.asarray(self.blend, float)
        if w.shape != (4,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"blend weights (model, window, profile, seasonal naive) must be four "
                             f"non-negative numbers, got {self.blend!r}")

    def fit(self, Y, y=None, progress=None):
        """``progress(what, done, total)``, if given, hears of each quantile model fitted."""
        self._check_blend()
        F, obs = _clean(Y)
        Yn = np.where(obs, F, np.nan)
        n, T = F.shape
        k = len(self.quantiles)
        rng = np.random.default_rng(self.random_state)
        self.history_ = F
        self.observed_ = obs
        self.n_observed_ = obs.sum(axis=1)
        self.learnable_ = self.n_observed_ >= self.min_history
        self.fallback_ = SeasonalNaive(DAY, self.horizon, self.quantiles).fit(Y)
        self.calibration_ = np.ones(k)
        self.coverage_ = np.full(k, np.nan)
        self.models_ = None
        self.fold_ = np.zeros(n, int)
        if not self.learnable_.any() or T < 2 * DAY:
            self.learnable_ = np.zeros(n, bool)
            return self
        X, yy, sid = self._rows(F, Yn, obs, rng)
        self.fold_ = rng.integers(0, 2, n)
        fold = self.fold_[sid]
        if len(yy) < 50 or min(np.bincount(fold, minlength=2)) < 25:
            self.learnable_ = np.zeros(n, bool)
            return self
        models, oof = [], np.empty((len(yy), k))
        for i, q in enumerate(self.quantiles):
            pair = []
            for f in (0, 1):
                if progress:
                    progress("fit quantile models", 2 * i + f, 2 * k)
                m = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=self.max_iter,
                                                  learning_rate=self.learning_rate,
                                                  max_leaf_nodes=self.max_leaf_nodes, early_stopping=False,
                                                  random_state=self.random_state).fit(X[fold == f], yy[fold == f])
                oof[fold != f, i] = m.predict(X[fold != f])
                pair.append(m)
            models.append(pair)
        if progress:
            progress("fit quantile models", 2 * k, 2 * k)
        pred = self._blend(oof, X)
        if self.calibrate:
            # scale-free split conformal: the factor c with mean(y <= c * pred) = q on held-out series
            with np.errstate(all="ignore"):
                ratio = np.where(pred > 0, yy[:, None] / pred, np.where(yy[:, None] > 0, np.inf, 0.0))
            c = np.array([np.quantile(ratio[:, i], q, method="higher") for i, q in enumerate(self.quantiles)])
            self.calibration_ = np.clip(np.nan_to_num(c, nan=1.0, posinf=2.0), 0.5, 2.0)
            pred = np.maximum.accumulate(pred * self.calibration_, axis=1)
        self.coverage_ = (yy[:, None] <= pred).mean(axis=0)
        self.models_ = models
        return self

    @property
    def model_(self) -> np.ndarray:
        """Per series: which model produced its forecast."""
        return np.where(self.learnable_, "global-hgb-quantile", "seasonal-naive-daily (short history)")

    def predict(self, X=None, progress=None):
        """Quantiles for the hours after the history: the fitted series' (``X`` None) or ``X``'s own.

        New series are forecast by both fold models averaged (neither saw them); those with fewer
        than ``min_history`` observed hours get the daily seasonal-naive baseline, as in ``fit``.
        ``progress(what, done, total)``, if given, hears of each batch of series forecast.
        """
        check_is_fitted(self)
        if X is None:
            return self._forecast(self.history_, self.observed_, self.learnable_, self.fallback_, 1 - self.fold_,
                                  progress)
        F, obs = _clean(X)
        learnable = (obs.sum(axis=1) >= self.min_history) & (self.models_ is not None)
        return self._forecast(F, obs, learnable, SeasonalNaive(DAY, self.horizon, self.quantiles).fit(X), None,
                              progress)

    def _forecast(self, F, observed, learnable, fallback, other_fold, progress=None) -> np.ndarray:
        T = F.shape[1]
        out = fallback.predict()
        if self.models_ is not None and learnable.any():
            h = np.arange(1, self.horizon + 1)
            idx = np.flatnonzero(learnable)
            Yn = np.where(observed[idx], F[idx], np.nan)
            done = 0
            for part in np.array_split(idx, max(1, len(idx) * self.horizon // 500_000)):
                if progress:
                    progress("forecast series", done, len(idx))
                done += len(part)
                sel = np.searchsorted(idx, part)
                Xf, sc = _features(F[part], Yn[sel], T, h, self.hour0, self.quantiles, self.window)
                Xf = Xf.reshape(-1, Xf.shape[-1])
                if self.average_folds or other_fold is None:
                    mp = np.stack([(pair[0].predict(Xf) + pair[1].predict(Xf)) / 2 for pair in self.models_], axis=1)
                else:  # each series forecast by the fold model that did not train on it, as in calibration
                    other = np.repeat(other_fold[part], self.horizon)
                    mp = np.zeros((len(Xf), len(self.models_)))
                    for i, pair in enumerate(self.models_):
                        for f in (0, 1):
                            if (other == f).any():
                                mp[other == f, i] = pair[f].predict(Xf[other == f])
                pq = self._blend(mp, Xf) * self.calibration_
                out[part] = pq.reshape(len(part), self.horizon, -1) * sc[:, None, None]
            if progress:
                progress("forecast series", done, len(idx))
        return _finish(out)

    def predict_peak(self, quantile_pred: np.ndarray, X=None) -> np.ndarray:
        """Peak per hour: the larger of the top quantile and the max seen at that hour over the last week."""
        check_is_fitted(self)
        F = self.history_ if X is None else _clean(X)[0]
        n, T = F.shape
        top = quantile_pred[:, :, -1]
        if T >= DAY:
            nd = min(T, WEEK) // DAY
            prof = F[:, T - nd * DAY:].reshape(n, nd, DAY).max(axis=1)
            cols = (np.arange(self.horizon)) % DAY
            top = np.maximum(top, prof[:, cols])
        return np.nan_to_num(np.maximum(top, 0.0))
