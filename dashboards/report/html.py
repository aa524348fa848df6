"""report.html: one self-contained page (inline CSS and SVG, no scripts, no remote assets).

Rendered from the report document only (``figures.build_document``), so the page, the Markdown and
report.json always agree. Every value that comes from the cluster is escaped.
"""

from __future__ import annotations

from html import escape as esc
from typing import Any

from dashboards.report import svg
from dashboards.report.fmt import amount, pct, usd, workload

RECOMMENDATION_ROWS = 100

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
.meta{color:#57606a;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin-top:.6rem}
th,td{border-bottom:1px solid #eaeef2;padding:.3rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.l,th.l{text-align:left}
th{background:#f6f8fa;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin-top:1rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;min-width:10rem}
td.l:last-child{font-size:.8rem;color:#3d444d}.card b{display:block;font-size:1.5rem}.card small{color:#57606a}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:.5rem 1rem;margin-top:.6rem}
svg.chart{display:block;margin:.6rem 0}
"""


def _table(table_id: str, headers: list[str], rows: list[list[str]], left: int = 1, last_text: bool = False) -> str:
    """A table whose first ``left`` columns (and the last, with ``last_text``) are text, the rest numbers."""
    def cls(i: int) -> str:
        return " class=l" if i < left or (last_text and i == len(headers) - 1) else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cards(doc: dict[str, Any]) -> str:
    h = doc["headline"]
    risk = max((k["max_risk"] or 0 for k in h["saving_by_kind"]), default=0)
    cards = [
        ("monthly-cost", "monthly cost", usd(h["monthly_cost_usd"]), f"over the last {doc['cost']['window']['hours']:.0f} h, per month"),
        ("idle-cost", "idle cost", usd(h["idle_monthly_usd"]), f"{pct(h['idle_fraction'])} of node cost, per month"),
        ("waste", "requested, unused", usd(h["waste_monthly_usd"]), "per month"),
        ("potential-saving", "potential saving", usd(h["potential_saving_monthly_usd"]),
         f"{h['recommendations']} recommendations, max risk {pct(risk)}"),
    ]
    return '<div class="cards" id="headline">' + "".join(
        f'<div class="card" id="{cid}"><span>{esc(k)}</span><b>{esc(v)}</b><small>{esc(extra)}</small></div>'
        for cid, k, v, extra in cards) + "</div>"


def _by_kind(doc: dict[str, Any]) -> str:
    rows = [[k["kind"], str(k["count"]), usd(k["monthly_saving_usd"]), pct(k["mean_risk"]), pct(k["max_risk"])]
            for k in doc["headline"]["saving_by_kind"]]
    return _table("saving-by-kind", ["kind", "recommendations", "saving $/month", "mean risk", "max risk"], rows)


def _history(doc: dict[str, Any]) -> str:
    hist = doc.get("history")
    if not hist or not hist.get("runs"):
        return ""
    runs = hist["runs"]
    labels = [r["run_id"][:8] for r in runs]
    chart = svg.trend_chart(labels, {
        "monthly cost": [r["monthly_cost_usd"] for r in runs],
        "waste": [r["waste_monthly_usd"] for r in runs],
        "potential saving": [r["potential_saving_monthly_usd"] for r in runs],
        "savings taken": [r.get("taken_saving_monthly_usd") for r in runs],
    }, "Week over week: monthly cost, waste and savings", "chart-trend", usd)
    rows = [[r["run_id"], usd(r["monthly_cost_usd"]), usd(r["idle_monthly_usd"]), usd(r["waste_monthly_usd"]),
             usd(r["potential_saving_monthly_usd"]), usd(r.get("taken_saving_monthly_usd"))] for r in runs]
    taken = hist.get("taken", [])
    trows = [[workload(t), t["container"], t["resource"], amount(t["resource"], t["proposed_request"]),
              amount(t["resource"], t["request_now"]), usd(t["monthly_saving_usd"]), t["proposed_in"]] for t in taken]
    return (f'<h2 id="trend">Trend since earlier reports</h2>{chart}'
            + _table("trend-table", ["run", "monthly cost", "idle", "waste", "potential saving", "savings taken"], rows)
            + f'<h3>Recommendations taken ({len(taken)}, {esc(usd(hist.get("taken_saving_monthly_usd", 0)))}/month)</h3>'
            + '<p class="meta">An earlier recommendation counts as taken when the request has since moved to within '
              '10% of it.</p>'
            + _table("taken", ["workload", "container", "resource", "recommended", "request now", "saving $/month",
                               "recommended in"], trows, left=3))


def _cost(doc: dict[str, Any]) -> str:
    c = doc["cost"]
    daily = svg.stacked_columns([d["day"][5:10] for d in c["daily"]],
                                [[d["allocated_usd"], d["idle_usd"]] for d in c["daily"]],
                                ["allocated", "idle"], "Cluster cost per day: allocated and idle", "chart-daily", usd)
    parts = ["cpu_cost", "memory_cost", "gpu_cost", "idle_cost"]
    names = ["CPU", "memory", "GPU", "idle"]
    ns = svg.stacked_bars([(r["namespace"], [r[p] for p in parts]) for r in c["by_namespace"]], names,
                          "Cost by namespace, $/month", "chart-namespaces", usd)
    team = svg.stacked_bars([(r["team"], [r[p] for p in parts]) for r in c["by_team"]], names,
                            f"Cost by {doc.get('team_label', 'team')} label, $/month", "chart-teams", usd)
    waste = _table("top-waste", ["workload", "waste $/month", "CPU", "memory", "GPU", "cost $/month", "unused"],
                   [[workload(r), usd(r["waste_monthly"]), usd(r["cpu_waste_monthly"]), usd(r["memory_waste_monthly"]),
                     usd(r["gpu_waste_monthly"]), usd(r["cost_monthly"]), pct(r["waste_fraction"])] for r in c["top_waste"]])
    return (f'<h2 id="cost">Where the money goes</h2><p class="meta">Window {esc(c["window"]["start"])} to '
            f'{esc(c["window"]["end"])}; amounts scaled to a month (730 h). Prices: {esc("; ".join(c["prices"]))}.</p>'
            f'{daily}<h3>By namespace</h3>{ns}<h3>By team</h3>{team}'
            f'<h2 id="waste">Top wasteful workloads</h2><p class="meta">Requested but unused capacity, $/month.</p>{waste}')


def _charts(doc: dict[str, Any]) -> str:
    out = []
    for i, ch in enumerate(doc["workload_charts"]):
        res = ch["resource"]
        title = (f"{workload(ch)} container {ch['container']}: {res} request {amount(res, ch['current_request'])} -> "
                 f"{amount(res, ch['proposed_request'])}, {usd(ch['monthly_saving_usd'])}/month")
        out.append(f"<h3>{esc(title)}</h3>" + svg.usage_chart(ch, title, f"chart-workload-{i}",
                                                               lambda v, r=res: amount(r, v)))
    if not out:
        return ""
    return ('<h2 id="requested-vs-used">Requested vs used vs recommended</h2><p class="meta">Hourly peak per replica, '
            'the request today, the recommendation, the 7-day forecast (p50 to p95) and detected drift.</p>'
            + "".join(out))


def _gpu(doc: dict[str, Any]) -> str:
    g = doc["gpu"]
    fleet = g.get("fleet")
    if not fleet:
        return '<h2 id="gpu">GPU fleet</h2><p class="meta">No GPUs in this snapshot.</p>'
    cards = [("GPUs", str(fleet["devices"])), ("busy", pct(fleet["busy_fraction"])),
             ("framebuffer used", pct(fleet["memory_used_fraction"])), ("idle GPU cost", usd(fleet["idle_monthly_usd"]))]
    card_html = '<div class="cards" id="gpu-cards">' + "".join(
        f'<div class="card"><span>{esc(k)}</span><b>{esc(v)}</b></div>' for k, v in cards) + "</div>"
    models = _table("gpu-models", ["model", "devices", "busy", "framebuffer", "idle $/month", "cost $/month"],
                    [[r["model"] or "unknown", str(r["devices"]), pct(r["busy_fraction"]), pct(r["memory_used_fraction"]),
                      usd(r["idle_monthly_usd"]), usd(r["cost_monthly_usd"])] for r in g["by_model"]])
    share = _table("gpu-sharing", ["workload", "container", "change", "set-up", "saving $/month", "why"],
                   [[workload(r), r["container"], r["kind"], r["setup"], usd(r["monthly_saving_usd"]), r["reason"]]
                    for r in g["sharing"]], left=4, last_text=True)
    packing = g.get("packing") or {}
    note = (f'<p class="meta">Packing estimate: {packing["gpus_needed_now"]} GPUs in use now, about '
            f'{packing["gpus_needed_after"]} after the changes (upper estimate of what could be released: '
            f'{packing["gpus_released"]}).</p>') if packing.get("gpus_released") is not None else ""
    return f'<h2 id="gpu">GPU fleet</h2>{card_html}{models}<h3>Sharing and removal candidates</h3>{share}{note}'


def _drift(doc: dict[str, Any]) -> str:
    d = doc["drift"]
    rows = [[workload(r), r["container"], r["resource"], r["timestamp"], r["kind"], amount(r["resource"], r["before"]),
             amount(r["resource"], r["after"])] for r in d["recent"]]
    return (f'<h2 id="drift">Drift events</h2><p class="meta">{d["events"]} behaviour changes in {d["series"]} series; '
            f'the most recent {len(rows)}. Recommendations use the history after the last one.</p>'
            + _table("drift-events", ["workload", "container", "resource", "at", "kind", "before", "after"], rows, left=3))


def _recommendations(doc: dict[str, Any]) -> str:
    recs = doc["recommendations"]
    rows = [[workload(r), r["container"] or "(pod)", r["kind"], r["resource"], amount(r["resource"], r["current_request"]),
             amount(r["resource"], r["proposed_request"]), usd(r["monthly_saving_usd"]), pct(r["risk"]),
             r["confidence_label"], r["reason"].split(";")[0]] for r in recs[:RECOMMENDATION_ROWS]]
    more = (f'<p class="meta">The first {RECOMMENDATION_ROWS} of {len(recs)}; all are in report.json and '
            'patches/recommendations.json.</p>') if len(recs) > RECOMMENDATION_ROWS else ""
    return (f'<h2 id="recs">Recommendations</h2><p class="meta">{len(recs)} recommendations, biggest saving first; '
            f'{doc["skipped"]} containers skipped (reasons in patches/recommendations.json). Patches: patches/.</p>'
            + _table("recommendations", ["workload", "container", "kind", "resource", "now", "proposed", "saving $/month",
                                         "risk", "confidence", "why"], rows, left=4, last_text=True) + more)


def _summary(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    rows = [[r["resource"].upper(), amount(r["resource"], r["capacity"]), amount(r["resource"], r["requested"]),
             amount(r["resource"], r["used_avg"]), amount(r["resource"], r["used_p95"]), pct(r["utilization"])]
            for r in s["resources"]]
    return (f'<h2 id="cluster">Cluster</h2><p class="meta">{s["nodes"]} nodes ({s["spot_nodes"]} spot, {s["gpu_nodes"]} GPU), '
            f'{s["namespaces"]} namespaces, {s["workloads"]} workloads, {s["pods"]} pods, {s["containers"]} containers.</p>'
            + _table("resources", ["resource", "allocatable", "requested", "used (avg)", "used (p95)", "utilization"], rows))


def render_html(doc: dict[str, Any]) -> str:
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in doc["notes"][:10])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(doc["title"])}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{esc(doc["title"])}</h1>
<p class="meta">Cluster {esc(doc["cluster"])}; snapshot {esc(doc["snapshot"]["start"])} to {esc(doc["snapshot"]["end"])};
read from {esc(doc["source"])}; generated {esc(doc["generated_at"])}.</p>
{_cards(doc)}
{_by_kind(doc)}
{notes}
{_history(doc)}
{_cost(doc)}
{_charts(doc)}
{_gpu(doc)}
{_drift(doc)}
{_recommendations(doc)}
{_summary(doc)}
<p class="meta">Generated by kubetune. Machine-readable: report.json; patches: patches/.</p>
</body></html>
"""
