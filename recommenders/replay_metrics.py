"""Replay metrics: how a set of proposed requests/limits would have fared on later usage.

Used by ``benchmarks/replay.py`` (issue 7: recommend from days 1-14, replay days 15-21). All
functions are vectorised joins of the replay usage (long ``analyzer.schema.USAGE`` frame, one row
per pod container sample) with one sizing row per (namespace, workload_kind, workload, container).

Definitions (``step`` = the sample step, ``n_steps`` = replay window / step):

* **reserved CPU** (cores) = sum over CPU samples of the request / n_steps: request x pods present,
  averaged over the window. **Reserved memory** (GiB) likewise with the memory request.
* **CPU hours above request** = step (h) x number of pod CPU samples with usage > request.
* **unmet CPU core-hours** = sum over pod CPU samples of (usage - request)+ x step (h).
* **OOM events** = distinct (namespace, pod, container, hour) with a memory sample > the OOM
  threshold, which is the memory limit, or the memory request where the limit is unset (the one
  rule applied to every method, see ``recommenders.peers``).
* **cost** (USD/h) = reserved CPU x 0.0316 + reserved GiB x 0.00424 (OpenCost default prices).
* **containers evaluated** = sized containers with replay usage; **containers sized** = those of
  them the method proposed CPU and memory for (the rest kept their current values).

Which value a container is evaluated with (``effective_sizing``): the method's proposal per
resource; where the method proposes nothing for a resource, the container's current value (from
the training snapshot's containers frame). A set value stands in for an unset one as Kubernetes
does: request unset + limit set -> request = limit. Containers that still have no CPU request or
no memory request/limit for some method (e.g. Bitbrains VMs, which have no current requests)
are left out of every method's totals (``common_keys``), so all methods are compared on the same
containers.
"""

from __future__ import annotations

import polars as pl
from analyzer.units import GIB

KEY = ["namespace", "workload_kind", "workload", "container"]
CPU_USD_PER_CORE_HOUR = 0.0316  # OpenCost configs/default.json CPU 0.031611
RAM_USD_PER_GIB_HOUR = 0.00424  # OpenCost configs/default.json RAM 0.004237
VALUES = ["cpu_request", "cpu_limit", "memory_request", "memory_limit"]


def _keyed(frame: pl.DataFrame | None) -> pl.DataFrame:
    """KEY (String) + the four values (Float64); a missing column is null."""
    if frame is None:
        frame = pl.DataFrame(schema={k: pl.String for k in KEY})
    cols = [pl.col(k).cast(pl.String) for k in KEY]
    cols += [(pl.col(v) if v in frame.columns else pl.lit(None)).cast(pl.Float64).alias(v) for v in VALUES]
    return frame.select(cols)


def current_sizing(containers: pl.DataFrame) -> pl.DataFrame:
    """Current requests/limits per workload container: the values of its most recently started pod."""
    if containers.is_empty():
        return _keyed(None)
    order = "started_at" if "started_at" in containers.columns else None
    df = containers.sort(order, nulls_last=False) if order else containers
    return _keyed(df).group_by(KEY).agg(pl.col(VALUES).last())


def effective_sizing(proposal: pl.DataFrame | None, current: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per container: ``cpu_request``, ``memory_request`` and ``memory_threshold`` (OOM) used in the
    replay, and ``sized`` (the method proposed CPU and memory). See the module docstring."""
    p, c = _keyed(proposal), _keyed(current)
    both = p.join(c, on=KEY, how="full", coalesce=True, suffix="_cur", nulls_equal=True)
    p_cpu = pl.coalesce("cpu_request", "cpu_limit")
    p_mem = pl.col("memory_request").is_not_null() | pl.col("memory_limit").is_not_null()
    return both.select(
        *KEY,
        pl.coalesce(p_cpu, "cpu_request_cur", "cpu_limit_cur").alias("cpu_request"),
        pl.when(p_mem).then(pl.coalesce("memory_request", "memory_limit"))
        .otherwise(pl.coalesce("memory_request_cur", "memory_limit_cur")).alias("memory_request"),
        pl.when(p_mem).then(pl.coalesce("memory_limit", "memory_request"))
        .otherwise(pl.coalesce("memory_limit_cur", "memory_request_cur")).alias("memory_threshold"),
        (p_cpu.is_not_null() & p_mem).alias("sized"),
    )


def common_keys(sizings: dict[str, pl.DataFrame], *, sized_only: bool = False) -> pl.DataFrame:
    """Containers every method can be evaluated on (CPU request and memory request/threshold set),
    or with ``sized_only`` the containers every method proposed CPU and memory for."""
    ok = pl.col("cpu_request").is_not_null() & pl.col("memory_request").is_not_null() \
        & pl.col("memory_threshold").is_not_null()
    if sized_only:
        ok &= pl.col("sized")
    sets = [s.filter(ok).select(KEY) for s in sizings.values()]
    if not sets:
        return pl.DataFrame(schema={k: pl.String for k in KEY})
    out = sets[0]
    for s in sets[1:]:
        out = out.join(s, on=KEY, how="semi", nulls_equal=True)
    return out.unique().sort(KEY)


def replay_metrics(usage: pl.DataFrame, sizing: pl.DataFrame, *, step_seconds: float,
                   window_seconds: float) -> dict[str, float | int]:
    """The metrics of one method over the replay ``usage`` (see the module docstring). Only
    containers present in ``sizing`` with non-null values count; pass ``sizing`` already restricted
    to ``common_keys`` to compare methods."""
    step_h = step_seconds / 3600.0
    n_steps = window_seconds / step_seconds
    s = sizing.filter(pl.col("cpu_request").is_not_null() & pl.col("memory_request").is_not_null()
                      & pl.col("memory_threshold").is_not_null())
    rows = usage.lazy().select(
        pl.col("timestamp"), *(pl.col(c).cast(pl.String) for c in [*KEY, "pod"]),
        pl.col("resource").cast(pl.String), pl.col("value"),
    ).join(s.lazy(), on=KEY, how="inner", nulls_equal=True)
    cpu = rows.filter(pl.col("resource") == "cpu").select(
        (pl.col("cpu_request").sum() / n_steps).alias("reserved_cpu_cores"),
        ((pl.col("value") > pl.col("cpu_request")).sum() * step_h).alias("cpu_hours_above_request"),
        ((pl.col("value") - pl.col("cpu_request")).clip(lower_bound=0).sum() * step_h).alias("unmet_cpu_core_hours"),
        pl.len().alias("cpu_samples"),
    )
    mem = rows.filter(pl.col("resource") == "memory").select(
        (pl.col("memory_request").sum() / n_steps / GIB).alias("reserved_memory_gib"),
        pl.struct("namespace", "pod", "container", pl.col("timestamp").dt.truncate("1h"))
        .filter(pl.col("value") > pl.col("memory_threshold")).n_unique().alias("oom_events"),
    )
    sized = pl.col("sized") if "sized" in s.columns else pl.lit(True)
    seen = rows.select(KEY).unique().join(s.lazy(), on=KEY, nulls_equal=True).select(
        pl.len().alias("containers_evaluated"), sized.sum().alias("containers_sized"))
    out = pl.concat([cpu, mem, seen], how="horizontal").collect().row(0, named=True)
    out = {k: (0 if v is None else v) for k, v in out.items()}
    out["cost_usd_per_hour"] = (out["reserved_cpu_cores"] * CPU_USD_PER_CORE_HOUR
                                + out["reserved_memory_gib"] * RAM_USD_PER_GIB_HOUR)
    return out


def evaluate(usage: pl.DataFrame, proposals: dict[str, pl.DataFrame | None], current: pl.DataFrame | None, *,
             step_seconds: float, window_seconds: float, sized_only: bool = False) -> pl.DataFrame:
    """One row of metrics per method, every method on the common set of containers (``common_keys``);
    the column ``containers_proposed`` counts the containers the method proposed CPU and memory for
    (before restricting to the common set)."""
    sizings = {name: effective_sizing(p, current) for name, p in proposals.items()}
    common = common_keys(sizings, sized_only=sized_only)
    rows = []
    for name, sz in sizings.items():
        m = replay_metrics(usage, sz.join(common, on=KEY, how="semi", nulls_equal=True),
                           step_seconds=step_seconds, window_seconds=window_seconds)
        rows.append({"method": name, "containers_proposed": int(sz.get_column("sized").sum()), **m})
    return pl.DataFrame(rows)
