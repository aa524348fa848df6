"""Units at the edges: Kubernetes quantities and durations in, human strings out.

Inside kubetune CPU is float cores, memory is int bytes, GPUs are devices and durations are
seconds. This module is the only place that knows ``250m``, ``512Mi`` or ``14d``.
Quantity parsing follows k8s.io/apimachinery ``resource.Quantity``: decimal SI suffixes
(n u m "" k M G T P E), binary suffixes (Ki Mi Gi Ti Pi Ei) and decimal exponents (``2e3``).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from analyzer.errors import InputError

MIB = 2**20  # bytes in a mebibyte (Kubernetes "Mi")
GIB = 2**30  # bytes in a gibibyte (Kubernetes "Gi")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?\d+)|(?P<dec>[numkMGTPE]?))$"
)


def parse_quantity(text: str | float) -> Decimal:
    """Parse a Kubernetes quantity exactly (``"100m"`` -> ``Decimal("0.1")``)."""
    if isinstance(text, bool):
        raise InputError(f"{text!r} is not a Kubernetes quantity.")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            raise InputError(f"{text!r} is not a Kubernetes quantity.")
        return Decimal(str(text))
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise InputError(f"{text!r} is not a Kubernetes quantity (expected e.g. 250m, 1.5, 512Mi, 1G, 2e3).")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex already checked the shape
        raise InputError(f"{text!r} is not a Kubernetes quantity.") from exc
    if match["bin"]:
        return number * _BINARY[match["bin"]]
    if match["exp"]:
        return number.scaleb(int(match["exp"][1:]))
    return number * _DECIMAL[match["dec"] or ""]


def parse_cpu(text: str | float) -> float:
    """CPU quantity -> cores (``"250m"`` -> 0.25). Kubernetes keeps millicore precision."""
    value = parse_quantity(text)
    millis = (value * 1000).to_integral_value(rounding=ROUND_CEILING)
    return float(millis / 1000)


def parse_memory(text: str | float) -> int:
    """Memory quantity -> bytes, rounded up to a whole byte as Kubernetes does."""
    return int(parse_quantity(text).to_integral_value(rounding=ROUND_CEILING))


def parse_count(text: str | float) -> int:
    """Extended-resource quantity (``nvidia.com/gpu``) -> whole devices."""
    return int(parse_quantity(text).to_integral_value(rounding=ROUND_CEILING))


def format_cpu(cores: float | None) -> str:
    """Cores -> the shortest exact Kubernetes string: 0.25 -> ``250m``, 2.0 -> ``2``."""
    if cores is None or (isinstance(cores, float) and math.isnan(cores)):
        return "-"
    millis = int(math.ceil(round(cores * 1000, 6)))
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_memory(nbytes: float | None) -> str:
    """Bytes -> a Kubernetes string in the largest binary unit that keeps it whole-ish.

    Values that are a whole number of Gi/Mi/Ki print that way (``512Mi``); others are rounded
    *up* to the next Mi so the string never asks for less than the number it came from.
    """
    if nbytes is None or (isinstance(nbytes, float) and math.isnan(nbytes)):
        return "-"
    n = int(math.ceil(nbytes))
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20)):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    if n < 2**20:
        return f"{math.ceil(n / 2**10)}Ki" if n % 2**10 else f"{n // 2**10}Ki" if n else "0"
    return f"{math.ceil(n / 2**20)}Mi"


def human_bytes(nbytes: float | None) -> str:
    """Bytes -> a short reading string for tables (``1.5 GiB``); not for manifests."""
    if nbytes is None or (isinstance(nbytes, float) and math.isnan(nbytes)):
        return "-"
    value = float(nbytes)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or suffix == "TiB":
            return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Prometheus-style duration -> seconds (``"5m"`` -> 300, ``"1h30m"`` -> 5400, ``"14d"``)."""
    raw = str(text).strip()
    if raw.isdigit():
        return float(raw)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(raw):
        if match.start() != pos:
            break
        total += float(match[1]) * _DURATION_SECONDS[match[2]]
        pos = match.end()
    if pos != len(raw) or not raw or total <= 0:
        raise InputError(f"{text!r} is not a duration (expected e.g. 5m, 1h, 14d, 1h30m).")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> the largest whole unit string (``300`` -> ``5m``, ``1209600`` -> ``14d``)."""
    s = int(round(seconds))
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{suffix}"
    return f"{s}s"


def human_value(resource: str, v: float | None, missing: str = "unset") -> str:
    """A base-unit value as people write it: ``250m``, ``512Mi``, ``2`` (devices)."""
    if v is None:
        return missing
    if resource == "cpu":
        return format_cpu(v)
    if resource == "memory":
        return format_memory(v)
    return f"{v:g}"


def format_quantity_like(resource: str, value: str | float, example: str) -> str:
    """``value`` written in the style of ``example`` (a quantity the same file already uses), rounded
    up, never below ``value``: ``500m`` keeps millicores, ``0.5`` cores, ``1Gi`` a binary suffix
    (the example's if exact, else the largest exact one, else Mi), ``1G`` a decimal one, bytes stay
    bytes; devices are whole numbers. Used to edit manifests without changing their style."""
    example = example.strip()
    if resource == "cpu":
        millis = round(parse_cpu(value) * 1000)
        if example.endswith("m"):
            return f"{millis}m"
        return str(millis // 1000) if millis % 1000 == 0 else str(Decimal(millis) / 1000)
    if resource in ("memory", "ephemeral-storage"):
        n = parse_memory(value)
        suffix = re.sub(r"^[+-]?[\d.]+", "", example)
        for table, fallback in ((_BINARY, "Mi"), ({k: int(v) for k, v in _DECIMAL.items() if v >= 1000}, "M")):
            if suffix in table:
                if n % table[suffix] == 0:
                    return f"{n // table[suffix]}{suffix}"
                exact = [s for s, size in sorted(table.items(), key=lambda kv: -kv[1]) if n % size == 0]
                unit = exact[0] if exact else fallback
                return f"{-(-n // table[unit])}{unit}"
        return str(n) if re.fullmatch(r"\d+", example) else format_memory(n)
    return str(parse_count(value))
