"""Altair charts the pages need beyond Streamlit's built-ins: usage vs request vs limit with a forecast
band and drift markers, and the GPU heatmap. Polars frames go to Altair directly (no pandas)."""

from __future__ import annotations

import altair as alt
import polars as pl


def usage_chart(usage: pl.DataFrame, request: float | None, limit: float | None, forecast: pl.DataFrame,
                drift: pl.DataFrame, unit: str) -> alt.LayerChart:
    """Hourly usage line, request and limit rules, the forecast P50..P95 band and peak, drift rules."""
    x = alt.X("timestamp:T", title="time (UTC)")
    layers = [alt.Chart(usage).mark_line(color="#1f77b4").encode(
        x, alt.Y("usage:Q", title=unit), tooltip=["timestamp:T", alt.Tooltip("usage:Q", format=",.3f")])]
    if forecast.height:
        layers.append(alt.Chart(forecast).mark_area(opacity=0.25, color="#ff7f0e").encode(
            x, alt.Y("p50:Q"), alt.Y2("p95:Q"), tooltip=["timestamp:T", "p50:Q", "p95:Q", "peak:Q"]))
        layers.append(alt.Chart(forecast).mark_line(color="#ff7f0e", strokeDash=[2, 2]).encode(x, alt.Y("peak:Q")))
    lines = [(name, value) for name, value in (("request", request), ("limit", limit)) if value is not None]
    if lines:
        rules = pl.DataFrame({"setting": [n for n, _ in lines], "value": [float(v) for _, v in lines]})
        layers.append(alt.Chart(rules).mark_rule(strokeWidth=2).encode(
            alt.Y("value:Q"), alt.Color("setting:N", scale=alt.Scale(domain=["request", "limit"],
                                                                     range=["#2ca02c", "#d62728"])),
            tooltip=["setting:N", "value:Q"]))
    if drift.height:
        layers.append(alt.Chart(drift).mark_rule(color="#9467bd", strokeDash=[4, 3]).encode(
            alt.X("timestamp:T"), tooltip=["timestamp:T", "kind:N"]))
    return alt.layer(*layers).properties(height=320)


def gpu_heatmap(matrix: pl.DataFrame, value: str, title: str) -> alt.Chart:
    return alt.Chart(matrix).mark_rect().encode(
        alt.X("hour:T", title="hour (UTC)"), alt.Y("gpu:N", title=None, sort="ascending"),
        alt.Color(f"{value}:Q", title=title, scale=alt.Scale(domain=[0, 100], scheme="viridis")),
        tooltip=["gpu:N", "hour:T", alt.Tooltip(f"{value}:Q", format=".0f")],
    ).properties(height=max(120, 18 * matrix.get_column("gpu").n_unique()))
