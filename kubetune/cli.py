"""The ``kubetune`` console script: parse options, call the packages, print or write results.

Exit codes: 0 ok, 1 the job failed (e.g. a server error), 2 bad usage or bad input. Errors are
one sentence on stderr, never a traceback (set ``KUBETUNE_DEBUG=1`` to see one for a bug).
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from analyzer.errors import InputError, KubetuneError
from analyzer.units import human_bytes, parse_duration
from kubetune.output import Format, emit, emit_document, plain_rows
from kubetune.sources import Source, load_source

# Typer may vendor click; find its exception base classes through the public names.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ClickExit = typer.Exit
ClickAbort = typer.Abort

# Piped output is not squeezed to 80 columns: tables stay readable in files and CI logs.
out_console = Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=160)
err_console = Console(stderr=True)

app = typer.Typer(
    name="kubetune",
    help=(
        "Kubernetes cost and utilization analyzer with ML autotuning.\n\n"
        "Every analysis command reads one Snapshot: --snapshot DIR, a live --prometheus-url, "
        "or (with no source) the bundled sample. Start with `kubetune report --out report/`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Source options shared by every analysis command.
SourceArg = Annotated[
    str | None,
    typer.Argument(help="Snapshot directory or Prometheus URL (http[s]://...): the same as --snapshot or "
                        "--prometheus-url. With no source at all, the bundled sample.",
                   show_default=False, rich_help_panel="Source"),
]
SnapshotOpt = Annotated[
    Path | None,
    typer.Option("--snapshot", "-s", help="Snapshot directory to analyse (from `collect`, `simulate` or `import`).",
                 rich_help_panel="Source"),
]
PrometheusOpt = Annotated[
    str | None,
    typer.Option("--prometheus-url", help="Read a live Prometheus (or Thanos/Mimir/VictoriaMetrics) instead of a snapshot.",
                 envvar="KUBETUNE_PROMETHEUS_URL", rich_help_panel="Source"),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="kubeconfig for the Kubernetes API (workload specs).", rich_help_panel="Source"),
]
InClusterOpt = Annotated[
    bool, typer.Option("--in-cluster", help="Use the pod's service account (when run as a CronJob).", rich_help_panel="Source")
]
HistoryOpt = Annotated[
    str, typer.Option("--history", help="How much history to read from a live source, e.g. 14d.", rich_help_panel="Source")
]


def _note(message: str) -> None:
    err_console.print(f"[dim]{message}[/dim]", highlight=False)


def _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history):
    return load_source(
        Source(argument=source, snapshot=snapshot, prometheus_url=prometheus_url, kubeconfig=kubeconfig, in_cluster=in_cluster,
               history=history),
        note=_note,
    )


def _not_yet(command: str, issue: int) -> None:
    raise InputError(f"`kubetune {command}` is not yet available in this build (planned in issue #{issue}).")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not err_console.is_terminal,
    )


@app.command()
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
    _check_out(out, overwrite)
    with _progress() as progress:
        progress.add_task(f"simulating {workloads} workloads x {days:g} days at {step}", total=None)
        snap = run(workloads=workloads, days=days, step_seconds=step_seconds, seed=seed, cluster=cluster)
        path = snap.write(out, overwrite=overwrite)
        extra = []
        if openmetrics is not None:
            from analyzer.simulator.openmetrics import write_openmetrics

            progress.add_task(f"writing OpenMetrics to {openmetrics}", total=None)
            write_openmetrics(snap, openmetrics)
            extra.append(f"OpenMetrics {openmetrics}")
        if kube_json is not None:
            from analyzer.simulator.kube_objects import write_kube_json

            write_kube_json(snap, kube_json)
            extra.append(f"Kubernetes JSON {kube_json}")
    err_console.print(
        f"Wrote snapshot {path}: {snap.containers.height} containers, {snap.usage.height:,} usage rows"
        + (f"; {', '.join(extra)}" if extra else "") + "."
    )


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing, non-empty --out before doing the work, not after."""
    target = Path(out)
    if target.exists() and not overwrite and not (target.is_dir() and not any(target.iterdir())):
        raise InputError(f"{out} already exists; choose another --out or pass --overwrite.")


@app.command("import")
def import_(
    usage: Annotated[Path, typer.Argument(help="Long-format usage file (.csv, .csv.gz or .parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Snapshot directory to write.")],
    containers: Annotated[
        Path | None, typer.Option(help="Optional containers file with requests/limits (base units or 250m/512Mi).")
    ] = None,
    cluster: Annotated[str, typer.Option(help="Cluster name for the manifest.")] = "imported",
    step: Annotated[str | None, typer.Option(help="Sample step (default: inferred from the data).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Turn usage exported from another monitoring system into a Snapshot.

    The usage file has one row per sample with columns timestamp (ISO 8601 or Unix seconds),
    namespace, workload_kind, workload, pod, container, resource (cpu | memory | gpu | gpu_memory)
    and value in base units (cores, bytes, busy fraction). An optional containers file keyed by
    namespace, pod, container adds cpu_request, cpu_limit, memory_request, memory_limit, ...

    Example: kubetune import usage.csv --containers requests.csv --out snap/
    """
    from analyzer.collectors.files import import_files

    step_seconds = int(parse_duration(step)) if step else None
    _check_out(out, overwrite)
    with _progress() as progress:
        progress.add_task(f"importing {usage}", total=None)
        snap = import_files(usage, containers, cluster=cluster, step_seconds=step_seconds)
        path = snap.write(out, overwrite=overwrite)
    err_console.print(
        f"Wrote snapshot {path}: {snap.containers.height} containers, {snap.usage.height:,} usage rows, "
        f"step {snap.manifest.step_seconds}s."
    )


def _header_pairs(values: list[str] | None) -> dict[str, str]:
    headers = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--header needs NAME=VALUE, got {name.strip() or item!r}.")
        headers[name.strip()] = value
    return headers


@app.command()
def collect(
    out: Annotated[Path, typer.Option("--out", "-o", help="Snapshot directory to write.")],
    prometheus_url: PrometheusOpt = None,
    history: Annotated[str, typer.Option(help="How far back to read from Prometheus, e.g. 14d.")] = "14d",
    start: Annotated[str | None, typer.Option(help="Window start (ISO 8601), instead of --history.")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (ISO 8601; default: now).")] = None,
    step: Annotated[str | None, typer.Option(help="Usage resolution (default: automatic, >= the scrape interval).")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for Prometheus (never printed).",
                                              envvar="KUBETUNE_PROMETHEUS_TOKEN", show_envvar=True,
                                              rich_help_panel="Prometheus connection")] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding the bearer token.",
                                                    rich_help_panel="Prometheus connection")] = None,
    username: Annotated[str | None, typer.Option(help="Basic-auth user.", rich_help_panel="Prometheus connection")] = None,
    password: Annotated[str | None, typer.Option(help="Basic-auth password (never printed).",
                                                 envvar="KUBETUNE_PROMETHEUS_PASSWORD", show_envvar=True,
                                                 rich_help_panel="Prometheus connection")] = None,
    header: Annotated[list[str] | None, typer.Option(help="Extra HTTP header NAME=VALUE (repeatable), e.g. X-Scope-OrgID=t1.",
                                                     rich_help_panel="Prometheus connection")] = None,
    ca_bundle: Annotated[Path | None, typer.Option(help="CA bundle to verify Prometheus' TLS certificate.",
                                                   rich_help_panel="Prometheus connection")] = None,
    insecure_skip_verify: Annotated[bool, typer.Option(help="Do not verify TLS certificates.",
                                                       rich_help_panel="Prometheus connection")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.", rich_help_panel="Prometheus connection")] = 120.0,
    cluster_label: Annotated[str | None, typer.Option(help="Select one cluster in a shared Prometheus: NAME=VALUE.",
                                                      rich_help_panel="Prometheus connection")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.", rich_help_panel="Source")] = None,
    in_cluster: InClusterOpt = False,
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces (repeatable).")] = None,
    include_kube_system: Annotated[bool, typer.Option(help="Also read kube-system (excluded by default).")] = False,
    from_kubectl: Annotated[
        Path | None, typer.Option(help="Read saved `kubectl get pods,deploy,sts,ds,rs,job,cronjob,hpa,pdb,nodes,ns -A -o json` "
                                       "output instead of the API server.", rich_help_panel="Source")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster name for the manifest.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Collect a Snapshot from Prometheus (usage) and/or the Kubernetes API (specs).

    Prometheus is read with one bulk query per metric family for the whole cluster. With the
    API server (or saved kubectl JSON) as well, specs come from the API and usage from
    Prometheus; workloads seen by only one source are reported, not dropped.

    Examples:
      kubetune collect --prometheus-url http://prometheus:9090 --history 14d --out snap/
      kubetune collect --prometheus-url http://prometheus:9090 --kubeconfig ~/.kube/config --out snap/
      kubetune collect --from-kubectl cluster.json --out specs/
    """
    _check_out(out, overwrite)
    wants_api = bool(kubeconfig or context or in_cluster)
    if not (prometheus_url or wants_api or from_kubectl):
        raise InputError("collect needs --prometheus-url and/or --kubeconfig/--in-cluster/--from-kubectl.")
    if from_kubectl and wants_api:
        raise InputError("give either --from-kubectl or --kubeconfig/--in-cluster, not both.")
    usage = spec = None
    with _progress() as progress:
        task = progress.add_task("connecting", total=None)
        say = lambda line: progress.update(task, description=line)
        if prometheus_url:
            from analyzer.collectors.prometheus import PrometheusConfig, collect_prometheus

            config = PrometheusConfig(
                url=prometheus_url, token=token, token_file=str(token_file) if token_file else None,
                username=username, password=password, headers=_header_pairs(header),
                ca_bundle=str(ca_bundle) if ca_bundle else None, insecure=insecure_skip_verify, timeout=timeout,
                cluster_label=cluster_label, cluster_name=cluster,
            )
            t0, t1 = _when(start, "--start"), _when(end, "--end")
            usage = collect_prometheus(config, start=t0, end=t1, history=None if t0 else history, step=step,
                                       namespaces=namespace, progress=say)
        if wants_api or from_kubectl:
            from analyzer.collectors import kubernetes as kube

            if from_kubectl:
                spec = kube.collect_from_kubectl(from_kubectl, cluster=cluster or "kubectl", namespaces=namespace or (),
                                                 include_kube_system=include_kube_system)
            else:
                spec = kube.collect_from_options(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster,
                                                 namespaces=namespace or (), include_kube_system=include_kube_system,
                                                 progress=say, cluster=cluster)
        snap = usage if spec is None else spec if usage is None else _merge(usage, spec)
        progress.update(task, description=f"writing {out}")
        path = snap.write(out, overwrite=overwrite)
    for warning in snap.manifest.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    err_console.print(
        f"Wrote snapshot {path}: {snap.containers.height} containers, {snap.workloads.height} workloads, "
        f"{snap.nodes.height} nodes, {snap.usage.height:,} usage rows"
        + (f"; absent: {', '.join(snap.manifest.absent)}" if snap.manifest.absent else "") + "."
    )


def _when(text: str | None, flag: str):
    """ISO 8601 -> aware datetime (UTC when no zone is given)."""
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{flag} {text!r} is not an ISO 8601 time (e.g. 2026-11-02T00:00:00Z).") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _merge(usage, spec):
    from analyzer.collectors.kubernetes import merge_specs

    merged, report = merge_specs(usage, spec)
    for line in report.lines():
        _note(line)
    return merged


@app.command()
def info(
    source: SourceArg = None,
    snapshot: SnapshotOpt = None,
    prometheus_url: PrometheusOpt = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    history: HistoryOpt = "14d",
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml or csv.")] = Format.table,
) -> None:
    """Show what a snapshot holds: window, step, source, rows per frame, absent parts.

    Example: kubetune info --snapshot snap/
    """
    snap = _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history)
    m = snap.manifest
    rows = [
        ("cluster", m.cluster), ("source", m.source), ("start", m.start.isoformat()), ("end", m.end.isoformat()),
        ("step_seconds", str(m.step_seconds)), ("absent", ", ".join(m.absent) or "-"),
    ] + [(f"rows.{name}", f"{df.height}") for name, df in snap.frames().items()]
    emit(pl.DataFrame(rows, schema=["field", "value"], orient="row"), format, title="snapshot")
    for w in m.warnings:
        _note(f"warning: {w}")


@app.command()
def report(
    source: SourceArg = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for report.html and report.json.")] = Path("report"),
    snapshot: SnapshotOpt = None,
    prometheus_url: PrometheusOpt = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    history: HistoryOpt = "14d",
) -> None:
    """Write the HTML and JSON report: cluster size and requested vs used CPU, memory and GPU.

    Example: kubetune report --snapshot snap/ --out report/
    """
    from analyzer.summary import summarize
    from dashboards.report import write_report

    snap = _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history)
    with _progress() as progress:
        progress.add_task("analysing", total=None)
        summary = summarize(snap)
        files = write_report(summary, out)
    for r in summary.resources:
        used = human_bytes(r.used_avg) if r.resource == "memory" else f"{(r.used_avg or 0):.2f}"
        req = human_bytes(r.requested) if r.resource == "memory" else f"{(r.requested or 0):.2f}"
        util = f"{r.utilization * 100:.0f}%" if r.utilization is not None else "-"
        err_console.print(f"  {r.resource:<7} requested {req:>12}  used {used:>12}  utilization {util}")
    out_console.print(f"Report written: {files['report.html']} and {files['report.json']}")


class IdleShare(str, Enum):
    none = "none"
    even = "even"
    proportional = "proportional"


def _usd(value: object) -> str:
    return f"${value:,.2f}"


def _ratio(value: object) -> str:
    return f"{value * 100:.0f}%"


# (column, table header, formatter) for the human table; machine formats keep the column names.
_COST_TABLE_COLUMNS = [
    ("total_cost", "cost", _usd), ("total_cost_monthly", "$/month", _usd), ("share", "share", _ratio),
    ("idle_cost", "idle", _usd), ("cpu_efficiency", "CPU eff", _ratio), ("memory_efficiency", "mem eff", _ratio),
    ("gpu_efficiency", "GPU eff", _ratio), ("waste_monthly", "waste $/mo", _usd),
]
_WASTE_TABLE_COLUMNS = [
    ("namespace", "namespace", None), ("workload_kind", "kind", None), ("workload", "workload", None),
    ("waste_monthly", "waste $/mo", _usd), ("cpu_waste_monthly", "CPU", _usd), ("memory_waste_monthly", "memory", _usd),
    ("gpu_waste_monthly", "GPU", _usd), ("waste_fraction", "unused", _ratio),
]


def _human_table(df, spec):
    """Select, rename and format columns for a rich table."""
    present = [(c, h, f) for c, h, f in spec if c in df.columns]
    shown = df.select([pl.col(c).alias(h) for c, h, _ in present])
    return shown, {h: f for _, h, f in present if f is not None}


@app.command()
def cost(
    source: SourceArg = None,
    snapshot: SnapshotOpt = None,
    prometheus_url: PrometheusOpt = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    history: HistoryOpt = "14d",
    by: Annotated[
        str,
        typer.Option(help="Group by: cluster, namespace, workload, pod, container, node, instance_type, capacity_type, "
                          "zone, label:KEY (workload label, else namespace label), namespace_label:KEY, node_label:KEY; "
                          "comma lists combine them."),
    ] = "namespace",
    window: Annotated[str | None, typer.Option(help="Only the last part of the snapshot, e.g. 7d.")] = None,
    pricing: Annotated[
        Path | None, typer.Option(help="Your prices (YAML): custom instance types, discounts, on-prem rates.")
    ] = None,
    idle_share: Annotated[
        IdleShare, typer.Option(help="Idle cost: none (own __idle__ row), even or proportional share-back.")
    ] = IdleShare.none,
    top: Annotated[int, typer.Option(min=0, help="How many of the most wasteful workloads to list (table/json).")] = 10,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Cost per namespace, workload, node or label, with idle cost, efficiency and waste in $/month.

    Allocation follows OpenCost: max(request, usage) x the node's per-resource hourly rate,
    prices from the snapshot (OpenCost metrics) first, then the bundled catalog, then fallback
    rates (said in a warning). Table amounts are USD; JSON/CSV/Parquet keep base units.

    Example: kubetune cost --by namespace --window 7d
    """
    from datetime import timedelta

    from analyzer.cost import analyze_cost, rollup, top_waste

    snap = _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history)
    span = timedelta(seconds=parse_duration(window)) if window else None
    with _progress() as progress:
        progress.add_task("allocating node cost", total=None)
        result = analyze_cost(snap, window=span, pricing_file=pricing, idle_share=idle_share.value)
        table = rollup(result, by)
        waste = top_waste(result, top) if top else None
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if format is Format.json or format is Format.yaml:
        payload = {
            "summary": result.summary(),
            "by": by,
            "rows": plain_rows(table),
            "top_waste": plain_rows(waste) if waste is not None else [],
            "prices": plain_rows(result.prices),
            "gpus": plain_rows(result.gpus),
        }
        emit_document(payload, format, out)
        return
    if format is not Format.table:
        emit(table, format, out=out)
        return
    key_cols = table.columns[: table.columns.index("cpu_cost")] if "cpu_cost" in table.columns else []
    shown, formatters = _human_table(table, [(c, c, None) for c in key_cols] + _COST_TABLE_COLUMNS)
    s = result.summary()
    title = (f"Cost by {by}: {result.cluster}, {result.hours:.0f} h window, total ${s['total_cost']:,.2f} "
             f"(${s['total_cost_monthly']:,.0f}/month), idle {s['idle_fraction'] * 100:.0f}%")
    emit(shown, Format.table, title=title, formatters=formatters, out=out, console=out_console)
    if waste is not None and waste.height and out is None:
        shown, formatters = _human_table(waste, _WASTE_TABLE_COLUMNS)
        emit(shown, Format.table, formatters=formatters, console=out_console,
             title=f"Top {waste.height} wasteful workloads ($/month of requested-but-unused capacity)")
    if out is None and result.prices.height:
        sources = sorted({f"{r['source']} ({r['date']})" for r in result.prices.iter_rows(named=True)})
        _note("Prices used: " + "; ".join(sources))


@app.command()
def forecast(
    source: SourceArg = None,
    snapshot: SnapshotOpt = None,
    prometheus_url: PrometheusOpt = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    history: HistoryOpt = "14d",
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 7d.")] = "7d",
    backtest: Annotated[bool, typer.Option(help="Compare the model with the baselines on held-out history.")] = False,
    drift: Annotated[bool, typer.Option(help="List detected behaviour changes (level, variance, growth) instead.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Forecast demand quantiles (p50/p90/p95/p99/peak) per workload container, backtest, or list drift.

    One global quantile model over all series, calibrated (split-conformal); series too short to
    learn fall back to a seasonal baseline, said in the `model` column. Values are in base units
    (cores, bytes, GPU busy fraction).

    Examples:
      kubetune forecast --horizon 7d --format json --out forecast.json
      kubetune forecast --backtest snap/
      kubetune forecast --drift
    """
    from datetime import timedelta

    from forecasting import backtest_snapshot, detect_drift, forecast_snapshot

    if backtest and drift:
        raise InputError("give either --backtest or --drift, not both.")
    snap = _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to forecast (collect from Prometheus or import usage).")
    span = timedelta(seconds=parse_duration(horizon))
    with _progress() as progress:
        progress.add_task("backtesting" if backtest else "detecting drift" if drift else "forecasting", total=None)
        if backtest:
            table, title = backtest_snapshot(snap, horizon=span), "Backtest: model vs baselines (lower pinball is better)"
        elif drift:
            table, title = detect_drift(snap), "Detected drift"
        else:
            table, title = forecast_snapshot(snap, horizon=span), f"Forecast, next {horizon}"
    emit(table, format, title=title, out=out, console=out_console)
    if out is not None:
        err_console.print(f"Wrote {table.height:,} rows to {out}.")


class RiskMode(str, Enum):
    cluster = "cluster"
    workload = "workload"


class MemoryPolicy(str, Enum):
    guaranteed = "guaranteed"
    burstable = "burstable"


def _node_size(text: str) -> tuple[int, float]:
    """--node-size "64Gi/16" -> (bytes, cores)."""
    from analyzer.units import parse_cpu, parse_memory

    mem, sep, cpu = text.replace(",", "/").partition("/")
    try:
        out = parse_memory(mem.strip()), parse_cpu(cpu.strip())
    except (ValueError, ArithmeticError, InputError):
        out = None
    if not sep or out is None or out[0] <= 0 or out[1] <= 0:
        raise InputError(f"--node-size must be MEMORY/CPU such as 64Gi/16, got {text!r}.")
    return out


class SpotPlacement(str, Enum):
    preferred = "preferred"
    required = "required"
    selector = "selector"


@app.command()
def recommend(
    source: SourceArg = None,
    snapshot: SnapshotOpt = None,
    prometheus_url: PrometheusOpt = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    history: HistoryOpt = "14d",
    patches: Annotated[Path | None, typer.Option(
        help="Write one strategic-merge patch per workload + kustomization.yaml (+ cluster/ extras, "
             "recommendations.json) into this directory.", rich_help_panel="Output")] = None,
    base: Annotated[str | None, typer.Option(
        help="Path to your workloads' manifests, relative to --patches, listed as the kustomization's resource "
             "(so `kubectl kustomize DIR` builds the patched manifests).", rich_help_panel="Output")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --patches directory.", rich_help_panel="Output")] = False,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help="Only these recommenders: rightsize, gpu, spot (repeat or comma-separate; default all).")] = None,
    risk: Annotated[float, typer.Option(
        help="Accepted share of pod-hours with CPU demand above request (0.06 = 6%), calibrated out of sample.",
        rich_help_panel="Policy")] = 0.06,
    risk_mode: Annotated[RiskMode, typer.Option(
        help="workload: every container within --risk (bounds how far demand exceeds requests); cluster: spend "
             "--risk where it saves the most cores (no container above --max-risk; fewer cores, bigger shortfalls "
             "on spiky containers).", rich_help_panel="Policy")] = RiskMode.workload,
    max_risk: Annotated[float, typer.Option(help="Cap on one container's CPU risk in cluster mode.",
                                            rich_help_panel="Policy")] = 0.10,
    memory_risk: Annotated[float, typer.Option(
        help="Accepted chance that next week's memory peak exceeds the proposal (sets each container's margin).",
        rich_help_panel="Policy")] = 0.01,
    memory_margin: Annotated[float, typer.Option(
        help="Memory limit margin over the observed peak (0.15 = 15%; at least 64Mi); guaranteed: also the request.",
        rich_help_panel="Policy")] = 0.15,
    memory_policy: Annotated[MemoryPolicy, typer.Option(
        help="guaranteed: memory request = limit, never below the observed peak (no eviction risk); burstable: "
             "the same limit, the request at a calibrated high quantile (cheaper; node-checked, see --node-size).",
        rich_help_panel="Policy")] = MemoryPolicy.guaranteed,
    memory_overcommit: Annotated[float, typer.Option(
        help="burstable: accepted memory above the request, as a fraction of each container's memory use.",
        rich_help_panel="Policy")] = 0.01,
    node_size: Annotated[str, typer.Option(
        help="burstable node check: node allocatable MEMORY/CPU when the snapshot has no nodes, e.g. 64Gi/16.",
        rich_help_panel="Policy")] = "64Gi/16",
    node_pressure_risk: Annotated[float, typer.Option(
        help="burstable: accepted share of node-hours with summed memory use over allocatable when the new "
             "requests are packed and the history replayed (0.001 = 0.1%); requests are raised until it holds.",
        rich_help_panel="Policy")] = 0.001,
    cpu_limit_ratio: Annotated[float | None, typer.Option(
        help="Propose CPU limit = request x RATIO (default: no CPU limit change).", rich_help_panel="Policy")] = None,
    keep_memory_limit: Annotated[bool, typer.Option(
        help="Leave memory limits alone unless below the policy's limit (peak + margin); either policy.",
        rich_help_panel="Policy")] = False,
    min_change: Annotated[float, typer.Option(help="Skip changes smaller than this fraction (no churn).",
                                              rich_help_panel="Policy")] = 0.05,
    min_history: Annotated[str, typer.Option(help="Least history to recommend from, e.g. 24h.",
                                             rich_help_panel="Policy")] = "24h",
    allow_hpa: Annotated[bool, typer.Option(
        help="Also resize resources an HPA scales on (default: skip them and explain the HPA effect).",
        rich_help_panel="Policy")] = False,
    use_forecast: Annotated[bool, typer.Option(
        "--use-forecast", help="Also run the demand forecaster: its 7-day memory peak becomes a floor (safer, more "
                               "memory) and its P95/peak go into the evidence.", rich_help_panel="Policy")] = False,
    spot_placement: Annotated[SpotPlacement, typer.Option(
        help="Spot patches: preferred node affinity (falls back to on-demand), required affinity, or nodeSelector.",
        rich_help_panel="Policy")] = SpotPlacement.preferred,
    pricing: Annotated[Path | None, typer.Option(help="Your prices (YAML), as for `kubetune cost`.")] = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="Also list what got no recommendation, and why.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the list to this file instead of stdout.")] = None,
) -> None:
    """Right-sizing, GPU-sharing and spot recommendations, each with its saving, risk and evidence.

    CPU requests come from calibrated quantiles of per-pod demand after the last behaviour change,
    under a risk budget (--risk); the memory limit from the observed peak + max(--memory-margin, 64Mi),
    never below the peak, with VPA's bump for OOM-killed containers. --memory-policy guaranteed sets
    request = limit; burstable sets the request at a calibrated quantile (--memory-overcommit) and
    checks the packing against node memory pressure (--node-size, --node-pressure-risk).
    GPUs: remove unused ones, share (MIG profile or time-slicing) lightly used ones. Spot: workloads
    that pass the readiness checks. JSON/CSV keep base units (cores, bytes, devices); the table
    shows human units.

    Examples:
      kubetune recommend
      kubetune recommend --risk 0.01 --format json --out recs.json
      kubetune recommend --patches patches/ --base ../base
      kubetune recommend --kind rightsize --skipped
      kubetune recommend --memory-policy burstable --node-size 32Gi/8
    """
    from recommenders.api import KINDS as KNOWN_KINDS
    from recommenders.api import recommend as run
    from recommenders.api import recommendations_frame, skip_summary
    from recommenders.base_manifests import resolve_base
    from recommenders.patches import human_value, write_patches
    from recommenders.policy import RightsizePolicy

    kinds = tuple(k.strip() for part in (kind or list(KNOWN_KINDS)) for k in part.split(",") if k.strip())
    if patches is not None:
        _check_out(patches, overwrite)
        local = resolve_base(patches, base) if base else None
        if local is not None and not local.exists():
            raise InputError(f"--base {base} does not exist: it is resolved from the --patches directory, to {local}.")
    node_mem, node_cores = _node_size(node_size)
    policy = RightsizePolicy(
        risk=risk, risk_mode=risk_mode.value, max_risk=max(max_risk, risk), memory_risk=memory_risk,
        memory_margin=memory_margin, max_memory_margin=max(0.5, memory_margin), cpu_limit_ratio=cpu_limit_ratio,
        memory_limit="keep" if keep_memory_limit else "request", min_change=min_change,
        min_history_hours=parse_duration(min_history) / 3600.0, hpa="allow" if allow_hpa else "skip",
        use_forecast=use_forecast, memory_policy=memory_policy.value, memory_overcommit=memory_overcommit,
        node_memory=node_mem, node_cpu=node_cores, node_pressure_risk=node_pressure_risk,
    )
    snap = _load(source, snapshot, prometheus_url, kubeconfig, in_cluster, history)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to recommend from (collect from Prometheus or import usage).")
    with _progress() as progress:
        progress.add_task("recommending", total=None)
        result = run(snap, policy, kinds=kinds, pricing_file=pricing, spot_placement=spot_placement.value)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if patches is not None:
        written = write_patches(result, patches, base=base)
        err_console.print(f"Wrote {len(written.files)} patch(es) and kustomization.yaml to {patches}.")
        if written.unmatched:
            err_console.print(f"[yellow]warning:[/yellow] {len(written.unmatched)} patch(es) do not match --base and "
                              f"were set aside in {patches / 'unmatched'}, e.g. {written.unmatched[0]}.", highlight=False)
    frame = recommendations_frame(result, include_skipped=skipped)
    if format is Format.json or format is Format.yaml:
        rows = [r.to_dict() for r in result.recommendations]
        if skipped:
            rows += [s.row() for s in result.skipped]
        emit_document(rows, format, out)
    elif format is not Format.table:
        emit(frame, format, out=out)
    else:
        shown = frame.with_columns(
            pl.concat_str(pl.col("namespace"), pl.col("workload_kind"), pl.col("workload"), separator="/").alias("workload"),
            pl.struct("resource", "current_request", "kind").map_elements(
                lambda s: ("gpu " if s["kind"].startswith("gpu") else "")
                + human_value(s["resource"], s["current_request"], "-"), return_dtype=pl.String).alias("now"),
            pl.struct("resource", "proposed_request", "kind").map_elements(
                lambda s: (s["resource"].rsplit("/", 1)[-1] + " " if s["kind"].startswith("gpu") else "")
                + human_value(s["resource"], s["proposed_request"], "-"), return_dtype=pl.String).alias("proposed"),
            pl.col("reason").str.split(";").list.first().str.slice(0, 44).alias("why"),
        ).select("workload", "container", "kind", "resource", "now", "proposed", "monthly_saving_usd",
                 "confidence_label", "why")
        total = result.monthly_saving_usd
        title = (f"{len(result.recommendations)} recommendation(s), net ${total:,.2f}/month "
                 f"({len(result.skipped)} skipped{'' if skipped else '; --skipped lists them'})")
        emit(shown.rename({"monthly_saving_usd": "$/month", "confidence_label": "confidence"}), Format.table,
             title=title, formatters={"$/month": _usd}, out=out, console=out_console)
        if not skipped and result.skipped and out is None:
            _note("Skipped most often: " + "; ".join(skip_summary(result)))
    gpu = result.cluster_notes.get("gpu")
    if isinstance(gpu, dict) and gpu.get("gpus_released") is not None and out is None and format is Format.table:
        _note(f"GPUs: {gpu['gpus_needed_now']} in use by GPU workloads now, about {gpu['gpus_needed_after']} after the "
              f"GPU changes; up to {gpu['gpus_released']} could be released (packing estimate).")


@app.command()
def pr(
    repo: Annotated[Path | None, typer.Option(help="Local clone of the GitOps repository.")] = None,
) -> None:
    """Open a pull request with the recommended patches in a GitOps repository."""
    _not_yet("pr", 9)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port for the Streamlit dashboard.")] = 8501,
) -> None:
    """Start the Streamlit FinOps dashboard."""
    _not_yet("dashboard", 8)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn user-facing errors into one line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except ClickExit as exc:
        return exc.exit_code
    except ClickException as exc:
        exc.show(file=sys.stderr)
        return 2
    except ClickAbort:
        err_console.print("aborted.")
        return 1
    except KubetuneError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted.")
        return 130
    except Exception as exc:  # a bug: say so briefly, traceback only on request
        if os.environ.get("KUBETUNE_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(set KUBETUNE_DEBUG=1 for the traceback and please report it).",
            highlight=False,
        )
        return 1
    return 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
