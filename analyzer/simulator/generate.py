"""``simulate()``: a synthetic cluster as a Snapshot of ground-truth frames.

Order of work: specify workloads (archetypes.py), pack their pods onto nodes (placement.py),
put a DaemonSet pod on every node, flatten the specs into the containers/workloads/nodes/gpus
/namespaces frames, then generate usage (signals.py) chunk by chunk and gather each chunk's
key columns from a small series table by integer index (no per-sample strings). Three
independent NumPy generators spawned from the seed drive specs, placement and samples, so the
same arguments always give the same frames.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from analyzer.schema import CONTAINERS, GPUS, NAMESPACES, NODES, RESOURCES, TIMESTAMP, WORKLOADS
from analyzer.simulator import archetypes as A
from analyzer.simulator.catalog import PROVIDERS, Provider, node_labels, node_taints
from analyzer.simulator.names import WEB_NAMESPACES
from analyzer.simulator.placement import Node, Packer
from analyzer.simulator.signals import GPU_FORMULAS, MEM_FORMULAS, Clock, Generator, Params, Series
from analyzer.simulator.spec import Container, Pod, Workload
from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import GIB, MIB

DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
_US = 1_000_000
_KEY = ["namespace", "workload_kind", "workload", "pod", "container"]


def simulate(workloads: int = 60, days: float = 14, step_seconds: int = 300, seed: int = 0,
             start: datetime | None = None, cluster: str = "sim", provider: str = "aws") -> Snapshot:
    """A deterministic synthetic cluster: ``workloads`` workloads sampled every ``step_seconds``
    for ``days`` from ``start`` (default 2026-11-02T00:00Z), on ``provider`` instance types.

    Length: the generation steps in order (archetypes, placement, signals, frames), each a call; kept together
    so the seed's use is visible.
    """
    if workloads < 1:
        raise ValueError("workloads must be at least 1")
    if step_seconds <= 0 or days <= 0:
        raise ValueError("days and step_seconds must be positive")
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    steps = int(days * 86400 // step_seconds)
    if steps < 1:
        raise ValueError("the window holds no sample: days is shorter than one step")
    start = DEFAULT_START if start is None else start
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    prov = PROVIDERS[provider]
    spec_seed, place_seed, usage_seed = np.random.SeedSequence(seed).spawn(3)
    window = steps * step_seconds

    # 1. Specs.
    web_ns = WEB_NAMESPACES[: min(len(WEB_NAMESPACES), max(3, math.ceil(workloads / 40)))]
    ctx = A.Ctx(np.random.default_rng(spec_seed), prov, start, window, cluster, list(web_ns))
    counts = A.archetype_counts(workloads)
    specs: list[Workload] = [A.BUILDERS[a.name](ctx) for a in A.ARCHETYPES for _ in range(counts[a.name])]
    if not ctx.spot_ready_given:
        first_web = next((w for w in specs if w.archetype == "web"), None)
        if first_web is not None:
            first_web.annotations[A.SPOT_READY] = "true"

    for w in specs:  # whole seconds, as the API server records them
        for pod in w.pods:
            pod.start = float(round(pod.start))
            pod.end = None if pod.end is None else float(round(pod.end))
            for c in pod.containers:
                c.run_seconds = float(round(c.run_seconds))

    # 2. Placement, then one DaemonSet pod per (matching) node.
    daemons = [w for w in specs if w.daemon_template is not None]
    nodes = Packer(prov, np.random.default_rng(place_seed), ctx.namer, cluster, daemons).place(specs)
    for d in daemons:
        for node in nodes:
            if d.daemon_gpu_only and not node.itype.gpus:
                continue
            pod = Pod(ctx.namer.suffixed(d.name, 5), "DaemonSet", d.name, float(round(ctx.before(1, 60))), None,
                      [copy.copy(c) for c in d.daemon_template], -1, node=node.name)
            d.pods.append(pod)
        d.replicas = len(d.pods)

    # 3. Small frames.
    end = start + timedelta(seconds=(steps - 1) * step_seconds)
    flat = _Flat(specs)
    containers = _containers_frame(flat, start)
    workloads_df = _workloads_frame(specs)
    nodes_df = _nodes_frame(nodes, prov, start, end)
    gpus_df = _gpus_frame(nodes, flat)
    namespaces_df = _namespaces_frame(specs, ctx.rng)

    # 4. Usage and OOM kills.
    clock = Clock(start.timestamp(), step_seconds, steps, prov.utc_offset_hours)
    device_memory = {d.device: d.memory_total for n in nodes for d in n.devices}
    series, series_keys = _series(flat, containers, clock, device_memory)
    params = _params(flat, clock)
    gen = Generator(series, params, clock, np.random.default_rng(usage_seed))
    start_us = int(start.timestamp() * _US)

    def frame(sid: np.ndarray, step: np.ndarray, value: np.ndarray) -> pl.DataFrame:
        ts = pl.Series("timestamp", start_us + step.astype(np.int64) * (step_seconds * _US)).cast(TIMESTAMP)
        value = _quantize(value, int(series.resource[sid[0]]))
        return series_keys[sid].with_columns(ts, pl.Series("value", value, dtype=pl.Float64))

    parts, cpu_chunks = [], []
    for sid, step, value in gen.chunks():
        if series.resource[sid[0]] == 0:
            cpu_chunks.append((sid, step, value))  # kept raw until node contention is applied
        else:
            parts.append(frame(sid, step, value))
    _contend(cpu_chunks, series, flat, nodes, steps)
    cpu_parts = []
    while cpu_chunks:  # free each raw chunk as soon as its frame exists
        cpu_parts.append(frame(*cpu_chunks.pop(0)))
    parts = cpu_parts + parts
    usage = pl.concat(parts, rechunk=False) if parts else None
    del parts
    events = _events(gen, flat, containers, start, step_seconds, window)

    source = f"simulator workloads={workloads} days={days:g} step={step_seconds} seed={seed}"
    if provider != "aws":
        source += f" provider={provider}"
    manifest = Manifest(cluster=cluster, start=start, end=end, step_seconds=step_seconds, source=source)
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads_df, nodes=nodes_df,
                          events=events, gpus=gpus_df, namespaces=namespaces_df)


# Measurement resolution per resource code (cpu, memory, gpu, gpu_memory): memory is counted in
# 4 KiB pages by the kernel, DCGM reports busy ratios to three digits, CPU rates are kept to
# 0.1 millicore. Real exporters are no finer, and it halves the bundled sample's size.
_RESOLUTION = {0: 1e-4, 1: 4096.0, 2: 1e-3, 3: 4096.0}


def _quantize(value: np.ndarray, resource: int) -> np.ndarray:
    """Round a homogeneous chunk to its resource's resolution (limits are multiples of it)."""
    res = _RESOLUTION[resource]
    return np.round(value / res) * res


class _Flat:
    """Every container with its pod and workload, in one fixed order."""

    def __init__(self, specs: list[Workload]):
        self.rows: list[tuple[Workload, Pod, Container, float]] = []  # (workload, pod, container, begins)
        for w in specs:
            for pod in w.pods:
                offset = 0.0
                inits = [c for c in pod.containers if c.ctype == "init"]
                for c in inits:
                    self.rows.append((w, pod, c, pod.start + offset))
                    offset += c.run_seconds
                for c in pod.containers:
                    if c.ctype != "init":
                        self.rows.append((w, pod, c, pod.start + offset))

    def __len__(self) -> int:
        return len(self.rows)


def _to_us(start: datetime, seconds: float | None) -> int | None:
    return None if seconds is None else int(start.timestamp() * _US) + int(round(seconds * _US))


def _containers_frame(flat: _Flat, start: datetime) -> pl.DataFrame:
    cols: dict[str, list] = {c.name: [] for c in CONTAINERS.columns}
    for w, pod, c, _ in flat.rows:
        for k, v in (("namespace", w.namespace), ("workload_kind", w.kind), ("workload", w.name), ("pod", pod.name),
                     ("container", c.name), ("container_type", c.ctype), ("owner_kind", pod.owner_kind),
                     ("owner_name", pod.owner_name), ("node", pod.node), ("cpu_request", c.cpu_request),
                     ("cpu_limit", c.cpu_limit), ("memory_request", c.memory_request),
                     ("memory_limit", c.memory_limit), ("gpu_resource", c.gpu_resource),
                     ("gpu_request", c.gpu_count), ("gpu_limit", c.gpu_count),
                     ("started_at", _to_us(start, pod.start)), ("ended_at", _to_us(start, pod.end))):
            cols[k].append(v)
    df = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Int64 if k in ("started_at", "ended_at") else None, strict=False)
                       for k, v in cols.items()})
    return df.with_columns(pl.col("started_at", "ended_at").cast(TIMESTAMP)).with_columns(
        pl.col(c.name).cast(c.dtype) for c in CONTAINERS.columns)


def _kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def _workloads_frame(specs: list[Workload]) -> pl.DataFrame:
    rows = []
    for w in specs:
        pdb = w.pdb_min_available is not None or w.pdb_max_unavailable is not None
        rows.append({
            "namespace": w.namespace, "workload_kind": w.kind, "workload": w.name, "replicas": w.replicas,
            "labels": _kv(w.labels), "annotations": _kv(w.annotations),
            "hpa_name": w.name if w.hpa_metrics else None, "hpa_min_replicas": w.hpa_min,
            "hpa_max_replicas": w.hpa_max, "hpa_metrics": w.hpa_metrics,
            "pdb_name": f"{w.name}-pdb" if pdb else None, "pdb_min_available": w.pdb_min_available,
            "pdb_max_unavailable": w.pdb_max_unavailable, "update_strategy": w.update_strategy,
            "max_unavailable": w.max_unavailable, "max_surge": w.max_surge, "uses_empty_dir": w.uses_empty_dir,
            "uses_local_storage": w.uses_local_storage, "node_selector": _kv(w.node_selector),
            "tolerations": w.tolerations, "affinity": w.affinity,
        })
    return pl.DataFrame(rows, schema=WORKLOADS.schema)


def _nodes_frame(nodes: list[Node], prov: Provider, start: datetime, end: datetime) -> pl.DataFrame:
    rows = []
    for n in nodes:
        gpu = n.itype.gpu
        rows.append({
            "node": n.name, "instance_type": n.itype.name, "provider": prov.name, "region": prov.region,
            "zone": n.zone, "capacity_type": n.pool.capacity_type, "cpu_capacity": float(n.itype.vcpu),
            "cpu_allocatable": n.cpu_alloc, "memory_capacity": int(n.itype.memory_gib * GIB),
            "memory_allocatable": n.mem_alloc, "gpu_count": n.itype.gpus,
            "gpu_model": gpu.product if gpu else None, "gpu_memory": gpu.memory_mib * MIB if gpu else None,
            "mig_strategy": ("mixed" if n.pool.mig_config else "none") if gpu else None,
            "mig_config": n.pool.mig_config if gpu else None, "gpu_sharing": "none" if gpu else None,
            "gpu_replicas": None, "hourly_price": None, "price_source": None,
            "labels": _kv(node_labels(prov, n.pool, n.itype, n.name, n.zone)),
            "taints": node_taints(prov, n.pool, n.itype), "first_seen": start, "last_seen": end,
        })
    return pl.DataFrame(rows, schema=NODES.schema)


def _gpus_frame(nodes: list[Node], flat: _Flat) -> pl.DataFrame:
    owner = {id(pod): (w.namespace, c.name) for w, pod, c, _ in flat.rows if c.gpu_count}
    rows = []
    for n in nodes:
        for d in n.devices:
            running = d.pod is not None and d.pod.end is None
            ns, cname = owner[id(d.pod)] if running else (None, None)
            rows.append({"node": n.name, "device": d.device, "gpu_index": d.gpu_index, "model": d.model,
                         "mig_profile": d.mig_profile, "memory_total": d.memory_total, "namespace": ns,
                         "pod": d.pod.name if running else None, "container": cname})
    return pl.DataFrame(rows, schema=GPUS.schema)


def _namespaces_frame(specs: list[Workload], rng: np.random.Generator) -> pl.DataFrame:
    team_of = {}
    for w in specs:
        team_of.setdefault(w.namespace, w.labels["team"])
    teams = sorted(set(team_of.values()))
    centers = dict(zip(teams, rng.choice(np.arange(1000, 10000), len(teams), replace=False).tolist(), strict=True))
    rows = [{"namespace": ns, "labels": _kv({"kubernetes.io/metadata.name": ns, "team": team_of[ns],
                                              "cost-center": f"cc-{centers[team_of[ns]]}"})}
            for ns in sorted(team_of)]
    return pl.DataFrame(rows, schema=NAMESPACES.schema)


def _steps(begin: float, finish: float, clock: Clock) -> tuple[int, int]:
    """Steps whose sample time lies in [begin, finish], clipped to the window."""
    dt = clock.step_seconds
    t0 = max(0, math.ceil(begin / dt - 1e-9))
    t1 = clock.steps if math.isinf(finish) else min(clock.steps, math.floor(finish / dt + 1e-9) + 1)
    return t0, max(t0, t1)


def _series(flat: _Flat, containers: pl.DataFrame, clock: Clock,
            device_memory: dict[str, int]) -> tuple[Series, pl.DataFrame]:
    """One series per container x resource (x GPU device) and its key columns."""
    cont, res, form, t0s, t1s, dev_mem, devices = [], [], [], [], [], [], []
    for i, (_, pod, c, begins) in enumerate(flat.rows):
        pod_end = math.inf if pod.end is None else pod.end
        finish = min(begins + c.run_seconds, pod_end) if c.ctype == "init" else pod_end
        t0, t1 = _steps(begins, finish, clock)
        if t1 <= t0:
            continue
        b = c.behaviour
        for r, f in ((0, 0), (1, MEM_FORMULAS.index(b.mem))):
            cont.append(i), res.append(r), form.append(f), t0s.append(t0), t1s.append(t1)
            dev_mem.append(0), devices.append(None)
        if c.gpu_count:
            for dev in pod.devices:
                mem = device_memory[dev]
                for r in (2, 3):
                    cont.append(i), res.append(r), form.append(GPU_FORMULAS.index(b.gpu))
                    t0s.append(t0), t1s.append(t1), dev_mem.append(mem), devices.append(dev)
    series = Series(np.array(cont, dtype=np.int64), np.array(res, dtype=np.int8), np.array(form, dtype=np.int8),
                    np.array(t0s, dtype=np.int64), np.array(t1s, dtype=np.int64), np.array(dev_mem, dtype=np.float64))
    keys = containers.select(_KEY)[series.container].with_columns(
        pl.Series("resource", [RESOURCES[r] for r in res], dtype=pl.Enum(list(RESOURCES))),
        pl.Series("device", devices, dtype=pl.String).cast(pl.Categorical),
    )
    return series, keys


def _params(flat: _Flat, clock: Clock) -> Params:
    n = len(flat)
    inf = math.inf
    get = {name: np.zeros(n) for name in ("phase", "weekend", "cpu_level", "cpu_amp", "cpu_sigma", "spike_p",
                                          "mem_level", "mem_amp", "mem_rate", "mem_phase", "gpu_level", "gpu_amp",
                                          "gpu_burst_p", "gpu_mem")}
    cpu_limit, mem_limit, start, end = np.full(n, inf), np.full(n, inf), np.zeros(n), np.full(n, inf)
    oom_c, oom_s = [], []
    for i, (_, pod, c, begins) in enumerate(flat.rows):
        b = c.behaviour
        for name, arr in get.items():
            arr[i] = getattr(b, name)
        if c.cpu_limit is not None:
            cpu_limit[i] = c.cpu_limit
        if c.memory_limit is not None:
            mem_limit[i] = c.memory_limit
        start[i] = begins
        end[i] = inf if pod.end is None else pod.end
        for at in b.oom_at:
            oom_c.append(i)
            oom_s.append(int(round(at / clock.step_seconds)))
    return Params(**get, cpu_limit=cpu_limit, mem_limit=mem_limit, start=start, end=end,
                  oom_container=np.array(oom_c, dtype=np.int64), oom_step=np.array(oom_s, dtype=np.int64))


def _contend(cpu_chunks: list, series: Series, flat: _Flat, nodes: list[Node], steps: int) -> None:
    """Containers on one node cannot use more CPU than its allocatable (the kubepods cgroup).

    Where the demand on a node exceeds it, the part above each container's request is scaled
    down by one factor per node and step, as CFS shares (proportional to requests) would do:
    every container still gets its request, bursts and BestEffort pods give way.
    """
    if not cpu_chunks:
        return
    index = {n.name: i for i, n in enumerate(nodes)}
    node_of = np.array([index.get(pod.node, -1) for _, pod, _, _ in flat.rows], dtype=np.int64)
    request = np.array([c.cpu_request or 0.0 for _, _, c, _ in flat.rows])
    alloc = np.array([n.cpu_alloc for n in nodes])
    size = len(nodes) * steps

    def cells(sid, step, value):
        c = series.container[sid]
        cell = node_of[c] * steps + step
        extra = np.maximum(value - request[c], 0.0)
        return cell, extra, c

    total, above = np.zeros(size), np.zeros(size)
    for sid, step, value in cpu_chunks:
        cell, extra, _ = cells(sid, step, value)
        ok = cell >= 0
        total += np.bincount(cell[ok], weights=value[ok], minlength=size)
        above += np.bincount(cell[ok], weights=extra[ok], minlength=size)
    excess = total - np.repeat(alloc, steps)
    factor = np.where(excess > 0, np.clip(1.0 - excess / np.maximum(above, 1e-12), 0.0, 1.0), 1.0)
    for sid, step, value in cpu_chunks:
        cell, extra, c = cells(sid, step, value)
        hot = np.flatnonzero((cell >= 0) & (extra > 0))
        hot = hot[factor[cell[hot]] < 1.0]
        value[hot] = np.minimum(value[hot], request[c[hot]]) + extra[hot] * factor[cell[hot]]


def _events(gen: Generator, flat: _Flat, containers: pl.DataFrame, start: datetime, step_seconds: int,
            window: float) -> pl.DataFrame:
    """OOMKilled (exit 137) at every kill, with the running restart count; Completed for Job pods."""
    start_us = int(start.timestamp() * _US)
    restarts = np.array([c.behaviour.restarts for _, _, c, _ in flat.rows], dtype=np.int64)
    if gen.oom_container:
        oc, os_ = np.concatenate(gen.oom_container), np.concatenate(gen.oom_step).astype(np.int64)
    else:
        oc, os_ = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((os_, oc))
    oc, os_ = oc[order], os_[order]
    nth = np.arange(len(oc)) - np.searchsorted(oc, oc, side="left") + 1  # 1st, 2nd, ... kill of a container
    keys = containers.select(_KEY + ["memory_limit"])
    ooms = keys[oc].with_columns(
        pl.Series("timestamp", start_us + os_ * step_seconds * _US).cast(TIMESTAMP),
        pl.lit("OOMKilled").alias("reason"), pl.lit(137, dtype=pl.Int64).alias("exit_code"),
        pl.Series("restart_count", restarts[oc] + nth, dtype=pl.Int64),
    )
    done = [i for i, (_, pod, c, _) in enumerate(flat.rows)
            if pod.owner_kind == "Job" and c.ctype == "app" and pod.end is not None and 0 <= pod.end <= window]
    completed = keys[done].with_columns(
        pl.Series("timestamp", [_to_us(start, flat.rows[i][1].end) for i in done], dtype=pl.Int64).cast(TIMESTAMP),
        pl.lit("Completed").alias("reason"), pl.lit(0, dtype=pl.Int64).alias("exit_code"),
        pl.Series("restart_count", restarts[done], dtype=pl.Int64),
    )
    return pl.concat([ooms, completed], how="vertical_relaxed")
