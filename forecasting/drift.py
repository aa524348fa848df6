"""Drift detection over a (series x hour) matrix, vectorised across series.

Each hour is compared with the same hour on the previous days (median of 1..3 days back), which
removes daily seasonality. A windowed two-sample test then compares the ``post`` hours after a
candidate change with the ``pre`` hours before it:
- level shift: |mean(post) - mean(pre)| > z * robust sd(pre), and at least ``min_rel`` of the level;
- variance shift: sd(post) / sd(pre) outside [1/ratio, ratio];
- growth trend: a least-squares slope over the last ``trend_hours`` adding > ``trend_rel`` of the
  level per day with R^2 > 0.8 (memory leaks).
Alarms within ``refractory`` hours of an earlier one are merged.
"""

from __future__ import annotations

import numpy as np

from forecasting.series import fill_gaps


def _window_sums(x: np.ndarray, w: int) -> np.ndarray:
    """s[:, t] = sum x[:, t-w:t] for t >= w (NaN before)."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    out = np.full(x.shape, np.nan)
    out[:, w:] = (c[:, w:-1] - c[:, :-w - 1]) if x.shape[1] > w else out[:, w:]
    return out


def detect(Y: np.ndarray, pre: int = 48, post: int = 6, z: float = 4.5, min_rel: float = 0.25,
           ratio: float = 5.0, refractory: int = 72, trend_hours: int = 7 * 24, trend_rel: float = 0.03):
    """Return a list of (series_index, hour_index, before, after, kind) tuples (arrays)."""
    Y = np.asarray(Y, dtype=float)
    F = fill_gaps(np.where(np.isfinite(Y) & (Y >= 0), Y, np.nan))
    n, T = F.shape
    events: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]] = []
    if T >= pre + post + 72:
        # deseasonalise with the median of the same hour 1..3 days before
        lagged = np.stack([np.roll(F, 24 * k, axis=1) for k in (1, 2, 3)])
        base = np.median(lagged, axis=0)
        base[:, :72] = F[:, :72]
        r = F - base
        # candidate change at t: pre = r[t-pre:t], post = r[t:t+post]
        s1, s2 = _window_sums(r, pre), _window_sums(r * r, pre)  # ending before t
        p1, p2 = _window_sums(r, post), _window_sums(r * r, post)
        m_pre = s1 / pre
        v_pre = np.maximum(s2 / pre - m_pre ** 2, 0)
        # post window starting at t == window ending at t+post
        m_post = np.full((n, T), np.nan)
        v_post = np.full((n, T), np.nan)
        m_post[:, :T - post] = (p1 / post)[:, post:]
        v_post[:, :T - post] = np.maximum((p2 / post)[:, post:] - m_post[:, :T - post] ** 2, 0)
        level_pre = _window_sums(F, pre) / pre
        lp = _window_sums(F, post) / post
        level_post = np.full((n, T), np.nan)
        level_post[:, :T - post] = lp[:, post:]
        scale = np.nanmean(np.abs(F), axis=1, keepdims=True) + 1e-12
        sd = np.sqrt(v_pre) + 0.05 * scale
        valid = np.zeros((n, T), bool)
        valid[:, pre + 72:T - post] = True
        diff = np.abs(m_post - m_pre)
        with np.errstate(all="ignore"):
            level = valid & (diff > z * sd / np.sqrt(post)) & (diff > min_rel * np.maximum(level_pre, 0.05 * scale))
            vr = np.sqrt(v_post + (0.05 * scale) ** 2) / np.sqrt(v_pre + (0.05 * scale) ** 2)
            var = valid & ~level & ((vr > ratio) | (vr < 1 / ratio))
        s, t = _suppress(level, np.nan_to_num(diff / sd), refractory)
        events.append((s, t, level_pre[s, t], level_post[s, t], "level_shift"))
        # a level shift also changes the deseasonalised variance for a few days: no variance alarm
        # from 6 h before a level shift until 3 days after it
        last = np.full((n, T), -10 ** 9)
        last[s, t] = t
        np.maximum.accumulate(last, axis=1, out=last)
        nxt = np.full((n, T), 10 ** 9)
        nxt[s, t] = t
        nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
        hours = np.arange(T)[None, :]
        var &= (hours - last > 3 * 24) & (nxt - hours > post)
        s, t = _suppress(var, np.nan_to_num(np.abs(np.log(np.nan_to_num(vr, nan=1.0) + 1e-12))), refractory)
        events.append((s, t, level_pre[s, t], level_post[s, t], "variance_shift"))
    if T >= trend_hours:
        w = F[:, -trend_hours:]
        x = np.arange(trend_hours, dtype=float)
        xc = x - x.mean()
        slope = (w - w.mean(1, keepdims=True)) @ xc / (xc @ xc)
        fit = w.mean(1, keepdims=True) + slope[:, None] * xc
        ss_res = ((w - fit) ** 2).sum(1)
        ss_tot = ((w - w.mean(1, keepdims=True)) ** 2).sum(1) + 1e-12
        r2 = 1 - ss_res / ss_tot
        lvl = np.abs(w.mean(1)) + 1e-12
        grow = (slope * 24 / lvl > trend_rel) & (r2 > 0.8)
        s = np.flatnonzero(grow)
        t = np.full(len(s), T - trend_hours, dtype=int)
        events.append((s, t, fit[s, 0], fit[s, -1], "growth_trend"))
    return events


def _suppress(mask: np.ndarray, score: np.ndarray, refractory: int):
    """First alarm of each run, then nothing for ``refractory`` hours, per series (vectorised by run)."""
    s, t = np.nonzero(mask)
    if len(s) == 0:
        return s, t
    # group consecutive candidate hours of a series into runs separated by > refractory
    new = np.ones(len(s), bool)
    new[1:] = (s[1:] != s[:-1]) | (t[1:] - t[:-1] > refractory)
    run = np.cumsum(new) - 1
    # pick the best-scoring hour within the first ``post`` hours of each run
    start_t = t[new][run]
    sc = np.where(t - start_t <= 6, score[s, t], -np.inf)
    order = np.lexsort((-sc, run))
    first = np.ones(len(order), bool)
    first[1:] = run[order][1:] != run[order][:-1]
    pick = order[first]
    return s[pick], t[pick]
