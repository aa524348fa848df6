"""Workloads: a sortable, filterable table; selecting one shows its usage vs request vs limit over time
with the forecast band and drift markers, its recommendations with evidence, and the YAML patch."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards.app.charts import usage_chart
from dashboards.app.patch_zip import patch_files, selected_set
from dashboards.app.results import WORKLOAD, Results
from dashboards.app.series import workload_series
from dashboards.app.view import filter_in, md, options, results_or_stop, say_missing, usd
from recommenders.patches import human_value

UNITS = {"cpu": "cores", "memory": "bytes"}


def filtered(res: Results) -> pl.DataFrame:
    cols = st.columns([1, 1, 1, 2])
    ns = cols[0].multiselect("Namespace", options(res.workloads, "namespace"), key="wl_namespace")
    team = cols[1].multiselect(f"Team ({res.team_label} label)", options(res.workloads, "team"), key="wl_team")
    kind = cols[2].multiselect("Kind", options(res.workloads, "workload_kind"), key="wl_kind")
    text = cols[3].text_input("Name contains", key="wl_search")
    frame = filter_in(filter_in(filter_in(res.workloads, "namespace", ns), "team", team), "workload_kind", kind)
    if text:
        frame = frame.filter(pl.col("workload").str.contains(text, literal=True))
    return frame


def table(frame: pl.DataFrame) -> int | None:
    money = {c: st.column_config.NumberColumn(label, format="dollar")
             for c, label in (("cost_monthly", "cost $/month"), ("waste_monthly", "waste $/month"),
                              ("saving_monthly", "saving $/month"))}
    ratios = {c: st.column_config.ProgressColumn(c.replace("_", " "), format="percent", min_value=0, max_value=1)
              for c in ("cpu_efficiency", "memory_efficiency", "total_efficiency")}
    shown = [c for c in (*WORKLOAD, "team", "cost_monthly", "waste_monthly", "total_efficiency", "cpu_efficiency",
                         "memory_efficiency", "saving_monthly", "recommendation") if c in frame.columns]
    event = st.dataframe(frame.select(shown), hide_index=True, on_select="rerun", selection_mode="single-row",
                         key="wl_table", column_config={**money, **ratios})
    rows = event.selection.rows if event is not None else []
    return rows[0] if rows else None


def detail(res: Results, row: dict) -> None:
    ns, kind, name = row["namespace"], row["workload_kind"], row["workload"]
    st.subheader(f"{md(kind)} {md(ns)}/{md(name)}")
    series = workload_series(res, res.key, ns, kind, name)
    usage = series["usage"]
    if usage.height == 0:
        if not say_missing(res, "series", "usage"):
            st.info("No CPU or memory samples for this workload in the snapshot.")
    else:
        pairs = usage.select("container", "resource").unique().sort("container", "resource")
        labels = [f"{c} · {r}" for c, r in pairs.iter_rows()]
        pick = st.selectbox("Container and resource", labels, key="wl_series")
        container, resource = pairs.row(labels.index(pick))
        one = lambda f: f.filter((pl.col("container") == container) & (pl.col("resource") == resource)) \
            if f.height else f  # noqa: E731
        setting = one(series["settings"])
        request = setting.item(0, "request") if setting.height else None
        limit = setting.item(0, "limit") if setting.height else None
        st.altair_chart(usage_chart(one(usage), request, limit, one(series["forecast"]), one(series["drift"]),
                                    UNITS.get(resource, resource)), width="stretch")
        st.caption(md(f"request {human_value(resource, request)}, limit {human_value(resource, limit)}; orange band: "
                      "forecast P50 to P95 for the next 7 days, dashed: forecast peak; purple: detected drift."))
    rids = res.recs.filter((pl.col("namespace") == ns) & (pl.col("workload_kind") == kind)
                           & (pl.col("workload") == name)).get_column("rid").to_list()
    if not rids:
        st.info("No recommendation for this workload: it is sized within the policy, or was skipped "
                "(`kubetune recommend --skipped` says why).")
        return
    total = sum(res.recommendations.recommendations[i].monthly_saving_usd for i in rids)
    st.markdown(f"**Recommendations** {md(f'({usd(total, 2)}/month)')}")
    for i in rids:
        r = res.recommendations.recommendations[i]
        with st.expander(md(f"{r.kind} {r.resource} of {r.target.container or 'the pod'}: "
                         f"{human_value(r.resource, r.current_request)} → {human_value(r.resource, r.proposed_request)}, "
                         f"{usd(r.monthly_saving_usd, 2)}/month, confidence {r.confidence_label}")):
            st.text(r.evidence.reason)
            st.json(r.to_dict()["evidence"], expanded=False)
    files = patch_files(selected_set(res.recommendations, rids))
    for fname, content in files.items():
        # the workload's patch (namespaces/NS/KIND--NAME.yaml in the component layout), not the
        # kustomization files or cluster/ extras
        if fname.endswith(".yaml") and fname.rsplit("/", 1)[-1] != "kustomization.yaml" \
                and not fname.startswith("cluster/"):
            st.code(content.decode(), language="yaml")


def render() -> None:
    res = results_or_stop()
    st.title("Workloads")
    say_missing(res, "requests")
    frame = filtered(res)
    st.caption(md(f"{frame.height} of {res.workloads.height} workloads · cost {usd(frame['cost_monthly'].sum() if 'cost_monthly' in frame.columns else None)}/month"
               f" · waste {usd(frame['waste_monthly'].sum() if 'waste_monthly' in frame.columns else None)}/month"
               f" · saving {usd(frame['saving_monthly'].sum())}/month"))
    picked = table(frame)
    if picked is None or picked >= frame.height:
        st.caption("Select a row to see its usage, forecast, recommendation and patch.")
        return
    detail(res, frame.row(picked, named=True))


if __name__ == "__main__":
    render()
