"""Run the real console entry point in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict[str, str | None] | None = None, cwd=None, timeout: float = 300) -> Result:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    full_env.pop("KUBETUNE_DEBUG", None)
    full_env = {k: v for k, v in full_env.items() if v is not None}  # env={"COLUMNS": None} unsets one
    proc = subprocess.run(
        [sys.executable, "-m", "kubetune", *map(str, args)],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_error(result: Result, code: int = 2, contains: str | None = None) -> None:
    """A user-facing error: the expected exit code, a short message, no traceback."""
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    text = result.err.strip()
    assert text, "an error must say something"
    if contains is not None:
        assert contains in " ".join(text.split()), text
