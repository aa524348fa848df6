"""Roll-ups of a CostResult by any key, with idle cost shared back or shown apart; top waste.

``by`` is a comma-separated list of keys (``"namespace"``, ``"namespace,label:team"``):

===================== =====================================================================
``cluster``           one row for the whole cluster
``namespace``         Kubernetes namespace
``workload``          namespace + workload_kind + workload (top controller)
``pod``, ``container`` namespace + pod (+ container)
``node``              node; also ``instance_type``, ``capacity_type``, ``provider``,
                      ``region``, ``zone``
``label:KEY``         the workload's label KEY, else its namespace's label KEY (Kubecost's
                      behaviour); ``__unlabeled__`` when neither has it
``workload_label:KEY`` / ``namespace_label:KEY`` / ``node_label:KEY``  only that source
===================== =====================================================================

Idle cost (node cost no container was allocated) depends on the grouping:

* grouped only by node attributes (``node``, ``instance_type``, ``node_label:...``, ...):
  each group keeps the idle of its own nodes;
* otherwise idle is cluster-wide, and ``idle_share`` decides: ``none`` shows it as one
  ``__idle__`` row, ``even`` splits it equally over the groups, ``proportional`` splits each
  resource's idle in proportion to the groups' cost of that resource (OpenCost's weighted
  sharing).

Either way the ``total_cost`` column sums to the cluster's node cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analyzer.cost.allocation import IDLE_SHARES, RESOURCES, WORKLOAD, CostResult
from analyzer.cost.efficiency import SUM_COLUMNS, summed, with_efficiency
from analyzer.errors import InputError
from analyzer.units import GIB

IDLE = "__idle__"
UNLABELED = "__unlabeled__"

_PLAIN = {
    "cluster": ["cluster"],
    "namespace": ["namespace"],
    "workload": ["namespace", "workload_kind", "workload"],
    "pod": ["namespace", "pod"],
    "container": ["namespace", "pod", "container"],
    "node": ["node"],
    "instance_type": ["instance_type"],
    "capacity_type": ["capacity_type"],
    "provider": ["provider"],
    "region": ["region"],
    "zone": ["zone"],
}
_NODE_LEVEL = {"cluster", "node", "instance_type", "capacity_type", "provider", "region", "zone"}
_LABEL_KINDS = ("label", "workload_label", "namespace_label", "node_label")


@dataclass(frozen=True)
class Key:
    kind: str  # a _PLAIN name or one of _LABEL_KINDS
    label: str | None = None

    @property
    def columns(self) -> list[str]:
        return _PLAIN[self.kind] if self.label is None else [f"{self.kind}:{self.label}"]

    @property
    def node_level(self) -> bool:
        return self.kind in _NODE_LEVEL or self.kind == "node_label"


def parse_by(by: str) -> list[Key]:
    """Parse ``--by``: comma-separated keys, see the module docstring."""
    keys: list[Key] = []
    for part in [p.strip() for p in str(by).split(",") if p.strip()]:
        kind, sep, label = part.partition(":")
        if sep:
            if kind not in _LABEL_KINDS or not label:
                raise InputError(f"--by {part!r} is not understood; use label:KEY, workload_label:KEY, "
                                 "namespace_label:KEY or node_label:KEY.")
            keys.append(Key(kind, label))
        elif part in _PLAIN:
            keys.append(Key(part))
        else:
            raise InputError(f"--by {part!r} is not one of {', '.join(_PLAIN)} or label:KEY.")
    if not keys:
        raise InputError("--by needs at least one key, e.g. namespace, workload, node or label:team.")
    return keys


def _label(frame: pl.DataFrame, on: list[str], key: str, name: str) -> pl.DataFrame:
    """``on`` columns plus the value of label ``key`` from the frame's ``labels`` list."""
    if frame.height == 0:
        return pl.DataFrame(schema={**{c: frame.schema[c] for c in on}, name: pl.String})
    return frame.select(
        *on,
        pl.col("labels").list.eval(
            pl.element().filter(pl.element().struct.field("key") == key).struct.field("value")
        ).list.first().alias(name),
    )


def _frame_with_keys(result: CostResult, keys: list[Key]) -> pl.DataFrame:
    """Per-container rows with every grouping column attached."""
    df = result.containers.with_columns(pl.lit(result.cluster).alias("cluster"))
    node_attrs = result.nodes.select("node", "instance_type", "capacity_type", "provider", "region", "zone",
                                     "node_labels")
    df = df.join(node_attrs, on="node", how="left")
    wl = result.workload_labels.with_columns(pl.col(c).cast(pl.String) for c in WORKLOAD)
    ns = result.namespace_labels.with_columns(pl.col("namespace").cast(pl.String))
    df = df.with_columns(pl.col(c).cast(pl.String) for c in (*WORKLOAD, "pod", "container"))
    for k in keys:
        if k.label is None:
            continue
        col = k.columns[0]
        if k.kind in ("label", "workload_label"):
            df = df.join(_label(wl, ["namespace", "workload_kind", "workload"], k.label, "_w"),
                         on=["namespace", "workload_kind", "workload"], how="left")
        if k.kind in ("label", "namespace_label"):
            df = df.join(_label(ns, ["namespace"], k.label, "_n"), on="namespace", how="left")
        if k.kind == "node_label":
            df = df.join(_label(result.nodes.rename({"node_labels": "labels"}), ["node"], k.label, "_x"),
                         on="node", how="left")
        value = {"label": pl.coalesce("_w", "_n"), "workload_label": pl.col("_w"), "namespace_label": pl.col("_n"),
                 "node_label": pl.col("_x")}[k.kind]
        df = df.with_columns(value.fill_null(UNLABELED).alias(col))
        df = df.drop([c for c in ("_w", "_n", "_x") if c in df.columns])
    return df


def rollup(result: CostResult, by: str = "namespace", *, idle_share: str | None = None) -> pl.DataFrame:
    """Cost, idle, efficiency and waste per group; ``total_cost`` sums to the cluster's cost.

    Columns: the group keys, ``cpu_cost``, ``memory_cost``, ``gpu_cost``, ``allocated_cost``,
    ``idle_cost`` (idle shared in, or the group's own idle for node groupings), ``total_cost``,
    ``share`` (of the cluster total), ``total_cost_monthly``, ``waste_monthly``, requested and
    used averages (cores, bytes, GPUs), and ``{cpu,memory,gpu,total}_efficiency``. Sorted by
    total cost, highest first.

    Length: one Polars pipeline from allocation rows to grouped cost, idle and waste; its stages depend on
    each other's columns.
    """
    share = idle_share or result.idle_share
    if share not in IDLE_SHARES:
        raise InputError(f"idle share {share!r} is not one of {', '.join(IDLE_SHARES)}.")
    keys = parse_by(by)
    cols = list(dict.fromkeys(c for k in keys for c in k.columns))
    node_level = all(k.node_level for k in keys)
    df = _frame_with_keys(result, keys)
    grouped = df.group_by(cols).agg(summed()) if df.height else pl.DataFrame(
        schema={**{c: pl.String for c in cols}, **{c: pl.Float64 for c in _summed_names()}})
    idle_cols = [f"{r}_idle_cost" for r in RESOURCES]

    if node_level:
        # Idle stays with the nodes it sat on; groups with nodes but no containers still appear.
        nodes = result.nodes.with_columns(pl.lit(result.cluster).alias("cluster"))
        for k in keys:
            if k.kind == "node_label":
                nodes = nodes.join(_label(nodes.rename({"node_labels": "labels"}), ["node"], k.label, k.columns[0]),
                                   on="node", how="left").with_columns(pl.col(k.columns[0]).fill_null(UNLABELED))
        idle = nodes.group_by(cols).agg(pl.col(c).sum() for c in idle_cols)
        grouped = grouped.join(idle, on=cols, how="full", coalesce=True).with_columns(
            pl.col(c).fill_null(0.0) for c in [*_summed_names(), *idle_cols] if not c.endswith("_usage_hours"))
        extra = None
    else:
        totals = result.nodes.select(pl.col(c).sum() for c in idle_cols).row(0, named=True) if result.nodes.height \
            else dict.fromkeys(idle_cols, 0.0)
        n_groups = grouped.height
        if share == "none" or n_groups == 0:
            grouped = grouped.with_columns(pl.lit(0.0).alias(c) for c in idle_cols)
            extra = totals if any(v > 0 for v in totals.values()) else None
        elif share == "even":
            grouped = grouped.with_columns(pl.lit(totals[c] / n_groups).alias(c) for c in idle_cols)
            extra = None
        else:
            exprs = []
            for r in RESOURCES:
                weight_total = grouped.get_column(f"{r}_cost").sum()
                w = (pl.col(f"{r}_cost") / weight_total) if weight_total > 0 else pl.lit(1.0 / n_groups)
                exprs.append((w * totals[f"{r}_idle_cost"]).alias(f"{r}_idle_cost"))
            grouped = grouped.with_columns(exprs)
            extra = None
    out = with_efficiency(grouped)
    if extra is not None:
        idle_row = {c: IDLE for c in cols} | {c: 0.0 for c in _summed_names()} | dict(extra)
        schema = {**dict.fromkeys(cols, pl.String), **dict.fromkeys([*_summed_names(), *idle_cols], pl.Float64)}
        idle_df = pl.DataFrame([idle_row], schema=schema)
        idle_df = idle_df.with_columns(pl.lit(None, pl.Float64).alias(f"{r}_efficiency") for r in (*RESOURCES, "total"))
        out = pl.concat([out.with_columns(pl.col(c).cast(pl.String) for c in cols), idle_df.select(out.columns)],
                        how="vertical_relaxed")
    factor = result.monthly_factor
    hours = result.hours if result.hours > 0 else 1.0
    total_all = result.total_cost
    out = out.with_columns(
        pl.sum_horizontal(f"{r}_cost" for r in RESOURCES).alias("allocated_cost"),
        pl.sum_horizontal(idle_cols).alias("idle_cost"),
    ).with_columns(
        (pl.col("allocated_cost") + pl.col("idle_cost")).alias("total_cost"),
    ).with_columns(
        (pl.col("total_cost") / total_all if total_all > 0 else pl.lit(None, pl.Float64)).alias("share"),
        (pl.col("total_cost") * factor).alias("total_cost_monthly"),
        (pl.sum_horizontal(f"{r}_waste" for r in RESOURCES) * factor).alias("waste_monthly"),
        (pl.col("cpu_request_hours") / hours).alias("cpu_requested"),
        (pl.col("cpu_usage_hours") / hours).alias("cpu_used"),
        (pl.col("memory_request_hours") / hours * GIB).alias("memory_requested"),
        (pl.col("memory_usage_hours") / hours * GIB).alias("memory_used"),
        (pl.col("gpu_request_hours") / hours).alias("gpu_requested"),
        (pl.col("gpu_usage_hours") / hours).alias("gpu_used"),
    )
    return out.select(
        *cols, "cpu_cost", "memory_cost", "gpu_cost", "allocated_cost", *idle_cols, "idle_cost", "total_cost", "share",
        "total_cost_monthly", "waste_monthly", "cpu_requested", "cpu_used", "memory_requested", "memory_used",
        "gpu_requested", "gpu_used", "cpu_efficiency", "memory_efficiency", "gpu_efficiency", "total_efficiency",
    ).with_columns(
        # The idle row has no requests or usage of its own.
        pl.when(pl.col(cols[0]) == IDLE).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("cpu_requested", "cpu_used", "memory_requested", "memory_used", "gpu_requested", "gpu_used")
    ).sort([pl.col(cols[0]) == IDLE, pl.col("total_cost")], descending=[False, True], nulls_last=True)


def _summed_names() -> list[str]:
    return list(SUM_COLUMNS)


def top_waste(result: CostResult, n: int = 10, by: str = "workload") -> pl.DataFrame:
    """The ``n`` groups (workloads by default) wasting the most: requested-but-unused, $/month.

    Columns: group keys, ``waste_monthly`` and its split ``cpu_waste_monthly``,
    ``memory_waste_monthly``, ``gpu_waste_monthly``, ``cost_monthly``, ``waste_fraction``
    (of the group's cost), requested vs used averages, and efficiencies.
    """
    keys = parse_by(by)
    cols = list(dict.fromkeys(c for k in keys for c in k.columns))
    df = _frame_with_keys(result, keys)
    if df.height == 0:
        return pl.DataFrame(schema={**{c: pl.String for c in cols}, "waste_monthly": pl.Float64})
    factor = result.monthly_factor
    hours = result.hours if result.hours > 0 else 1.0
    g = with_efficiency(df.group_by(cols).agg(summed()))
    g = g.with_columns(
        *[(pl.col(f"{r}_waste") * factor).alias(f"{r}_waste_monthly") for r in RESOURCES],
        (pl.sum_horizontal(f"{r}_waste" for r in RESOURCES) * factor).alias("waste_monthly"),
        (pl.sum_horizontal(f"{r}_cost" for r in RESOURCES) * factor).alias("cost_monthly"),
        (pl.col("cpu_request_hours") / hours).alias("cpu_requested"),
        (pl.col("cpu_usage_hours") / hours).alias("cpu_used"),
        (pl.col("memory_request_hours") / hours * GIB).alias("memory_requested"),
        (pl.col("memory_usage_hours") / hours * GIB).alias("memory_used"),
        (pl.col("gpu_request_hours") / hours).alias("gpu_requested"),
        (pl.col("gpu_usage_hours") / hours).alias("gpu_used"),
    ).with_columns(
        pl.when(pl.col("cost_monthly") > 0).then(pl.col("waste_monthly") / pl.col("cost_monthly"))
        .alias("waste_fraction"),
    )
    return (
        g.filter(pl.col("waste_monthly") > 0)
        .sort(["waste_monthly", *cols], descending=[True, *([False] * len(cols))])
        .head(n)
        .select(*cols, "waste_monthly", "cpu_waste_monthly", "memory_waste_monthly", "gpu_waste_monthly",
                "cost_monthly", "waste_fraction", "cpu_requested", "cpu_used", "memory_requested", "memory_used",
                "gpu_requested", "gpu_used", "cpu_efficiency", "memory_efficiency", "gpu_efficiency", "total_efficiency")
    )
