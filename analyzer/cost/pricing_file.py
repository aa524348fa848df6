"""Reading one pricing YAML file (catalog or user's) into frames, checking every key, number and line.

The format is described in ``analyzer.cost.pricing``; a bad value is an ``InputError`` naming the
file and line (ruamel.yaml's round-trip loader keeps the line of every node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from analyzer.errors import InputError

CAPACITIES = ("on-demand", "spot")
RESOURCE_RATE_KEYS = ("cpu_core_hour", "memory_gib_hour", "gpu_hour")

TYPES_SCHEMA = {
    "instance_type": pl.String, "provider": pl.String, "vcpu": pl.Float64, "memory_gib": pl.Float64,
    "gpus": pl.Int64, "gpu_model": pl.String, "gpu_memory_gib": pl.Float64, "spec_source": pl.String,
}
PRICES_SCHEMA = {
    "instance_type": pl.String, "provider": pl.String, "region": pl.String, "capacity": pl.String,
    "price": pl.Float64, "source": pl.String, "date": pl.String, "derived": pl.String, "origin": pl.String,
}


@dataclass(frozen=True)
class Rates:
    """Hourly rates per resource unit, with where they came from."""

    cpu_core_hour: float
    memory_gib_hour: float
    gpu_hour: float
    source: str
    date: str
    origin: str = "catalog"  # "catalog" (bundled) or "user"


@dataclass(frozen=True)
class SpotDiscount:
    fraction: float
    source: str
    date: str
    derived: str
    origin: str = "catalog"



_TOP_KEYS = {
    "provider", "region", "sources", "types", "prices", "fallback", "spot_discount",
    "discount_percent", "discounts", "use_snapshot_prices",
}


_TYPE_KEYS = {"type", "provider", "vcpu", "memory_gib", "gpus", "gpu_model", "gpu_memory_gib", "spec", "note"}


_PRICE_KEYS = {"type", "provider", "region", "capacity", "price", "source", "date", "derived", "note"}


_RATE_KEYS = {*RESOURCE_RATE_KEYS, "source", "date", "note"}


_SPOT_DISCOUNT_KEYS = {"percent", "source", "date", "derived", "note"}


@dataclass
class _Parsed:
    types: pl.DataFrame
    prices: pl.DataFrame
    fallback: dict[str, Rates]
    fallback_partial: dict[str, dict[str, Any]]
    spot_discounts: dict[str, SpotDiscount]
    discounts: dict[str, float]
    use_snapshot_prices: bool | None


class _Where:
    """File and line of a YAML node, for error messages a user can act on."""

    def __init__(self, path: Path):
        self.path = path

    def at(self, node: Any, key: Any = None) -> str:
        line = None
        lc = getattr(node, "lc", None)
        if lc is not None:
            try:
                line = (lc.value(key)[0] if key is not None else lc.line) + 1
            except (KeyError, TypeError, AttributeError):
                line = (lc.line + 1) if getattr(lc, "line", None) is not None else None
        return f"{self.path}:{line}" if line else str(self.path)


def parse_pricing_file(path: Path, origin: str) -> _Parsed:
    """Parse and check one pricing file (``origin``: catalog or user) into frames and rates.

    Length: one check per top-level key of the file format, in the order the README documents them.
    """
    where = _Where(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"pricing file {path} cannot be read ({exc}).") from None
    try:
        doc = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{loc}: not valid YAML ({problem}).") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a pricing file must be a YAML mapping (keys like prices:, types:, fallback:).")
    unknown = [k for k in doc if k not in _TOP_KEYS]
    if unknown:
        raise InputError(f"{where.at(doc, unknown[0])}: unknown key {unknown[0]!r} "
                         f"(expected one of {', '.join(sorted(_TOP_KEYS))}).")
    provider = _opt_str(doc, "provider", where)
    region = _opt_str(doc, "region", where)
    sources = doc.get("sources") or {}
    if not isinstance(sources, dict):
        raise InputError(f"{where.at(doc, 'sources')}: sources must be a mapping of key -> citation.")
    sources = {str(k): str(v) for k, v in sources.items()}

    def cite(value: Any) -> str:
        """A source key from `sources:`, or the citation text itself."""
        return sources.get(str(value), str(value))

    types_rows = []
    price_rows = []
    for node in _seq(doc, "types", where):
        _check_keys(node, _TYPE_KEYS, where, "types")
        types_rows.append(_type_row(node, provider, where, cite))
    for node in _seq(doc, "prices", where):
        _check_keys(node, _PRICE_KEYS | (_TYPE_KEYS - {"note"}), where, "prices")
        if "type" not in node:
            raise InputError(f"{where.at(node)}: a price row needs `type:` (the instance type).")
        price = _number(node, "price", where, required=True)
        capacity = str(node.get("capacity", "on-demand")).lower()
        if capacity not in CAPACITIES:
            raise InputError(f"{where.at(node, 'capacity')}: capacity {capacity!r} is not one of "
                             f"{', '.join(CAPACITIES)}.")
        source = node.get("source")
        date = node.get("date")
        if origin == "catalog" and (source is None or date is None):
            raise InputError(f"{where.at(node)}: every catalog price row needs a source and a date.")
        price_rows.append({
            "instance_type": str(node["type"]),
            "provider": str(node.get("provider") or provider) if (node.get("provider") or provider) else None,
            "region": str(node.get("region") or region) if (node.get("region") or region) else None,
            "capacity": capacity,
            "price": price,
            "source": cite(source) if source is not None else f"user pricing file {where.at(node)}",
            "date": str(date) if date is not None else "user-supplied",
            "derived": str(node["derived"]) if node.get("derived") is not None else None,
            "origin": origin,
        })
        if any(k in node for k in ("vcpu", "memory_gib", "gpus", "gpu_model", "gpu_memory_gib")):
            types_rows.append(_type_row(node, provider, where, cite))

    fallback: dict[str, Rates] = {}
    partial: dict[str, dict[str, Any]] = {}
    fb = doc.get("fallback")
    if fb is not None:
        if not isinstance(fb, dict):
            raise InputError(f"{where.at(doc, 'fallback')}: fallback must map on-demand/spot to rates.")
        for cap, rates in fb.items():
            if cap not in CAPACITIES:
                raise InputError(f"{where.at(fb, cap)}: fallback key {cap!r} is not one of {', '.join(CAPACITIES)}.")
            if not isinstance(rates, dict):
                raise InputError(f"{where.at(fb, cap)}: fallback.{cap} must be a mapping of rates.")
            _check_keys(rates, _RATE_KEYS, where, f"fallback.{cap}")
            got = {k: _number(rates, k, where) for k in RESOURCE_RATE_KEYS if k in rates}
            if "source" in rates:
                got["source"] = cite(rates["source"])
            elif origin == "user":
                got["source"] = f"user pricing file {where.at(rates)}"
            if "date" in rates:
                got["date"] = str(rates["date"])
            elif origin == "user":
                got["date"] = "user-supplied"
            partial[cap] = got
            if all(k in got for k in RESOURCE_RATE_KEYS):
                fallback[cap] = Rates(got["cpu_core_hour"], got["memory_gib_hour"], got["gpu_hour"],
                                      got.get("source", str(path)), got.get("date", "undated"), origin)

    spot_discounts: dict[str, SpotDiscount] = {}
    sd = doc.get("spot_discount")
    if sd is not None:
        if not isinstance(sd, dict):
            raise InputError(f"{where.at(doc, 'spot_discount')}: spot_discount must be a mapping with percent:.")
        _check_keys(sd, _SPOT_DISCOUNT_KEYS, where, "spot_discount")
        pct = _percent(sd, "percent", where)
        spot_discounts[provider or "*"] = SpotDiscount(
            pct, cite(sd.get("source", f"user pricing file {where.at(sd)}")),
            str(sd.get("date", "user-supplied")), str(sd.get("derived", "")), origin)

    discounts: dict[str, float] = {}
    if "discount_percent" in doc:
        discounts["*"] = _percent(doc, "discount_percent", where)
    per = doc.get("discounts")
    if per is not None:
        if not isinstance(per, dict):
            raise InputError(f"{where.at(doc, 'discounts')}: discounts must map provider -> percent.")
        for prov in per:
            discounts[str(prov)] = _percent(per, prov, where)

    use_snap = doc.get("use_snapshot_prices")
    if use_snap is not None and not isinstance(use_snap, bool):
        raise InputError(f"{where.at(doc, 'use_snapshot_prices')}: use_snapshot_prices must be true or false.")

    return _Parsed(
        types=pl.DataFrame(types_rows, schema=TYPES_SCHEMA, orient="row"),
        prices=pl.DataFrame(price_rows, schema=PRICES_SCHEMA, orient="row"),
        fallback=fallback,
        fallback_partial=partial,
        spot_discounts=spot_discounts,
        discounts=discounts,
        use_snapshot_prices=use_snap,
    )


def _type_row(node: Any, provider: str | None, where: _Where, cite) -> dict[str, Any]:
    if "type" not in node:
        raise InputError(f"{where.at(node)}: a types row needs `type:` (the instance type).")
    gpus = _number(node, "gpus", where)
    if gpus is not None and gpus != int(gpus):
        raise InputError(f"{where.at(node, 'gpus')}: gpus must be a whole number of devices.")
    return {
        "instance_type": str(node["type"]),
        "provider": str(node.get("provider") or provider) if (node.get("provider") or provider) else None,
        "vcpu": _number(node, "vcpu", where),
        "memory_gib": _number(node, "memory_gib", where),
        "gpus": int(gpus) if gpus is not None else None,
        "gpu_model": str(node["gpu_model"]) if node.get("gpu_model") is not None else None,
        "gpu_memory_gib": _number(node, "gpu_memory_gib", where),
        "spec_source": cite(node["spec"]) if node.get("spec") is not None else None,
    }


def _seq(doc: Any, key: str, where: _Where) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where.at(doc, key)}: {key} must be a list of rows.")
    for item in value:
        if not isinstance(item, dict):
            raise InputError(f"{where.at(value)}: every {key} row must be a mapping like {{type: ..., ...}}.")
    return value


def _check_keys(node: Any, allowed: set[str], where: _Where, what: str) -> None:
    for k in node:
        if k not in allowed:
            raise InputError(f"{where.at(node, k)}: unknown key {k!r} in {what} "
                             f"(expected {', '.join(sorted(allowed))}).")


def _opt_str(doc: Any, key: str, where: _Where) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where.at(doc, key)}: {key} must be a string.")
    return value


def _number(node: Any, key: str, where: _Where, required: bool = False) -> float | None:
    """A non-negative finite number, or a clear error naming file and line."""
    if key not in node or node[key] is None:
        if required:
            raise InputError(f"{where.at(node)}: missing {key}.")
        return None
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where.at(node, key)}: {key} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{where.at(node, key)}: {key} must be a finite number, got {value!r}.")
    if value < 0:
        raise InputError(f"{where.at(node, key)}: {key} must not be negative, got {value!r}.")
    return value


def _percent(node: Any, key: Any, where: _Where) -> float:
    value = _number(node, key, where, required=True)
    if value >= 100:
        raise InputError(f"{where.at(node, key)}: {key} must be below 100 (a percent), got {value!r}.")
    return value / 100.0
