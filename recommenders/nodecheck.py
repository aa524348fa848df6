"""The node check of burstable memory: pack the new requests onto nodes and replay their history.

Burstable requests save money only when pods are packed onto fewer nodes, and the same packing
is what turns a container's memory above its request into node memory pressure (the kubelet then
evicts Burstable pods first). So the check does what the scheduler would roughly do and looks:

* **pack** (``pack``): first-fit decreasing by memory request, a pod goes to the first open node
  where both its memory and CPU requests fit, else a new node (a pod bigger than a node gets one
  of its own). A stand-in for the scheduler, not a copy of it.
* **replay** (``node_pressure``): the pods' joint memory history on that packing; a node-step is
  *over* when the summed memory use of its pods exceeds the node's allocatable memory.
* **raise** (``check_and_raise``): pods on nodes that were over get their requests raised to the
  guaranteed value (the limit) and everything is packed again, until the share of node-steps over
  allocatable is within ``node_pressure_risk``. Guaranteed requests (>= each pod's peak) can never
  overflow on the history itself, so this ends.

Pods are the ones alive at the end of the window (the ones the new requests apply to); the
snapshot's node types give the node size (the most common allocatable), else ``node_memory`` /
``node_cpu`` from the policy, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from analyzer.snapshot import Snapshot
from analyzer.units import GIB

KEY = ["namespace", "workload_kind", "workload", "container"]


def pack(memory: np.ndarray, cpu: np.ndarray, node_memory: float, node_cpu: float) -> np.ndarray:
    """Node index per pod: first-fit decreasing by memory request (ties by CPU), both must fit (a pod
    bigger than a node gets a node of its own)."""
    n = len(memory)
    node = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return node
    order = np.lexsort((-cpu, -memory))
    free_m = np.empty(n, dtype=float)
    free_c = np.empty(n, dtype=float)
    opened = 0
    for i in order:
        m, c = memory[i], cpu[i]
        if opened:
            fits = (free_m[:opened] >= m) & (free_c[:opened] >= c)
            j = int(np.argmax(fits)) if fits.any() else -1
        else:
            j = -1
        if j < 0:
            j = opened
            free_m[j], free_c[j] = node_memory, node_cpu
            opened += 1
        free_m[j] -= m
        free_c[j] -= c
        node[i] = j
    return node


def node_pressure(node: np.ndarray, use: np.ndarray, node_memory: float) -> tuple[np.ndarray, np.ndarray]:
    """Per node: steps with summed use above ``node_memory`` and steps with any pod data.

    ``use`` is (pods, steps) memory use in bytes, NaN where a pod has no sample."""
    if use.size == 0:
        return np.zeros(0), np.zeros(0)
    n_nodes = int(node.max()) + 1
    order = np.argsort(node, kind="stable")
    sorted_nodes = node[order]
    starts = np.flatnonzero(np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]])
    filled = np.nan_to_num(use[order], nan=0.0)
    total = np.add.reduceat(filled, starts, axis=0)
    present = np.add.reduceat(~np.isnan(use[order]), starts, axis=0) > 0
    over = np.zeros(n_nodes)
    steps = np.zeros(n_nodes)
    ids = sorted_nodes[starts]
    over[ids] = ((total > node_memory) & present).sum(axis=1)
    steps[ids] = present.sum(axis=1)
    return over, steps


@dataclass
class NodeCheck:
    """What the check found: nodes needed today and after, the share of node-steps over allocatable
    before and after raising, which pods were raised, and the node size used."""

    nodes_today: int
    nodes_after: int
    pressure_first: float
    pressure_after: float
    raised: np.ndarray
    node_memory: float
    node_cpu: float
    rounds: int
    oversized: int = 0  # pods whose guaranteed memory is bigger than a node: not packed
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        return {"nodes_today": self.nodes_today, "nodes_after": self.nodes_after,
                "node_pressure_first": self.pressure_first, "node_pressure": self.pressure_after,
                "pods_raised": int(self.raised.sum()), "node_memory_bytes": self.node_memory,
                "node_cpu_cores": self.node_cpu, "rounds": self.rounds, "pods_bigger_than_a_node": self.oversized}


def check_and_raise(request: np.ndarray, guaranteed: np.ndarray, cpu: np.ndarray, today_memory: np.ndarray,
                    today_cpu: np.ndarray, use: np.ndarray, node_memory: float, node_cpu: float,
                    risk: float, max_rounds: int = 8) -> tuple[np.ndarray, NodeCheck]:
    """Per pod memory requests after the check (``request`` raised to ``guaranteed`` on nodes that
    were over allocatable, repacked, until the share of node-steps over is within ``risk``)."""
    req = np.minimum(request.astype(float), guaranteed)
    # a pod whose guaranteed memory exceeds a node needs a bigger node type whatever its request:
    # guaranteed, not packed, counted apart
    oversized = guaranteed > node_memory
    raised = oversized & (req < guaranteed)
    req[oversized] = guaranteed[oversized]
    fit = np.flatnonzero(~oversized)
    first = None
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        node = np.full(len(req), -1, dtype=np.int64)
        node[fit] = pack(req[fit], cpu[fit], node_memory, node_cpu)
        over, steps = node_pressure(node[fit], use[fit], node_memory)
        share = float(over.sum() / steps.sum()) if steps.sum() else 0.0
        first = share if first is None else first
        if share <= risk:
            break
        hot = np.isin(node, np.flatnonzero(over > 0)) & (req < guaranteed) & ~oversized
        if not hot.any():
            break
        req[hot], raised[hot] = guaranteed[hot], True
    else:  # rounds exhausted: every pod at its guaranteed value never overflows on its own history
        req = guaranteed.astype(float).copy()
        raised |= request < guaranteed
        node[fit] = pack(req[fit], cpu[fit], node_memory, node_cpu)
        over, steps = node_pressure(node[fit], use[fit], node_memory)
        share = float(over.sum() / steps.sum()) if steps.sum() else 0.0
    today_fit = np.flatnonzero(today_memory[fit] <= node_memory) if len(fit) else fit
    nodes_today = int(pack(today_memory[fit][today_fit], today_cpu[fit][today_fit], node_memory, node_cpu).max() + 1) \
        if len(today_fit) else 0
    nodes_after = int(node[fit].max() + 1) if len(fit) else 0
    check = NodeCheck(nodes_today, nodes_after, first or 0.0, share, raised, node_memory, node_cpu, rounds)
    check.oversized = int(oversized.sum())
    return req, check


# -- from a snapshot ------------------------------------------------------------------------------

def node_size(snapshot: Snapshot, node_memory: float, node_cpu: float) -> tuple[float, float, str | None]:
    """The most common node allocatable in the snapshot, or the given size and a note saying why."""
    n = snapshot.nodes
    if n.is_empty() or "memory_allocatable" not in n.columns:
        return node_memory, node_cpu, (f"the snapshot has no nodes: the node check packs onto "
                                       f"{node_memory / GIB:g} GiB / {node_cpu:g} core nodes (--node-size)")
    ok = n.filter(pl.col("memory_allocatable").is_not_null() & (pl.col("memory_allocatable") > 0)
                  & pl.col("cpu_allocatable").is_not_null() & (pl.col("cpu_allocatable") > 0))
    if ok.is_empty():
        return node_memory, node_cpu, (f"the snapshot's nodes have no allocatable memory/CPU: the node check packs "
                                       f"onto {node_memory / GIB:g} GiB / {node_cpu:g} core nodes (--node-size)")
    top = ok.group_by("memory_allocatable", "cpu_allocatable").len().sort(
        ["len", "memory_allocatable"], descending=True).row(0, named=True)
    return float(top["memory_allocatable"]), float(top["cpu_allocatable"]), None


def pod_memory_matrix(snapshot: Snapshot, pods: pl.DataFrame) -> np.ndarray:
    """(pods, steps) summed container memory use per pod on the snapshot's step grid (NaN = no data);
    ``pods`` has namespace and pod (Strings) in the row order wanted."""
    step = snapshot.manifest.step_seconds
    # the big frame keeps its categorical keys: filter and aggregate first, cast the few rows left
    names = pods.get_column("pod").unique().to_list() if pods.height else []
    mem = snapshot.usage.filter((pl.col("resource") == "memory") & pl.col("pod").cast(pl.String).is_in(names)
                                if snapshot.usage.schema["pod"] == pl.String else
                                (pl.col("resource") == "memory") & pl.col("pod").is_in(names))
    if mem.is_empty() or pods.is_empty():
        return np.zeros((pods.height, 0))
    t0 = snapshot.usage.get_column("timestamp").min()
    per = mem.group_by("namespace", "pod", "timestamp").agg(pl.col("value").sum()).with_columns(
        pl.col("namespace").cast(pl.String), pl.col("pod").cast(pl.String)).join(
        pods.with_row_index("_i"), on=["namespace", "pod"]).with_columns(
        ((pl.col("timestamp") - pl.lit(t0)).dt.total_seconds() // step).cast(pl.Int64).alias("_t"))
    steps = int(per.get_column("_t").max() or 0) + 1
    out = np.full((pods.height, steps), np.nan, dtype=np.float32)
    out[per.get_column("_i").to_numpy(), per.get_column("_t").to_numpy()] = per.get_column("value").to_numpy()
    return out





def run_node_check(snapshot: Snapshot, table: pl.DataFrame, node_memory: float, node_cpu: float,
                   risk: float) -> tuple[pl.DataFrame, NodeCheck | None]:
    """The check on a sizing table (``recommenders.rightsizing.sizing_table`` columns): pods alive at
    the end of the window, their summed container requests (proposed where proposed, else today's),
    packed and replayed; containers of raised pods get ``proposed_memory_request`` = the guaranteed
    value. Returns the table (with ``node_raised``) and the check, None without memory usage."""
    step = snapshot.manifest.step_seconds
    usage = snapshot.usage.filter(pl.col("resource") == "memory")
    end = usage.get_column("timestamp").max() if usage.height else None
    if end is None or table.is_empty():
        return table.with_columns(pl.lit(False).alias("node_raised")), None
    from datetime import timedelta

    alive = usage.filter(pl.col("timestamp") >= end - timedelta(seconds=max(3600, 2 * step))).select(
        *[pl.col(c).cast(pl.String) for c in (*KEY, "pod")]).unique()
    t = table.select(*KEY, "proposed_memory_request", "_mem_guaranteed", "proposed_cpu_request", "memory_request",
                     "cpu_request").with_columns(*[pl.col(k).cast(pl.String) for k in KEY])
    rows = alive.join(t, on=KEY, how="left")
    pods = rows.group_by("namespace", "pod", maintain_order=True).agg(
        pl.coalesce("proposed_memory_request", "memory_request").fill_null(0).sum().alias("req"),
        pl.coalesce("_mem_guaranteed", "memory_request").fill_null(0).sum().alias("guaranteed"),
        pl.coalesce("proposed_cpu_request", "cpu_request").fill_null(0).sum().alias("cpu"),
        pl.col("memory_request").fill_null(0).sum().alias("today_mem"),
        pl.col("cpu_request").fill_null(0).sum().alias("today_cpu"),
    ).sort("namespace", "pod")
    use = pod_memory_matrix(snapshot, pods.select("namespace", "pod"))
    _, check = check_and_raise(
        pods["req"].to_numpy().astype(float), np.maximum(pods["guaranteed"].to_numpy().astype(float),
                                                          pods["req"].to_numpy().astype(float)),
        pods["cpu"].to_numpy().astype(float), pods["today_mem"].to_numpy().astype(float),
        pods["today_cpu"].to_numpy().astype(float), use, node_memory, node_cpu, risk)
    raised = pods.select("namespace", "pod").with_columns(pl.Series("node_raised", check.raised))
    hit = rows.join(raised, on=["namespace", "pod"]).group_by(KEY).agg(pl.col("node_raised").any())
    out = table.join(hit.with_columns(*[pl.col(k).cast(table.schema[k]) for k in KEY]), on=KEY, how="left") \
        .with_columns(pl.col("node_raised").fill_null(False))
    raised_to = pl.when(pl.col("node_raised"))
    cols = [raised_to.then(pl.col("_mem_guaranteed")).otherwise(pl.col("proposed_memory_request"))
            .alias("proposed_memory_request")]
    if "proposed_memory_limit" in out.columns:  # a raised container is guaranteed again: request = limit
        cols.append(raised_to.then(pl.max_horizontal("_mem_guaranteed", "proposed_memory_request"))
                    .otherwise(pl.col("proposed_memory_limit")).alias("proposed_memory_limit"))
    return out.with_columns(cols), check
__all__ = ["NodeCheck", "check_and_raise", "node_pressure", "node_size", "pack", "pod_memory_matrix", "run_node_check"]
