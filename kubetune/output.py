"""Tabular output for every command: rich table, JSON, YAML, CSV or Parquet, from one Polars frame."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from analyzer import yamlio
from analyzer.atomic import write_bytes_atomic as write_atomic
from analyzer.errors import InputError


class Format(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    parquet = "parquet"


def plain_rows(df: pl.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (datetimes as ISO strings, categoricals as strings)."""
    casts = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            casts.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif dtype == pl.Date or dtype == pl.Categorical or isinstance(dtype, pl.Enum):
            casts.append(pl.col(name).cast(pl.String))
    return (df.with_columns(casts) if casts else df).to_dicts()


def emit_document(document: dict, fmt: Format, out: Path | None = None) -> None:
    """A nested result (summary + several tables) as JSON or YAML, to stdout or a file."""
    if fmt is Format.json:
        text = json.dumps(document, indent=2, default=str) + "\n"
    elif fmt is Format.yaml:
        text = yamlio.dump(json.loads(json.dumps(document, default=str)))
    else:
        raise InputError(f"--format {fmt.value} cannot hold this nested result; use json or yaml.")
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode("utf-8"))


def emit(
    df: pl.DataFrame,
    fmt: Format,
    *,
    title: str | None = None,
    out: Path | None = None,
    formatters: dict[str, Callable[[object], str]] | None = None,
    console: Console | None = None,
) -> None:
    """Print (or, with ``out``, write atomically) a frame in the chosen format.

    ``formatters`` turn base units into human strings for the *table* only; JSON/YAML/CSV/Parquet
    keep base units (cores, bytes, USD) so they stay machine-readable.
    """
    if fmt is Format.parquet:
        if out is None:
            raise InputError("--format parquet needs --out FILE (Parquet is binary).")
        buf = io.BytesIO()
        df.write_parquet(buf)
        write_atomic(out, buf.getvalue())
        return
    if fmt is Format.table:
        text = None
        table = Table(title=title, header_style="bold")
        for name, dtype in df.schema.items():
            numeric = dtype.is_numeric() or name in (formatters or {})
            table.add_column(name, justify="right" if numeric else "left", no_wrap=not numeric)
        formatters = formatters or {}
        for row in df.iter_rows(named=True):
            table.add_row(*[_cell(row[c], formatters.get(c)) for c in df.columns])
        if out is None:
            (console or Console()).print(table)
            return
        capture = Console(file=io.StringIO(), width=200)
        capture.print(table)
        text = capture.file.getvalue()
    elif fmt is Format.json:
        text = json.dumps(plain_rows(df), indent=2, default=str) + "\n"
    elif fmt is Format.yaml:
        text = yamlio.dump(plain_rows(df))
    else:
        text = df.with_columns(
            pl.col(n).cast(pl.String) for n, d in df.schema.items() if d == pl.Categorical or isinstance(d, pl.Enum)
        ).write_csv()
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode("utf-8"))


def _cell(value: object, formatter: Callable[[object], str] | None) -> str:
    if value is None:
        return "-"
    if formatter is not None:
        return formatter(value)
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
