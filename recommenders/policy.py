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
      (``node_size`` without nodes in the snapshot) and replaying the history: pods on
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

    risk: float = field(default=0.06, metadata={
        "help": "Accepted share of pod-hours with CPU demand above request (0.06 = 6%), calibrated out of sample.",
        "unit": "fraction"})
    risk_mode: str = field(default="workload", metadata={
        "help": "workload: every container within --risk (bounds how far demand exceeds requests); cluster: spend "
                "--risk where it saves the most cores (no container above --max-risk; fewer cores, bigger shortfalls "
                "on spiky containers).", "unit": "mode", "choices": ("workload", "cluster")})
    max_risk: float = field(default=0.10, metadata={
        "help": "Cap on one container's CPU risk in cluster mode (raised to --risk when below it).",
        "unit": "fraction"})
    memory_risk: float = field(default=0.01, metadata={
        "help": "With --memory-spread: accepted chance that next week's memory peak exceeds the limit.",
        "unit": "fraction"})
    memory_margin: float = field(default=0.15, metadata={
        "help": "Memory limit margin over the observed peak (0.15 = 15%, at least --memory-headroom); guaranteed: also the request.", "unit": "fraction"})
    max_memory_margin: float = field(default=0.5, metadata={
        "help": "Largest memory margin a container's swings can earn (raised to --memory-margin when below it).",
        "unit": "fraction"})
    cpu_limit_ratio: float | None = field(default=None, metadata={
        "help": "Propose CPU limit = request x RATIO (default: no CPU limit change).", "unit": "ratio"})
    memory_limit: str = field(default="request", metadata={
        "help": "Leave memory limits alone unless below the new request (default: limit = request).",
        "unit": "flag", "flag": "--keep-memory-limit", "switch": "keep"})
    cpu_floor: float = field(default=0.01, metadata={"help": "Smallest CPU request ever proposed.", "unit": "cores"})
    memory_floor: int = field(default=64 * MIB, metadata={
        "help": "Smallest memory request ever proposed.", "unit": "bytes"})
    min_change: float = field(default=0.05, metadata={
        "help": "Skip changes smaller than this fraction (no churn).", "unit": "fraction"})
    min_history_hours: float = field(default=24.0, metadata={
        "help": "Least history to recommend from, e.g. 24h (shorter: no recommendation, with the reason).",
        "unit": "hours"})
    full_confidence_hours: float = field(default=7 * 24.0, metadata={
        "help": "History length at which confidence no longer grows with it.", "unit": "hours"})
    oom_bump_ratio: float = field(default=1.2, metadata={
        "help": "OOM-killed containers get at least their used memory x this (VPA's bump).", "unit": "ratio"})
    oom_min_bump: int = field(default=100 * MIB, metadata={
        "help": "... and at least their used memory + this.", "unit": "bytes"})
    use_drift: bool = field(default=False, metadata={
        "help": "Size from the history after each container's last behaviour change (drift) only.", "unit": "flag"})
    min_post_change_hours: float = field(default=72.0, metadata={
        "help": "A change point is used only once this much history follows it.", "unit": "hours"})
    half_life_hours: float | None = field(default=None, metadata={
        "help": "Recent demand weighs more: a sample's weight halves every so many hours (none: all history alike).",
        "unit": "hours"})
    own_risk_weight: float = field(default=0.25, metadata={
        "help": "How much a container's own out-of-sample exceedances count against the pooled ones (0 = pooled only).",
        "unit": "fraction"})
    use_forecast: bool = field(default=False, metadata={
        "help": "Also run the demand forecaster: its 7-day memory peak becomes a floor (safer, more memory) and its "
                "P95/peak go into the evidence.", "unit": "flag"})
    hpa: str = field(default="skip", metadata={
        "help": "Also resize resources an HPA scales on (default: skip them and explain the HPA effect).",
        "unit": "flag", "flag": "--allow-hpa", "switch": "allow"})

    memory_spread: bool = field(default=False, metadata={
        "help": "Scale each container's memory margin by how far its daily peaks swing, calibrated for --memory-risk "
                "(off: on the Bitbrains frontier it was no better than the flat margin).", "unit": "flag"})
    memory_policy: str = field(default="guaranteed", metadata={
        "help": "guaranteed: memory request = limit, never below the observed peak (no eviction risk); burstable: the "
                "limit at peak x (1 + --burstable-limit-margin), the request at a calibrated high quantile (cheaper; "
                "node-checked, see --node-size).", "unit": "choice", "choices": ("guaranteed", "burstable")})
    burstable_limit_margin: float = field(default=0.5, metadata={
        "help": "burstable: memory limit margin over the observed peak (a limit is not billed, an OOM kill hurts: "
                "halves OOM episodes against the guaranteed margin on the Bitbrains dev split).", "unit": "fraction"})
    memory_overcommit: float = field(default=0.01, metadata={
        "help": "burstable: accepted memory above the request, as a fraction of each container's memory use.",
        "unit": "fraction"})
    memory_headroom: int = field(default=64 * MIB, metadata={
        "help": "Least absolute memory limit headroom over the observed peak (small containers need it).",
        "unit": "bytes"})
    node_size: str = field(default="64Gi/16", metadata={
        "help": "burstable node check: node allocatable MEMORY/CPU when the snapshot has no nodes, e.g. 64Gi/16.",
        "unit": "MEMORY/CPU"})
    node_pressure_risk: float = field(default=0.001, metadata={
        "help": "burstable: accepted share of node-hours with summed memory use over allocatable when the new "
                "requests are packed and the history replayed (0.001 = 0.1%); requests are raised until it holds.",
        "unit": "fraction"})

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
            (0 <= self.node_pressure_risk < 1,
             f"--node-pressure-risk must be a fraction between 0 and 1, got {self.node_pressure_risk}."),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        _parse_node_size(self.node_size)

    @property
    def node_memory(self) -> int:
        """Allocatable memory of the stand-in node (bytes), from ``node_size``."""
        return _parse_node_size(self.node_size)[0]

    @property
    def node_cpu(self) -> float:
        """Allocatable CPU of the stand-in node (cores), from ``node_size``."""
        return _parse_node_size(self.node_size)[1]

    @classmethod
    def from_options(cls, **values) -> RightsizePolicy:
        """As the CLI builds it: a cap below what it caps is raised to it (``--risk 0.2`` lifts ``--max-risk``)."""
        caps = (("max_risk", "risk"), ("max_memory_margin", "memory_margin"))
        for cap, capped in caps:
            values[cap] = max(values.get(cap, getattr(cls, cap)), values.get(capped, getattr(cls, capped)))
        return cls(**values)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _parse_node_size(text: str) -> tuple[int, float]:
    """``"64Gi/16"`` -> (bytes, cores); one sentence naming the flag when it is not MEMORY/CPU."""
    from analyzer.units import parse_cpu, parse_memory

    mem, sep, cpu = str(text).replace(",", "/").partition("/")
    try:
        out = (int(parse_memory(mem.strip())), float(parse_cpu(cpu.strip()))) if sep else None
    except (ValueError, ArithmeticError, InputError):
        out = None
    if out is None or out[0] <= 0 or out[1] <= 0:
        raise InputError(f"--node-size must be MEMORY/CPU such as 64Gi/16, got {text!r}.")
    return out
