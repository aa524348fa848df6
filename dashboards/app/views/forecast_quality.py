"""Forecast quality: backtest metrics per model (kubetune's global quantile model vs seasonal-naive and
KRR/VPA-style percentiles) and coverage per quantile, so users can see why to trust the numbers."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards.app.data import snapshot_for
from dashboards.app.series import backtest
from dashboards.app.view import results_or_stop, say_missing

RUN_KEY = "fq_run"


def show(table: pl.DataFrame) -> None:
    pinball = [c for c in table.columns if c.startswith("pinball_")]
    coverage = [c for c in table.columns if c.startswith("coverage_")]
    st.subheader("Loss per model (lower is better)")
    st.caption("Scaled pinball loss per quantile and MASE of the median, on rolling 7-day origins of this snapshot.")
    st.dataframe(table.select("model", *pinball, *[c for c in ("mase_p50",) if c in table.columns]), hide_index=True,
                 key="fq_loss")
    st.subheader("Coverage (share of actual values at or below the forecast quantile)")
    long = table.select("model", *coverage).unpivot(index="model", variable_name="quantile", value_name="coverage")
    long = long.with_columns(pl.col("quantile").str.replace("coverage_p", "").cast(pl.Float64).truediv(100)
                             .alias("nominal"))
    st.dataframe(long.pivot(on="model", index=["quantile", "nominal"], values="coverage"), hide_index=True,
                 key="fq_coverage")
    st.bar_chart(long, x="quantile", y="coverage", color="model", stack=False, y_label="coverage")
    best = table.sort(pinball[-1]).item(0, "model") if pinball else None
    if best:
        st.caption(f"Lowest {pinball[-1].removeprefix('pinball_').upper()} loss: {best}. A well-calibrated model's "
                   "coverage matches the nominal quantile (p95 -> 0.95).")


def render() -> None:
    res = results_or_stop()
    st.title("Forecast quality")
    if res.backtest is not None and res.backtest.height:
        show(res.backtest)
        return
    if snapshot_for(res) is None:
        say_missing(res, "series") or st.info("This run keeps no backtest and no snapshot to compute one from.")
        return
    if say_missing(res, "usage"):
        return
    if not st.session_state.get(RUN_KEY):
        st.info("The backtest refits the forecaster on rolling origins of this snapshot: it takes a while once, "
                "then it is cached.")
        if st.button("Run the backtest", key="fq_button", type="primary"):
            st.session_state[RUN_KEY] = True
            st.rerun()
        return
    table = backtest(res, res.key)
    if table.height == 0:
        st.info("Too little history to backtest (it needs more than one forecast horizon of samples).")
        return
    show(table)


if __name__ == "__main__":
    render()
