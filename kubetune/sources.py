"""Where an analysis command gets its Snapshot: a directory, a live source, or the bundled sample."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from analyzer.errors import InputError, KubetuneError
from analyzer.paths import sample_snapshot_dir
from analyzer.snapshot import Snapshot, load_snapshot


@dataclass
class Source:
    """The source options every analysis command shares. ``argument`` is the source given as the
    command's first argument: an http(s) URL means Prometheus, anything else a snapshot directory."""

    argument: str | None = None
    snapshot: Path | None = None
    prometheus_url: str | None = None
    kubeconfig: Path | None = None
    in_cluster: bool = False
    history: str = "14d"
    max_window: float | None = None  # days; None = analyzer.sanity.MAX_WINDOW_DAYS
    namespace: list[str] | None = None
    selector: list[str] | None = None

    def describe(self) -> str:
        if self.argument:
            return f"source {self.argument}"
        if self.snapshot:
            return f"snapshot {self.snapshot}"
        if self.prometheus_url:
            return f"Prometheus at {self.prometheus_url}"
        return "the bundled sample"


def load_source(source: Source, note=print) -> Snapshot:
    """Load the snapshot the options name (narrowed by -n/--selector); with none given, the bundled
    sample (said in one line)."""
    snap = _load(source, note)
    if not (source.namespace or source.selector):
        return snap
    from analyzer.filters import filter_snapshot

    narrowed = filter_snapshot(snap, source.namespace or (), source.selector or ())
    if narrowed.workloads.is_empty() and narrowed.containers.is_empty():
        what = " and ".join(f"{flag} {', '.join(v)}" for flag, v in (("--namespace", source.namespace),
                                                                    ("--selector", source.selector)) if v)
        raise InputError(f"{what} matches no workload in {source.describe()}.")
    return narrowed


def _load(source: Source, note) -> Snapshot:
    given = [n for n, v in ((repr(source.argument), source.argument), ("--snapshot", source.snapshot),
                            ("--prometheus-url", source.prometheus_url)) if v]
    if len(given) > 1:
        raise InputError(f"give one source, not both {given[0]} and {given[1]}.")
    if source.argument:
        if re.match(r"(?i)https?://", source.argument):
            source = replace(source, argument=None, prometheus_url=source.argument)
        else:
            source = replace(source, argument=None, snapshot=Path(source.argument))
    if source.snapshot:
        snap = load_snapshot(source.snapshot, max_window_days=source.max_window)
        for warning in snap.load_warnings:
            note(f"warning: {warning}")
        return snap
    if source.prometheus_url:
        return _collect_live(source)
    if source.kubeconfig or source.in_cluster:
        raise InputError(
            "--kubeconfig/--in-cluster give the workload specs; usage needs --prometheus-url as well "
            "(or collect a snapshot first with `kubetune collect`)."
        )
    sample = sample_snapshot_dir()
    if not (sample / "manifest.json").exists():
        raise KubetuneError(
            f"no source given and the bundled sample is missing at {sample}; pass --snapshot DIR or --prometheus-url URL."
        )
    note(f"No source given: using the bundled sample snapshot ({sample}).")
    return load_snapshot(sample)


def _collect_live(source: Source) -> Snapshot:
    try:
        from analyzer.collectors import prometheus
    except ImportError:
        raise InputError("reading Prometheus directly is not yet available in this build; use --snapshot.") from None
    usage = prometheus.collect_from_options(url=source.prometheus_url, history=source.history)
    if not (source.kubeconfig or source.in_cluster):
        return usage
    from analyzer.collectors import kubernetes

    spec = kubernetes.collect_from_options(kubeconfig=source.kubeconfig, in_cluster=source.in_cluster)
    merged, _ = kubernetes.merge_specs(usage, spec)
    return merged
