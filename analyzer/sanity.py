"""Out-of-range values stop at the boundary (import, collect, snapshot load), counted, never analysed.

A single row at 9999-12-31 or at Unix time 0 stretches a window to centuries (and memory with
it); 1e300 overflows a cost; negative, NaN or infinite samples and GPU busy fractions above 1 are
measurement artefacts. ``clean_usage`` drops them and returns one counted warning per kind of
problem; ``check_window`` refuses a window longer than ``max_window_days``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from analyzer.errors import InputError
from analyzer.untrusted import CONTROL_PATTERN

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)  # clock skew between the source and this machine
MAX_WINDOW_DAYS = 400.0
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Rollout", "Pod", "ReplicaSet")
# Largest plausible value per resource, in base units: 100k cores, 1 PiB, one whole GPU, 1 PiB.
MAX_VALUE = {"cpu": 1e5, "memory": 2.0**50, "gpu": 1.0, "gpu_memory": 2.0**50}
GPU_ROUNDING = 1.05  # a busy fraction up to this is rounding: clamped to 1; above, dropped


def clean_usage(usage: pl.DataFrame, now: datetime | None = None) -> tuple[pl.DataFrame, list[str]]:
    """``usage`` without impossible rows, and a warning (with a count) per reason rows were dropped."""
    if usage.is_empty():
        return usage, []
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    ts, value, resource = pl.col("timestamp"), pl.col("value"), pl.col("resource")
    limit = pl.lit(float("inf"))
    for name, bound in MAX_VALUE.items():
        limit = pl.when(resource == name).then(pl.lit(bound)).otherwise(limit)
    checks = [
        ((ts < pl.lit(EARLIEST)) | (ts > pl.lit(latest)),
         f"timestamps before {EARLIEST:%Y-%m-%d} or after tomorrow"),
        (value.is_nan() | value.is_infinite(), "NaN or infinite values"),
        (value < 0, "negative values"),
        ((value > limit) & ~((resource == "gpu") & (value <= GPU_ROUNDING)),
         "values beyond any real container (over 100k cores, 1 PiB, or a GPU busy fraction above 1)"),
    ]
    counts = usage.select([c.fill_null(False).sum().alias(str(i)) for i, (c, _) in enumerate(checks)]).row(0)
    warnings = [f"dropped {n:,} usage sample(s) with {why}." for n, (_, why) in zip(counts, checks, strict=True) if n]
    if warnings:
        bad = pl.any_horizontal(c.fill_null(False) for c, _ in checks)
        usage = usage.filter(~bad)
    if usage.select(((resource == "gpu") & (value > 1.0)).any()).item():
        usage = usage.with_columns(
            pl.when((resource == "gpu") & (value > 1.0)).then(1.0).otherwise(value).alias("value"))
    return usage, warnings


def check_window(start: datetime, end: datetime, where: str, max_window_days: float | None) -> None:
    """Refuse a snapshot window longer than ``max_window_days`` (default 400) naming ``where``."""
    limit = MAX_WINDOW_DAYS if max_window_days is None else max_window_days
    days = (end - start).total_seconds() / 86400.0
    if days > limit:
        raise InputError(
            f"{where} spans {days:,.0f} days ({start:%Y-%m-%d} .. {end:%Y-%m-%d}), more than the {limit:g}-day "
            "limit; pass --max-window DAYS to allow it, or check the timestamps."
        )


NAME_COLUMNS = ("namespace", "workload", "pod", "container")
KUBE_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def control_rows(df: pl.DataFrame) -> pl.Series:
    """Rows whose names hold a control character: those cannot be shown safely anywhere.

    Checks each column's distinct values first (cheap on categoricals), so clean frames cost little."""
    mask = pl.repeat(False, df.height, dtype=pl.Boolean, eager=True).alias("control")
    cols = [c for c in NAME_COLUMNS if c in df.columns]
    if not cols or df.is_empty():
        return mask
    distinct = df.select(pl.col(c).unique().cast(pl.String).implode() for c in cols)  # one parallel pass
    for c in cols:  # a handful of name columns
        values = distinct.get_column(c).explode()
        bad = values.filter(values.str.contains(CONTROL_PATTERN).fill_null(False))
        if bad.len():
            mask = mask | df.get_column(c).cast(pl.String).is_in(bad.to_list()).fill_null(False)
    return mask


def clean_names(frames: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Every frame without rows whose names hold control characters, and one counted warning."""
    dropped, out = 0, {}
    for name, df in frames.items():
        mask = control_rows(df) if df.height else None
        if mask is not None and mask.any():
            dropped += int(mask.sum())
            df = df.filter(~mask)
        out[name] = df
    warning = (f"dropped {dropped:,} row(s) whose names hold control characters (newlines, escapes), which no "
               "output could show safely.")
    return out, [warning] if dropped else []


def unusual_names(df: pl.DataFrame) -> str | None:
    """A counted warning for names outside Kubernetes' rules (VM ids, hashes: legitimate, kept, escaped)."""
    cols = [c for c in NAME_COLUMNS if c in df.columns]
    names = pl.concat([df.get_column(c).unique().cast(pl.String) for c in cols]).unique() if cols else pl.Series([])
    odd = names.filter(~names.str.contains(KUBE_NAME) | (names.str.len_chars() > 253))
    if odd.is_empty():
        return None
    return (f"{odd.len():,} name(s) do not follow Kubernetes naming rules (e.g. {odd.sort()[0]!r}); they are kept "
            "as given and escaped in every output.")
