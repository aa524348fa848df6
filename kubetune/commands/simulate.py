"""`kubetune simulate`: a synthetic but realistic cluster as a Snapshot (the only command that may import analyzer.simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.units import parse_duration
from kubetune.console import Steps, check_out, written


def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Snapshot directory to write.")],
    workloads: Annotated[int, typer.Option(min=1, help="Number of workloads (controllers) to simulate.")] = 60,
    days: Annotated[float, typer.Option(min=0.01, help="Days of history.")] = 14.0,
    step: Annotated[str, typer.Option(help="Sample step, e.g. 5m, 60s.")] = "5m",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same cluster.")] = 0,
    cluster: Annotated[str, typer.Option(help="Cluster name written to the manifest.")] = "sim",
    openmetrics: Annotated[
        Path | None, typer.Option(help="Also write the cluster as OpenMetrics text for `promtool` backfill.")
    ] = None,
    kube_json: Annotated[
        Path | None, typer.Option(help="Also write Kubernetes API JSON lists (PodList, ...) into this directory.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Generate a synthetic but realistic cluster as a Snapshot.

    Web services with daily and weekly cycles and HPAs, batch CronJobs, growing StatefulSets,
    leaking and OOM-prone containers, idle and mis-sized workloads, GPU training and inference,
    on-demand and spot nodes of real instance types. Deterministic for a seed.

    Example: kubetune simulate --workloads 60 --days 14 --step 5m --seed 1 --out snap/
    """
    from analyzer.simulator import simulate as run

    step_seconds = int(parse_duration(step))
    check_out(out, overwrite)
    with Steps("simulate") as steps:
        with steps.stage(f"simulate {workloads} workloads x {days:g} days at {step}"):
            snap = run(workloads=workloads, days=days, step_seconds=step_seconds, seed=seed, cluster=cluster)
            path = snap.write(out, overwrite=overwrite)
        extra = []
        if openmetrics is not None:
            from analyzer.simulator.openmetrics import write_openmetrics

            with steps.stage(f"write OpenMetrics to {openmetrics}"):
                write_openmetrics(snap, openmetrics)
            extra.append(f"OpenMetrics {openmetrics}")
        if kube_json is not None:
            from analyzer.simulator.kube_objects import write_kube_json

            write_kube_json(snap, kube_json)
            extra.append(f"Kubernetes JSON {kube_json}")
    written(
        f"Wrote snapshot {path}: {snap.containers.height} containers, {snap.usage.height:,} usage rows"
        + (f"; {', '.join(extra)}" if extra else "") + "."
    )
