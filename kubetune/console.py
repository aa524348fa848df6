"""Where the CLI writes: stdout for results, stderr for notes, warnings and progress."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from analyzer.errors import InputError

# Piped output is not squeezed to 80 columns: tables stay readable in files and CI logs.
out_console = Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=160)
err_console = Console(stderr=True)


def note(message: str) -> None:
    """A dim line on stderr: what the command assumed or chose."""
    err_console.print(f"[dim]{escape(message)}[/dim]", highlight=False)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


def spinner() -> Progress:
    """A transient spinner on stderr (silent when stderr is not a terminal)."""
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not err_console.is_terminal,
    )


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing, non-empty --out before doing the work, not after."""
    target = Path(out)
    if target.exists() and not overwrite and not (target.is_dir() and not any(target.iterdir())):
        raise InputError(f"{out} already exists; choose another --out or pass --overwrite.")
