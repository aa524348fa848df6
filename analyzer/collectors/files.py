"""File collector: long-format CSV/Parquet usage (and optional requests) into a Snapshot.

For users whose metrics live outside Prometheus (Datadog, CloudWatch, a warehouse export):
one row per sample ``timestamp, namespace, workload_kind, workload, pod, container, resource,
value`` in base units, plus an optional containers file with requests and limits. Values in
the containers file may be numbers in base units (cores, bytes) or Kubernetes quantities
(``250m``, ``512Mi``). Bad input is one ``InputError`` naming the file, the column and, where
it helps, the line.

GPU data from other monitoring systems: ``gpu`` (busy fraction) and ``gpu_memory`` (framebuffer
bytes) rows may carry a ``device`` (GPU UUID), and beside it ``gpu_model`` (e.g.
``NVIDIA-A100-SXM4-80GB``) and ``gpu_memory_total`` (bytes or ``80Gi``); or the same facts come from
a small GPUs file keyed by ``device``. They become the snapshot's ``gpus`` table, which is what the
GPU recommender reads the model and device memory from. A container with GPU samples and no GPU
request in the containers file is taken to hold ``nvidia.com/gpu`` x the devices it was seen on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from analyzer.errors import InputError
from analyzer.sanity import WORKLOAD_KINDS, check_window, clean_usage, control_rows, unusual_names
from analyzer.schema import CONTAINER_TYPES, CONTAINERS, RESOURCES, TIMESTAMP, USAGE
from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import parse_count, parse_cpu, parse_memory
from analyzer.untrusted import visible

USAGE_COLUMNS = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value"]
CONTAINER_KEY = ["namespace", "pod", "container"]
_QUANTITY_PARSERS = {
    "cpu_request": parse_cpu,
    "cpu_limit": parse_cpu,
    "memory_request": parse_memory,
    "memory_limit": parse_memory,
    "gpu_request": parse_count,
    "gpu_limit": parse_count,
    "gpu_memory_total": parse_memory,
}


def read_table(path: Path) -> pl.DataFrame:
    """Read CSV (optionally gzipped) or Parquet with every column as it comes (CSV: strings)."""
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if not path.is_file():
        raise InputError(f"{path} is not a file.")
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            return pl.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            sep = "\t" if ".tsv" in name else ","
            return pl.read_csv(path, separator=sep, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path} cannot be read ({str(exc).splitlines()[0]}).") from None
    raise InputError(f"{path} has an unknown extension; use .csv, .csv.gz, .tsv or .parquet.")


def _require(df: pl.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks the column {missing[0]!r} (needs {', '.join(columns)}).")


def _line(path: Path, df: pl.DataFrame, mask: pl.Series) -> str:
    """'line N' for CSV (header is line 1), 'row N' for Parquet, of the first True in mask."""
    idx = int(mask.arg_true()[0])
    return f"line {idx + 2}" if path.suffix != ".parquet" else f"row {idx + 1}"


def _parse_timestamps(df: pl.DataFrame, path: Path) -> pl.Series:
    col = df.get_column("timestamp")
    if isinstance(col.dtype, pl.Datetime):
        return (col.dt.replace_time_zone("UTC") if col.dtype.time_zone is None else col).cast(TIMESTAMP)
    if col.dtype.is_numeric():
        parsed = (col.cast(pl.Float64) * 1_000_000).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    else:
        text = col.cast(pl.String).str.strip_chars()
        numeric = text.cast(pl.Float64, strict=False)
        iso = text.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
        from_epoch = (numeric * 1_000_000).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        parsed = pl.select(pl.coalesce(iso, from_epoch)).to_series()
    bad = parsed.is_null() & col.is_not_null() | col.is_null()
    if bad.any():
        raise InputError(
            f"{path} column 'timestamp' has an unreadable value at {_line(path, df, bad)} "
            "(expected ISO 8601 or Unix seconds)."
        )
    return parsed.cast(TIMESTAMP).alias("timestamp")


def _parse_numbers(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    col = df.get_column(column)
    values = col.cast(pl.Float64, strict=False) if not col.dtype.is_numeric() else col.cast(pl.Float64)
    bad = (values.is_null() & col.is_not_null()) | col.is_null() | ~values.is_finite().fill_null(True)
    if bad.any():
        raise InputError(f"{path} column {column!r} has a non-numeric value at {_line(path, df, bad)}.")
    return values


def read_usage(path: Path) -> pl.DataFrame:
    """Validate and type a long-format usage table."""
    df = read_table(path)
    _require(df, USAGE_COLUMNS, path)
    for key in USAGE_COLUMNS[1:7]:
        empty = df.get_column(key).is_null() | (df.get_column(key).cast(pl.String).str.strip_chars() == "")
        if empty.any():
            raise InputError(f"{path} column {key!r} is empty at {_line(path, df, empty)}.")
    control = control_rows(df)
    if control.any():
        raise InputError(f"{path} has a control character (newline, escape, ...) in a name at {_line(path, df, control)} "
                         f"({control.sum():,} row(s)); names may be any text but not control characters.")
    resources = df.get_column("resource").cast(pl.String)
    unknown = ~resources.is_in(list(RESOURCES))
    if unknown.any():
        bad = resources.filter(unknown)[0]
        raise InputError(
            f"{path} column 'resource' has {bad!r} at {_line(path, df, unknown)}; expected one of {', '.join(RESOURCES)}."
        )
    kinds = df.get_column("workload_kind").cast(pl.String)
    unknown_kind = ~kinds.is_in(list(WORKLOAD_KINDS))
    if unknown_kind.any():
        raise InputError(
            f"{path} column 'workload_kind' has {visible(kinds.filter(unknown_kind)[0])!r} at "
            f"{_line(path, df, unknown_kind)} ({unknown_kind.sum():,} row(s)); expected one of {', '.join(WORKLOAD_KINDS)}."
        )
    values = _parse_numbers(df, "value", path)
    if (values < 0).any():
        raise InputError(f"{path} column 'value' has a negative value at {_line(path, df, values < 0)}.")
    out = df.with_columns(
        _parse_timestamps(df, path),
        values.alias("value"),
        *[pl.col(c).cast(pl.String) for c in USAGE_COLUMNS[1:7]],
    )
    if "device" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("device"))
    extra = [c for c in GPU_COLUMNS if c in out.columns]
    if extra and "device" not in df.columns:
        raise InputError(f"{path} has {extra[0]!r} but no 'device' column to attach it to.")
    # per-device GPU facts travel beside the samples until import_files builds the gpus table
    return _typed_gpu_columns(out.select(*USAGE.schema, *extra), path, df)


def _typed_gpu_columns(out: pl.DataFrame, path: Path, raw: pl.DataFrame) -> pl.DataFrame:
    if "gpu_memory_total" in out.columns:
        out = out.with_columns(_parse_quantities(raw, "gpu_memory_total", path))
    if "gpu_model" in out.columns:
        out = out.with_columns(pl.col("gpu_model").cast(pl.String).str.strip_chars())
    return out


GPU_COLUMNS = ["gpu_model", "gpu_memory_total"]


def read_gpus(path: Path) -> pl.DataFrame:
    """A GPUs file: ``device`` plus ``gpu_model`` and/or ``gpu_memory_total`` (optional ``node``)."""
    df = read_table(path)
    _require(df, ["device"], path)
    if not set(GPU_COLUMNS) & set(df.columns):
        raise InputError(f"{path} needs a gpu_model or gpu_memory_total column beside device.")
    dup = df.select("device").is_duplicated()
    if dup.any():
        raise InputError(f"{path} lists the same device twice (at {_line(path, df, dup)}).")
    return _gpu_facts(df, path).unique("device", keep="first")


def _gpu_facts(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """device, model, memory_total (bytes), node from whichever GPU columns ``df`` has."""
    cols = [pl.col("device").cast(pl.String)]
    cols.append(pl.col("gpu_model").cast(pl.String).str.strip_chars().alias("model") if "gpu_model" in df.columns
                else pl.lit(None, dtype=pl.String).alias("model"))
    if "gpu_memory_total" in df.columns:
        cols.append(_parse_quantities(df, "gpu_memory_total", path).alias("memory_total"))
    else:
        cols.append(pl.lit(None, dtype=pl.Int64).alias("memory_total"))
    cols.append(pl.col("node").cast(pl.String) if "node" in df.columns else pl.lit(None, dtype=pl.String).alias("node"))
    out = df.select(cols)
    empty = out["device"].is_null() | (out["device"].str.strip_chars() == "")
    if empty.any():
        raise InputError(f"{path} column 'device' is empty at {_line(path, df, empty)}.")
    return out


def read_containers(path: Path) -> pl.DataFrame:
    """Validate a containers table; quantities may be base units or Kubernetes strings."""
    df = read_table(path)
    _require(df, CONTAINER_KEY, path)
    for column in CONTAINERS.schema:
        if column not in df.columns or column in CONTAINER_KEY:
            continue
        if column in _QUANTITY_PARSERS:
            df = df.with_columns(_parse_quantities(df, column, path))
    if "container_type" in df.columns:
        kinds = df.get_column("container_type").cast(pl.String)
        bad = kinds.is_not_null() & ~kinds.is_in(list(CONTAINER_TYPES))
        if bad.any():
            raise InputError(
                f"{path} column 'container_type' has {kinds.filter(bad)[0]!r} at {_line(path, df, bad)}; "
                f"expected one of {', '.join(CONTAINER_TYPES)}."
            )
    for column in ("started_at", "ended_at"):
        if column in df.columns and not isinstance(df.schema[column], pl.Datetime):
            df = df.with_columns(pl.col(column).cast(pl.String).str.to_datetime(time_zone="UTC", strict=False))
    dup = df.select(CONTAINER_KEY).is_duplicated()
    if dup.any():
        raise InputError(f"{path} lists the same namespace/pod/container twice (at {_line(path, df, dup)}).")
    return df


def _parse_quantities(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    col = df.get_column(column)
    parser = _QUANTITY_PARSERS[column]
    if col.dtype.is_numeric():
        values = col
    else:
        values_list = []
        for i, raw in enumerate(col.cast(pl.String).to_list()):  # containers table: small
            if raw is None or raw.strip() == "":
                values_list.append(None)
                continue
            try:
                values_list.append(parser(raw))
            except InputError:
                where = f"line {i + 2}" if path.suffix != ".parquet" else f"row {i + 1}"
                raise InputError(f"{path} column {column!r} has {raw!r} at {where}, not a quantity.") from None
        values = pl.Series(column, values_list)
    dtype = CONTAINERS.schema.get(column, pl.Int64)
    if (values.cast(pl.Float64) < 0).any():
        raise InputError(f"{path} column {column!r} has a negative value.")
    return values.cast(dtype).alias(column)


def import_files(
    usage_path: Path,
    containers_path: Path | None = None,
    *,
    cluster: str = "imported",
    step_seconds: int | None = None,
    gpus_path: Path | None = None,
    max_window_days: float | None = None,
) -> Snapshot:
    """Build a Snapshot from long-format usage (+ optional containers with requests/limits, and
    GPU facts per device: usage columns ``gpu_model``/``gpu_memory_total`` or a GPUs file).

    Rows with impossible values or timestamps are dropped with a counted warning in the manifest
    (``analyzer.sanity``); a window beyond ``max_window_days`` (default 400) is refused."""
    usage = read_usage(usage_path)
    gpu_cols = [c for c in GPU_COLUMNS if c in usage.columns]
    device_facts = (usage.filter(pl.col("device").is_not_null()).group_by("device").agg(
        pl.col("gpu_model").drop_nulls().first().alias("model") if "gpu_model" in gpu_cols
        else pl.lit(None, dtype=pl.String).alias("model"),
        pl.col("gpu_memory_total").drop_nulls().max().alias("memory_total") if "gpu_memory_total" in gpu_cols
        else pl.lit(None, dtype=pl.Int64).alias("memory_total"),
        pl.lit(None, dtype=pl.String).alias("node")))
    usage = usage.drop(gpu_cols)
    if gpus_path is not None:
        given = read_gpus(gpus_path)
        device_facts = given.join(device_facts.select("device"), on="device", how="right").select(
            "device", "model", "memory_total", "node")
    if usage.is_empty():
        raise InputError(f"{usage_path} has no rows.")
    usage, warnings = clean_usage(usage)
    odd = unusual_names(usage)
    warnings += [odd] if odd else []
    if usage.is_empty():
        raise InputError(f"{usage_path} has no usable rows: {' '.join(warnings)}")
    key = [c for c in USAGE.schema if c not in ("value",)]
    dup = usage.select(key).is_duplicated()
    if dup.any():
        raise InputError(
            f"{usage_path} has two values for the same container, resource and timestamp "
            f"(at {_line(usage_path, usage, dup)})."
        )
    start, end = usage.get_column("timestamp").min(), usage.get_column("timestamp").max()
    check_window(_to_datetime(start), _to_datetime(end), str(usage_path), max_window_days)
    step = step_seconds or _infer_step(usage)
    absent = ["nodes", "events"]
    containers_from_usage = (
        usage.select(["namespace", "workload_kind", "workload", "pod", "container"]).unique().with_columns(
            pl.lit("app").alias("container_type")
        )
    )
    if containers_path is not None:
        given = read_containers(containers_path).with_columns(pl.col(c).cast(pl.String) for c in CONTAINER_KEY)
        if not {"workload_kind", "workload"} <= set(given.columns):
            owners = containers_from_usage.select([*CONTAINER_KEY, "workload_kind", "workload"])
            given = given.drop([c for c in ("workload_kind", "workload") if c in given.columns])
            given = given.join(owners, on=CONTAINER_KEY, how="left")
            unowned = given.filter(pl.col("workload").is_null())
            if unowned.height:
                row = unowned.row(0, named=True)
                raise InputError(
                    f"{containers_path} lists {row['namespace']}/{row['pod']}/{row['container']}, which has no "
                    "usage rows and no workload_kind/workload columns to place it."
                )
        given = given.with_columns(pl.col("workload_kind", "workload").cast(pl.String))
        missing = containers_from_usage.join(given.select(CONTAINER_KEY), on=CONTAINER_KEY, how="anti")
        containers = pl.concat([given, missing], how="diagonal_relaxed")
        if "container_type" in containers.columns:
            containers = containers.with_columns(pl.col("container_type").fill_null("app"))
    else:
        containers = containers_from_usage
        absent.append("requests")
    gpus = _gpus_table(usage, device_facts)
    containers = _gpu_requests(containers, gpus)
    workloads = (
        containers.group_by(["namespace", "workload_kind", "workload"])
        .agg(pl.col("pod").n_unique().alias("replicas"))
    )
    manifest = Manifest(
        cluster=cluster,
        start=_to_datetime(start),
        end=_to_datetime(end),
        step_seconds=int(step),
        source=f"import {usage_path.name}" + (f" + {containers_path.name}" if containers_path else ""),
        absent=absent,
        warnings=warnings,
    )
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads,
                          **({"gpus": gpus} if gpus.height else {}))


def _gpus_table(usage: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """One row per (container, device) seen in GPU samples, with the device's model and memory."""
    seen = (usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"]) & pl.col("device").is_not_null())
            .select(*CONTAINER_KEY, "device").unique())
    return seen.join(facts, on="device", how="left").select(
        pl.col("node").fill_null("unknown"), "device", "model", pl.col("memory_total").cast(pl.Int64), *CONTAINER_KEY)


def _gpu_requests(containers: pl.DataFrame, gpus: pl.DataFrame) -> pl.DataFrame:
    """A container with GPU samples and no GPU request given holds nvidia.com/gpu x its devices."""
    if gpus.is_empty():
        return containers
    seen = gpus.group_by(CONTAINER_KEY).agg(pl.col("device").n_unique().cast(pl.Int64).alias("_devices"))
    for col, dtype in (("gpu_resource", pl.String), ("gpu_request", pl.Int64), ("gpu_limit", pl.Int64)):
        if col not in containers.columns:
            containers = containers.with_columns(pl.lit(None, dtype=dtype).alias(col))
    unset = pl.col("gpu_resource").is_null() & pl.col("gpu_request").is_null() & pl.col("gpu_limit").is_null()
    return containers.join(seen, on=CONTAINER_KEY, how="left").with_columns(
        pl.when(unset & pl.col("_devices").is_not_null()).then(pl.lit("nvidia.com/gpu"))
        .otherwise(pl.col("gpu_resource")).alias("gpu_resource"),
        pl.when(unset).then(pl.col("_devices")).otherwise(pl.col("gpu_limit")).alias("gpu_limit"),
    ).drop("_devices")


def _infer_step(usage: pl.DataFrame) -> int:
    """The most common gap between consecutive samples of one series."""
    gaps = (
        usage.sort("timestamp")
        .group_by(["namespace", "pod", "container", "resource", "device"], maintain_order=False)
        .agg(pl.col("timestamp").diff().dt.total_seconds().alias("gap"))
        .explode("gap")
        .drop_nulls("gap")
        .filter(pl.col("gap") > 0)
    )
    if gaps.is_empty():
        return 300
    return max(1, int(gaps.get_column("gap").mode().sort()[0]))


def _to_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise InputError("timestamps could not be read.")  # pragma: no cover
