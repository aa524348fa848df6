"""`python -m dashboards.app.serve [streamlit flags]`: `streamlit run main.py`, with the app's modules
imported before the server listens, so the first page load does not wait for Polars, Altair,
scikit-learn and the analysis packages to import (seconds on a busy machine)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "main.py"


def preload() -> None:
    # Streamlit warns that cached functions are declared before its runtime exists; they bind to the
    # runtime's cache when first called, so the warning is noise here.
    import streamlit.runtime.caching.cache_data_api  # noqa: F401 - creates the logger whose level is lowered

    log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import dashboards.app.charts  # noqa: F401
        import dashboards.app.data  # noqa: F401
        import dashboards.app.patch_zip  # noqa: F401
        import dashboards.app.series  # noqa: F401
        import dashboards.app.view  # noqa: F401
    finally:
        log.setLevel(level)


def main(argv: list[str]) -> int:
    preload()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
