"""One module per dashboard page; each renders when Streamlit runs it (``__name__ == "__main__"``)."""
