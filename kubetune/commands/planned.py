"""Commands that are planned but not in this build: they say so and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError


def _not_yet(command: str, issue: int) -> None:
    raise InputError(f"`kubetune {command}` is not yet available in this build (planned in issue #{issue}).")


def pr(
    repo: Annotated[Path | None, typer.Option(help="Local clone of the GitOps repository.")] = None,
) -> None:
    """Open a pull request with the recommended patches in a GitOps repository."""
    _not_yet("pr", 9)


def dashboard(
    port: Annotated[int, typer.Option(help="Port for the Streamlit dashboard.")] = 8501,
) -> None:
    """Start the Streamlit FinOps dashboard."""
    _not_yet("dashboard", 8)
