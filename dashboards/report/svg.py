"""Inline SVG charts for the self-contained report page: no scripts, no remote assets.

Each function returns one ``<svg class="chart">`` string with a ``<title>`` and an ``aria-label``;
every label is escaped (names come from the cluster and are untrusted). Colours are a fixed
colour-blind-safe palette (Okabe-Ito).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def _open(width: int, height: int, title: str, chart_id: str) -> str:
    t = escape(title)
    return (f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{t}" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
            f'style="max-width:{width}px"><title>{t}</title>')


def _legend(names: Sequence[str], x: float, y: float, colors: Sequence[str] = PALETTE) -> str:
    out, cx = [], x
    for i, name in enumerate(names):
        out.append(f'<rect x="{cx:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{colors[i % len(colors)]}"/>'
                   f'<text x="{cx + 14:.0f}" y="{y:.0f}" {FONT}>{escape(name)}</text>')
        cx += 24 + 6.5 * len(name)
    return "".join(out)


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def stacked_bars(rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], title: str, chart_id: str,
                 fmt: Callable[[float], str], width: int = 760) -> str:
    """Horizontal bars, one per row, each split into ``series`` segments; the total printed at the end."""
    bar, gap, left, top = 18, 6, 190, 30
    height = top + len(rows) * (bar + gap) + 10
    total_max = max((sum(v or 0 for v in vals) for _, vals in rows), default=0) or 1.0
    scale = (width - left - 90) / total_max
    out = [_open(width, height, title, chart_id), _legend(series, left, 14)]
    for i, (label, vals) in enumerate(rows):
        y = top + i * (bar + gap)
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" {FONT}>{escape(_short(label))}'
                   f'<title>{escape(label)}</title></text>')
        x = float(left)
        for j, v in enumerate(vals):
            w = max(0.0, (v or 0) * scale)
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{PALETTE[j % len(PALETTE)]}">'
                           f'<title>{escape(label)}: {escape(series[j])} {escape(fmt(v))}</title></rect>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + 13}" {FONT}>{escape(fmt(sum(v or 0 for v in vals)))}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_columns(labels: Sequence[str], values: Sequence[Sequence[float]], series: Sequence[str], title: str,
                    chart_id: str, fmt: Callable[[float], str], width: int = 760, height: int = 220) -> str:
    """Vertical stacked columns (e.g. cost per day: allocated + idle)."""
    left, bottom, top = 60, 30, 26
    n = max(len(labels), 1)
    slot = (width - left - 10) / n
    vmax = max((sum(v or 0 for v in col) for col in values), default=0) or 1.0
    scale = (height - top - bottom) / vmax
    out = [_open(width, height, title, chart_id), _legend(series, left, 14)]
    base = height - bottom
    for tick in (0.0, 0.5, 1.0):
        y = base - tick * vmax * scale
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(fmt(tick * vmax))}</text>')
    for i, (label, col) in enumerate(zip(labels, values, strict=True)):
        x, y = left + i * slot + slot * 0.15, float(base)
        for j, v in enumerate(col):
            h = max(0.0, (v or 0) * scale)
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(label)}: {escape(series[j])} '
                       f'{escape(fmt(v or 0))}</title></rect>')
        if n <= 16 or i % (n // 8 + 1) == 0:
            out.append(f'<text x="{x + slot * 0.35:.1f}" y="{base + 14}" text-anchor="middle" {FONT}>'
                       f'{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _parse(t: str) -> float:
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def usage_chart(chart: dict, title: str, chart_id: str, fmt: Callable[[float], str], width: int = 760,
                height: int = 230) -> str:
    """Usage line, request now (solid), proposal (dashed), forecast band p50..p95, drift markers."""
    left, right, top, bottom = 70, 10, 26, 26
    times = [_parse(t) for t in chart["times"]]
    band = chart.get("forecast") or {}
    btimes = [_parse(t) for t in band.get("times", [])]
    all_t = times + btimes
    if not all_t:
        return ""
    t0, t1 = min(all_t), max(all_t)
    ys = [v for v in chart["usage"] if v is not None] + [v for v in band.get("p95", []) if v is not None]
    ys += [v for v in (chart.get("current_request"), chart.get("proposed_request")) if v is not None]
    vmax = max(ys, default=0) * 1.08 or 1.0
    sx = (width - left - right) / ((t1 - t0) or 1)
    sy = (height - top - bottom) / vmax
    X = lambda t: left + (t - t0) * sx  # noqa: E731
    Y = lambda v: height - bottom - v * sy  # noqa: E731
    out = [_open(width, height, title, chart_id),
           _legend(["usage (hourly max)", "request now", "recommended", "forecast p50-p95", "drift"], left, 14,
                   ("#0072B2", "#555555", "#009E73", "#E69F00", "#D55E00"))]
    for tick in (0.0, 0.5, 1.0):
        y = Y(tick * vmax / 1.08)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(fmt(tick * vmax / 1.08))}</text>')
    if btimes:
        upper = [f"{X(t):.1f},{Y(v or 0):.1f}" for t, v in zip(btimes, band["p95"], strict=True)]
        lower = [f"{X(t):.1f},{Y(v or 0):.1f}" for t, v in zip(btimes, band["p50"], strict=True)]
        out.append(f'<polygon class="band" points="{" ".join(upper + lower[::-1])}" fill="#E69F00" fill-opacity="0.35">'
                   '<title>forecast p50 to p95, next 7 days</title></polygon>')
    segs, cur = [], []
    for t, v in zip(times, chart["usage"], strict=True):
        if v is None:
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(f"{X(t):.1f},{Y(v):.1f}")
    if cur:
        segs.append(cur)
    for s in segs:
        out.append(f'<polyline class="usage" points="{" ".join(s)}" fill="none" stroke="#0072B2" stroke-width="1.2"/>')
    for key, color, dash in (("current_request", "#555555", ""), ("proposed_request", "#009E73", ' stroke-dasharray="6 4"')):
        v = chart.get(key)
        if v is not None:
            out.append(f'<line class="{key}" x1="{left}" x2="{width - right}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                       f'stroke="{color}" stroke-width="2"{dash}><title>{escape(key.replace("_", " "))}: '
                       f'{escape(fmt(v))}</title></line>')
    for d in chart.get("drift", []):
        x = X(_parse(d["timestamp"]))
        out.append(f'<line class="drift" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="#D55E00" '
                   f'stroke-dasharray="2 2"><title>drift: {escape(d["kind"])} at {escape(d["timestamp"])}</title></line>')
    day0 = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d")
    day1 = datetime.fromtimestamp(t1, UTC).strftime("%Y-%m-%d")
    out.append(f'<text x="{left}" y="{height - 8}" {FONT}>{escape(day0)}</text>'
               f'<text x="{width - right}" y="{height - 8}" text-anchor="end" {FONT}>{escape(day1)}</text></svg>')
    return "".join(out)


def trend_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, chart_id: str,
                fmt: Callable[[float], str], width: int = 760, height: int = 220) -> str:
    """Lines across report runs (monthly cost, waste, savings taken): the week-over-week trend."""
    left, right, top, bottom = 70, 20, 26, 30
    n = len(labels)
    vals = [v for s in series.values() for v in s if v is not None]
    vmax = max(vals, default=0) * 1.1 or 1.0
    sx = (width - left - right) / max(n - 1, 1)
    sy = (height - top - bottom) / vmax
    X = lambda i: left + i * sx  # noqa: E731
    Y = lambda v: height - bottom - v * sy  # noqa: E731
    out = [_open(width, height, title, chart_id), _legend(list(series), left, 14)]
    for tick in (0.0, 0.5, 1.0):
        y = Y(tick * vmax)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(fmt(tick * vmax))}</text>')
    for j, (name, s) in enumerate(series.items()):
        pts = [(X(i), Y(v)) for i, v in enumerate(s) if v is not None]
        color = PALETTE[j % len(PALETTE)]
        if len(pts) > 1:
            out.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" fill="none" '
                       f'stroke="{color}" stroke-width="2"/>')
        for (x, y), v in zip(pts, [v for v in s if v is not None], strict=True):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{escape(name)}: '
                       f'{escape(fmt(v))}</title></circle>')
    for i, label in enumerate(labels):
        out.append(f'<text x="{X(i):.1f}" y="{height - 10}" text-anchor="middle" {FONT}>{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
