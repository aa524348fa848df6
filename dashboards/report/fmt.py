"""Human units and escaping for the report's renderers (HTML, Markdown, Slack)."""

from __future__ import annotations

import re

from analyzer.units import human_value


def usd(v: float | None) -> str:
    if v is None:
        return "-"
    sign, a = ("-" if v < 0 else ""), abs(v)
    return f"{sign}${a:,.0f}" if a >= 100 else f"{sign}${a:,.2f}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def amount(resource: str, v: float | None) -> str:
    """A base-unit value as people write it (``250m``, ``512Mi``, devices); ``-`` when unset."""
    return human_value(resource, v, "-")


def workload(row: dict) -> str:
    return f"{row['namespace']}/{row['workload_kind']}/{row['workload']}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(text: object) -> str:
    """Escape a value for a Markdown table cell: no markup, no links, no HTML, one line."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", s).replace("&", "&amp;")


def slack(text: object) -> str:
    """Escape for Slack mrkdwn: only &, < and > are control characters there."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
