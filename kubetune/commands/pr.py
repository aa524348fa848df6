"""`kubetune pr`: propose the recommendations to a GitOps repository as a pull/merge request."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from analyzer.errors import InputError
from analyzer.redact import redact
from kubetune.console import err_console as err
from kubetune.console import note
from kubetune.options import with_source
from kubetune.output import Format, emit_document
from kubetune.sources import Source, load_source


@with_source
def pr(
    source: Source,
    recommendations: Annotated[Path | None, typer.Option(
        "--recommendations", "-r", help="A saved recommendations.json (from `kubetune recommend --patches DIR` or the "
                                        "in-cluster CronJob) instead of recommending now.")] = None,
    repo: Annotated[Path, typer.Option(help="Local clone of the GitOps repository.", rich_help_panel="Repository")] = Path("."),
    path: Annotated[list[str] | None, typer.Option(
        "--path", help="This cluster's manifests: a directory or glob in the repository (repeat). A kustomize overlay "
                       "here gets patch files; shared bases stay untouched. Default: the whole repository.",
        rich_help_panel="Repository")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="Look this cluster's overlay directories up in kubetune-gitops.yaml (clusters: NAME: [DIR...]).",
        rich_help_panel="Repository")] = None,
    base_branch: Annotated[str, typer.Option(help="Branch the pull request targets.",
                                             rich_help_panel="Repository")] = "main",
    branch: Annotated[str, typer.Option(help="Branch kubetune owns and updates.",
                                        rich_help_panel="Repository")] = "kubetune/rightsizing",
    remote: Annotated[str, typer.Option(help="Git remote to fetch from and push to.",
                                        rich_help_panel="Repository")] = "origin",
    min_saving: Annotated[float, typer.Option(
        help="Only workloads saving at least this many $/month (memory raises for OOM-killed containers always "
             "pass).", rich_help_panel="Selection")] = 0.0,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help="Only these: rightsize, gpu, spot (repeat or comma-separate; default all).",
        rich_help_panel="Selection")] = None,
    github: Annotated[str | None, typer.Option(help="Open the pull request on this GitHub OWNER/REPO (token: "
                                                    "GITHUB_TOKEN).", rich_help_panel="Forge")] = None,
    gitlab: Annotated[str | None, typer.Option(help="Open the merge request on this GitLab project path or id (token: "
                                                    "GITLAB_TOKEN).", rich_help_panel="Forge")] = None,
    api_url: Annotated[str | None, typer.Option(
        help="API base URL (GitHub Enterprise, self-managed GitLab). Default: GITHUB_API_URL / CI_API_V4_URL, "
             "else the public service.", rich_help_panel="Forge")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Labels for the pull request (repeat).",
                                                    rich_help_panel="Forge")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff and the description; touch nothing "
                                                            "(reads the local base branch, no fetch, no token).")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table (the diff and text) or json/yaml "
                                                                  "(a summary).")] = Format.table,
) -> None:
    """Propose the recommendations as a reviewable pull request (GitHub) or merge request (GitLab).

    Finds each workload in the repository as the cluster renders it (plain YAML, kustomize overlays via
    `kubectl kustomize`, Helm values through kubetune-gitops.yaml), edits only its resource (or placement)
    fields in the file's own style, and pushes one commit to one branch. Running again with the same
    recommendations changes nothing; a branch someone else pushed to is left alone (exit 1).

    Examples:
      kubetune pr --recommendations patches/recommendations.json --repo . --path overlays/prod --dry-run
      GITHUB_TOKEN=... kubetune pr -r recs.json --repo gitops --path overlays/prod --github acme/gitops --min-saving 5
      GITLAB_TOKEN=... kubetune pr snapshot/ --repo gitops --cluster prod --gitlab platform/gitops
    """
    from recommenders.gitops.plan import load_recommendations, parse_kinds
    from recommenders.gitops.run import PrOptions, run_pr

    if format in (Format.csv, Format.parquet):
        raise InputError("kubetune pr prints a diff and a description (--format table) or a summary (json, yaml).")
    kinds = parse_kinds(kind)
    if not dry_run and not (github or gitlab):
        raise InputError("say where to open the pull request: --github OWNER/REPO or --gitlab PROJECT (or --dry-run "
                         "to only show it).")
    if github and gitlab:
        raise InputError("give --github or --gitlab, not both.")
    if recommendations is not None:
        given = source.argument or source.snapshot or source.prometheus_url
        if given:
            raise InputError(f"give a source or --recommendations, not both ({given} and {recommendations}).")
        result = load_recommendations(recommendations)
        described = recommendations.name
    else:
        from recommenders.api import recommend

        snap = load_source(source, note=lambda m: note(escape(m)))
        result = recommend(snap)
        described = "a fresh kubetune recommend run"
    opts = PrOptions(repo=repo, base=base_branch, branch=branch, remote=remote, paths=list(path or []),
                     cluster=cluster, kinds=kinds, min_saving=min_saving, github=github, gitlab=gitlab,
                     api_url=api_url, labels=list(label or ["kubetune", "cost"]), dry_run=dry_run, source=described)
    done = run_pr(result, opts, say=lambda m: err.print(escape(redact(m)), highlight=False))
    plan = done.plan
    if format is not Format.table:
        emit_document({
            "status": done.status, "title": done.title, "url": done.proposal.url if done.proposal else None,
            "commit": done.commit, "changed": [{"workload": "/".join(c.key), "files": c.files,
                                                "monthly_saving_usd": round(c.saving, 2)} for c in plan.applied],
            "not_changed": [{"workload": "/".join(c.key), "reason": c.problem} for c in plan.not_applied],
            "below_min_saving": ["/".join(c.key) for c in plan.below_min]}, format)
    elif dry_run:
        sys.stdout.write(redact(done.diff) or "(no file changes)\n")
        sys.stdout.write(f"\n# {redact(done.title)}\n\n{redact(done.body)}")
    for c in plan.not_applied:
        err.print(f"[yellow]not changed:[/yellow] {escape('/'.join(c.key))}: {escape(str(c.problem))}", highlight=False)
    if done.proposal is not None:
        err.print(f"Pull request {done.status}: {escape(done.proposal.url or '#' + str(done.proposal.number))}",
                  highlight=False)
