"""One value per series over the window, without making Prometheus read every sample.

The specs the collector needs from kube-state-metrics (requests, limits, owners, replicas, node
capacity and labels) are series whose value almost never changes, yet they are scraped as often as
the usage itself: ``last_over_time(x[14d])`` makes Prometheus decode every one of those samples,
as many as the CPU usage query reads (measured on the 200-workload benchmark: 0.9 s of server CPU
for requests and limits alone, against 0.5 s for the whole CPU usage answer).

``read_last`` gets the same answer reading only what it must:

1. the raw series at the **end** of the window (an instant query, five minutes of lookback): the
   exact last value of every series still alive;
2. the **series index** (``/api/v1/series``) over the window: every series that exists, from the
   index alone (no samples read). Those not alive at the end ended during the window (pods
   replaced, nodes removed);
3. for those only (narrowed by one label, e.g. ``pod=~"a|b"``), a **grid**: a range query of the
   raw series at a coarse step (``PrometheusConfig.spec_grid``, 6 h): Prometheus only seeks to each
   point instead of decoding the whole window. Each series' value at its last point (the smallest
   for ``min_over_time``, whose series, start times, are constant anyway);
4. a **fill**: the exact ``fn(x[window])`` of the series the grid missed too (pods that lived less
   than a grid step), narrowed to them, and of parts that must always be exact (``avg_over_time``).
   A family with more ended series than a selector can name (``MAX_NARROW``: a CronJob every few
   minutes) skips the grid and is scanned exactly, so reading it never costs much more than the
   exact scan alone.

The client then aggregates (``max by``) as the exact query would. The answer is the exact one for
every series whose value does not change (a pod's requests, its owner, its start time) and for
every series still alive at the end of the window (read at the end itself); for an
object deleted during the window whose value changed after the last grid point before its end
(a Deployment's replicas), it is the value up to one grid step before the end. Short windows and
other engines (VictoriaMetrics reads a whole step behind each point anyway) take the exact query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from analyzer.collectors import promql as q

log = logging.getLogger("kubetune.collect.prometheus")

LOOKBACK = 300.0  # Prometheus's default lookback delta: a grid point sees the samples this far back
MAX_NARROW = 2000  # more ended series than this to name: the family is scanned exactly instead
# The label that narrows a family's fill to the series the grid missed, in order of preference.
NARROW_BY = ("pod", "replicaset", "job_name", "node", "horizontalpodautoscaler", "deployment", "statefulset",
             "daemonset", "namespace")

Key = tuple[str, tuple[tuple[str, str], ...]]


def gridded(parts: list[q.Last]) -> list[q.Last]:
    """The parts read by the grid (the rest, ``avg_over_time``, always exactly)."""
    return [p for p in parts if p.fn in ("last_over_time", "min_over_time")]


def use_grid(grid: float, engine: str, window: float) -> bool:
    """The grid pays off on Prometheus for windows of several grid steps; elsewhere the exact query."""
    return grid > 0 and engine == "prometheus" and window >= 3 * grid


def index_selectors(parts: list[q.Last], scope: q.Scope) -> list[str]:
    """The ``match[]`` selectors of the series index ``read_last`` and ``read_increase`` need for
    these parts (all but those always read exactly)."""
    return [p.selector(scope) for p in parts if p.fn != "avg_over_time"]


def read_last(client: Any, parts: list[q.Last], scope: q.Scope, t_end: float, window: float, what: str, *,
              grid: float, index: Callable[[], list[dict[str, str]]] | None) -> tuple[list[dict[str, str]], np.ndarray]:
    """``last_exact(parts)`` at ``t_end`` as (labels, values); ``index`` (the series index over the
    window, holding at least ``index_selectors(parts)``) None: the exact query."""
    if not parts:
        return [], np.empty(0)
    on_grid = gridded(parts)
    metrics = [p.metric for p in on_grid]
    if index is None or not on_grid or len(set(metrics)) != len(metrics):
        return client.instant(q.last_exact(parts, scope, window), t_end, what)
    by_metric = {p.metric: p for p in on_grid}
    values = _raw_values(*client.instant(q.last_grid([(p, ()) for p in on_grid], scope), t_end, what))
    existing = index()
    ended = _missed(existing, by_metric, values)
    narrow = {tag: _narrow(labs) for tag, labs in ended.items()}
    # Too many ended series to name (or no label to name them by): the exact scan of that family
    # straight away, so the answer never costs more than the exact scan plus the instant query.
    whole = [p for p in on_grid if p.tag in narrow and narrow[p.tag] is None]
    on_points = [(p, narrow[p.tag]) for p in on_grid if narrow.get(p.tag) is not None]
    if on_points:
        n = int((window - LOOKBACK) // grid)
        query = q.last_grid(on_points, scope)
        for key, v in _grid_values(client.range(query, t_end - n * grid, t_end, grid, f"{what} (ended series)"),
                                   {p.tag: p for p, _ in on_points}).items():
            values.setdefault(key, v)
    missed = _missed(existing, by_metric, values)
    fill = [(p, ()) for p in whole]
    fill += [(p, _narrow(missed[p.tag]) or ()) for p, _ in on_points if p.tag in missed]
    fill += [(p, ()) for p in parts if p not in on_grid]
    if fill:
        log.info("%s: %d series read exactly (ended between grid points, or too many to name)", what,
                 sum(len(missed.get(p.tag, ())) for p, _ in fill))
        labels, vals = client.instant(q.last_fill(fill, scope, window), t_end, f"{what} (fill)")
        for lab, v in zip(labels, vals, strict=True):
            values[_key(lab.get("kt", ""), lab)] = float(v)  # exact over the window: it wins over the grid
    return _aggregate(values, {p.tag: p for p in parts})


def read_increase(client: Any, parts: list[q.Last], scope: q.Scope, t_end: float, window: float, what: str, *,
                  index: Callable[[], list[dict[str, str]]] | None, scrape: float = 60.0
                  ) -> tuple[list[dict[str, str]], np.ndarray]:
    """``max by (labels) (increase(counter[window]))`` per part, reading two points per series where it can.

    A counter alive at both ends of the window grew by its last value minus its first (one instant
    query reading the end and the window's first five minutes, or two scrape intervals if longer,
    of each series). Series that started or ended during the window (the index says which) and any
    that went down (a reset) are read exactly with ``increase``, narrowed to them. Unlike
    ``increase``, the difference is not extrapolated to the window's edges: for throttled/all CFS
    periods, read at the same scrapes, the ratio is the same. ``index`` None: the exact query.
    """
    if not parts:
        return [], np.empty(0)
    if index is None:
        return client.instant(q.increase_exact(parts, scope, window), t_end, what)
    ends = q.grew_ends(parts, scope, window, max(LOOKBACK, 2 * scrape))
    values = {key: v for key, v in _raw_values(*client.instant(ends, t_end, what)).items() if v >= 0}
    missed = _missed(index(), {p.metric: p for p in parts}, values)
    if missed:
        fill = [(p, _narrow(missed[p.tag]) or ()) for p in parts if p.tag in missed]
        labels, vals = client.instant(q.last_fill(fill, scope, window), t_end, f"{what} (fill)")
        for key, v in _raw_values(labels, vals).items():
            values.setdefault(key, v)  # the same rule for every series, however narrow the fill was
    return _aggregate(values, {p.tag: p for p in parts})


def read_grew(client: Any, parts: list[q.Last], scope: q.Scope, t_end: float, window: float, what: str, *,
              index: Callable[[], list[dict[str, str]]] | None, scrape: float = 60.0
              ) -> tuple[list[dict[str, str]], np.ndarray]:
    """The keys whose counter grew in the window (``read_increase`` when ``index`` is given, else the
    exact query, which keeps only those on the server)."""
    if not parts:
        return [], np.empty(0)
    if index is None:
        return client.instant(q.increase_exact(parts, scope, window, grew_only=True), t_end, what)
    labels, values = read_increase(client, parts, scope, t_end, window, what, index=index, scrape=scrape)
    grown = values > 0
    return [lab for lab, g in zip(labels, grown, strict=True) if g], values[grown]


def _raw_values(labels: list[dict[str, str]], values: np.ndarray) -> dict[Key, float]:
    return {_key(lab.get("kt", ""), lab): float(v) for lab, v in zip(labels, values, strict=True)}


def _missed(index: list[dict[str, str]], by_metric: dict[str, q.Last],
            values: dict[Key, float]) -> dict[str, list[dict[str, str]]]:
    """Per part tag: the index's series that have no value yet."""
    out: dict[str, list[dict[str, str]]] = {}
    for lab in index:
        part = by_metric.get(lab.get("__name__", ""))
        if part is not None and _key(part.tag, lab) not in values:
            out.setdefault(part.tag, []).append(lab)
    return out


def _key(tag: str, labels: dict[str, str]) -> Key:
    return tag, tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", "kt") and v != ""))


def _grid_values(matrices: list, parts: dict[str, q.Last]) -> dict[Key, float]:
    """Per series: the value at its last grid point (the smallest one for ``min_over_time``)."""
    out: dict[Key, float] = {}
    for m in matrices:
        if not m.labels:
            continue
        per = m.samples.sort("t").group_by("series").agg(pl.col("v").last().alias("last"),
                                                        pl.col("v").min().alias("min"))
        for series, last, low in per.iter_rows():
            lab = m.labels[series]
            tag = lab.get("kt", "")
            part = parts.get(tag)
            if part is None:
                continue
            key = _key(tag, lab)
            value = low if part.fn == "min_over_time" else last
            if part.fn == "min_over_time" and key in out:
                value = min(value, out[key])  # the same series in two time shards
            out[key] = value  # shards come in time order: a later shard's last point wins
    return out


def _narrow(missed: list[dict[str, str]]) -> tuple[str, ...] | None:
    """Matchers that select the missed series (and maybe a few more, read exactly too); None when
    there are too many to name (``MAX_NARROW``) or no label names them all."""
    for label in NARROW_BY:
        values = {lab.get(label, "") for lab in missed}
        if "" in values:
            continue
        if len(values) > MAX_NARROW:
            return None
        out = [f"{label}=~{q.quote(q.regex_alternation(sorted(values)))}"]
        if label != "namespace" and all(lab.get("namespace") for lab in missed):
            namespaces = sorted({lab["namespace"] for lab in missed})
            out.append(f"namespace=~{q.quote(q.regex_alternation(namespaces))}")
        return tuple(out)
    return None


def _aggregate(values: dict[Key, float], parts: dict[str, q.Last]) -> tuple[list[dict[str, str]], np.ndarray]:
    """``max by (labels)`` per part, as the exact query aggregates on the server."""
    best: dict[Key, float] = {}
    for (tag, items), v in values.items():
        part = parts.get(tag)
        if part is None or np.isnan(v):
            continue
        if part.labels is not None:
            lab = dict(items)
            items = tuple(sorted((k, lab[k]) for k in part.labels if lab.get(k)))
        key = (tag, items)
        if key not in best or v > best[key]:
            best[key] = v
    labels = [{**dict(items), "kt": tag} for tag, items in best]
    return labels, np.array(list(best.values()), dtype=np.float64)
