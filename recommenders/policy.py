"""The knobs of right-sizing, in one typed record (CLI flags and the config file map onto it)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from analyzer.errors import InputError
from analyzer.units import MIB



@dataclass(frozen=True)
class RightsizePolicy:
    """How aggressive right-sizing may be.

    * ``risk``: the share of pod-hours the user accepts with CPU demand above the request, as a
      budget over all recommended containers (``risk_mode="cluster"``: spend it where it saves the
      most capacity, never more than ``max_risk`` on one container) or for each container alone
      (``risk_mode="workload"``). Exceedance is estimated out of sample (calibrated), not in-sample.
    * ``memory_risk``: the accepted chance that a container's next-week peak exceeds the proposed
      memory (sets each container's margin from how much its daily peaks vary), never a margin below
      ``memory_margin``. Memory is never proposed below the observed peak.
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

    risk: float = 0.02
    risk_mode: str = "workload"
    max_risk: float = 0.10
    memory_risk: float = 0.01
    memory_margin: float = 0.05
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
    use_drift: bool = True
    min_post_change_hours: float = 72.0
    half_life_hours: float | None = 72.0
    own_risk_weight: float = 0.25
    use_forecast: bool = False
    hpa: str = "skip"

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
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
