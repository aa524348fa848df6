"""Commands that are planned but not in this build: they say so and exit 2."""

from __future__ import annotations

from typing import Annotated

import typer

from analyzer.errors import InputError


def _not_yet(command: str, issue: int) -> None:
    raise InputError(f"`kubetune {command}` is not yet available in this build (planned in issue #{issue}).")


def dashboard(
    port: Annotated[int, typer.Option(help="Port for the Streamlit dashboard.")] = 8501,
) -> None:
    """Start the Streamlit FinOps dashboard."""
    _not_yet("dashboard", 8)
