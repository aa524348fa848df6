"""`kubetune collect`: a Snapshot from Prometheus (usage) and/or the Kubernetes API (specs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError
from kubetune.console import check_out, err_console, note, spinner
from kubetune.options import InClusterOpt, KubeconfigOpt, PrometheusOpt


def _header_pairs(values: list[str] | None) -> dict[str, str]:
    headers = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--header needs NAME=VALUE, got {name.strip() or item!r}.")
        headers[name.strip()] = value
    return headers


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

    Length: most of it is the option declarations (Typer reads them from the signature).
    """
    check_out(out, overwrite)
    wants_api = bool(kubeconfig or context or in_cluster)
    if not (prometheus_url or wants_api or from_kubectl):
        raise InputError("collect needs --prometheus-url and/or --kubeconfig/--in-cluster/--from-kubectl.")
    if from_kubectl and wants_api:
        raise InputError("give either --from-kubectl or --kubeconfig/--in-cluster, not both.")
    usage = spec = None
    with spinner() as progress:
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
        note(line)
    return merged
