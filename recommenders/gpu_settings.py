"""The knobs of the GPU recommender, in one typed record (CLI flags are generated from it).

Field metadata carries ``help`` and ``unit`` (``recommenders.contract``); a knob shared with other
recommenders keeps their name (``min_history_hours``), so it is one flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from analyzer.errors import InputError


def _f(default, help: str, unit: str):  # noqa: A002 - the metadata key is "help"
    return field(default=default, metadata={"help": help, "unit": unit})


@dataclass(frozen=True)
class GpuSettings:
    """How much headroom a GPU proposal keeps, and when there is no recommendation at all."""

    min_history_hours: float = _f(24.0, "Least history to recommend from, e.g. 24h (shorter: no recommendation, "
                                        "with the reason).", "hours")
    margin: float = _f(0.2, "Headroom added to the GPU busy quantile and the peak framebuffer before fitting a "
                            "MIG profile or time slice (0.2 = 20%).", "fraction")
    busy_quantile: float = _f(0.95, "Which quantile of GPU busy a shared slice must hold (0.95 = P95).", "fraction")

    def __post_init__(self) -> None:
        checks = [
            (self.min_history_hours > 0, "min history must be positive."),
            (0 <= self.margin <= 5, f"--gpu-margin must be between 0 and 5, got {self.margin}."),
            (0.5 <= self.busy_quantile <= 1, f"--gpu-busy-quantile must be between 0.5 and 1, got {self.busy_quantile}."),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
