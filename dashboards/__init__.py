"""Output surfaces: static report rendering and the Streamlit dashboard."""
