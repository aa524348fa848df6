"""The knobs of right-sizing, in one typed record (CLI flags and the config file map onto it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from analyzer.errors import InputError
from analyzer.units import MIB



@dataclass(frozen=True)
class RightsizePolicy:
    """How aggressive right-sizing may be.

    * ``risk``: the share of pod-hours the user accepts with CPU demand above the request, as a
      budget over all recommended containers (``risk_mode="cluster"``: spend it where it saves the
      most capacity, never more than ``max_risk`` on one container) or for each container alone
      (``risk_mode="workload"``). Exceedance is estimated out of sample (calibrated), not in-sample.
    * ``memory_margin`` / ``memory_headroom``: the memory limit is the observed peak x (1 + margin),
      at least the peak + headroom. ``memory_spread``: scale the margin per container by its daily
      peaks' swing, calibrated so that ``memory_risk`` is the chance next week's peak beats it (never
      below ``memory_margin``). Memory is never proposed below the observed peak.
    * ``memory_policy``: "guaranteed" (request = limit) or "burstable" (request at the lowest
      quantile whose calibrated memory above request is within ``memory_overcommit`` of the
      container's use; the limit as guaranteed), checked by packing the new requests onto nodes
      (``node_memory``/``node_cpu`` without nodes in the snapshot) and replaying the history: pods on
      nodes over allocatable go back to guaranteed until ``node_pressure_risk`` holds.
    * ``cpu_limit_ratio``: None = no CPU limit proposed (the default: CPU limits throttle), or
      limit = request x ratio. ``memory_limit``: "request" (limit = request, the safe default) or
      "keep" (leave the limit alone unless it is below the new request).
    * ``half_life_hours``: recent demand weighs more (a sample's weight halves every so many hours;
      None = all history alike); ``min_post_change_hours``: a change point is used only once this
      much history follows it (younger ones are noted, the whole window is used);
      ``own_risk_weight``: how much a container's own out-of-sample exceedances count against the
      pooled ones when calibrating its risk (0 = pooled only).
    * ``use_forecast``: also run the demand forecaster; its 7-day memory peak becomes a floor and its
      P95/peak go into the evidence (safer, much more memory on volatile data: benchmarks/README.md).
    * floors, ``min_change`` (no churn for small differences), ``min_history_hours`` (too little
      data -> no recommendation), ``hpa`` ("skip": leave resources an HPA scales on; "allow").
    """

    risk: float = 0.06
    risk_mode: str = "workload"
    max_risk: float = 0.10
    memory_risk: float = 0.01
    memory_margin: float = field(default=0.15, metadata={
        "help": "memory limit margin over the observed peak (guaranteed: also the request)", "unit": "fraction"})
    max_memory_margin: float = 0.5
    cpu_limit_ratio: float | None = None
    memory_limit: str = "request"
    cpu_floor: float = 0.01
    memory_floor: int = 64 * MIB
    min_change: float = 0.05
    min_history_hours: float = 24.0
    full_confidence_hours: float = 7 * 24.0
    oom_bump_ratio: float = 1.2
    oom_min_bump: int = 100 * MIB
    use_drift: bool = False
    min_post_change_hours: float = 72.0
    half_life_hours: float | None = None
    own_risk_weight: float = 0.25
    use_forecast: bool = False
    hpa: str = "skip"
    memory_spread: bool = field(default=False, metadata={
        "help": "scale each container's margin by how far its daily peaks swing, calibrated for --memory-risk "
                "(off: on the Bitbrains frontier it was no better than the flat margin)", "unit": "flag"})
    memory_policy: str = field(default="guaranteed", metadata={
        "help": "guaranteed: memory request = limit >= the observed peak; burstable: the limit as guaranteed, the "
                "request at a calibrated high quantile (cheaper; checked against node pressure)", "unit": "choice"})
    burstable_limit_margin: float = field(default=0.5, metadata={
        "help": "burstable: memory limit margin over the observed peak (a limit is not billed, an OOM kill hurts: "
                "halves OOM episodes against the guaranteed margin on the Bitbrains dev split)", "unit": "fraction"})
    memory_overcommit: float = field(default=0.01, metadata={
        "help": "burstable: accepted memory above the request, as a fraction of each container's memory use",
        "unit": "fraction"})
    memory_headroom: int = field(default=64 * MIB, metadata={
        "help": "least absolute memory limit headroom over the observed peak (small containers need it)",
        "unit": "bytes"})
    node_memory: int = field(default=64 * 2**30, metadata={
        "help": "node check: allocatable memory of a node when the snapshot has no nodes", "unit": "bytes"})
    node_cpu: float = field(default=16.0, metadata={
        "help": "node check: allocatable CPU of a node when the snapshot has no nodes", "unit": "cores"})
    node_pressure_risk: float = field(default=0.001, metadata={
        "help": "burstable: accepted share of node-hours whose summed memory use exceeds allocatable "
                "(kubelet evictions) when the new requests are packed and the history replayed", "unit": "fraction"})

    def __post_init__(self) -> None:
        checks = [
            (0 < self.risk < 0.5, f"--risk must be between 0 and 0.5 (a fraction of hours), got {self.risk}."),
            (self.risk_mode in ("cluster", "workload"), f"risk mode must be cluster or workload, got {self.risk_mode!r}."),
            (self.risk <= self.max_risk < 1, f"max risk must be between --risk and 1, got {self.max_risk}."),
            (0 < self.memory_risk < 0.5, f"memory risk must be between 0 and 0.5, got {self.memory_risk}."),
            (0 <= self.memory_margin <= self.max_memory_margin, "memory margin must be between 0 and the max margin."),
            (self.cpu_limit_ratio is None or self.cpu_limit_ratio >= 1,
             f"--cpu-limit-ratio must be at least 1 (limit >= request), got {self.cpu_limit_ratio}."),
            (self.memory_limit in ("request", "keep"), f"memory limit policy must be request or keep, got {self.memory_limit!r}."),
            (self.cpu_floor >= 0 and self.memory_floor >= 0, "floors must not be negative."),
            (0 <= self.min_change < 1, f"min change must be a fraction below 1, got {self.min_change}."),
            (self.min_history_hours > 0, "min history must be positive."),
            (self.hpa in ("skip", "allow"), f"HPA policy must be skip or allow, got {self.hpa!r}."),
            (self.memory_policy in ("guaranteed", "burstable"),
             f"--memory-policy must be guaranteed or burstable, got {self.memory_policy!r}."),
            (0 < self.memory_overcommit < 0.5,
             f"--memory-overcommit must be between 0 and 0.5 (a fraction of memory use), got {self.memory_overcommit}."),
            (self.memory_headroom >= 0, "memory headroom must not be negative."),
            (self.burstable_limit_margin >= 0, "burstable limit margin must not be negative."),
            (self.node_memory > 0 and self.node_cpu > 0, "--node-size must be positive memory and CPU."),
            (0 <= self.node_pressure_risk < 1,
             f"--node-pressure-risk must be a fraction between 0 and 1, got {self.node_pressure_risk}."),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
