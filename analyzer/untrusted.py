"""Names and labels are untrusted: make them safe at each output edge (terminal, CSV, YAML comments).

Names come from import files, Prometheus labels and API servers, none of which we control. They are
kept as they are inside the frames (a VM id or a hash is a legitimate name) and escaped where they
leave: control characters become visible ``\\xNN`` escapes (no ANSI sequence or newline reaches a
terminal or a YAML comment), rich markup is escaped, and CSV cells that a spreadsheet would run as a
formula get a leading apostrophe (OWASP CSV-injection guidance).
"""

from __future__ import annotations

import re

import polars as pl
from rich.markup import escape

# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators and bidi overrides.
CONTROL_PATTERN = r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"  # Python and Rust (Polars) syntax
CONTROL = re.compile(CONTROL_PATTERN)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def has_control(text: str) -> bool:
    return bool(CONTROL.search(text))


def visible(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), on one line."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def terminal(text: object) -> str:
    """Safe inside rich markup: no control characters, markup shown literally."""
    return escape(visible(text))


def csv_text(expr: pl.Expr) -> pl.Expr:
    """A text column for CSV: cells a spreadsheet would evaluate start with an apostrophe."""
    return (pl.when(expr.str.starts_with("=") | expr.str.starts_with("+") | expr.str.starts_with("-")
                    | expr.str.starts_with("@") | expr.str.starts_with("\t") | expr.str.starts_with("\r"))
            .then(pl.lit("'") + expr).otherwise(expr))


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Every string column neutralised with ``csv_text``; numbers untouched."""
    text = [n for n, d in df.schema.items() if d == pl.String]
    return df.with_columns(csv_text(pl.col(n)).alias(n) for n in text) if text else df
