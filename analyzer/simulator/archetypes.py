"""The archetype mix of a simulated cluster and how each archetype's workloads are specified.

Every workload is one archetype: a kind of behaviour the analyzer, forecasters and
recommenders must get right. The table (``ARCHETYPES``) sets the mix; each archetype first
gets its minimum (in table order while workloads last, so 20 workloads already hold every
one), the rest is shared by weight (largest remainder), and a capped archetype's surplus goes
to ``web``. The archetype of each workload is recorded in its ``sim.kubetune.io/archetype``
annotation: ground truth for tests and accuracy benchmarks, not for recommenders.

| archetype | kind | weight | min | max | behaviour |
|---|---|---|---|---|---|
| web | Deployment | 0.24 | 2 | - | business-hours daily + weekly cycle, HPA on CPU, istio sidecar, PDB, rollouts |
| cron-batch | CronJob | 0.08 | 1 | - | a Job + pod per run (6/12/24 h), usage only while it runs, memory ramps |
| job | Job | 0.03 | 1 | - | one-off Jobs of a few hours inside the window |
| stateful | StatefulSet | 0.07 | 1 | - | databases/caches whose memory grows slowly; some on local storage |
| memory-leak | Deployment | 0.04 | 1 | - | working set grows until the limit, OOMKilled, restarts (sawtooth) |
| oom-prone | Deployment | 0.04 | 1 | - | memory spikes past the limit a few times a week (OOMKilled) |
| idle | Deployment | 0.07 | 1 | - | abandoned: near-zero usage against sizeable requests |
| over-provisioned | Deployment | 0.12 | 1 | - | usage p95 well under 30% of request |
| under-provisioned | Deployment | 0.06 | 1 | - | CPU above request most of the time, memory close to the limit |
| best-effort | Deployment | 0.02 | 1 | - | no requests or limits at all |
| daemonset | DaemonSet | 0.02 | 1 | 3 | node-exporter, fluent-bit, dcgm-exporter: one pod per (GPU) node |
| gpu-training | Job | 0.02 | 1 | - | 1-8 A100s per pod, 80-98% busy, most framebuffer used |
| gpu-inference | Deployment | 0.03 | 1 | - | one A10G per pod, 2-25% busy with bursts, small framebuffer |
| gpu-unused | Deployment | 0.01 | 1 | - | requests a GPU, never uses it |
| gpu-mig | Deployment | 0.01 | 1 | - | one MIG 1g slice per pod on a MIG (mixed strategy) node |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from analyzer.simulator import names as N
from analyzer.simulator.catalog import Provider, mig_memory, mig_resource
from analyzer.simulator.spec import Behaviour, Container, Pod, Workload
from analyzer.units import GIB, MIB

ARCHETYPE_ANNOTATION = "sim.kubetune.io/archetype"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
SPOT_READY = "spot.kubecost.com/spot-ready"
DAY = 86400.0


@dataclass(frozen=True)
class Archetype:
    name: str
    kind: str
    weight: float
    min_count: int
    max_count: int | None
    doc: str


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("web", "Deployment", 0.24, 2, None, "business-hours cycle, HPA, sidecars, PDBs, rollouts"),
    Archetype("cron-batch", "CronJob", 0.08, 1, None, "a Job + pod per run, usage only while running"),
    Archetype("job", "Job", 0.03, 1, None, "one-off Jobs inside the window"),
    Archetype("stateful", "StatefulSet", 0.07, 1, None, "slow memory growth; some on local storage"),
    Archetype("memory-leak", "Deployment", 0.04, 1, None, "sawtooth memory, OOMKilled at the limit"),
    Archetype("oom-prone", "Deployment", 0.04, 1, None, "memory spikes past the limit"),
    Archetype("idle", "Deployment", 0.07, 1, None, "abandoned: near-zero usage, sizeable requests"),
    Archetype("over-provisioned", "Deployment", 0.12, 1, None, "usage p95 under 30% of request"),
    Archetype("under-provisioned", "Deployment", 0.06, 1, None, "CPU above request, memory near limit"),
    Archetype("best-effort", "Deployment", 0.02, 1, None, "no requests or limits"),
    Archetype("daemonset", "DaemonSet", 0.02, 1, 3, "one pod per node"),
    Archetype("gpu-training", "Job", 0.02, 1, None, "multi-GPU, 80-98% busy"),
    Archetype("gpu-inference", "Deployment", 0.03, 1, None, "one GPU, mostly idle with bursts"),
    Archetype("gpu-unused", "Deployment", 0.01, 1, None, "requests a GPU, uses none"),
    Archetype("gpu-mig", "Deployment", 0.01, 1, None, "one MIG slice per pod"),
)
BY_NAME = {a.name: a for a in ARCHETYPES}


def archetype_counts(workloads: int) -> dict[str, int]:
    """How many workloads of each archetype a cluster of ``workloads`` gets (see module docstring)."""
    counts = {a.name: 0 for a in ARCHETYPES}
    budget = workloads
    for a in ARCHETYPES:
        take = min(a.min_count, budget)
        counts[a.name] += take
        budget -= take
    if budget <= 0:
        return counts
    total = sum(a.weight for a in ARCHETYPES)
    quotas = [budget * a.weight / total for a in ARCHETYPES]
    floors = [math.floor(q) for q in quotas]
    left = budget - sum(floors)
    order = sorted(range(len(ARCHETYPES)), key=lambda i: (-(quotas[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    for a, extra in zip(ARCHETYPES, floors, strict=True):
        counts[a.name] += extra
        if a.max_count is not None and counts[a.name] > a.max_count:
            counts["web"] += counts[a.name] - a.max_count
            counts[a.name] = a.max_count
    return counts


# Namespace roles: where each archetype's workloads live, and the team owning the namespace.
FIXED_NAMESPACES = {
    "data": "data-platform", "analytics": "analytics", "ml-training": "ml", "ml-serving": "ml",
    "monitoring": "platform", "logging": "platform", "internal-tools": "platform", "sandbox": "developer-experience",
}


class Ctx:
    """What every builder needs: the generator, the namer, the provider, the window."""

    def __init__(self, rng: np.random.Generator, provider: Provider, start: datetime, window: float,
                 cluster: str, web_namespaces: list[str]):
        self.rng = rng
        self.namer = N.Namer(rng)
        self.provider = provider
        self.start = start
        self.window = window
        self.cluster = cluster
        self.web_namespaces = web_namespaces
        self.units = 0
        self.spot_ready_given = False
        self.given: set[str] = set()
        for ns in web_namespaces + list(FIXED_NAMESPACES):
            self.namer.used.add(ns)  # keep namespace names out of the workload-name space

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def i(self, lo: int, hi: int) -> int:
        """Integer in [lo, hi] inclusive."""
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq, p=None):
        return seq[int(self.rng.choice(len(seq), p=p))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def some(self, feature: str, p: float) -> bool:
        """Like ``chance``, but True the first time a feature is asked for, so even a small
        cluster has one of each (a sidecar, a PDB, a rollout, local storage, ...)."""
        if feature not in self.given:
            self.given.add(feature)
            self.rng.random()  # same draws either way: the stream does not depend on the order
            return True
        return self.chance(p)

    def unit(self) -> int:
        self.units += 1
        return self.units - 1

    def web_ns(self) -> str:
        return self.pick(self.web_namespaces)

    def before(self, lo_days: float = 2, hi_days: float = 120) -> float:
        """A start time before the window (long-running pods)."""
        return -self.u(lo_days, hi_days) * DAY

    def load(self) -> dict[str, float]:
        """Per-workload daily-peak shift and weekend factor."""
        return {"phase": float(self.rng.normal(0, 0.75)), "weekend": self.u(0.3, 0.6)}

    def team(self, namespace: str) -> str:
        return FIXED_NAMESPACES.get(namespace, namespace)


def _mi(x: float) -> int:
    return int(x) * MIB


def _gi(x: float) -> int:
    return int(x * GIB)


def _workload(ctx: Ctx, arch: str, namespace: str, name: str, pool: str, replicas: int) -> Workload:
    a = BY_NAME[arch]
    return Workload(
        namespace=namespace, kind=a.kind, name=name, archetype=arch, pool=pool, replicas=replicas,
        labels={"app": name, "team": ctx.team(namespace)}, annotations={ARCHETYPE_ANNOTATION: arch},
    )


def _rolling(ctx: Ctx, w: Workload) -> None:
    w.update_strategy = "RollingUpdate"
    w.max_unavailable = ctx.pick(["25%", "0", "1"], p=[0.6, 0.2, 0.2])
    w.max_surge = ctx.pick(["25%", "1", "50%"], p=[0.6, 0.3, 0.1])


def _replica_pods(ctx: Ctx, w: Workload, make, rollout_at: float | None = None) -> None:
    """Deployment pods ``<rs>-<5>`` of ReplicaSet ``<deploy>-<10>``; a rollout swaps the RS mid-window."""
    rs = ctx.namer.suffixed(w.name, 10)
    born = ctx.before()
    units = [ctx.unit() for _ in range(w.replicas)]
    revision = ctx.i(1, 40)
    for k, unit in enumerate(units):
        end = None if rollout_at is None else rollout_at + 30.0 * k
        w.pods.append(Pod(ctx.namer.suffixed(rs, 5), "ReplicaSet", rs, born + 7.0 * k, end, make(k), unit))
    if rollout_at is not None:
        rs2 = ctx.namer.suffixed(w.name, 10)
        for k, unit in enumerate(units):
            pod = ctx.namer.suffixed(rs2, 5)
            w.pods.append(Pod(pod, "ReplicaSet", rs2, rollout_at + 30.0 * k, None, make(k), unit))
        revision += 1
    w.annotations["deployment.kubernetes.io/revision"] = str(revision)


def _spot(ctx: Ctx, w: Workload, required: bool) -> None:
    """Pin (required) or steer (preferred) to spot capacity, with the toleration the provider needs."""
    key, value = ctx.provider.spot_selector()
    w.pool = "spot"
    if required:
        w.node_selector[key] = value
    w.affinity = f"{'required' if required else 'preferred'}: {key} In [{value}]"
    if ctx.provider.spot_taint:
        w.tolerations.append(ctx.provider.toleration_for(ctx.provider.spot_taint))


def _gpu_setup(ctx: Ctx, w: Workload, product: str | None) -> None:
    w.tolerations.append(ctx.provider.toleration_for(ctx.provider.gpu_taint))
    pool = ctx.provider.pools[w.pool]
    w.node_selector[ctx.provider.pool_label] = pool.name
    if product:
        w.affinity = f"required: nvidia.com/gpu.product In [{product}]"


def _istio(ctx: Ctx, load: dict) -> list[Container]:
    """istio-proxy sidecar (requests 100m/128Mi, limits 2/1Gi as istio injects) and istio-init."""
    proxy = Container("istio-proxy", "sidecar", 0.1, 2.0, _mi(128), _mi(1024), Behaviour(
        **load, cpu_level=ctx.u(0.02, 0.08), cpu_amp=ctx.u(0.5, 0.8), cpu_sigma=0.12,
        mem_level=ctx.u(45, 90) * MIB, mem_amp=0.1))
    init = Container("istio-init", "init", 0.01, 2.0, _mi(10), _mi(1024), Behaviour(
        cpu_level=0.01, cpu_sigma=0.2, mem_level=6 * MIB), run_seconds=ctx.u(2, 8))
    return [init, proxy]


# ---------------------------------------------------------------------------- builders

def web(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.WEB)
    w = _workload(ctx, "web", ctx.web_ns(), name, "general", ctx.i(2, 6))
    load = ctx.load()
    cpu_req = ctx.pick([0.25, 0.5, 1.0, 2.0], p=[0.3, 0.35, 0.25, 0.1])
    mem_req = _mi(ctx.pick([256, 512, 1024, 2048], p=[0.25, 0.35, 0.25, 0.15]))
    cpu_lim = None if ctx.chance(0.5) else 2 * cpu_req
    mem_lim = mem_req if ctx.chance(0.6) else int(mem_req * 1.5)
    peak, mem_frac = ctx.u(0.45, 0.8), ctx.u(0.4, 0.7)
    amp, sigma = ctx.u(0.72, 0.92), ctx.u(0.08, 0.14)
    istio = ctx.some("istio", 0.5)
    migrate = ctx.some("migrate", 0.2)
    rollout = ctx.u(0.1, 0.9) * ctx.window if ctx.some("rollout", 0.25) else None

    def make(k: int) -> list[Container]:
        app = Container("app", "app", cpu_req, cpu_lim, mem_req, mem_lim, Behaviour(
            **load, cpu_level=cpu_req * peak, cpu_amp=amp, cpu_sigma=sigma, spike_p=0.002,
            mem_level=mem_req * mem_frac, mem_amp=ctx.u(0.1, 0.25)))
        out = _istio(ctx, load) if istio else []
        if migrate:
            out.insert(0, Container("db-migrate", "init", 0.2, None, _mi(256), _mi(256), Behaviour(
                cpu_level=0.15, cpu_sigma=0.2, mem_level=ctx.u(60, 180) * MIB), run_seconds=ctx.u(240, 900)))
        return out + [app]

    _replica_pods(ctx, w, make, rollout)
    _rolling(ctx, w)
    w.spread = True
    w.hpa_min, w.hpa_max = w.replicas, w.replicas * ctx.i(2, 4)
    w.hpa_metrics = [{"metric": "cpu", "target_type": "Utilization", "target": float(ctx.pick([60, 70, 75, 80]))}]
    if ctx.chance(0.3):
        w.hpa_metrics.append({"metric": "memory", "target_type": "Utilization", "target": 80.0})
    if ctx.some("web-pdb", 0.5):
        if ctx.chance(0.6):
            w.pdb_min_available = ctx.pick(["50%", "1", str(max(1, w.replicas - 1))])
        else:
            w.pdb_max_unavailable = "1"
    w.uses_empty_dir = ctx.chance(0.3)
    if not ctx.spot_ready_given and w.replicas >= 3 and not w.uses_empty_dir:
        ctx.spot_ready_given = True
        w.annotations[SPOT_READY] = "true"
    elif ctx.chance(0.25):
        _spot(ctx, w, required=False)
    return w


def cron_batch(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.BATCH)
    ns = ctx.pick(["analytics", "data", ctx.web_ns()], p=[0.5, 0.3, 0.2])
    w = _workload(ctx, "cron-batch", ns, name, "general", 1)
    period_h = ctx.pick([24, 12, 6], p=[0.6, 0.2, 0.2])
    duration = ctx.u(0.1, 0.6) * period_h * 3600
    cpu_req = ctx.pick([0.5, 1.0, 2.0])
    mem_req = _gi(ctx.pick([1, 2, 4]))
    mem_lim = int(mem_req * ctx.pick([1.0, 1.5]))
    fetch = ctx.some("fetch-input", 0.4)
    first = ctx.u(0, period_h) * 3600
    first = math.floor(first / 60) * 60  # cron fires on the minute
    level = ctx.u(0.6, 1.1)
    k = math.floor((0 - duration * 1.3 - first) / (period_h * 3600))
    while True:
        at = first + k * period_h * 3600
        k += 1
        if at >= ctx.window:
            break
        run = duration * ctx.u(0.8, 1.2)
        if at + run <= 0:
            continue
        job = ctx.namer.unique(lambda at=at: f"{name}-{int((ctx.start.timestamp() + at) // 60)}")
        containers = []
        init_s = 0.0
        if fetch:
            init_s = ctx.u(180, 600)
            containers.append(Container("fetch-input", "init", 0.25, None, _mi(256), _mi(512), Behaviour(
                cpu_level=0.2, cpu_sigma=0.2, mem_level=ctx.u(80, 200) * MIB), run_seconds=init_s))
        containers.append(Container("job", "app", cpu_req, None, mem_req, mem_lim, Behaviour(
            cpu_level=cpu_req * level, cpu_sigma=0.12, mem="ramp", mem_level=mem_req * ctx.u(0.5, 0.85))))
        unit = w.pods[0].unit if w.pods else ctx.unit()
        w.pods.append(Pod(ctx.namer.suffixed(job, 5), "Job", job, at, at + init_s + run, containers, unit))
    w.uses_empty_dir = ctx.chance(0.6)
    if ctx.some("spot-batch", 0.75):  # the first CronJob runs on spot: every cluster has spot nodes
        _spot(ctx, w, required=True)
    if ctx.chance(0.2):
        w.annotations[SAFE_TO_EVICT] = "false"
    return w


def job(ctx: Ctx) -> Workload:
    base = ctx.namer.base(N.JOBS)
    at = ctx.u(0.05, 0.8) * ctx.window
    name = ctx.namer.unique(lambda: f"{base}-{(ctx.start + timedelta(seconds=at)):%Y%m%d}")
    w = _workload(ctx, "job", ctx.pick(["data", "analytics", ctx.web_ns()]), name, "general", 1)
    cpu_req = ctx.pick([0.5, 1.0, 2.0])
    mem_req = _gi(ctx.pick([1, 2, 4]))
    run = ctx.u(0.5, 6) * 3600
    c = Container("main", "app", cpu_req, cpu_req * 2, mem_req, mem_req, Behaviour(
        cpu_level=cpu_req * ctx.u(0.5, 1.0), cpu_sigma=0.1, mem="ramp", mem_level=mem_req * ctx.u(0.4, 0.8)))
    w.pods.append(Pod(ctx.namer.suffixed(name, 5), "Job", name, at, at + run, [c], ctx.unit()))
    return w


def stateful(ctx: Ctx) -> Workload:
    engine = ctx.pick(N.STATEFUL)
    name = ctx.namer.base([engine, f"{engine}-main", f"{engine}-cache", f"{engine}-events"])
    replicas = 3 if engine in ("kafka", "zookeeper", "etcd", "cassandra", "nats") else ctx.i(1, 3)
    mem_lim = _gi(ctx.pick([2, 4, 8, 16], p=[0.2, 0.35, 0.3, 0.15]))
    w = _workload(ctx, "stateful", ctx.pick(["data", ctx.web_ns()], p=[0.6, 0.4]), name,
                  "memory" if mem_lim >= _gi(8) else "general", replicas)
    if w.pool == "memory":
        w.node_selector[ctx.provider.pool_label] = ctx.provider.pools["memory"].name
    load = ctx.load()
    cpu_req = ctx.pick([0.5, 1.0, 2.0])
    guaranteed = ctx.chance(0.5)
    mem_req = mem_lim if guaranteed else int(mem_lim * 0.75)
    days = ctx.window / DAY
    exporter = ctx.chance(0.5)
    born = ctx.before(10, 300)
    for k in range(replicas):
        start_frac = ctx.u(0.3, 0.5)
        growth = min(ctx.u(0.01, 0.04), (0.85 / start_frac - 1) / max(days, 1.0))
        c = Container(engine, "app", cpu_req, cpu_req if guaranteed else None, mem_req, mem_lim, Behaviour(
            **load, cpu_level=cpu_req * ctx.u(0.2, 0.55), cpu_amp=ctx.u(0.3, 0.5), cpu_sigma=0.1,
            mem="growth", mem_level=mem_lim * start_frac, mem_rate=growth, mem_amp=0.04))
        cs = [c]
        if exporter:
            cs.append(Container("metrics", "app", 0.05, 0.2, _mi(64), _mi(128), Behaviour(
                **load, cpu_level=ctx.u(0.005, 0.02), cpu_sigma=0.15, mem_level=ctx.u(20, 40) * MIB)))
        w.pods.append(Pod(f"{name}-{k}", "StatefulSet", name, born + 60.0 * k, None, cs, ctx.unit()))
    w.update_strategy = "RollingUpdate"
    w.max_unavailable = ctx.pick([None, "1"])
    w.uses_local_storage = ctx.some("local-storage", 0.4)
    w.spread = True
    if w.uses_local_storage or ctx.chance(0.3):
        w.annotations[SAFE_TO_EVICT] = "false"
    if ctx.chance(0.5):
        w.pdb_max_unavailable = "1"
    return w


def memory_leak(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.LEAKY)
    w = _workload(ctx, "memory-leak", ctx.web_ns(), name, "general", ctx.i(1, 3))
    load = ctx.load()
    cpu_req = ctx.pick([0.25, 0.5, 1.0])
    mem_lim = _mi(ctx.pick([512, 1024, 2048]))
    mem_req = int(mem_lim * ctx.pick([0.5, 0.75, 1.0]))
    base_frac, period = ctx.u(0.2, 0.35), ctx.u(0.8, 3.0)

    def make(k: int) -> list[Container]:
        return [Container("app", "app", cpu_req, None, mem_req, mem_lim, Behaviour(
            **load, cpu_level=cpu_req * ctx.u(0.3, 0.6), cpu_amp=ctx.u(0.5, 0.8), cpu_sigma=0.1,
            mem="leak", mem_level=mem_lim * base_frac, mem_rate=period * ctx.u(0.85, 1.15),
            mem_phase=ctx.u(0, 1), restarts=ctx.i(3, 40)))]

    _replica_pods(ctx, w, make)
    w.update_strategy = ctx.pick(["RollingUpdate", "Recreate"], p=[0.7, 0.3])
    if w.update_strategy == "RollingUpdate":
        w.max_unavailable, w.max_surge = "25%", "25%"
    return w


def oom_prone(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.OOM)
    w = _workload(ctx, "oom-prone", ctx.web_ns(), name, "general", ctx.i(1, 3))
    load = ctx.load()
    cpu_req = ctx.pick([0.25, 0.5, 1.0])
    mem_lim = _mi(ctx.pick([256, 512, 1024]))
    mem_req = int(mem_lim * ctx.pick([0.75, 1.0]))
    frac = ctx.u(0.5, 0.7)
    per_week = ctx.u(2, 6)

    def make(k: int) -> list[Container]:
        # A renewal process: gaps of 0.5-1.5x the mean, so >= 2/week means one within any 5.25 days.
        gap = 7 * DAY / per_week
        at, ooms = ctx.u(0, 1) * gap, []
        while at < ctx.window:
            ooms.append(at)
            at += gap * ctx.u(0.5, 1.5)
        return [Container("app", "app", cpu_req, 2 * cpu_req, mem_req, mem_lim, Behaviour(
            **load, cpu_level=cpu_req * ctx.u(0.3, 0.7), cpu_amp=ctx.u(0.4, 0.8), cpu_sigma=0.12,
            mem="spiky", mem_level=mem_lim * frac, mem_amp=0.15, oom_at=tuple(ooms), restarts=ctx.i(1, 20)))]

    _replica_pods(ctx, w, make)
    _rolling(ctx, w)
    return w


def idle(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.IDLE)
    w = _workload(ctx, "idle", ctx.pick(["internal-tools", ctx.web_ns()]), name, "general", ctx.i(1, 2))
    cpu_req = ctx.pick([0.5, 1.0, 2.0])
    mem_req = _mi(ctx.pick([1536, 2048, 4096]))

    def make(k: int) -> list[Container]:
        return [Container("app", "app", cpu_req, ctx.pick([None, cpu_req]), mem_req, ctx.pick([None, mem_req]),
                          Behaviour(cpu_level=ctx.u(0.001, 0.006), cpu_sigma=0.2,
                                    mem_level=ctx.u(16, 48) * MIB, mem_amp=0.0))]

    _replica_pods(ctx, w, make)
    w.annotations["deployment.kubernetes.io/revision"] = "1"
    _rolling(ctx, w)
    return w


def over_provisioned(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.OVER)
    w = _workload(ctx, "over-provisioned", ctx.web_ns(), name, "general", ctx.i(2, 4))
    load = ctx.load()
    cpu_req = ctx.pick([1.0, 2.0, 4.0], p=[0.5, 0.35, 0.15])
    mem_req = _gi(ctx.pick([2, 4, 8], p=[0.5, 0.35, 0.15]))
    cpu_frac, mem_frac = ctx.u(0.06, 0.16), ctx.u(0.08, 0.2)

    def make(k: int) -> list[Container]:
        return [Container("app", "app", cpu_req, None, mem_req, mem_req, Behaviour(
            **load, cpu_level=cpu_req * cpu_frac, cpu_amp=ctx.u(0.3, 0.6), cpu_sigma=0.1, spike_p=0.001,
            mem_level=mem_req * mem_frac, mem_amp=0.1))]

    _replica_pods(ctx, w, make)
    _rolling(ctx, w)
    w.spread = True
    if ctx.chance(0.3):
        w.pdb_min_available = "1"
    return w


def under_provisioned(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.UNDER)
    w = _workload(ctx, "under-provisioned", ctx.web_ns(), name, "general", ctx.i(1, 3))
    load = ctx.load()
    cpu_req = ctx.pick([0.1, 0.25, 0.5])
    mem_lim = _mi(ctx.pick([256, 512, 1024]))

    def make(k: int) -> list[Container]:
        return [Container("app", "app", cpu_req, None, mem_lim, mem_lim, Behaviour(
            **load, cpu_level=cpu_req * ctx.u(1.5, 2.3), cpu_amp=ctx.u(0.15, 0.3), cpu_sigma=0.1,
            mem_level=mem_lim * ctx.u(0.86, 0.93), mem_amp=0.04))]

    _replica_pods(ctx, w, make)
    _rolling(ctx, w)
    return w


def best_effort(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.BEST_EFFORT)
    w = _workload(ctx, "best-effort", ctx.pick(["sandbox", "internal-tools"]), name, "general", ctx.i(1, 2))
    load = ctx.load()

    def make(k: int) -> list[Container]:
        return [Container("main", "app", None, None, None, None, Behaviour(
            **load, cpu_level=ctx.u(0.02, 0.3), cpu_amp=0.4, cpu_sigma=0.2, mem_level=ctx.u(64, 512) * MIB,
            mem_amp=0.1))]

    _replica_pods(ctx, w, make)
    w.update_strategy = "Recreate"
    return w


DAEMONSETS = ("node-exporter", "fluent-bit", "dcgm-exporter")


def daemonset(ctx: Ctx) -> Workload:
    taken = [d for d in DAEMONSETS if d in ctx.namer.used]
    name = DAEMONSETS[len(taken)]
    ctx.namer.used.add(name)
    ns = "logging" if name == "fluent-bit" else "monitoring"
    w = _workload(ctx, "daemonset", ns, name, "all", 0)
    load = ctx.load()
    if name == "node-exporter":
        c = Container(name, "app", 0.1, 0.25, _mi(128), _mi(180), Behaviour(
            cpu_level=ctx.u(0.01, 0.03), cpu_sigma=0.2, mem_level=ctx.u(30, 60) * MIB, mem_amp=0.05))
    elif name == "fluent-bit":
        c = Container(name, "app", 0.1, None, _mi(128), _mi(256), Behaviour(
            **load, cpu_level=ctx.u(0.03, 0.08), cpu_amp=0.6, cpu_sigma=0.2, mem_level=ctx.u(40, 90) * MIB,
            mem_amp=0.2))
    else:
        c = Container(name, "app", 0.1, None, _mi(256), _mi(512), Behaviour(
            cpu_level=ctx.u(0.02, 0.05), cpu_sigma=0.15, mem_level=ctx.u(150, 220) * MIB))
        w.daemon_gpu_only = True
        w.node_selector["nvidia.com/gpu.present"] = "true"
    w.daemon_template = [c]
    w.tolerations.append({"key": None, "operator": "Exists", "value": None, "effect": None})
    w.update_strategy, w.max_unavailable, w.max_surge = "RollingUpdate", ctx.pick(["1", "10%"]), "0"
    return w


def gpu_training(ctx: Ctx) -> Workload:
    base = ctx.namer.base(N.TRAINING)
    itype = ctx.provider.types[ctx.provider.pools["gpu-training"].types[0][0]]
    gpus = min(itype.gpus, ctx.pick([1, 2, 4, 8], p=[0.2, 0.3, 0.3, 0.2]))
    if ctx.chance(0.5):
        start = ctx.before(0.2, 4)
    else:
        start = ctx.u(0, 0.5) * ctx.window
    run = max(ctx.u(3, 16) * DAY, DAY - start)
    end = start + run if start + run < ctx.window else None
    name = ctx.namer.unique(lambda: f"{base}-{int(ctx.rng.integers(1, 999)):03d}")
    w = _workload(ctx, "gpu-training", "ml-training", name, "gpu-training", 1)
    cpu_per_gpu = (itype.vcpu - 4) / itype.gpus
    mem_per_gpu = itype.memory_gib * 0.8 / itype.gpus
    cpu_req = float(math.floor(cpu_per_gpu * 0.8 * gpus))
    mem_req = _gi(math.floor(mem_per_gpu * 0.8 * gpus))
    dev_mem = itype.gpu.memory_mib * MIB
    c = Container("trainer", "app", cpu_req, None, mem_req, mem_req, Behaviour(
        cpu_level=cpu_req * ctx.u(0.3, 0.6), cpu_sigma=0.08, mem_level=mem_req * ctx.u(0.5, 0.8), mem_amp=0.0,
        gpu="train", gpu_level=ctx.u(0.84, 0.95), gpu_mem=dev_mem * ctx.u(0.7, 0.95)),
        gpu_resource="nvidia.com/gpu", gpu_count=gpus)
    w.pods.append(Pod(ctx.namer.suffixed(name, 5), "Job", name, start, end, [c], ctx.unit()))
    w.annotations[SAFE_TO_EVICT] = "false"
    w.uses_empty_dir = True  # /dev/shm for the data loaders
    _gpu_setup(ctx, w, itype.gpu.product)
    return w


def gpu_inference(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.INFERENCE)
    w = _workload(ctx, "gpu-inference", "ml-serving", name, "gpu-inference", ctx.i(1, 3))
    itype = ctx.provider.types[ctx.provider.pools["gpu-inference"].types[0][0]]
    load = ctx.load()
    cpu_req = ctx.pick([1.0, 2.0])
    mem_req = _gi(ctx.pick([4, 8]))
    model = ctx.u(1.5, 6) * GIB

    def make(k: int) -> list[Container]:
        return [Container("server", "app", cpu_req, None, mem_req, mem_req, Behaviour(
            **load, cpu_level=cpu_req * ctx.u(0.15, 0.4), cpu_amp=0.6, cpu_sigma=0.12,
            mem_level=mem_req * ctx.u(0.4, 0.7), mem_amp=0.05,
            gpu="infer", gpu_level=ctx.u(0.05, 0.2), gpu_amp=ctx.u(0.5, 0.8), gpu_burst_p=ctx.u(0.005, 0.02),
            gpu_mem=model), gpu_resource="nvidia.com/gpu", gpu_count=1)]

    _replica_pods(ctx, w, make)
    _rolling(ctx, w)
    w.spread = True
    if ctx.chance(0.4):
        w.hpa_min, w.hpa_max = w.replicas, w.replicas + ctx.i(1, 3)
        w.hpa_metrics = [{"metric": "DCGM_FI_DEV_GPU_UTIL", "target_type": "AverageValue", "target": 60.0}]
    _gpu_setup(ctx, w, itype.gpu.product)
    return w


def gpu_unused(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.NOTEBOOK)
    w = _workload(ctx, "gpu-unused", "ml-serving", name, "gpu-inference", 1)

    def make(k: int) -> list[Container]:
        return [Container("notebook", "app", 0.5, None, _gi(2), _gi(4), Behaviour(
            cpu_level=ctx.u(0.002, 0.02), cpu_sigma=0.3, mem_level=ctx.u(200, 400) * MIB,
            gpu="none"), gpu_resource="nvidia.com/gpu", gpu_count=1)]

    _replica_pods(ctx, w, make)
    w.update_strategy = "Recreate"
    _gpu_setup(ctx, w, None)
    return w


def gpu_mig(ctx: Ctx) -> Workload:
    name = ctx.namer.base(N.MIG)
    w = _workload(ctx, "gpu-mig", "ml-serving", name, "gpu-mig", ctx.i(1, 4))
    resource = mig_resource(ctx.provider)
    slice_mem = mig_memory(resource.removeprefix("nvidia.com/mig-"))
    load = ctx.load()

    def make(k: int) -> list[Container]:
        return [Container("server", "app", 0.5, None, _gi(2), _gi(2), Behaviour(
            **load, cpu_level=ctx.u(0.05, 0.3), cpu_amp=0.5, cpu_sigma=0.12, mem_level=_gi(2) * ctx.u(0.4, 0.7),
            gpu="infer", gpu_level=ctx.u(0.15, 0.5), gpu_amp=0.5, gpu_burst_p=0.01,
            gpu_mem=slice_mem * ctx.u(0.3, 0.7)), gpu_resource=resource, gpu_count=1)]

    _replica_pods(ctx, w, make)
    _rolling(ctx, w)
    _gpu_setup(ctx, w, None)
    w.affinity = f"required: nvidia.com/mig.config In [{ctx.provider.pools['gpu-mig'].mig_config}]"
    return w


BUILDERS = {
    "web": web, "cron-batch": cron_batch, "job": job, "stateful": stateful, "memory-leak": memory_leak,
    "oom-prone": oom_prone, "idle": idle, "over-provisioned": over_provisioned,
    "under-provisioned": under_provisioned, "best-effort": best_effort, "daemonset": daemonset,
    "gpu-training": gpu_training, "gpu-inference": gpu_inference, "gpu-unused": gpu_unused, "gpu-mig": gpu_mig,
}
