"""Prometheus collector: a whole cluster into a Snapshot with a handful of bulk PromQL queries.

Reads cAdvisor, kube-state-metrics, NVIDIA dcgm-exporter and OpenCost metrics from Prometheus
or anything that speaks its HTTP API (Thanos, Mimir, VictoriaMetrics). The queries are in
``analyzer.collectors.promql``; each reads one metric family for the whole cluster, so a
2,000-container cluster costs 17 HTTP requests, not thousands (``benchmarks/README.md``).

Use::

    config = PrometheusConfig(url="http://prometheus:9090")   # token from KUBETUNE_PROMETHEUS_TOKEN
    snapshot = collect_prometheus(config, history="14d")
    snapshot.write("snap/")

``collect_prometheus`` builds the snapshot in memory and writes nothing, so a failure never
leaves half a snapshot; ``Snapshot.write`` is atomic. Failures are ``KubetuneError`` (server or
network trouble, exit 1) or ``InputError`` (wrong URL, credentials, options; exit 2), each one
sentence. The bearer token, the basic-auth password and header values never appear in a
message, a log line or a ``repr``.

HTTP (``promclient``) is a ``requests`` session with our own retries (backoff on connection
errors, timeouts, 429 and 5xx; never on 4xx). Range answers are decoded by ``promjson`` straight
into Polars, not into per-sample Python objects.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import polars as pl

from analyzer.collectors import promql as q
from analyzer.collectors.promclient import (
    DEFAULT_POINTS,
    MAX_POINTS_PER_SERIES,
    Progress,
    PrometheusClient,
    PrometheusConfig,
    TooLarge,
    _iso_short,
    query_pool,
)
from analyzer.collectors.promframes import (
    DEVICE_SCHEMA,
    devices_frame,
    labels_frame,
    pods_frame,
    tagged,
    to_datetime,
    to_epoch,
    usage_empty,
)
from analyzer.collectors.promlast import read_increase, use_grid
from analyzer.collectors.promtables import SnapshotTables
from analyzer.collectors.promusage import usage_rows
from analyzer.errors import InputError
from analyzer.sanity import clean_usage
from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import MIB, parse_duration

log = logging.getLogger("kubetune.prometheus")

# ---------------------------------------------------------------------------------------------
# Collection


@dataclass
class _Notes:
    absent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def missing(self, part: str, warning: str | None) -> None:
        if part not in self.absent:
            self.absent.append(part)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
            log.warning(warning)


def collect_prometheus(
    config: PrometheusConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    history: str | float | timedelta | None = None,
    step: str | float | timedelta | None = None,
    namespaces: list[str] | tuple[str, ...] | None = None,
    progress: Progress | None = None,
    client: PrometheusClient | None = None,
) -> Snapshot:
    """Read one cluster's window from Prometheus into a Snapshot (in memory; nothing is written).

    The window is ``[start, end]``, or the ``history`` (``"14d"``, seconds or a timedelta)
    before ``end`` (default: now). ``step`` (default: automatic) is the ``usage`` resolution:
    at least the scrape interval, at most ``MAX_POINTS_PER_SERIES`` points per series per
    request (longer windows are split), by default about ``DEFAULT_POINTS`` points per series.
    ``namespaces`` limits pod-level data to those namespaces (nodes are always read).
    ``progress`` gets one short line per query. ``client`` lets a caller pass its own
    ``PrometheusClient`` (to read its request log); by default one is made and closed here.
    """
    t_end = to_epoch(end) if end is not None else time.time()
    if start is not None:
        if history is not None:
            raise InputError("give either a start time or a history length, not both.")
        t_start = to_epoch(start)
    else:
        t_start = t_end - _seconds(history if history is not None else "14d", "history")
    if t_end <= t_start:
        raise InputError("the collection window is empty: end is not after start.")
    own = client is None
    client = client or PrometheusClient(config, progress)
    try:
        return _Collection(config, client, t_start, t_end, step, tuple(namespaces or ())).run()
    finally:
        if own:
            client.close()


def collect_from_options(
    url: str,
    history: str = "14d",
    kubeconfig: Any = None,
    in_cluster: bool = False,
    **options: Any,
) -> Snapshot:
    """The CLI's shortcut: ``collect_prometheus(PrometheusConfig(url, **options), history=...)``.

    ``kubeconfig``/``in_cluster`` belong to the Kubernetes API collector and are not used here.
    Options named ``start``, ``end``, ``step``, ``namespaces`` and ``progress`` go to
    ``collect_prometheus``; the rest to ``PrometheusConfig``.
    """
    call = {k: options.pop(k) for k in ("start", "end", "step", "namespaces", "progress") if k in options}
    config = PrometheusConfig(url=url, **options)
    if call.get("start") is not None:
        return collect_prometheus(config, **call)
    return collect_prometheus(config, history=history, **call)


class _Collection(SnapshotTables):
    def __init__(self, config: PrometheusConfig, client: PrometheusClient, t_start: float, t_end: float,
                 step: Any, namespaces: tuple[str, ...]):
        self.config = config
        self.client = client
        self.scope = q.Scope(config.cluster_selector(), namespaces)
        self.t_start_req, self.t_end_req = t_start, t_end
        self.step_req = _seconds(step, "step") if step is not None else None
        self.notes = _Notes()

    # -- orchestration ----------------------------------------------------------------------------

    def run(self) -> Snapshot:
        c = self.client
        names = c.metric_names(self.t_start_req, self.t_end_req, self.scope.match())
        self.present = names
        self._check_required(names)
        self.engine = self.config.engine or c.engine()
        self.scrape = self.config.scrape_interval or self._scrape_interval()
        self.step = _choose_step(self.t_end_req - self.t_start_req, self.scrape, self.step_req, self.notes)
        # Evaluation times are multiples of the step, so they line up with aligned scrapes.
        self.t_end = math.floor(self.t_end_req / self.step) * self.step
        self.t_start = math.ceil(self.t_start_req / self.step) * self.step
        if self.t_end < self.t_start:
            raise InputError(f"the window is shorter than one step ({self.step:g} s); widen --history.")
        self.window = self.t_end - self.t_start + self.step  # instant queries at t_end look this far back
        log.info("window %s..%s, step %g s, scrape interval %g s, engine %s", _iso_short(self.t_start),
                 _iso_short(self.t_end), self.step, self.scrape, self.engine)

        # Independent queries overlap (the client bounds the requests in flight to config.parallel):
        # the client decodes and frames one answer while Prometheus computes the next.
        self.grid = use_grid(self.config.spec_grid, self.engine, self.window)
        with query_pool(self.config.parallel, c) as pool:
            # One series index for the usage plan and the specs read on a grid (promlast); first in, so
            # the tasks waiting for it never hold every worker while it waits for one.
            self.index_future = pool.submit(self.client.series, q.usage_series(self.scope) + self._spec_selectors(),
                                            self.t_start - self.step, self.t_end, "series index")
            pods_f, plan_f = pool.submit(self._owners), pool.submit(self._usage_plan)
            inventory_f = pool.submit(self._inventory)
            throttling_f = pool.submit(self._throttling)
            # Results are taken in the sequential order, so the first failure reported is always the same one.
            pods, inventory, plan = pods_f.result(), inventory_f.result(), plan_f.result()
            owners = pods.select("namespace", "pod", "workload_kind", "workload")
            cpu_f = pool.submit(self._range_usage, lambda s: q.cpu_usage(s, self.step, self.scrape, self.engine,
                                                                         aggregate=plan["cpu"][0]),
                                "cpu", "CPU usage", plan["cpu"][1], owners)
            memory_f = pool.submit(self._range_usage, lambda s: q.memory_usage(s, self.step,
                                                                               aggregate=plan["memory"][0]),
                                   "memory", "memory usage", plan["memory"][1], owners)
            gpu_f = pool.submit(self._gpu, inventory, owners)
            # Small queries that need no usage: they take a free slot while the usage answers come.
            meta_f, nodes_f, events_f = (pool.submit(f) for f in (self._meta_rows, self._node_rows,
                                                                  self._event_rows))
            (cpu, cpu_spans), (memory, memory_spans) = cpu_f.result(), memory_f.result()
            gpu, gpu_memory, devices = gpu_f.result()
            throttling = throttling_f.result()
            meta_rows, node_rows, event_rows = meta_f.result(), nodes_f.result(), events_f.result()
        if cpu.height == 0 and memory.height == 0:
            raise InputError(
                f"Prometheus at {c.where} has no container CPU or memory samples between "
                f"{_iso_short(self.t_start)} and {_iso_short(self.t_end)} UTC"
                + (f" for namespaces {', '.join(self.scope.namespaces)}" if self.scope.namespaces else "")
                + (f" with {self.config.cluster_label}" if self.config.cluster_label else "") + "."
            )
        usage, dropped = clean_usage(pl.concat([cpu, memory, gpu, gpu_memory], how="vertical"))
        self.notes.warnings.extend(dropped)
        del cpu, memory
        spans = pl.concat([cpu_spans, memory_spans], how="vertical")
        containers = self._containers(inventory, pods, spans, throttling)
        workloads, namespaces_frame = self._workloads(containers, meta_rows)
        nodes = self._nodes(containers, devices, node_rows)
        events = self._events(containers, event_rows)
        gpus = self._gpus(devices, gpu)
        manifest = Manifest(
            cluster=self._cluster_name(),
            start=to_datetime(self.t_start),
            end=to_datetime(self.t_end),
            step_seconds=int(round(self.step)),
            source=f"prometheus {c.where}" + (f" ({self.config.cluster_label})" if self.config.cluster_label else ""),
            absent=sorted(self.notes.absent),  # sorted: queries overlap, so the order they were noted varies
            warnings=sorted(self.notes.warnings),
        )
        log.info("collected %d usage rows, %d containers in %d HTTP requests", usage.height, containers.height,
                 len(c.log))
        return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes,
                              events=events, gpus=gpus, namespaces=namespaces_frame)

    def _cluster_name(self) -> str:
        if self.config.cluster_name:
            return self.config.cluster_name
        sel = self.config.cluster_selector()
        if sel:
            return sel[1]
        return urlsplit(self.client.base).hostname or "prometheus"

    def _has(self, family: str) -> bool:
        return any(m in self.present for m in q.FAMILY[family].any_of)

    def _check_required(self, names: set[str]) -> None:
        missing = [f for f in q.FAMILIES if f.required and not any(m in names for m in f.any_of)]
        if not missing:
            return
        where = f"Prometheus at {self.client.where}"
        scope = f" (with {self.config.cluster_label})" if self.config.cluster_label else ""
        if not names:
            raise InputError(
                f"{where} has no metrics at all between {_iso_short(self.t_start_req)} and "
                f"{_iso_short(self.t_end_req)} UTC{scope}; check the URL, --history and --cluster-label."
            )
        metrics = ", ".join(m for f in missing for m in f.any_of)
        sources = []
        for f in missing:
            if f.source not in sources:
                sources.append(f.source)
        raise InputError(f"{where} lacks required metrics{scope}: {metrics}; install and scrape "
                         f"{' and '.join(sources)}.")

    def _scrape_interval(self) -> float:
        span = self.t_end_req - self.t_start_req
        for window in (min(span, 6 * 3600.0), span):
            _, values = self.client.instant(q.scrape_interval(self.scope, window), self.t_end_req,
                                            "scrape interval")
            finite = values[np.isfinite(values)]
            if finite.size and finite.max() >= 2:
                return _nice_interval(window / (float(finite.max()) - 1))
            if window == span:
                break
        self.notes.warnings.append("could not measure the scrape interval (too few samples); assumed 60 s.")
        return 60.0

    # -- pods, owners, requests ------------------------------------------------------------------

    def _owners(self) -> pl.DataFrame:
        """One row per pod: workload_kind, workload, owner_kind, owner_name, node, started/ended."""
        rows = tagged(*self._last(q.owners(self.present), "pod owners"))
        if not self._has("ksm_replicaset_owner"):
            self.notes.missing("replicaset_owners", "kube_replicaset_owner is missing: Deployments are guessed from "
                               "ReplicaSet names (kube-state-metrics exports it by default; check its --resources).")
        if not self._has("ksm_job_owner"):
            self.notes.missing("job_owners", "kube_job_owner is missing: CronJobs are guessed from Job names.")
        return pods_frame(rows, guess_rs=not self._has("ksm_replicaset_owner"),
                          guess_job=not self._has("ksm_job_owner"))

    def _inventory(self) -> pl.DataFrame:
        """Long rows: namespace, pod, container, kt, resource, unit, node, restart_policy, value."""
        if not self._has("ksm_limits"):
            self.notes.missing("limits", None)
        labels, values = self._last(q.inventory(self.present), "requests and limits")
        cols = ["namespace", "pod", "container", "kt", "resource", "unit", "node", "restart_policy"]
        frame = labels_frame(labels, cols).with_columns(pl.Series("value", values, dtype=pl.Float64))
        return frame.filter(pl.col("pod").is_not_null() & pl.col("container").is_not_null())

    # -- usage -----------------------------------------------------------------------------------

    def _usage_plan(self) -> dict[str, tuple[bool, int]]:
        """Per usage family: aggregate on the server (``max by``)? and how many series to expect.

        The series index says whether any container is reported by more than one scrape target
        (two jobs, two cAdvisors): then ``max by (namespace, pod, container)`` removes the
        duplicates on the server. Otherwise the raw series are fetched (the same points) and the
        rare duplicate key (a restarted container's new cgroup) is merged here, sparing the
        server the per-step aggregation, which costs it more than the query itself.
        """
        series = [lab for lab in self._series_index() if lab.get("__name__") in (q.CPU, q.MEMORY)]
        self.usage_namespaces = sorted({lab["namespace"] for lab in series if lab.get("namespace")})
        plan = {}
        for resource, metric in (("cpu", q.CPU), ("memory", q.MEMORY)):
            key_targets: dict[tuple, set] = {}
            n = 0
            for lab in series:
                if lab.get("__name__") != metric:
                    continue
                n += 1
                key = (lab.get("namespace"), lab.get("pod"), lab.get("container"))
                target = tuple(lab.get(k) for k in ("job", "instance", "service", "endpoint", "metrics_path",
                                                    "prometheus", "prometheus_replica", "replica"))
                key_targets.setdefault(key, set()).add(target)
            duplicated = sum(1 for targets in key_targets.values() if len(targets) > 1)
            aggregate = self.config.server_aggregation if self.config.server_aggregation is not None else (
                duplicated > 0.02 * max(len(key_targets), 1))
            plan[resource] = (aggregate, max(len(key_targets) if aggregate else n, 1))
            log.info("%s: %d series for %d containers, %d reported by several targets: %s", resource, n,
                     len(key_targets), duplicated, "max by on the server" if aggregate else "raw series")
        return plan

    def _fetch(self, make: Callable[[q.Scope], str | None], what: str, hint: int,
               namespaces: list[str] | None = None) -> list:
        """A range query over the window; refused as too large even in the smallest time windows,
        it is split by namespace (halves, recursively) before the refusal reaches the user."""
        scope = self.scope if namespaces is None else q.Scope(self.scope.cluster_label, tuple(namespaces),
                                                               self.scope.pods)
        query = make(scope)
        if not query:
            return []
        try:
            return self.client.range(query, self.t_start, self.t_end, self.step, what, series_hint=hint)
        except TooLarge:
            names = namespaces if namespaces is not None else getattr(self, "usage_namespaces", [])
            if len(names) < 2:
                raise
            half = len(names) // 2
            log.info("the %s query is too large even by time window; splitting it by namespace (%d + %d)", what,
                     half, len(names) - half)
            return (self._fetch(make, what, max(hint // 2, 1), names[:half])
                    + self._fetch(make, what, max(hint // 2, 1), names[half:]))

    def _range_usage(self, make: Callable[[q.Scope], str | None], resource: str, what: str, hint: int,
                     owners: pl.DataFrame, *, dcgm: bool = False,
                     scale: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A range query straight into ``usage`` rows, plus each container's first and last sample time.

        Samples stay in NumPy/Polars columns: the per-series labels (a small frame, categorical)
        are gathered by series index, never turned into per-sample Python objects.
        """
        usage, span, dropped = usage_rows(self._fetch(make, what, hint), resource, owners, dcgm=dcgm, scale=scale)
        if dropped:
            self.notes.warnings.append(f"dropped {dropped} {what} samples that were NaN/Inf or had no pod label.")
        return usage, span

    def _gpu(self, inventory: pl.DataFrame, owners: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        gpu_requested = inventory.filter(pl.col("resource").fill_null("").str.contains(r"^(nvidia_com|amd_com)_")).height > 0
        wants = gpu_requested or any(m.startswith("DCGM_") for m in self.present)
        empty = usage_empty()
        devices = pl.DataFrame(schema=DEVICE_SCHEMA)
        if not self._has("dcgm"):
            self.notes.missing("gpu", "no DCGM metrics (DCGM_FI_DEV_GPU_UTIL / DCGM_FI_PROF_GR_ENGINE_ACTIVE): GPU "
                               "utilization is absent; install NVIDIA dcgm-exporter with pod mapping (--kubernetes)."
                               if wants else None)
            if not self._has("dcgm_memory"):
                self.notes.missing("gpu_memory", None)
            return empty, empty, devices
        hint = max(inventory.filter(pl.col("resource").fill_null("").str.starts_with("nvidia")).height, 1)
        gpu, _ = self._range_usage(lambda s: q.gpu_usage(s, self.step, self.present), "gpu", "GPU utilization", hint,
                                   owners, dcgm=True)
        if self._has("dcgm_memory"):
            gpu_memory, _ = self._range_usage(lambda s: q.gpu_memory_usage(s, self.step), "gpu_memory", "GPU memory",
                                              hint, owners, dcgm=True, scale=float(MIB))
        else:
            self.notes.missing("gpu_memory", "DCGM_FI_DEV_FB_USED is missing: GPU memory usage is absent.")
            gpu_memory = empty
        query = q.gpu_devices(self.scope, self.window, self.present)
        if query:
            labels, values = self.client.instant(query, self.t_end, "GPU devices")
            devices = devices_frame(labels, values)
        return gpu, gpu_memory, devices

    def _throttling(self) -> pl.DataFrame | None:
        if q.THROTTLED not in self.present or q.PERIODS not in self.present:
            self.notes.missing("throttling", None)
            return None
        key = ["namespace", "pod", "container"]
        rows = tagged(*read_increase(self.client, q.throttling_counters(), self.scope, self.t_end, self.window,
                                     "CPU throttling", index=self._series_index if self.grid else None,
                                     scrape=self.scrape))
        if "throttled" not in rows or "periods" not in rows:
            return labels_frame([], key).with_columns(pl.Series("cpu_throttled_fraction", [], dtype=pl.Float64))
        # Throttled / all CFS periods over the window, where any period ran.
        frame = rows["throttled"].select(*key, pl.col("value").alias("_t")).join(
            rows["periods"].filter(pl.col("value") > 0).select(*key, pl.col("value").alias("_p")), on=key).select(
            *key, (pl.col("_t") / pl.col("_p")).alias("cpu_throttled_fraction"))
        return frame.filter(pl.col("cpu_throttled_fraction").is_finite()).unique(key)


# ---------------------------------------------------------------------------------------------
# Helpers: time


def _choose_step(span: float, scrape: float, requested: float | None, notes: _Notes) -> float:
    """The usage resolution: a multiple of the scrape interval; see ``collect_prometheus``."""
    if requested is not None:
        if requested < scrape:
            notes.warnings.append(f"--step {requested:g}s is finer than the scrape interval ({scrape:g} s); "
                                  f"using {scrape:g} s.")
        return float(max(math.ceil(requested / scrape - 1e-9), 1) * scrape)
    target = max(scrape, span / DEFAULT_POINTS, span / MAX_POINTS_PER_SERIES)
    k = max(math.ceil(target / scrape - 1e-9), 1)
    while True:
        step = k * scrape
        if (step < 60 and 60 % step == 0) or step % 60 == 0 or k > 1000:
            return float(step)
        k += 1


_NICE = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 300, 600, 900, 1800, 3600)


def _nice_interval(seconds: float) -> float:
    return float(min(_NICE, key=lambda n: abs(math.log(n) - math.log(max(seconds, 0.5)))))


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise InputError(f"the {what} {value!r} is not a duration (e.g. 5m, 14d).")
    if not seconds > 0:
        raise InputError(f"the {what} must be positive.")
    return seconds


