"""The knobs of the GPU recommender, in one typed record (CLI flags and the config file map onto it).

Field metadata carries ``help`` and ``unit`` so a registry can generate CLI flags from it; a knob
shared with other recommenders keeps their name (``min_history_hours``). Why the defaults are what
they are: docs/gpu-sharing.md and benchmarks/README.md ("GPU sharing replayed").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.errors import InputError

SHARING_MODES = ("auto", "mig", "time-slicing", "mps")


def _f(default, help: str, unit: str):  # noqa: A002 - the metadata key is "help"
    return field(default=default, metadata={"help": help, "unit": unit})


@dataclass(frozen=True)
class GpuSettings:
    """How far GPU sharing may go, and when there is no recommendation at all."""

    min_history_hours: float = _f(24.0, "Least GPU history to recommend from; shorter -> no recommendation.", "hours")
    margin: float | None = _f(
        None, "Fixed headroom over the framebuffer peak and busy P95 (0.2 = 20%); unset = calibrated per pod "
        "from the history (fb_risk, busy_risk).", "fraction")
    fb_risk: float = _f(
        0.01, "Accepted chance that a pod's later framebuffer peak beats the proposed slice (a CUDA out-of-memory); "
        "sets the calibrated framebuffer margin.", "fraction")
    busy_risk: float = _f(0.05, "Accepted share of samples with busy above the proposed compute share (slowdown).",
                          "fraction")
    min_fb_margin: float = _f(0.05, "Smallest calibrated framebuffer margin over the peak.", "fraction")
    max_fb_margin: float = _f(
        0.5, "A pod whose framebuffer peak grew more than this within its own history is too erratic to size.",
        "fraction")
    sharing: str = _f(
        "auto", "How to share a lightly used GPU: auto (MIG where the model has it, else time-slicing), mig, "
        "time-slicing, or mps (per-client memory limits, no MIG).", "mode")
    max_gap_hours: float = _f(1.0, "A hole in a pod's GPU samples longer than this -> no recommendation.", "hours")
    min_coverage: float = _f(0.5, "Least share of a pod's history window that has GPU samples.", "fraction")
    max_glitch_fraction: float = _f(
        0.01, "Samples with busy above 100% or framebuffer above the device are dropped as exporter glitches; "
        "more than this share of them -> no recommendation.", "fraction")
    prealloc_spread: float = _f(
        0.02, "Framebuffer flat within this relative band over the history = preallocated by the engine.",
        "fraction")
    prealloc_min_share: float = _f(0.15, "Least share of the device a flat framebuffer must hold to count as "
                                         "preallocation.", "fraction")

    def __post_init__(self) -> None:
        checks = [
            (self.min_history_hours > 0, "min history must be positive."),
            (self.margin is None or 0 <= self.margin <= 5, f"GPU margin must be between 0 and 5, got {self.margin}."),
            (0 <= self.fb_risk < 0.5, f"GPU framebuffer risk must be between 0 and 0.5, got {self.fb_risk}."),
            (0 < self.busy_risk < 0.5, f"GPU busy risk must be between 0 and 0.5, got {self.busy_risk}."),
            (0 <= self.min_fb_margin <= self.max_fb_margin, "GPU framebuffer margins must satisfy 0 <= min <= max."),
            (self.sharing in SHARING_MODES, f"GPU sharing must be one of {', '.join(SHARING_MODES)}, got {self.sharing!r}."),
            (self.max_gap_hours > 0, "max gap must be positive."),
            (0 <= self.min_coverage <= 1, "min coverage must be a fraction."),
            (0 <= self.max_glitch_fraction < 1, "max glitch fraction must be a fraction below 1."),
            (0 < self.prealloc_spread < 1 and 0 <= self.prealloc_min_share <= 1, "preallocation knobs must be fractions."),
        ]
        failed = next((message for ok, message in checks if not ok), None)
        if failed:
            raise InputError(failed)
