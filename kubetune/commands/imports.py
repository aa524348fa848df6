"""`kubetune import`: usage exported from another monitoring system into a Snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.units import parse_duration
from kubetune.console import Steps, check_out, warn, written


def import_(
    usage: Annotated[Path, typer.Argument(help="Long-format usage file (.csv, .csv.gz or .parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Snapshot directory to write.")],
    containers: Annotated[
        Path | None, typer.Option(help="Optional containers file with requests/limits (base units or 250m/512Mi).")
    ] = None,
    gpus: Annotated[
        Path | None, typer.Option(help="Optional GPUs file: device, gpu_model, gpu_memory_total (bytes or 80Gi).")
    ] = None,
    cluster: Annotated[str, typer.Option(help="Cluster name for the manifest.")] = "imported",
    step: Annotated[str | None, typer.Option(help="Sample step (default: inferred from the data).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists (only a directory kubetune wrote).")] = False,
    max_window: Annotated[float | None, typer.Option(
        help="Longest window in days to accept (default 400: a longer one is almost always a bad timestamp).")] = None,
) -> None:
    """Turn usage exported from another monitoring system into a Snapshot.

    The usage file has one row per sample with columns timestamp (ISO 8601 or Unix seconds),
    namespace, workload_kind, workload, pod, container, resource (cpu | memory | gpu | gpu_memory)
    and value in base units (cores, bytes, busy fraction). An optional containers file keyed by
    namespace, pod, container adds cpu_request, cpu_limit, memory_request, memory_limit, ...
    GPU rows may name their device (GPU UUID) and, beside it, gpu_model (NVIDIA-A100-SXM4-80GB)
    and gpu_memory_total (bytes or 80Gi); or give those per device in a --gpus file. The GPU
    recommender needs the model and memory to propose MIG slices or time-slicing.

    Example: kubetune import usage.csv --containers requests.csv --out snap/
    Example: kubetune import dcgm.csv --gpus gpus.csv --out snap/
    """
    from analyzer.collectors.files import import_files

    step_seconds = int(parse_duration(step)) if step else None
    check_out(out, overwrite)
    with Steps("import") as steps, steps.stage(f"import {usage}"):
        snap = import_files(usage, containers, cluster=cluster, step_seconds=step_seconds, gpus_path=gpus,
                            max_window_days=max_window)
        path = snap.write(out, overwrite=overwrite)
    for warning in snap.manifest.warnings:
        warn(warning)
    written(
        f"Wrote snapshot {path}: {snap.containers.height} containers, {snap.usage.height:,} usage rows, "
        f"step {snap.manifest.step_seconds}s."
    )
