"""Options several commands share, declared once.

``with_source`` gives an analysis command the source options (a first argument, ``--snapshot``,
``--prometheus-url``, ``--kubeconfig``, ``--in-cluster``, ``--history``) and the filters
(``-n/--namespace``, ``-l/--selector``) and hands it one ``Source``; ``FormatOpt``/``OutOpt`` are the output options. Typer reads the generated signature,
so ``--help`` lists the options as if each command had declared them.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kubetune.output import Format
from kubetune.sources import Source

SOURCE_PANEL = "Source"

SourceArg = Annotated[
    str | None,
    typer.Argument(help="Snapshot directory or Prometheus URL (http[s]://...): the same as --snapshot or "
                        "--prometheus-url. With no source at all, the bundled sample.",
                   show_default=False),
]
SnapshotOpt = Annotated[
    Path | None,
    typer.Option("--snapshot", "-s", help="Snapshot directory to analyse (from `collect`, `simulate` or `import`).",
                 rich_help_panel=SOURCE_PANEL),
]
PrometheusOpt = Annotated[
    str | None,
    typer.Option("--prometheus-url", help="Read a live Prometheus (or Thanos/Mimir/VictoriaMetrics) instead of a snapshot.",
                 envvar="KUBETUNE_PROMETHEUS_URL", rich_help_panel=SOURCE_PANEL),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="kubeconfig for the Kubernetes API (workload specs).", rich_help_panel=SOURCE_PANEL),
]
InClusterOpt = Annotated[
    bool, typer.Option("--in-cluster", help="Use the pod's service account (when run as a CronJob).",
                       rich_help_panel=SOURCE_PANEL)
]
HistoryOpt = Annotated[
    str, typer.Option("--history", help="How much history to read from a live source, e.g. 14d.",
                      rich_help_panel=SOURCE_PANEL)
]
MaxWindowOpt = Annotated[
    float | None, typer.Option("--max-window", help="Longest snapshot window in days to accept (default 400).",
                               rich_help_panel=SOURCE_PANEL)
]
FILTER_PANEL = "Filter"
NamespaceOpt = Annotated[
    list[str] | None,
    typer.Option("--namespace", "-n", help="Only this namespace: an exact name or a regular expression matched against "
                                           "the whole name, e.g. 'team-.*' (repeatable).", rich_help_panel=FILTER_PANEL),
]
SelectorOpt = Annotated[
    list[str] | None,
    typer.Option("--selector", "-l", help="Only workloads labelled LABEL=VALUE (repeatable; all must hold).",
                 rich_help_panel=FILTER_PANEL),
]
FORMAT_HELP = ("table (the columns that fit the terminal), wide (every column), json or yaml (the versioned "
               "envelope), csv or parquet.")
FormatOpt = Annotated[Format, typer.Option("--format", "-f", metavar="FORMAT", help=FORMAT_HELP)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")]

# (name, annotation, default) of the source options, in --help order.
_SOURCE_PARAMS: list[tuple[str, Any, Any]] = [
    ("source", SourceArg, None), ("snapshot", SnapshotOpt, None), ("prometheus_url", PrometheusOpt, None),
    ("kubeconfig", KubeconfigOpt, None), ("in_cluster", InClusterOpt, False), ("history", HistoryOpt, "14d"),
    ("max_window", MaxWindowOpt, None), ("namespace", NamespaceOpt, None), ("selector", SelectorOpt, None),
]


def extend_signature(func: Callable[..., Any], extra: list[inspect.Parameter], *, first: bool = False,
                     drop: tuple[str, ...] = ()) -> tuple[inspect.Signature, dict[str, Any]]:
    """``func``'s signature with ``extra`` keyword parameters added (annotations resolved, as Typer needs)."""
    hints = typing.get_type_hints(func, include_extras=True)
    own = [p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(func).parameters.values() if p.name not in drop]
    params = extra + own if first else own + extra
    annotations = {p.name: p.annotation for p in params}
    return inspect.Signature(params, return_annotation=None), annotations


def with_source(func: Callable[..., Any]) -> Callable[..., Any]:
    """Declare the source options for ``func``, which takes ``source: Source`` instead of them."""
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in _SOURCE_PARAMS]
    signature, annotations = extend_signature(func, extra, first=True, drop=("source",))
    names = [n for n, _, _ in _SOURCE_PARAMS]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        given = {n: kwargs.pop(n) for n in names}
        return func(source=Source(argument=given.pop("source"), **given), **kwargs)

    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    return command
