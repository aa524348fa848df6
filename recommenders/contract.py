"""The recommender contract: a registered name, a frozen ``Settings`` dataclass, and ``run(snapshot, ctx)``.

In the spirit of KRR's registered strategies and scikit-learn's estimators: a recommender is a
class holding its settings (and nothing else) that turns a Snapshot into a ``Result``::

    @register
    class Idle(Recommender):
        name = "idle"
        Settings = IdleSettings          # frozen dataclass; every field has default, help and unit
        def run(self, snapshot, ctx):    # ctx: prices, rates, window, shared series (built once)
            return Result(records=[...], skips=[...], notes=[...])

``recommenders.api.recommend`` runs every registered recommender (or the chosen ones) with one
``Context``; the CLI makes one flag per ``Settings`` field (``kubetune.settings_flags``), so a knob
added to a Settings class is reachable without touching the CLI. Settings fields carry
``field(default=..., metadata={"help": "one line", "unit": "fraction|hours|bytes|cores|..."})``;
optional metadata: ``flag`` (the flag's name when it is not derived from the field's),
``switch`` (the flag is an on/off switch that sets the field to this value) and ``choices``.
A field with the same name in several recommenders is one shared knob (one flag).
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, field, fields, is_dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from analyzer.cost import PriceBook, load_pricing
from analyzer.errors import InputError
from analyzer.snapshot import Snapshot
from recommenders.rates import WorkloadRates, workload_rates
from recommenders.record import Recommendation, RecommendationSet, Skip

if TYPE_CHECKING:  # forecasting pulls in scikit-learn: imported when the series are first needed
    from forecasting import SeriesSet


def setting(default: Any, help: str, unit: str, **extra: Any) -> Any:  # noqa: A002 - the metadata key is "help"
    """A Settings field: its default, one line of help and its unit (plus optional flag/switch/choices)."""
    return field(default=default, metadata={"help": help, "unit": unit, **extra})


class Result(RecommendationSet):
    """What one recommender returns: ``records``, ``skips`` (with reasons) and ``notes`` for the user.

    A ``RecommendationSet`` under the contract's names, so ``recommend`` merges results as they are.
    """

    def __init__(self, records=(), skips=(), notes=(), cluster_notes=None):
        super().__init__(list(records), list(skips), list(notes), dict(cluster_notes or {}))

    @classmethod
    def of(cls, found: RecommendationSet) -> Result:
        return cls(found.recommendations, found.skipped, found.notes, found.cluster_notes)

    @property
    def records(self) -> list[Recommendation]:
        return self.recommendations

    @property
    def skips(self) -> list[Skip]:
        return self.skipped


class Context:
    """What every recommender of one run shares, built once: prices, rates, the window, series.

    ``series`` (per-container CPU and memory demand on an hourly grid) is built on first use, so a
    run that does not need it (``--kind spot``) does not pay for it.
    """

    def __init__(self, snapshot: Snapshot, pricing: PriceBook, rates: WorkloadRates):
        self.snapshot = snapshot
        self.pricing = pricing
        self.rates = rates
        m = snapshot.manifest
        self.window: tuple[datetime, datetime] = (m.start, m.end)
        self.hours = max((m.end - m.start).total_seconds() / 3600.0, 0.0)

    @classmethod
    def build(cls, snapshot: Snapshot, *, pricing: PriceBook | None = None,
              pricing_file: str | Path | None = None) -> Context:
        """The user's price book (``pricing_file``, else the bundled one) and the rates from it."""
        book = pricing if pricing is not None else load_pricing(pricing_file)
        return cls(snapshot, book, workload_rates(snapshot, pricing=book))

    @cached_property
    def series(self) -> SeriesSet:
        from forecasting import extract_series

        # lazy: the filter is fused into the hourly aggregation, no filtered copy of the usage frame
        return extract_series(self.snapshot.usage.lazy().filter(pl.col("resource").is_in(["cpu", "memory"])))


class Recommender:
    """Base class: ``name``, ``Settings``, optional ``flag_prefix``; ``run`` does the work.

    Like a scikit-learn estimator, the constructor only stores the settings; all work is in ``run``.
    """

    name: ClassVar[str]
    Settings: ClassVar[type]
    flag_prefix: ClassVar[str] = ""  # e.g. "gpu-": --gpu-margin (shared knobs are never prefixed)
    help_panel: ClassVar[str] = "Policy"

    def __init__(self, settings: Any = None):
        self.settings = settings if settings is not None else self.Settings()

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError


REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Add a recommender class to the registry (checked: a frozen Settings with help and unit per field)."""
    settings = getattr(cls, "Settings", None)
    if not (is_dataclass(settings) and settings.__dataclass_params__.frozen):
        raise TypeError(f"{cls.__name__}.Settings must be a frozen dataclass")
    for f in fields(settings):
        if f.default is MISSING and f.default_factory is MISSING:
            raise TypeError(f"{settings.__name__}.{f.name} has no default")
        if not (f.metadata.get("help") and f.metadata.get("unit")):
            raise TypeError(f"{settings.__name__}.{f.name} needs metadata help and unit (it becomes a CLI flag)")
    REGISTRY[cls.name] = cls
    return cls


def registered(kinds: tuple[str, ...] | list[str] | None = None) -> list[type[Recommender]]:
    """The registered recommenders, in registration order (only ``kinds`` if given; unknown ones are an error)."""
    importlib.import_module("recommenders.builtin")  # registers rightsize, gpu, spot

    if kinds is None:
        return list(REGISTRY.values())
    unknown = [k for k in kinds if k not in REGISTRY]
    if unknown:
        raise InputError(f"unknown recommendation kind(s) {', '.join(sorted(set(unknown)))}; use {', '.join(REGISTRY)}.")
    return [cls for name, cls in REGISTRY.items() if name in kinds]
