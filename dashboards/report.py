"""Static report: ``report.html`` and ``report.json`` written atomically into one directory.

The report is what the CronJob leaves behind each run, so it is self-contained (inline CSS, no
scripts or remote assets) and both files appear together or not at all. Sections grow as the
analysis grows; today: the cluster summary (size, requested vs used CPU, memory, GPU).
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from analyzer.errors import KubetuneError
from analyzer.summary import ClusterSummary, ResourceSummary
from analyzer.units import human_bytes

REPORT_FORMAT = "kubetune-report"
REPORT_VERSION = 1


def report_json(summary: ClusterSummary) -> dict:
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "summary": summary.to_json(),
    }


def fmt_amount(resource: str, value: float | None) -> str:
    if value is None:
        return "-"
    if resource == "memory":
        return human_bytes(value)
    if resource == "gpu":
        return f"{value:.2f} GPU"
    return f"{value:.2f} cores"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _resource_row(r: ResourceSummary) -> str:
    cells = [
        r.resource.upper(),
        fmt_amount(r.resource, r.capacity),
        fmt_amount(r.resource, r.requested),
        fmt_amount(r.resource, r.used_avg),
        fmt_amount(r.resource, r.used_p95),
        fmt_amount(r.resource, r.used_peak),
        _pct(r.utilization),
        str(r.containers_without_request) if r.resource != "gpu" else "-",
    ]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.meta{color:#57606a;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.92rem;margin-top:.6rem}
th,td{border-bottom:1px solid #eaeef2;padding:.35rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f6f8fa;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin-top:1rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.4rem}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:.5rem 1rem;margin-top:1rem}
"""


def report_html(summary: ClusterSummary) -> str:
    s = summary
    esc = html.escape
    cards = [
        ("nodes", f"{s.nodes}", f"{s.spot_nodes} spot, {s.gpu_nodes} GPU"),
        ("namespaces", f"{s.namespaces}", ""),
        ("workloads", f"{s.workloads}", ""),
        ("pods", f"{s.pods}", f"{s.containers} containers"),
    ]
    card_html = "".join(
        f'<div class="card"><span>{esc(k)}</span><b>{esc(v)}</b><small>{esc(extra)}</small></div>'
        for k, v, extra in cards
    )
    rows = "".join(_resource_row(r) for r in s.resources)
    ns_rows = ""
    if s.by_namespace is not None:
        for r in s.by_namespace.to_dicts():
            cells = [
                r["namespace"],
                str(r["workloads"] or 0),
                fmt_amount("cpu", r["cpu_requested"]),
                fmt_amount("cpu", r["cpu_used"]),
                fmt_amount("memory", r["memory_requested"]),
                fmt_amount("memory", r["memory_used"]),
            ]
            ns_rows += "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"
    notes = ""
    if s.absent:
        notes += f'<p class="note">Not in this snapshot: {esc(", ".join(s.absent))}.</p>'
    for w in s.warnings:
        notes += f'<p class="note">{esc(w)}</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kubetune report: {esc(s.cluster)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>kubetune report: {esc(s.cluster)}</h1>
<p class="meta">Window {esc(s.start)} to {esc(s.end)}, step {s.step_seconds}s. Source: {esc(s.source)}.</p>
{notes}
<div class="cards">{card_html}</div>
<h2>Requested vs used</h2>
<p class="meta">Averages over the window; requests weighted by the time each container existed.
Utilization = average used / requested.</p>
<table id="resources"><thead><tr><th>resource</th><th>allocatable</th><th>requested</th><th>used (avg)</th>
<th>used (p95)</th><th>used (peak)</th><th>utilization</th><th>containers without request</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>By namespace</h2>
<table id="namespaces"><thead><tr><th>namespace</th><th>workloads</th><th>CPU requested</th><th>CPU used</th>
<th>memory requested</th><th>memory used</th></tr></thead><tbody>{ns_rows}</tbody></table>
<p class="meta">Generated by kubetune.</p>
</body></html>
"""


def write_report(summary: ClusterSummary, out_dir: Path) -> dict[str, Path]:
    """Write report.html and report.json; both are renamed into place only once both are written."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KubetuneError(f"cannot create the report directory {out_dir} ({exc.strerror}).") from None
    if not out_dir.is_dir():
        raise KubetuneError(f"{out_dir} is not a directory.")
    contents = {
        "report.json": json.dumps(report_json(summary), indent=2, default=str) + "\n",
        "report.html": report_html(summary),
    }
    temps: dict[str, Path] = {}
    try:
        for name, text in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            temps[name] = Path(tmp)
        for name, tmp in temps.items():
            os.replace(tmp, out_dir / name)
    except OSError as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise KubetuneError(f"cannot write the report into {out_dir} ({exc.strerror}).") from None
    return {name: out_dir / name for name in contents}
