"""Where the CLI writes: stdout for results only; stderr for notes, warnings, "written" lines and progress.

Progress is a rich bar per stage (count, elapsed, ETA) when stderr is a terminal, and one plain
timestamped line per finished stage when it is not (a CronJob's log, CI): `2026-12-06T03:00:12Z
kubetune forecast: forecast 1,240 series: 1,240/1,240 in 8.1 s`. Lines on a non-terminal stderr
are never hard-wrapped, so grep finds whole messages in logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from analyzer.atomic import check_replaceable
from analyzer.errors import InputError
from analyzer.redact import redact
from analyzer.untrusted import terminal

err_console = Console(stderr=True, soft_wrap=True, highlight=False)  # one message = one line, whatever the width


def safe(message: object) -> str:
    """A message as rich markup that shows it literally: secrets redacted, controls escaped."""
    return terminal(redact(str(message)))


def say(message: str) -> None:
    """A plain line on stderr (paths and names in it are shown literally)."""
    err_console.print(safe(message), highlight=False)


def note(message: str) -> None:
    """A dim line on stderr: what the command assumed or chose."""
    err_console.print(f"[dim]{safe(message)}[/dim]", highlight=False)


def warn(message: str, label: str = "warning") -> None:
    err_console.print(f"[yellow]{label}:[/yellow] {safe(message)}", highlight=False)


def written(message: str) -> None:
    """Where an output went (always stderr: stdout carries only data)."""
    err_console.print(safe(message))


class Stage:
    """One unit of progress: ``advance`` as items finish; ``total`` may be set once known."""

    def __init__(self, steps: Steps, description: str, total: int | None):
        self.steps, self.description, self.total, self.completed = steps, description, total, 0
        self.started = time.perf_counter()
        self.task = steps.bar.add_task(description, total=total) if steps.bar is not None else None

    def advance(self, n: int = 1) -> None:
        self.completed += n
        if self.task is not None:
            self.steps.bar.update(self.task, advance=n)

    def set_total(self, total: int) -> None:
        self.total = total
        if self.task is not None:
            self.steps.bar.update(self.task, total=total)

    def describe(self, description: str) -> None:
        self.description = description
        if self.task is not None:
            self.steps.bar.update(self.task, description=safe(description))

    def _done(self) -> None:
        seconds = time.perf_counter() - self.started
        if self.task is not None:
            self.steps.bar.update(self.task, visible=False)
            return
        count = (f": {self.completed:,}/{self.total:,}" if self.total is not None
                 else f": {self.completed:,}" if self.completed else "")
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        err_console.print(safe(f"{stamp} kubetune {self.steps.command}: {self.description}{count} in {seconds:.1f} s"),
                          markup=True)


class Steps:
    """A command's progress on stderr: ``with Steps("forecast") as p, p.stage("forecast", total=n) as s:``."""

    def __init__(self, command: str):
        self.command = command
        self.bar: Progress | None = None

    def __enter__(self) -> Steps:
        if err_console.is_terminal:
            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                console=err_console, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    @contextmanager
    def stage(self, description: str, total: int | None = None) -> Iterator[Stage]:
        stage = Stage(self, description, total)
        yield stage
        stage._done()


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing, non-empty --out before doing the work, not after; with --overwrite,
    refuse anything kubetune did not write (``analyzer.atomic.check_replaceable``)."""
    target = Path(out)
    if target.exists() and not overwrite and not (target.is_dir() and not any(target.iterdir())):
        raise InputError(f"{out} already exists; choose another --out or pass --overwrite.")
    check_replaceable(target)
