"""Output for every command: human table (kubetune.tables), the JSON/YAML envelope, CSV or Parquet."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import polars as pl

from analyzer import yamlio
from analyzer.atomic import write_bytes_atomic as write_atomic
from analyzer.errors import InputError
from analyzer.untrusted import csv_safe
from kubetune.tables import Column, print_table, render


class Format(str, Enum):
    table = "table"
    wide = "wide"
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


def _machine_value(value: object) -> object:
    """A JSON-safe copy (datetimes as ISO strings, everything else via str as a last resort)."""
    return json.loads(json.dumps(value, default=str))


def emit_document(document: dict, fmt: Format, out: Path | None = None) -> None:
    """A nested result (the JSON envelope) as JSON or YAML, to stdout or a file."""
    if fmt is Format.json:
        text = json.dumps(document, indent=2, default=str) + "\n"
    elif fmt is Format.yaml:
        text = yamlio.dump(_machine_value(document))
    else:
        raise InputError(f"--format {fmt.value} cannot hold this nested result; use json or yaml.")
    _write(text, out)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode("utf-8"))


def is_table(fmt: Format) -> bool:
    return fmt is Format.table or fmt is Format.wide


def emit(
    df: pl.DataFrame,
    fmt: Format,
    *,
    title: str | None = None,
    out: Path | None = None,
    columns: list[Column] | None = None,
    document: Callable[[list[dict]], dict] | None = None,
) -> None:
    """Print (or, with ``out``, write atomically) a frame in the chosen format.

    ``columns`` shape the human table only (which columns, headers, human units); JSON/YAML are the
    envelope ``document`` builds around the rows, and CSV/Parquet keep the frame's own columns, all
    in base units (cores, bytes, USD) so they stay machine-readable.
    """
    if fmt is Format.parquet:
        if out is None:
            raise InputError("--format parquet needs --out FILE (Parquet is binary).")
        buf = io.BytesIO()
        df.write_parquet(buf)
        write_atomic(out, buf.getvalue())
        return
    if is_table(fmt):
        if out is None:
            print_table(df, columns, title=title, wide=fmt is Format.wide)
            return
        text = render(df, columns, title=title, width=None, wide=True)
    elif fmt is Format.json or fmt is Format.yaml:
        rows = plain_rows(df)
        if document is not None:
            emit_document(document(rows), fmt, out)
            return
        text = json.dumps(rows, indent=2, default=str) + "\n" if fmt is Format.json else yamlio.dump(rows)
    else:
        text = csv_safe(df.with_columns(
            pl.col(n).cast(pl.String) for n, d in df.schema.items() if d == pl.Categorical or isinstance(d, pl.Enum)
        )).write_csv()
    _write(text, out)


def document_for(source, snap, *, window: dict | None = None, notes: list[str] | None = None,
                 summary: dict | None = None) -> Callable[[list[dict] | dict], dict]:
    """The envelope (analyzer.envelope) around a command's rows: source, window and notes filled in."""
    from analyzer.envelope import envelope, window_of

    def build(items: list[dict] | dict) -> dict:
        return envelope(source=source.describe(), window=window or window_of(snap.manifest), items=items,
                        notes=notes, summary=summary)

    return build
