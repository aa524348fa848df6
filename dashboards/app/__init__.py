"""The Streamlit FinOps dashboard (`kubetune dashboard`): ``main.py`` is what `streamlit run` starts;
``views/`` holds one module per page; ``data``/``results``/``series`` load and cache; nothing here
writes to the cluster (read-only: snapshots, saved runs, or Prometheus queries)."""
