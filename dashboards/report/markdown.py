"""report.md: the headline and tables in Markdown, for Slack, a wiki or a PR body."""

from __future__ import annotations

from typing import Any

from dashboards.report.fmt import amount, md, pct, usd, workload

MD_ROWS = 20


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(md(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return out + [""]


def render_markdown(doc: dict[str, Any]) -> str:
    h, c = doc["headline"], doc["cost"]
    lines = [f"# {md(doc['title'])}", "",
             f"Cluster {md(doc['cluster'])}, cost window {md(c['window']['start'])} to {md(c['window']['end'])}; "
             f"generated {md(doc['generated_at'])}.", "",
             f"- **Monthly cost:** {md(usd(h['monthly_cost_usd']))}",
             f"- **Idle cost:** {md(usd(h['idle_monthly_usd']))}/month ({md(pct(h['idle_fraction']))} of node cost)",
             f"- **Requested but unused:** {md(usd(h['waste_monthly_usd']))}/month",
             f"- **Potential saving:** {md(usd(h['potential_saving_monthly_usd']))}/month from "
             f"{h['recommendations']} recommendations", ""]
    lines += _table(["kind", "recommendations", "saving $/month", "mean risk", "max risk"],
                    [[k["kind"], str(k["count"]), usd(k["monthly_saving_usd"]), pct(k["mean_risk"]), pct(k["max_risk"])]
                     for k in h["saving_by_kind"]])
    hist = doc.get("history")
    if hist and hist.get("runs"):
        lines += ["## Trend", ""]
        lines += _table(["run", "monthly cost", "waste", "potential saving", "savings taken"],
                        [[r["run_id"], usd(r["monthly_cost_usd"]), usd(r["waste_monthly_usd"]),
                          usd(r["potential_saving_monthly_usd"]), usd(r.get("taken_saving_monthly_usd"))]
                         for r in hist["runs"]])
        lines += [f"Recommendations taken since earlier reports: {len(hist.get('taken', []))}, "
                  f"{md(usd(hist.get('taken_saving_monthly_usd', 0)))}/month.", ""]
    lines += ["## Cost by namespace ($/month)", ""]
    lines += _table(["namespace", "CPU", "memory", "GPU", "idle", "total"],
                    [[r["namespace"], usd(r["cpu_cost"]), usd(r["memory_cost"]), usd(r["gpu_cost"]), usd(r["idle_cost"]),
                      usd(r["total_cost"])] for r in c["by_namespace"][:MD_ROWS]])
    lines += [f"## Cost by {md(doc.get('team_label', 'team'))} ($/month)", ""]
    lines += _table(["team", "total"], [[r["team"], usd(r["total_cost"])] for r in c["by_team"][:MD_ROWS]])
    lines += ["## Top wasteful workloads", ""]
    lines += _table(["workload", "waste $/month", "unused"],
                    [[workload(r), usd(r["waste_monthly"]), pct(r["waste_fraction"])] for r in c["top_waste"]])
    fleet = doc["gpu"].get("fleet")
    if fleet:
        lines += ["## GPU fleet", "",
                  f"{fleet['devices']} GPUs, {md(pct(fleet['busy_fraction']))} busy, "
                  f"{md(pct(fleet['memory_used_fraction']))} framebuffer used, idle GPU cost "
                  f"{md(usd(fleet['idle_monthly_usd']))}/month.", ""]
        lines += _table(["workload", "container", "change", "set-up", "saving $/month"],
                        [[workload(r), r["container"], r["kind"], r["setup"], usd(r["monthly_saving_usd"])]
                         for r in doc["gpu"]["sharing"]])
    lines += ["## Drift", "", f"{doc['drift']['events']} behaviour changes in {doc['drift']['series']} series.", ""]
    lines += ["## Recommendations", ""]
    lines += _table(["workload", "container", "kind", "resource", "now", "proposed", "saving $/month", "risk", "confidence"],
                    [[workload(r), r["container"], r["kind"], r["resource"], amount(r["resource"], r["current_request"]),
                      amount(r["resource"], r["proposed_request"]), usd(r["monthly_saving_usd"]), pct(r["risk"]),
                      r["confidence_label"]] for r in doc["recommendations"][:MD_ROWS]])
    if len(doc["recommendations"]) > MD_ROWS:
        lines += [f"The first {MD_ROWS} of {len(doc['recommendations'])}; all are in report.json.", ""]
    return "\n".join(lines)
