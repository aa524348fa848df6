"""Entry point for `streamlit run` (started by `kubetune dashboard`): page set-up, sidebar, navigation.

The app only reads (a snapshot, a saved run, or Prometheus): no page holds a control that writes
to the cluster; patches leave only as a download for review.
"""

from pathlib import Path

import streamlit as st

from dashboards.app.data import LoadFailure, current
from dashboards.app.view import md

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="kubetune FinOps", page_icon=":material/savings:", layout="wide")

PAGES = [
    st.Page(str(HERE / "views" / "overview.py"), title="Overview", icon=":material/dashboard:", default=True,
            url_path="overview"),
    st.Page(str(HERE / "views" / "workloads.py"), title="Workloads", icon=":material/table:", url_path="workloads"),
    st.Page(str(HERE / "views" / "gpus.py"), title="GPUs", icon=":material/memory:", url_path="gpus"),
    st.Page(str(HERE / "views" / "recommendations.py"), title="Recommendations", icon=":material/tune:",
            url_path="recommendations"),
    st.Page(str(HERE / "views" / "forecast_quality.py"), title="Forecast quality", icon=":material/query_stats:",
            url_path="forecast-quality"),
]

nav = st.navigation(PAGES)
with st.sidebar:
    st.markdown("**kubetune** FinOps dashboard")
    res = current()
    if isinstance(res, LoadFailure):
        st.error(res.message)
    else:
        st.caption(f"Cluster {md(res.cluster)} · {md(res.origin)}")
        st.caption(f"Window {md(res.window)}" if res.window else "")
        st.caption("Read-only: nothing here changes the cluster.")
nav.run()
