"""Overview: monthly cost, idle, efficiency, potential saving by kind; cost over time by namespace or
team (stacked) over a chosen window; the trend across past reports when a history directory is given."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import streamlit as st

from dashboards.app.data import Config, stamp, history_dir, history_trend
from dashboards.app.results import Results
from dashboards.app.view import md, pct, results_or_stop, say_missing, usd

WINDOWS = {"Last 24 hours": 1, "Last 7 days": 7, "Whole snapshot": None}


def headline(res: Results) -> None:
    h = res.headline
    cols = st.columns(4)
    cols[0].metric("Monthly cost", usd(h.get("cost_monthly")), help="Node cost over the window, at a 730-hour month.")
    cols[1].metric("Idle (monthly)", usd(h.get("idle_monthly")),
                   delta=f"{pct(h.get('idle_fraction'))} of cost" if h.get("idle_fraction") is not None else None,
                   delta_color="off", help="Node capacity no container was allocated.")
    cols[2].metric("Efficiency", pct(h.get("efficiency")), help="Used / allocated, cost-weighted over CPU, memory, GPU.")
    cols[3].metric("Potential saving", f"{usd(h.get('potential_saving_monthly'))}/month",
                   delta=f"net {usd(h.get('saving_monthly'))}/month", delta_color="off",
                   help="What the recommendations that save money would save; net: after the ones that raise "
                        "memory that was too low (they cost money, to make workloads safe).")
    by_kind = h.get("saving_by_kind") or {}
    if by_kind:
        frame = pl.DataFrame({"kind": list(by_kind), "saving_monthly": [float(v) for v in by_kind.values()]})
        counts = res.recs.group_by("kind").agg(pl.len().alias("recommendations"),
                                               pl.col("risk").max().alias("highest_risk"))
        st.dataframe(frame.join(counts, on="kind", how="left").sort("saving_monthly", descending=True),
                     hide_index=True, column_config={
                         "saving_monthly": st.column_config.NumberColumn("saving $/month", format="dollar"),
                         "highest_risk": st.column_config.NumberColumn("highest risk", format="percent")})


def saved_totals(res: Results) -> None:
    """A saved run without its snapshot: the report's daily totals and its cost by namespace or team."""
    daily = res.daily_totals
    if daily is not None and daily.height:
        long = daily.select(pl.col("day").str.slice(0, 10), "allocated_usd", "idle_usd").unpivot(
            index="day", variable_name="part", value_name="usd")
        st.bar_chart(long, x="day", y="usd", color="part", stack=True, x_label="day (UTC)", y_label="USD per day")
    by = st.radio("Cost by", ["namespace", f"team label ({res.team_label})"], horizontal=True, key="overview_by")
    frame = res.by_group.get("namespace" if by == "namespace" else "team")
    if frame is None or frame.height == 0:
        st.info("This saved run's report holds no cost by this grouping.")
        return
    key = frame.columns[0]
    st.bar_chart(frame.select(pl.col(key).cast(pl.String), "total_cost"), x=key, y="total_cost", horizontal=True,
                 y_label="USD over the window")


def cost_over_time(res: Results) -> None:
    st.subheader("Cost over time")
    if res.by_group:
        say_missing(res, "series")
        saved_totals(res)
        return
    if say_missing(res, "cost", "prices") or res.daily.height == 0:
        if res.daily.height == 0 and not ({"cost", "prices"} & res.missing.keys()):
            st.info("No container cost was allocated in this snapshot's window, so there is nothing to chart.")
        return
    left, right = st.columns(2)
    window = left.radio("Window", list(WINDOWS), index=2, horizontal=True, key="overview_window")
    by = right.radio("Stack by", ["namespace", f"team label ({res.team_label})"], horizontal=True, key="overview_by")
    days = WINDOWS[window]
    daily = res.daily
    if days is not None:
        last = daily.get_column("day").max()
        daily = daily.filter(pl.col("day") > last - timedelta(days=days))
    group = "namespace" if by == "namespace" else "team"
    stacked = daily.group_by("day", group).agg(pl.col("cost").sum()).sort("day", group)
    total = float(stacked.get_column("cost").sum())
    n_days = max(1, stacked.get_column("day").n_unique())
    st.metric(f"Allocated cost, {window.lower()}", usd(total, 2),
              delta=f"{usd(total / n_days * 30.4)}/month at this rate", delta_color="off")
    st.bar_chart(stacked.rename({group: "group"}).with_columns(pl.col("day").cast(pl.String)),
                 x="day", y="cost", color="group", stack=True, x_label="day (UTC)", y_label="USD per day")


def trend(res: Results) -> None:
    history = history_dir(Config.from_env())
    if history is None:
        return
    st.subheader("Across past reports")
    frame = history_trend(str(history), stamp(history))
    if frame.height < 2:
        st.info(f"{frame.height} saved run(s) in {md(history)} so far; the trend needs two.")
        if frame.height == 0:
            return
    long = frame.unpivot(index="generated_at", on=["cost_monthly", "idle_monthly", "waste_monthly", "saving_monthly"],
                         variable_name="figure", value_name="usd_per_month").drop_nulls("usd_per_month")
    st.line_chart(long, x="generated_at", y="usd_per_month", color="figure", x_label="run", y_label="$/month")
    st.dataframe(frame, hide_index=True)


def render() -> None:
    res = results_or_stop()
    st.title("Overview")
    st.caption(md(f"{res.cluster}: {res.window}"))
    say_missing(res, "requests")
    headline(res)
    cost_over_time(res)
    trend(res)
    for note in res.notes:
        st.caption(md(note))


if __name__ == "__main__":
    render()
