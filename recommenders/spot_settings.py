"""The knobs of the spot recommender, in one typed record (CLI flags are generated from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.errors import InputError

PLACEMENTS = ("preferred", "required", "selector")


@dataclass(frozen=True)
class SpotSettings:
    """How spot patches place pods."""

    placement: str = field(default="preferred", metadata={
        "help": "Spot patches: preferred node affinity (falls back to on-demand), required affinity, or nodeSelector.",
        "unit": "mode", "choices": PLACEMENTS})

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise InputError(f"--spot-placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}.")
