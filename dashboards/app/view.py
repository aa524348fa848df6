"""Small helpers every page shares: getting the results (or saying why not), money, escaping names.

Names and labels come from the cluster and are untrusted: they are shown through ``st.dataframe``,
``st.code`` or Markdown with every Markdown character escaped, never as HTML.
"""

from __future__ import annotations

import re

import polars as pl
import streamlit as st

from dashboards.app.data import LoadFailure, current
from dashboards.app.results import Results

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def md(text: object) -> str:
    """``text`` safe inside Markdown: every character Markdown (or a link/HTML) could use is escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def usd(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"-${-value:,.{digits}f}" if value < 0 else f"${value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def results_or_stop() -> Results:
    """The loaded results, or the load failure shown as one sentence and the page stopped."""
    res = current()
    if isinstance(res, LoadFailure):
        st.error(res.message)
        st.info("The dashboard is running; restart it with another source (kubetune dashboard SNAPSHOT_DIR).")
        st.stop()
    return res


def say_missing(results: Results, *parts: str) -> bool:
    """Show the sentence for the first missing part; True when one was shown (the caller skips the chart)."""
    for part in parts:
        if part in results.missing:
            st.info(results.missing[part])
            return True
    return False


def options(frame: pl.DataFrame, column: str) -> list[str]:
    if column not in frame.columns or frame.height == 0:
        return []
    return frame.get_column(column).cast(pl.String).drop_nulls().unique().sort().to_list()


def filter_in(frame: pl.DataFrame, column: str, chosen: list[str]) -> pl.DataFrame:
    """Rows whose ``column`` is one of ``chosen``; no choice = no filter."""
    return frame.filter(pl.col(column).cast(pl.String).is_in(chosen)) if chosen else frame
