"""The pull-request title and Markdown body: what changes, what it saves, why, and how to undo it.

Written for a reviewer who did not run kubetune: a savings summary first, then one table per
workload (current -> proposed, $/month, risk, confidence) with its evidence folded below, the
behaviour changes (drift) the recommendations saw, what was not changed and why, and how to roll
back. Names come from the cluster and are untrusted, so every one is Markdown-escaped. The body
holds no timestamp of its own, so the same recommendations give the same body (no needless update).
"""

from __future__ import annotations

import re
from collections import defaultdict

from recommenders.gitops.plan import Plan, WorkloadChange
from recommenders.patches import human_value
from recommenders.record import Recommendation

MARKER = "<!-- kubetune:pr -->"
MAX_BODY = 60_000  # GitHub refuses bodies over 65,536 characters
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def md(text: object) -> str:
    """Untrusted text as inert Markdown on one line (no links, tags, tables or mentions)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split())).replace("@", "&#64;")


def usd(v: float) -> str:
    return f"${v:,.2f}" if v >= 0 else f"-${-v:,.2f}"


def title(plan: Plan) -> str:
    changes = plan.applied
    total = sum(c.saving for c in changes)
    what = f"{len(changes)} workload{'s' if len(changes) != 1 else ''}"
    return (f"kubetune: right-size {what}, saving {usd(total)}/month" if total >= 0 else
            f"kubetune: resize {what} ({usd(-total)}/month more, to stop OOM kills)")


def _values(r: Recommendation) -> tuple[str, str, str, str]:
    if r.kind == "spot":
        return "on-demand", "spot", "", ""
    f = lambda v: md(human_value(r.resource, v))  # noqa: E731
    return f(r.current_request), f(r.proposed_request), f(r.current_limit), f(r.proposed_limit)


def _evidence(r: Recommendation) -> list[str]:
    ev = r.evidence
    who = md(r.target.container or "pod")
    lines = [f"- **{who} {md(r.resource)}**: {md(ev.reason)}"]
    if ev.history_start and ev.history_end:
        lines.append(f"  - history {ev.history_start:%Y-%m-%d %H:%M} to {ev.history_end:%Y-%m-%d %H:%M} UTC "
                     f"({ev.history_hours:.0f} h)")
    if ev.observed:
        shown = ", ".join(f"{md(k)} {md(human_value(r.resource, v)) if r.resource in ('cpu', 'memory') else f'{v:.3g}'}"
                          for k, v in ev.observed.items())
        lines.append(f"  - observed: {shown}")
    if ev.forecast:
        shown = ", ".join(f"{md(k)} {md(human_value(r.resource, v)) if r.resource in ('cpu', 'memory') else f'{v:.3g}'}"
                          for k, v in ev.forecast.items())
        lines.append(f"  - forecast: {shown}")
    if ev.quantile_used:
        lines.append(f"  - set by: {md(ev.quantile_used)}" + (f", margin {ev.margin:.0%}" if ev.margin else ""))
    if ev.ooms:
        lines.append(f"  - OOM kills seen: {ev.ooms}")
    if ev.hpa:
        lines.append(f"  - scaled by HPA {md(ev.hpa)}")
    lines += [f"  - {md(n)}" for n in ev.notes]
    return lines


def _workload(c: WorkloadChange) -> list[str]:
    ns, kind, name = c.key
    loc = c.location
    out = [f"### {md(kind)} {md(ns)}/{md(name)}: {usd(c.saving)}/month", ""]
    if loc is not None:
        out.append(f"Changed in: {', '.join('`' + f.replace('`', '') + '`' for f in c.files)}"
                   + (f" ({md('a patch in this cluster overlay; the shared base ' + loc.file + ' is unchanged')})"
                      if loc.shared else ""))
        out.append("")
    out += ["| Container | Resource | Request now | Request proposed | Limit now | Limit proposed | $/month | Risk "
            "| Confidence |", "|---|---|---|---|---|---|---:|---:|---|"]
    for r in sorted(c.recs, key=lambda r: (r.target.container, r.resource)):
        cur, prop, lcur, lprop = _values(r)
        out.append(f"| {md(r.target.container or 'pod')} | {md(r.resource)} | {cur} | {prop} | {lcur} | {lprop} | "
                   f"{usd(r.monthly_saving_usd)} | {r.risk:.1%} | {r.confidence_label} ({r.confidence:.2f}) |")
    out += ["", "<details><summary>Evidence</summary>", ""]
    for r in sorted(c.recs, key=lambda r: (r.target.container, r.resource)):
        out += _evidence(r)
    out += ["", "</details>", ""]
    return out


def _drift(plan: Plan) -> list[str]:
    lines = []
    for c in plan.applied:
        for r in c.recs:
            ev = r.evidence
            if ev.post_drift_start or ev.drift_kind:
                when = f" at {ev.post_drift_start:%Y-%m-%d %H:%M} UTC" if ev.post_drift_start else ""
                lines.append(f"- {md(c.key[1])} {md(c.key[0])}/{md(c.key[2])} {md(r.target.container or 'pod')} "
                             f"{md(r.resource)}: behaviour changed ({md(ev.drift_kind or 'change point')}){when}; only "
                             "the history after it was used.")
    return lines or ["- No behaviour change (drift) in the history these recommendations used."]


def render_body(plan: Plan, *, source: str, branch: str, base: str) -> str:
    """The Markdown body for ``plan`` (after ``apply_plan``)."""
    changes = plan.applied
    total = sum(c.saving for c in changes)
    per_kind: dict[str, float] = defaultdict(float)
    for c in changes:
        for r in c.recs:
            per_kind[r.kind] += r.monthly_saving_usd
    files = sorted({f for c in changes for f in c.files})
    bases = {r.saving_basis for c in changes for r in c.recs}
    out = [MARKER, "## Summary", "",
           f"kubetune proposes changes to **{len(changes)} workload(s)** in {len(files)} file(s): an estimated "
           f"**{usd(total)}/month** net ({md(', '.join(sorted(bases)) or 'no prices')}).", ""]
    out += [f"- {md(k)}: {usd(v)}/month" for k, v in sorted(per_kind.items())]
    out += ["", "Only resource requests/limits (and, for spot, pod placement) change; every edit was checked by "
            "rendering the manifests again (`kubectl kustomize` for overlays).", "", "## Changes", ""]
    body_so_far = "\n".join(out)
    shown = 0
    for c in changes:
        section = "\n".join(_workload(c))
        if len(body_so_far) + len(section) > MAX_BODY - 4000:
            break
        body_so_far += "\n" + section
        shown += 1
    out = [body_so_far]
    if shown < len(changes):
        out.append(f"\n_{len(changes) - shown} more workload(s) are changed in this branch but not listed here "
                   "(the description is limited in size); see the diff._\n")
    out += ["## Drift notes", "", *_drift(plan), ""]
    if plan.not_applied or plan.below_min:
        out += ["## Not changed", ""]
        out += [f"- {md(c.key[1])} {md(c.key[0])}/{md(c.key[2])} ({usd(c.saving)}/month): {md(c.problem)}"
                for c in plan.not_applied[:200]]
        if plan.below_min:
            out.append(f"- {len(plan.below_min)} workload(s) below the --min-saving threshold "
                       f"({usd(sum(c.saving for c in plan.below_min))}/month together).")
        out.append("")
    out += ["## Risk", "",
            "Risk is the estimated share of hours a container would want more CPU than the proposed request, or the "
            "chance its memory peak exceeds the proposal; memory is never set below the observed peak. Roll out to one "
            "cluster first and watch throttling and OOM kills.", "",
            "## Rolling back", "",
            f"Revert this pull request (`git revert` its merge commit on `{md(base)}`): your GitOps controller "
            "reconciles the previous values from the table above. Patch files named `kubetune-*.yaml` in an overlay "
            "can also simply be deleted together with their `patches:` entry.", "",
            "---",
            f"_Generated by `kubetune pr` from {md(source)} on branch `{md(branch)}`. Running it again with the same "
            "recommendations changes nothing; new recommendations update this branch and this description._"]
    return "\n".join(out) + "\n"
