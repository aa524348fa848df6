"""Narrowing a Snapshot to some namespaces and workload labels: `-n/--namespace` and `--selector`.

A namespace pattern is an exact name or a regular expression matched against the whole name
(anchored, as PromQL's ``=~``), the same on every command. A selector is ``LABEL=VALUE`` on the
workload's labels; several patterns OR, several selectors AND. Nodes are never filtered: they are
the cluster the workloads run on (cost still prices whole nodes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from analyzer.errors import InputError
from analyzer.snapshot import Snapshot

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# pod-level frames that carry a namespace (and, for the selector, a workload)
_POD_FRAMES = ("usage", "containers", "workloads", "events", "gpus")
WORKLOAD_KEY = ("namespace", "workload_kind", "workload")


def is_exact_name(pattern: str) -> bool:
    """A plain namespace name (read namespace by namespace by the API collector), not a pattern."""
    return bool(_DNS_LABEL.fullmatch(pattern))


def namespace_expr(patterns: Sequence[str], column: str = "namespace") -> pl.Expr:
    """True where ``column`` is one of the names or matches one of the patterns as a whole."""
    parts = []
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise InputError(f"--namespace {p!r} is neither a name nor a regular expression ({exc}).") from None
        parts.append(f"(?:{p})")
    return pl.col(column).cast(pl.String).str.contains(f"^(?:{'|'.join(parts)})$")


def parse_selectors(selectors: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for s in selectors:
        label, sep, value = s.partition("=")
        if not sep or not label.strip():
            raise InputError(f"--selector needs LABEL=VALUE, got {s!r}.")
        pairs.append((label.strip(), value.strip()))
    return pairs


def selected_workloads(workloads: pl.DataFrame, selectors: Sequence[str]) -> pl.DataFrame:
    """The (namespace, workload_kind, workload) keys whose labels hold every LABEL=VALUE."""
    keep = pl.lit(True)
    for label, value in parse_selectors(selectors):
        keep = keep & pl.col("labels").list.eval(
            (pl.element().struct.field("key") == label) & (pl.element().struct.field("value") == value)).list.any()
    return workloads.filter(keep).select(*[pl.col(k).cast(pl.String) for k in WORKLOAD_KEY]).unique()


def _key_expr() -> pl.Expr:
    return pl.concat_str([pl.col(k).cast(pl.String) for k in WORKLOAD_KEY], separator="\x00")


def filter_snapshot(snap: Snapshot, namespaces: Sequence[str] = (), selectors: Sequence[str] = ()) -> Snapshot:
    """The snapshot with only the pod-level rows the filters keep (nodes untouched)."""
    if not namespaces and not selectors:
        return snap
    frames = {}
    keys = selected_workloads(snap.workloads, selectors) if selectors else None
    for name in _POD_FRAMES:
        df = getattr(snap, name)
        if namespaces and "namespace" in df.columns:
            df = df.filter(namespace_expr(namespaces))
        if keys is not None and all(k in df.columns for k in WORKLOAD_KEY):
            df = df.filter(_key_expr().is_in(keys.select(_key_expr()).to_series().implode()))
        elif keys is not None and name == "gpus":
            df = df.filter(pl.col("namespace").is_null())  # no workload key: keep only the unallocated devices
        frames[name] = df
    if namespaces and "namespace" in snap.namespaces.columns:
        frames["namespaces"] = snap.namespaces.filter(namespace_expr(namespaces))
    return replace(snap, **frames)
