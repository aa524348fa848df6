"""Where bundled data lives: the sample snapshot and the pricing catalog under ``data/``.

kubetune runs from its checkout (editable install) or from the container image, which copies
the repository; ``KUBETUNE_DATA_DIR`` points elsewhere when neither holds.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    override = os.environ.get("KUBETUNE_DATA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data"


def sample_snapshot_dir() -> Path:
    return data_dir() / "sample"


def pricing_dir() -> Path:
    return data_dir() / "pricing"
