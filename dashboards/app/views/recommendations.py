"""Recommendations: every record with filters (kind, namespace, minimum saving, confidence, memory
policy), the total saving of the selection, and the selected patches as a zip in the CLI's layout.

Selection: the rows ticked in the table, or every filtered row when none is ticked.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards.app.patch_zip import patches_zip, selected_set
from dashboards.app.results import Results
from dashboards.app.view import filter_in, md, options, results_or_stop, usd

CONFIDENCE = ["high", "medium", "low"]


def filtered(res: Results) -> pl.DataFrame:
    recs = res.recs
    c1, c2, c3 = st.columns(3)
    kinds = c1.multiselect("Kind", options(recs, "kind"), key="rec_kind")
    namespaces = c2.multiselect("Namespace", options(recs, "namespace"), key="rec_namespace")
    teams = c3.multiselect(f"Team ({res.team_label} label)", options(recs, "team"), key="rec_team")
    c4, c5, c6 = st.columns(3)
    min_saving = c4.number_input("Minimum saving ($/month)", value=None, step=5.0, key="rec_min_saving", placeholder="any",
                                 help="Negative records raise memory that was too low; set below 0 to include them.")
    confidence = c5.multiselect("Confidence", CONFIDENCE, key="rec_confidence")
    policies = c6.multiselect("Memory policy", options(recs, "memory_policy"), key="rec_memory_policy",
                              help="guaranteed: memory limit = request; burstable: limit above request; "
                                   "n/a: not a memory record.")
    out = filter_in(filter_in(filter_in(recs, "kind", kinds), "namespace", namespaces), "team", teams)
    out = filter_in(filter_in(out, "confidence_label", confidence), "memory_policy", policies)
    return out if min_saving is None else out.filter(pl.col("monthly_saving_usd") >= min_saving)


def render() -> None:
    res = results_or_stop()
    st.title("Recommendations")
    if res.recs.height == 0:
        st.info(res.missing.get("usage") or res.missing.get("requests")
                or "No recommendation for this snapshot: every workload is within the policy, or was skipped.")
        return
    frame = filtered(res)
    event = st.dataframe(
        frame.select("namespace", "workload_kind", "workload", "container", "kind", "resource", "current_request_h",
                     "proposed_request_h", "current_limit_h", "proposed_limit_h", "monthly_saving_usd", "risk",
                     "confidence_label", "memory_policy", "team", "reason", "current_request", "proposed_request"),
        hide_index=True, on_select="rerun", selection_mode="multi-row", key="rec_table",
        column_config={"monthly_saving_usd": st.column_config.NumberColumn("saving $/month", format="dollar"),
                       "risk": st.column_config.NumberColumn("risk", format="percent"),
                       "confidence_label": st.column_config.TextColumn("confidence"),
                       **{f"{c}_h": st.column_config.TextColumn(c.replace("_", " ")) for c in (
                           "current_request", "proposed_request", "current_limit", "proposed_limit")},
                       "current_request": st.column_config.NumberColumn("current request (base units)"),
                       "proposed_request": st.column_config.NumberColumn("proposed request (base units)")})
    ticked = [i for i in (event.selection.rows if event is not None else []) if i < frame.height]
    chosen = frame[ticked] if ticked else frame
    rids = chosen.get_column("rid").to_list()
    workloads = chosen.select("namespace", "workload_kind", "workload").n_unique() if chosen.height else 0
    scope = f"{len(ticked)} ticked row(s)" if ticked else f"all {frame.height} filtered row(s)"
    left, right = st.columns([2, 1])
    left.metric("Saving of the selection", f"{usd(float(chosen['monthly_saving_usd'].sum()), 2)}/month",
                help="Net: raising memory that was too low counts negative.")
    left.caption(md(f"Selection: {scope}, {workloads} workload(s) of {res.recs.height} record(s). "
                    "Tick rows to narrow it."))
    if rids:
        # Built when clicked (deferred): writing a thousand patches must not slow every filter change.
        right.download_button(
            f"Download {workloads} patch(es) (.zip)", data=lambda: patches_zip(selected_set(res.recommendations, rids)),
            file_name="kubetune-patches.zip", mime="application/zip", key="rec_download", on_click="ignore",
            help="The layout `kubetune recommend --patches` writes: one patch per workload, kustomization.yaml, "
                 "cluster/ extras, recommendations.json. Add your base under `resources:` and review before applying.")
    else:
        right.info("Nothing selected: no patch to download.")
    for note in res.recommendations.notes:
        st.caption(md(note))


if __name__ == "__main__":
    render()
