"""``kubetune report``: the weekly FinOps report (what the CronJob runs), and its pushes."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError
from analyzer.units import parse_duration
from kubetune.console import err_console, note, out_console
from kubetune.options import with_source
from kubetune.sources import Source, load_source


def _line(message: str) -> None:
    """A plain timestamped progress line on stderr (readable in `kubectl logs` of the CronJob)."""
    err_console.print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {message}", highlight=False, markup=False, soft_wrap=True)


@with_source
def report(
    source: Source,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Directory for the report (replaced whole; default report/ unless --history-dir).",
        rich_help_panel="Output")] = None,
    history_dir: Annotated[Path | None, typer.Option(
        help="Keep every run: HISTORY/<UTC timestamp>/ plus a `latest` link, and show the week-over-week trend "
             "(in the cluster: a PersistentVolume).", envvar="KUBETUNE_HISTORY_DIR", rich_help_panel="Output")] = None,
    keep: Annotated[int, typer.Option(min=1, help="Runs to keep in --history-dir (the oldest are removed).",
                                      envvar="KUBETUNE_KEEP", rich_help_panel="Output")] = 12,
    window: Annotated[str, typer.Option(help="Cost window: the last part of the history, e.g. 7d.",
                                        envvar="KUBETUNE_WINDOW")] = "7d",
    title: Annotated[str | None, typer.Option(help="Page title (default: kubetune report: CLUSTER).",
                                              envvar="KUBETUNE_REPORT_TITLE")] = None,
    team_label: Annotated[str, typer.Option(help="Workload (else namespace) label that names the team.",
                                            envvar="KUBETUNE_TEAM_LABEL")] = "team",
    pricing: Annotated[Path | None, typer.Option(help="Your prices (YAML), as for `kubetune cost`.")] = None,
    push: Annotated[list[str] | None, typer.Option(
        help="After writing: `slack` (webhook from $KUBETUNE_SLACK_WEBHOOK_URL or --slack-webhook-file) or "
             "s3://BUCKET/PREFIX (boto3 credentials). Repeatable; $KUBETUNE_PUSH takes a space-separated list.",
        envvar="KUBETUNE_PUSH", rich_help_panel="Push")] = None,
    s3_endpoint: Annotated[str | None, typer.Option(
        help="S3-compatible endpoint (MinIO, Ceph, R2, ...); default AWS.", envvar="KUBETUNE_S3_ENDPOINT",
        rich_help_panel="Push")] = None,
    slack_webhook_file: Annotated[Path | None, typer.Option(
        help="File holding the Slack webhook URL (a mounted Secret; never put it in a ConfigMap).",
        envvar="KUBETUNE_SLACK_WEBHOOK_FILE", rich_help_panel="Push")] = None,
) -> None:
    """The weekly FinOps report: report.html (offline, charts inline), report.md, report.json and patches/.

    Headline cost, idle and waste in $/month, potential saving by kind with its risk, cost by
    namespace and team, top wasteful workloads, requested vs used vs recommended charts with the
    forecast and drift, the GPU fleet, drift events and every recommendation. With --history-dir
    each run is kept and the page shows the trend and the recommendations taken since.

    Examples:
      kubetune report --out report/
      kubetune report snap/ --history-dir reports/ --keep 12
      kubetune report --prometheus-url http://prometheus:9090 --in-cluster --history-dir /data --push slack
    """
    from dashboards.report import ReportOptions, check_writable, write_report
    from dashboards.report.push import parse_s3, push_s3, push_slack, redact_url, slack_webhook

    targets = push or []
    for t in targets:
        if t != "slack":
            parse_s3(t)
    webhook = slack_webhook(slack_webhook_file) if "slack" in targets else None
    span = parse_duration(window)
    if span <= 0:
        raise InputError("--window must be positive, e.g. 7d.")
    if out is None and history_dir is None:
        out = Path("report")
    check_writable(out, history_dir)
    started = datetime.now(UTC)
    _line("loading the source")
    snap = load_source(source, note=note)
    url = source.prometheus_url or (source.argument if source.argument and "://" in source.argument else None)
    described = f"Prometheus at {redact_url(url)}" if url else source.describe()
    opts = ReportOptions(title=title, window=timedelta(seconds=span), team_label=team_label, pricing_file=pricing,
                         progress=_line)
    written = write_report(snap, out=out, history=history_dir, keep=keep, options=opts, source=str(described))
    doc = written.document
    h = doc["headline"]
    _line(f"report written to {written.directory} in {(datetime.now(UTC) - started).total_seconds():.0f} s"
          + (f"; removed {len(written.pruned)} old run(s)" if written.pruned else ""))
    link = None
    for t in targets:
        if t.startswith("s3://"):
            _line(f"pushing to {t}")
            link = push_s3(written.directory, t, doc["run_id"], endpoint=s3_endpoint)
    if webhook is not None:
        _line("posting to Slack")
        push_slack(doc, webhook, link)
    out_console.print(
        f"Report: {written.directory / 'report.html'} - monthly cost ${h['monthly_cost_usd']:,.0f}, idle "
        f"${h['idle_monthly_usd']:,.0f}, potential saving ${h['potential_saving_monthly_usd']:,.0f}/month "
        f"({h['recommendations']} recommendation{'' if h['recommendations'] == 1 else 's'}).", highlight=False, markup=False, soft_wrap=True)
    sys.stdout.flush()
