"""The small tables the simulator builds before any sample exists: workloads, pods, containers.

Built with ordinary Python objects (a few thousand of them), then flattened into NumPy arrays
for the vectorised usage generator and into Polars frames for the snapshot. Times are seconds
from the window start (negative = before it); ``end=None`` means still running at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Behaviour:
    """How a container uses resources over time; read by ``analyzer.simulator.signals``."""

    phase: float = 0.0  # hours the workload's daily peak is shifted by
    weekend: float = 1.0  # weekend load relative to weekdays (1 = no weekly cycle)
    cpu_level: float = 0.0  # cores at full load
    cpu_amp: float = 0.0  # share of CPU that follows the business-hours load (0 = flat)
    cpu_sigma: float = 0.1  # log-normal noise
    spike_p: float = 0.0  # probability per sample of a 1.5-3x CPU spike
    mem: str = "steady"  # steady | ramp | growth | leak | spiky
    mem_level: float = 0.0  # bytes (working set at full load / at the window start)
    mem_amp: float = 0.0
    mem_rate: float = 0.0  # growth: fraction of mem_level per day; leak: days from restart to OOM
    mem_phase: float = 0.0  # leak: where in its first cycle the container is at the window start (0..1)
    oom_at: tuple[float, ...] = ()  # spiky: when a spike exceeds the limit (seconds from window start)
    gpu: str = "none"  # train | infer | none
    gpu_level: float = 0.0  # busy fraction at full load
    gpu_amp: float = 0.0
    gpu_burst_p: float = 0.0  # probability per sample of an inference burst
    gpu_mem: float = 0.0  # framebuffer bytes used per device
    restarts: int = 0  # restart count before the window


@dataclass
class Container:
    name: str
    ctype: str  # app | init | sidecar
    cpu_request: float | None
    cpu_limit: float | None
    memory_request: int | None
    memory_limit: int | None
    behaviour: Behaviour
    gpu_resource: str | None = None
    gpu_count: int | None = None
    run_seconds: float = 0.0  # init containers: how long they run at pod start


@dataclass
class Pod:
    name: str
    owner_kind: str
    owner_name: str
    start: float
    end: float | None
    containers: list[Container]
    unit: int  # placement unit: pods that never overlap in time (rollouts, CronJob runs) share one
    node: str | None = None
    devices: list[str] = field(default_factory=list)  # GPU devices of the container asking for GPUs

    def requests(self) -> tuple[float, int, int]:
        """Effective pod requests as the scheduler sees them: max(sum of regular, largest init)."""
        regular = [c for c in self.containers if c.ctype != "init"]
        init = [c for c in self.containers if c.ctype == "init"]
        cpu = sum(c.cpu_request or 0.0 for c in regular)
        mem = sum(c.memory_request or 0 for c in regular)
        cpu = max([cpu] + [c.cpu_request or 0.0 for c in init])
        mem = max([mem] + [c.memory_request or 0 for c in init])
        gpu = sum(c.gpu_count or 0 for c in self.containers)
        return cpu, mem, gpu


@dataclass
class Workload:
    namespace: str
    kind: str
    name: str
    archetype: str
    pool: str  # node pool role the pods need (see catalog.Pool.role)
    replicas: int
    labels: dict[str, str]
    annotations: dict[str, str]
    pods: list[Pod] = field(default_factory=list)
    hpa_min: int | None = None
    hpa_max: int | None = None
    hpa_metrics: list[dict] | None = None
    pdb_min_available: str | None = None
    pdb_max_unavailable: str | None = None
    update_strategy: str | None = None
    max_unavailable: str | None = None
    max_surge: str | None = None
    uses_empty_dir: bool = False
    uses_local_storage: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    affinity: str | None = None
    spread: bool = False  # prefer a node without a sibling pod (topology spread / anti-affinity)
    daemon_template: list[Container] | None = None  # DaemonSets: containers of the pod on every node
    daemon_gpu_only: bool = False
