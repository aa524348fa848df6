"""Every PromQL query the Prometheus collector sends, in one place.

The queries are *bulk*: each one reads one metric family for the whole cluster (or the
namespaces asked for), so the number of HTTP requests does not grow with the number of
workloads. ``max`` (not ``sum``) is the aggregation everywhere a container can be reported
twice, because the same cAdvisor or kube-state-metrics series scraped by two jobs (or two
replicas of an exporter) must count once. The two big usage queries aggregate on the server
(``max by (namespace, pod, container)``) only when the series index shows such duplicates:
in a range query that aggregation costs Prometheus more than the rate itself (measured in
``benchmarks/README.md``), and without duplicates it saves no transfer.

Several small instant queries are joined with ``or`` into one request; each part is tagged
with a ``kt`` label (``label_replace``) so the answer can be split again. The parts never
collide because their tags differ.

Windows. Range queries evaluate at ``t = start + k*step``. ``step`` is a multiple of the
scrape interval ``s``, and ``start`` is a multiple of ``step``, so with aligned samples each
window holds the samples of exactly one step:

* CPU: ``rate(counter[step + s/2])``. Prometheus extrapolates the increase between the samples
  at ``t-step`` and ``t`` to the window and divides by it again, which gives exactly
  ``(c(t) - c(t-step)) / step``: the mean cores over the step ending at ``t``, whether the
  range is closed (Prometheus 2) or left-open (Prometheus 3). VictoriaMetrics computes
  ``increase`` from the last sample before the window, without extrapolation, so there it is
  ``increase(counter[step]) / step`` (its ``rate`` is not the step mean; measured).
* Memory: ``max_over_time(gauge[step - 1ms])``: the highest working set scraped in the step,
  so the maximum over the ``usage`` frame is the exact peak even when ``step > s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Metric names

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
THROTTLED = "container_cpu_cfs_throttled_periods_total"
PERIODS = "container_cpu_cfs_periods_total"
OOM_EVENTS = "container_oom_events_total"

REQUESTS = "kube_pod_container_resource_requests"
LIMITS = "kube_pod_container_resource_limits"
INIT_REQUESTS = "kube_pod_init_container_resource_requests"
INIT_LIMITS = "kube_pod_init_container_resource_limits"
CONTAINER_INFO = "kube_pod_container_info"
INIT_CONTAINER_INFO = "kube_pod_init_container_info"
POD_OWNER = "kube_pod_owner"
POD_INFO = "kube_pod_info"
POD_START = "kube_pod_start_time"
POD_COMPLETION = "kube_pod_completion_time"
REPLICASET_OWNER = "kube_replicaset_owner"
JOB_OWNER = "kube_job_owner"
LAST_TERMINATED = "kube_pod_container_status_last_terminated_reason"
LAST_EXIT_CODE = "kube_pod_container_status_last_terminated_exitcode"
RESTARTS = "kube_pod_container_status_restarts_total"
NODE_LABELS = "kube_node_labels"
NODE_INFO = "kube_node_info"
NODE_CAPACITY = "kube_node_status_capacity"
NODE_ALLOCATABLE = "kube_node_status_allocatable"
NODE_TAINT = "kube_node_spec_taint"
NAMESPACE_LABELS = "kube_namespace_labels"
HPA_INFO = "kube_horizontalpodautoscaler_info"
HPA_MIN = "kube_horizontalpodautoscaler_spec_min_replicas"
HPA_MAX = "kube_horizontalpodautoscaler_spec_max_replicas"
HPA_TARGET = "kube_horizontalpodautoscaler_spec_target_metric"
REPLICA_METRICS = {
    # metric -> (workload kind, the label holding the workload name)
    "kube_deployment_spec_replicas": ("Deployment", "deployment"),
    "kube_statefulset_replicas": ("StatefulSet", "statefulset"),
    "kube_daemonset_status_desired_number_scheduled": ("DaemonSet", "daemonset"),
    "kube_job_spec_parallelism": ("Job", "job_name"),
}

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent 0..100, absent on MIG instances
GR_ENGINE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # ratio 0..1, also on MIG instances
FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB
FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB
FB_RESERVED = "DCGM_FI_DEV_FB_RESERVED"  # MiB

NODE_PRICE = "node_total_hourly_cost"  # OpenCost, USD per hour
NODE_IS_SPOT = "kubecost_node_is_spot"

# Labels DCGM puts on every series; ``Hostname`` became ``hostname`` in dcgm-exporter #655.
DCGM_LABELS = ("namespace", "pod", "container", "UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE",
               "Hostname", "hostname")
CONTAINER_KEY = ("namespace", "pod", "container")

# ---------------------------------------------------------------------------------------------
# What is required, what is optional, and what to install


@dataclass(frozen=True)
class Family:
    """A group of metrics the collector reads; ``any_of`` are alternatives (one is enough)."""

    key: str
    any_of: tuple[str, ...]
    source: str
    feeds: str
    required: bool = False
    warn: bool = True


FAMILIES: tuple[Family, ...] = (
    Family("cadvisor_cpu", (CPU,), "cAdvisor (the kubelet's /metrics/cadvisor endpoint)", "CPU usage", required=True),
    Family("cadvisor_memory", (MEMORY,), "cAdvisor (the kubelet's /metrics/cadvisor endpoint)", "memory usage",
           required=True),
    Family("ksm_requests", (REQUESTS,), "kube-state-metrics", "container requests", required=True),
    Family("ksm_owners", (POD_OWNER,), "kube-state-metrics", "pod owners", required=True),
    Family("ksm_replicaset_owner", (REPLICASET_OWNER,), "kube-state-metrics",
           "ReplicaSet -> Deployment resolution (guessed from names without it)"),
    Family("ksm_job_owner", (JOB_OWNER,), "kube-state-metrics", "Job -> CronJob resolution (guessed from names without it)"),
    Family("ksm_limits", (LIMITS,), "kube-state-metrics", "container limits", warn=False),
    Family("cadvisor_throttling", (THROTTLED,), "cAdvisor", "CPU throttling", warn=False),
    Family("oom", (OOM_EVENTS, LAST_TERMINATED), "cAdvisor or kube-state-metrics", "OOM events"),
    Family("ksm_node_capacity", (NODE_CAPACITY,), "kube-state-metrics", "node capacity and allocatable"),
    Family("ksm_node_labels", (NODE_LABELS,),
           "kube-state-metrics with --metric-labels-allowlist=nodes=[...] (kube_node_labels is off by default)",
           "node instance type, zone and capacity type (spot)"),
    Family("hpa", (HPA_TARGET, HPA_INFO), "kube-state-metrics (HorizontalPodAutoscaler metrics)",
           "HorizontalPodAutoscaler settings"),
    Family("opencost", (NODE_PRICE,), "OpenCost (node_total_hourly_cost)", "node prices"),
    Family("dcgm", (GPU_UTIL, GR_ENGINE), "NVIDIA dcgm-exporter with --kubernetes (pod mapping)", "GPU utilization"),
    Family("dcgm_memory", (FB_USED,), "NVIDIA dcgm-exporter", "GPU memory usage"),
    Family("namespace_labels", (NAMESPACE_LABELS,), "kube-state-metrics", "namespace labels", warn=False),
)
FAMILY = {f.key: f for f in FAMILIES}


# ---------------------------------------------------------------------------------------------
# Selectors

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_REGEX_META = re.compile(r"([\\.^$|?*+()\[\]{}])")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_alternation(values: list[str] | tuple[str, ...]) -> str:
    """An RE2 alternation matching exactly these values (PromQL regexes are anchored)."""
    return "|".join(_REGEX_META.sub(r"\\\1", v) for v in values)


def valid_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name))


@dataclass(frozen=True)
class Scope:
    """Matchers added to every selector: the cluster label and the namespaces asked for."""

    cluster_label: tuple[str, str] | None = None
    namespaces: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()  # when set, pod-level selectors match only these pods

    def base(self, *, namespaced: bool) -> list[str]:
        out = []
        if self.cluster_label:
            out.append(f"{self.cluster_label[0]}={quote(self.cluster_label[1])}")
        if namespaced and self.namespaces:
            out.append(f"namespace=~{quote(regex_alternation(self.namespaces))}")
        if namespaced and self.pods:
            out.append(f"pod=~{quote(regex_alternation(self.pods))}")
        return out

    def only(self, namespaces: list[str] | tuple[str, ...], pods: list[str] | tuple[str, ...]) -> Scope:
        """The same scope narrowed to these namespaces and pods (a superset of the pairs wanted)."""
        return Scope(self.cluster_label, tuple(sorted(set(namespaces))), tuple(sorted(set(pods))))

    def sel(self, metric: str, *matchers: str, namespaced: bool = True) -> str:
        """``metric{matchers..., cluster and namespace matchers}``."""
        parts = [*matchers, *self.base(namespaced=namespaced)]
        return f"{metric}{{{','.join(parts)}}}" if parts else metric

    def match(self) -> str | None:
        """A ``match[]`` selector limiting the metric-name listing to this cluster, if any."""
        if self.cluster_label:
            return "{" + f"{self.cluster_label[0]}={quote(self.cluster_label[1])}" + "}"
        return None


# Pod-level cgroup series carry container="" (and container="POD" for the pause container).
REAL_CONTAINER = ('container!=""', 'container!="POD"')
HAS_POD = 'pod!=""'
OOM_REASON = 'reason="OOMKilled"'


def duration(seconds: float) -> str:
    """Seconds -> a PromQL duration in whole milliseconds (``300000ms``), exact for any value."""
    return f"{int(round(seconds * 1000))}ms"


def tag(expr: str, value: str) -> str:
    """Tag an instant-vector expression's result with ``kt=value``."""
    return f'label_replace({expr}, "kt", "{value}", "", "")'


def union(parts: list[str]) -> str:
    return "\n  or ".join(parts)


def by(labels: tuple[str, ...] | list[str]) -> str:
    return ", ".join(labels)


# ---------------------------------------------------------------------------------------------
# The queries


def scrape_interval(scope: Scope, window: float) -> str:
    """Instant: the most samples any CPU series has in ``window``; window/count = scrape interval."""
    return f"max(count_over_time({scope.sel(CPU, *REAL_CONTAINER)}[{duration(window)}]))"


def cpu_usage(scope: Scope, step: float, scrape: float, engine: str, aggregate: bool = True) -> str:
    """Range: mean CPU cores per container over each step (see the module doc for the window).

    ``aggregate=False`` returns the raw series (each with all its labels): used when no
    container is reported by two scrape jobs, because ``max by`` in a range query costs the
    server more than the rate itself (Prometheus 2.42, 2,000 containers x 14 d: 8.3 s vs 2.9 s).
    """
    sel = scope.sel(CPU, *REAL_CONTAINER)
    if engine == "victoriametrics":
        inner = f"increase({sel}[{duration(step)}])"
        return f"max by ({by(CONTAINER_KEY)}) ({inner}) / {step:g}" if aggregate else f"{inner} / {step:g}"
    inner = f"rate({sel}[{duration(step + scrape / 2)}])"
    return f"max by ({by(CONTAINER_KEY)}) ({inner})" if aggregate else inner


def memory_usage(scope: Scope, step: float, aggregate: bool = True) -> str:
    """Range: peak working-set bytes per container within each step."""
    inner = f"max_over_time({scope.sel(MEMORY, *REAL_CONTAINER)}[{duration(step - 0.001)}])"
    return f"max by ({by(CONTAINER_KEY)}) ({inner})" if aggregate else inner


def usage_series(scope: Scope) -> list[str]:
    """The series the usage queries read, for ``/api/v1/series``."""
    return [scope.sel(CPU, *REAL_CONTAINER), scope.sel(MEMORY, *REAL_CONTAINER)]


def grew(present: set[str]) -> list[Last]:
    """Counters that say a container restarted or was OOM-killed: which grew in the window (few)."""
    parts = []
    if RESTARTS in present:
        parts.append(Last("restarts", RESTARTS, CONTAINER_KEY, fn="increase"))
    if OOM_EVENTS in present:
        parts.append(Last("oom", OOM_EVENTS, CONTAINER_KEY, fn="increase", matchers=REAL_CONTAINER))
    return parts


def increase_exact(parts: list[Last], scope: Scope, window: float, *, grew_only: bool = False) -> str:
    """Instant: ``max by (labels) (increase(counter[window]))`` per part (only where above 0: ``grew_only``)."""
    keep = " > 0" if grew_only else ""
    return union([tag(f"max by ({by(p.labels or ())}) (increase({p.selector(scope)}[{duration(window)}])){keep}",
                      p.tag) for p in parts])


def grew_ends(parts: list[Last], scope: Scope, window: float, lookback: float = 300.0) -> str:
    """Instant: each raw series' last value minus its first in the window (series alive at both ends).

    The first is the smallest sample in the window's first ``lookback`` (a counter's first there);
    a series without samples in that stretch or at the end is not in the answer.
    """
    first = f"min_over_time({{sel}}[{duration(lookback)}] offset {duration(window - lookback)})"
    return union([tag(f"{p.selector(scope)} - {first.format(sel=p.selector(scope))}", p.tag) for p in parts])


def throttling_counters() -> list[Last]:
    """Throttled CFS periods and all CFS periods per container (their increases give the fraction)."""
    return [Last("throttled", THROTTLED, CONTAINER_KEY, fn="increase", matchers=REAL_CONTAINER),
            Last("periods", PERIODS, CONTAINER_KEY, fn="increase", matchers=REAL_CONTAINER)]


def last_terminated_oom(scope: Scope, window: float) -> str:
    """Instant: containers whose last termination in the window was an OOM kill (no restart counter)."""
    return tag(_last(LAST_TERMINATED, scope, CONTAINER_KEY, window, OOM_REASON), "last_oom")


def counter_increase(metric: str, scope: Scope, step: float, scrape: float, engine: str,
                     key: tuple[str, ...] = CONTAINER_KEY, matchers: tuple[str, ...] = REAL_CONTAINER) -> str:
    """Range, sparse: how much a counter grew in each step, only where it grew."""
    sel = scope.sel(metric, *matchers)
    if engine == "victoriametrics":
        return f"max by ({by(key)}) (increase({sel}[{duration(step)}])) > 0.5"
    return f"max by ({by(key)}) (rate({sel}[{duration(step + scrape / 2)}])) * {step:g} > 0.5"


def oom_kills_ksm(scope: Scope) -> str:
    """Range, sparse: containers whose last termination was OOMKilled, while that holds."""
    return f'max by ({by(CONTAINER_KEY)}) ({scope.sel(LAST_TERMINATED, OOM_REASON)}) > 0'


def restart_reasons(scope: Scope) -> str:
    """Range, sparse: the last termination reason of each container, while it is set.

    Joined to the restarts (``counter_increase``) on the client, at the same steps: the same as
    ``grew * on (...) group_left (reason) reason or grew`` on the server, which evaluates the
    restart counters twice (measured: 0.52 s of server CPU against 0.19 + 0.14 s for the two).
    """
    return f"max by ({by(CONTAINER_KEY)}, reason) ({scope.sel(LAST_TERMINATED)} > 0)"


def _last(metric: str, scope: Scope, labels: tuple[str, ...], window: float, *matchers: str,
          namespaced: bool = True, fn: str = "last_over_time") -> str:
    return f"max by ({by(labels)}) ({fn}({scope.sel(metric, *matchers, namespaced=namespaced)}[{duration(window)}]))"


@dataclass(frozen=True)
class Last:
    """One kube-state-metrics (or OpenCost) family read as one value per series over the window.

    The answer is ``max by (labels) (fn(metric[window]))`` tagged ``kt=tag`` (``labels=None``:
    every label kept). ``promlast.read_last`` gets the same answer either from that exact query
    or from a coarse grid plus the series the grid missed, which spares the server reading every
    sample of series whose value hardly ever changes.
    """

    tag: str
    metric: str
    labels: tuple[str, ...] | None
    namespaced: bool = True
    fn: str = "last_over_time"  # min_over_time (start times); avg_over_time (prices: always exact); increase
    matchers: tuple[str, ...] = ()

    def selector(self, scope: Scope, *matchers: str) -> str:
        return scope.sel(self.metric, *self.matchers, *matchers, namespaced=self.namespaced)

    def exact(self, scope: Scope, window: float, *matchers: str, aggregate: bool = True) -> str:
        inner = f"{self.fn}({self.selector(scope, *matchers)}[{duration(window)}])"
        return tag(f"max by ({by(self.labels)}) ({inner})" if aggregate and self.labels is not None else inner,
                   self.tag)


def last_exact(parts: list[Last], scope: Scope, window: float) -> str:
    """Instant: every part exactly, as one ``or``-joined query."""
    return union([p.exact(scope, window) for p in parts])


def last_grid(parts: list[tuple[Last, tuple[str, ...]]], scope: Scope) -> str:
    """Instant at the end, or range at a coarse step: the raw series of these parts, tagged."""
    return union([tag(p.selector(scope, *matchers), p.tag) for p, matchers in parts])


def last_fill(parts: list[tuple[Last, tuple[str, ...]]], scope: Scope, window: float) -> str:
    """Instant: the raw per-series values over the window of these parts, narrowed by matchers."""
    return union([p.exact(scope, window, *matchers, aggregate=False) for p, matchers in parts])


def inventory(present: set[str]) -> list[Last]:
    """Requests, limits and container info (init containers too), tagged by kind."""
    key = (*CONTAINER_KEY, "resource", "unit", "node")
    parts = [Last(kt, metric, key) for metric, kt in ((REQUESTS, "request"), (LIMITS, "limit"),
                                                      (INIT_REQUESTS, "init_request"), (INIT_LIMITS, "init_limit"))
             if metric in present]
    if CONTAINER_INFO in present:
        parts.append(Last("info", CONTAINER_INFO, CONTAINER_KEY))
    if INIT_CONTAINER_INFO in present:
        parts.append(Last("init_info", INIT_CONTAINER_INFO, (*CONTAINER_KEY, "restart_policy")))
    return parts


def owners(present: set[str]) -> list[Last]:
    """Pod owners, ReplicaSet and Job owners, pod node and start/completion times."""
    parts = [Last("pod_owner", POD_OWNER, ("namespace", "pod", "owner_kind", "owner_name", "owner_is_controller"))]
    if REPLICASET_OWNER in present:
        parts.append(Last("rs_owner", REPLICASET_OWNER, ("namespace", "replicaset", "owner_kind", "owner_name")))
    if JOB_OWNER in present:
        parts.append(Last("job_owner", JOB_OWNER, ("namespace", "job_name", "owner_kind", "owner_name")))
    if POD_INFO in present:
        parts.append(Last("pod_info", POD_INFO, ("namespace", "pod", "node")))
    if POD_START in present:
        parts.append(Last("pod_start", POD_START, ("namespace", "pod"), fn="min_over_time"))
    if POD_COMPLETION in present:
        parts.append(Last("pod_completion", POD_COMPLETION, ("namespace", "pod")))
    return parts


def nodes(present: set[str]) -> list[Last]:
    """Node capacity, allocatable, labels, info, taints, price and spot flag."""
    parts = []
    if NODE_CAPACITY in present:
        parts.append(Last("capacity", NODE_CAPACITY, ("node", "resource"), namespaced=False))
    if NODE_ALLOCATABLE in present:
        parts.append(Last("allocatable", NODE_ALLOCATABLE, ("node", "resource"), namespaced=False))
    if NODE_LABELS in present:
        parts.append(Last("labels", NODE_LABELS, None, namespaced=False))  # label_* names are not known in advance
    if NODE_INFO in present:
        parts.append(Last("info", NODE_INFO, ("node", "provider_id", "kernel_version"), namespaced=False))
    if NODE_TAINT in present:
        parts.append(Last("taint", NODE_TAINT, ("node", "key", "value", "effect"), namespaced=False))
    if NODE_PRICE in present:
        parts.append(Last("price", NODE_PRICE, ("node", "instance_type", "region", "provider_id"), namespaced=False,
                          fn="avg_over_time"))
    if NODE_IS_SPOT in present:
        parts.append(Last("spot", NODE_IS_SPOT, ("node",), namespaced=False))
    return parts


def node_presence(scope: Scope, present: set[str]) -> str | None:
    """Range (at the step): one point per node and step while the node exists: its first and last seen.

    A plain range query: Prometheus reads each node series once. (The same as subqueries of
    ``timestamp()`` cost it 2.5x more, measured; per-series ``timestamp()`` inside a subquery
    is ~30x slower on Prometheus 2.42.)
    """
    for metric in (NODE_INFO, NODE_LABELS, NODE_CAPACITY):  # one series per node where possible
        if metric in present:
            return f"group by (node) ({scope.sel(metric, namespaced=False)})"
    return None


def workload_meta(present: set[str]) -> list[Last]:
    """Desired replicas per controller, HPA settings, namespace labels."""
    parts = [Last(metric, metric, ("namespace", label)) for metric, (_kind, label) in REPLICA_METRICS.items()
             if metric in present]
    for kt, metric, labels in (
            ("hpa_info", HPA_INFO, ("scaletargetref_kind", "scaletargetref_name")),
            ("hpa_min", HPA_MIN, ()), ("hpa_max", HPA_MAX, ()),
            ("hpa_target", HPA_TARGET, ("metric_name", "metric_target_type"))):
        if metric in present:
            parts.append(Last(kt, metric, ("namespace", "horizontalpodautoscaler", *labels)))
    if NAMESPACE_LABELS in present:
        parts.append(Last("ns_labels", NAMESPACE_LABELS, None))
    return parts


def gpu_usage(scope: Scope, step: float, present: set[str]) -> str | None:
    """Range: GPU busy fraction per container and device.

    ``DCGM_FI_DEV_GPU_UTIL`` (percent) where it exists, else ``DCGM_FI_PROF_GR_ENGINE_ACTIVE``
    (ratio), which is the only one reported for MIG instances. ``or`` keeps the left side
    where both exist for the same device.
    """
    w = duration(step - 0.001)
    parts = []
    if GPU_UTIL in present:
        parts.append(f"max by ({by(DCGM_LABELS)}) (avg_over_time({scope.sel(GPU_UTIL, HAS_POD)}[{w}])) / 100")
    if GR_ENGINE in present:
        parts.append(f"max by ({by(DCGM_LABELS)}) (avg_over_time({scope.sel(GR_ENGINE, HAS_POD)}[{w}]))")
    return union(parts) if parts else None


def gpu_memory_usage(scope: Scope, step: float) -> str:
    """Range: peak framebuffer used (MiB) per container and device within each step."""
    return (f"max by ({by(DCGM_LABELS)}) "
            f"(max_over_time({scope.sel(FB_USED, HAS_POD)}[{duration(step - 0.001)}]))")


def gpu_devices(scope: Scope, window: float, present: set[str]) -> str | None:
    """Instant: every DCGM device (assigned or not) with its framebuffer size in MiB.

    Used + free (+ reserved) is summed per series, so both terms come from the same scrape;
    a device that changed hands has one series per pod and another without pod labels.
    """
    dev = ("UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE", "Hostname", "hostname")
    w = duration(window)
    if FB_USED in present and FB_FREE in present:
        used, free = (f"last_over_time({scope.sel(m, namespaced=False)}[{w}])" for m in (FB_USED, FB_FREE))
        total = f"({used} + {free})"
        if FB_RESERVED in present:
            reserved = f"last_over_time({scope.sel(FB_RESERVED, namespaced=False)}[{w}])"
            total = f"({total} + {reserved} or {total})"
        return tag(f"max by ({by(dev)}) {total}", "total")
    for metric in (GPU_UTIL, GR_ENGINE, FB_USED):
        if metric in present:
            return tag(_last(metric, scope, dev, window, namespaced=False), "seen")
    return None
