"""Usage in parts of whole workloads, for per-container statistics in bounded memory.

A per-container statistic (quantiles, hourly series, daily peaks) over tens of millions of usage
rows builds group-by tables, sorted lists and joins as large as the rows it reads. Every
container's rows lie in one part, so such a statistic can run part by part and be concatenated;
only a final pooled step (a calibration across containers) needs all parts' results. Peak memory
then follows the part size instead of the cluster's.
"""

from __future__ import annotations

import polars as pl

PART_ROWS = 2_000_000  # usage rows per part: bounds the working set of every per-container statistic


def workload_parts(usage: pl.LazyFrame, rows: int | None = None, part_rows: int = PART_ROWS) -> list[pl.LazyFrame]:
    """``usage`` (``rows`` rows: counted when not given) split by workload into parts of about
    ``part_rows`` rows, one part when smaller. Each part is a lazy filter on the workload's code: no
    copy of the usage frame."""
    if rows is None:
        rows = usage.select(pl.len()).collect().item()
    n = max(1, -(-rows // max(part_rows, 1)))
    if n == 1:
        return [usage]
    dtype = usage.collect_schema()["workload"]
    code = pl.col("workload").to_physical() if isinstance(dtype, (pl.Categorical, pl.Enum)) else pl.col("workload").hash()
    return [usage.filter(code.cast(pl.UInt64) % n == i) for i in range(n)]
