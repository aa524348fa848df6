"""GPUs: busy % and framebuffer % per device or MIG slice over time (heatmap), idle GPU cost, and the
removal and sharing candidates with the proposed MIG profile or time-slicing set-up."""

from __future__ import annotations

import polars as pl
import streamlit as st
from analyzer import yamlio

from dashboards.app.charts import gpu_heatmap
from dashboards.app.series import gpu_matrix
from dashboards.app.view import filter_in, md, options, results_or_stop, say_missing, usd

GPU_KINDS = ("gpu-remove", "gpu-share", "gpu-optimize")


def fleet(res) -> pl.DataFrame:
    gpus = res.gpus
    monthly = 730.0 / res.headline["hours"] if res.headline.get("hours") else 0.0
    cols = st.columns(4)
    cols[0].metric("GPU devices and slices", f"{gpus.height}")
    cols[1].metric("GPU cost (monthly)", usd(float(gpus["cost"].sum()) * monthly))
    cols[2].metric("Idle GPU cost (monthly)", usd(float(gpus["idle_cost"].fill_null(0).sum()) * monthly),
                   help="Cost x (1 - busy fraction): hours nobody used the device.")
    busy = gpus["busy_fraction"].drop_nulls()
    cols[3].metric("Median busy", f"{busy.median() * 100:.0f}%" if busy.len() else "-")
    models = st.multiselect("GPU model", options(gpus, "model"), key="gpu_model")
    shown = filter_in(gpus, "model", models).with_columns(
        (pl.col("cost") * monthly).alias("cost_monthly"), (pl.col("idle_cost") * monthly).alias("idle_monthly"))
    st.caption(md(f"{shown.height} device(s) · idle {usd(float(shown['idle_monthly'].fill_null(0).sum()))}/month"))
    st.dataframe(shown.select("node", "device", "model", "mig_profile", "assigned", "busy_fraction",
                              "memory_used_fraction", "cost_monthly", "idle_monthly"), hide_index=True,
                 key="gpu_table", column_config={
                     "busy_fraction": st.column_config.ProgressColumn("busy", format="percent", min_value=0, max_value=1),
                     "memory_used_fraction": st.column_config.ProgressColumn("framebuffer", format="percent",
                                                                             min_value=0, max_value=1),
                     "cost_monthly": st.column_config.NumberColumn("cost $/month", format="dollar"),
                     "idle_monthly": st.column_config.NumberColumn("idle $/month", format="dollar")})
    return shown


def heatmap(res, devices: pl.DataFrame) -> None:
    st.subheader("Over time")
    matrix = gpu_matrix(res, res.key)
    if matrix.height == 0:
        if not say_missing(res, "series"):
            st.info("No DCGM samples for these GPUs (busy and framebuffer need the DCGM exporter's metrics).")
        return
    matrix = matrix.filter(pl.col("device").is_in(devices.get_column("device").to_list()))
    which = st.radio("Show", ["busy %", "framebuffer %"], horizontal=True, key="gpu_metric")
    column = "busy_pct" if which == "busy %" else "framebuffer_pct"
    if matrix.get_column(column).is_null().all():
        st.info(f"No {which} samples for these devices.")
        return
    st.altair_chart(gpu_heatmap(matrix.drop_nulls(column), column, which), width="stretch")


def candidates(res) -> None:
    st.subheader("Removal and sharing candidates")
    recs = res.recs.filter(pl.col("kind").is_in(GPU_KINDS))
    if recs.height == 0:
        st.info("No GPU recommendation: every GPU workload uses its devices enough, or was skipped.")
        return
    st.caption(md(f"{recs.height} candidate(s), {usd(float(recs['monthly_saving_usd'].sum()), 2)}/month"))
    st.dataframe(recs.select("namespace", "workload_kind", "workload", "container", "kind", "resource",
                             "current_request_h", "proposed_request_h", "monthly_saving_usd", "confidence_label", "reason"),
                 hide_index=True, column_config={
                     "resource": st.column_config.TextColumn("proposed resource (MIG profile)"),
                     "monthly_saving_usd": st.column_config.NumberColumn("saving $/month", format="dollar")})
    extras = {}
    for rid in recs.get_column("rid").to_list():
        for m in res.recommendations.recommendations[rid].extra_manifests:
            meta = m.get("metadata", {})
            extras[(m.get("kind"), meta.get("namespace"), meta.get("name"))] = m
    for (kind, ns, name), manifest in extras.items():
        with st.expander(md(f"Set-up needed first: {kind} {ns}/{name}")):
            st.code(yamlio.dump(manifest), language="yaml")


def render() -> None:
    res = results_or_stop()
    st.title("GPUs")
    if say_missing(res, "gpu"):
        return
    gpu = res.report.get("gpu") if isinstance(res.report.get("gpu"), dict) else {}
    if res.gpus.height == 0 and gpu.get("by_model"):
        say_missing(res, "series")
        st.dataframe(pl.DataFrame(gpu["by_model"], infer_schema_length=None), hide_index=True, key="gpu_models")
    elif res.gpus.height == 0:
        say_missing(res, "series", "cost") or st.info("No GPU device was found in this snapshot's window.")
    else:
        devices = fleet(res)
        heatmap(res, devices)
    candidates(res)


if __name__ == "__main__":
    render()
