"""The human table: which columns fit, what they are called, how values read; the only table code.

Machine formats (JSON, CSV, Parquet) keep the frames' own columns and base units; only the
``table``/``wide`` formats come through here. Rules (issue #16): numbers, quantities and money are
never shrunk, wrapped or cut; identity columns (names) are never cut either; only free text
(``why``, ``reason``) is truncated. When the terminal is narrow, whole columns are left out in a
fixed priority order (``--format wide`` shows them all). With no terminal at all (a pipe in a
CronJob) nothing is left out or cut. Every cell goes through ``safe_cell`` (names are untrusted).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from analyzer.units import human_value
from analyzer.untrusted import terminal, visible

KEY, NUMBER, TEXT = "key", "number", "text"
FREE_TEXT_NAMES = ("why", "reason", "detail", "details", "note", "notes", "message", "explanation")
MIN_TEXT = 12  # the narrowest a free-text column is worth showing


@dataclass(frozen=True)
class Column:
    """One table column: frame column ``name`` shown as ``header``; ``kind`` KEY (identity: always
    shown, never cut), NUMBER (never cut; left out first by ``priority`` when narrow) or TEXT
    (truncated with an ellipsis); ``fmt`` turns the base-unit value into the human string."""

    name: str
    header: str | None = None
    kind: str = NUMBER
    priority: int = 50
    fmt: Callable[[object], str] | None = None

    @property
    def title(self) -> str:
        return self.header or self.name


def safe_cell(value: object) -> str:
    """A value as plain, inert terminal text: control characters shown visibly, rich markup escaped
    (analyzer.untrusted.terminal, the one escaping rule for every terminal edge)."""
    return terminal(value)


def terminal_width() -> int | None:
    """Columns to fit: $COLUMNS, else the terminal on stdout, stderr or stdin (so `| less` still fits
    the screen); None when there is no terminal at all (then nothing is left out or cut)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for fd in (1, 2, 0):
        try:
            if os.isatty(fd):
                return os.get_terminal_size(fd).columns
        except OSError:
            continue
    return None


def usd(value: object) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def ratio(value: object) -> str:
    return f"{value * 100:.0f}%"


def plain_number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def default_columns(df: pl.DataFrame) -> list[Column]:
    """Columns for a frame with no spec: numbers are NUMBER, known free text is TEXT, other text KEY."""
    cols = []
    for i, (name, dtype) in enumerate(df.schema.items()):
        kind = NUMBER if dtype.is_numeric() else TEXT if name in FREE_TEXT_NAMES else KEY
        cols.append(Column(name, kind=kind, priority=i))
    return cols


def _cell(value: object, fmt: Callable[[object], str] | None) -> Text:
    if value is None or value == "":
        return Text("-")
    return Text.from_markup(safe_cell(fmt(value) if fmt is not None else plain_number(value)))


def render(df: pl.DataFrame, columns: list[Column] | None = None, *, title: str | None = None,
           width: int | None = None, wide: bool = False) -> str:
    """The table as text. ``width`` None (no terminal) or ``wide``: every column, nothing cut."""
    spec = [c for c in (columns or default_columns(df)) if c.name in df.columns]
    cells = {c.name: [_cell(v, c.fmt) for v in df.get_column(c.name).to_list()] for c in spec}
    natural = {c.name: max([cell_len(c.title), *(t.cell_len for t in cells[c.name])]) for c in spec}
    shown, widths = _fit(spec, natural, None if wide else width)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for c in shown:
        if c.kind == TEXT:
            table.add_column(c.title, width=widths[c.name], no_wrap=True, overflow="ellipsis")
        else:
            table.add_column(c.title, width=widths[c.name], no_wrap=True, overflow="ignore",
                             justify="right" if c.kind == NUMBER else "left")
    for c in shown:
        for cell in cells[c.name]:
            cell.justify = "right" if c.kind == NUMBER else "left"
    for i in range(df.height):
        table.add_row(*[cells[c.name][i] for c in shown])
    total = _table_width(list(widths[c.name] for c in shown))
    buf = io.StringIO()
    console = Console(file=buf, width=max(total, width or 0, 1), color_system=None, highlight=False,
                      emoji=False, markup=False)
    if title:
        console.print(Text(visible(title)), no_wrap=True, overflow="ignore", crop=False)
    console.print(table, crop=False)
    hidden = [c.title for c in spec if c not in shown]
    if hidden:
        console.print(Text(f"({len(hidden)} column(s) left out to fit {width} columns: {', '.join(hidden)}; "
                           "-f wide shows all)"), no_wrap=True, overflow="ignore", crop=False)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def _table_width(widths: list[int]) -> int:
    # SIMPLE_HEAD without edges: one space of padding each side of a blank separator between columns
    return sum(widths) + 3 * max(len(widths) - 1, 0)


def _fit(spec: list[Column], natural: dict[str, int], width: int | None) -> tuple[list[Column], dict[str, int]]:
    """Columns to show (in spec order) and their widths: keys always, then numbers by priority while
    they fit, text last at whatever room is left (at least ``MIN_TEXT``)."""
    if width is None:
        return spec, dict(natural)
    chosen = [c for c in spec if c.kind == KEY]
    need = lambda cols: _table_width([natural[c.name] if c.kind != TEXT else min(natural[c.name], MIN_TEXT)
                                      for c in cols])
    for c in sorted((c for c in spec if c.kind != KEY), key=lambda c: (c.priority, spec.index(c))):
        if need([*chosen, c]) <= width:
            chosen.append(c)
    shown = [c for c in spec if c in chosen]
    widths = {c.name: natural[c.name] for c in shown}
    texts = [c for c in shown if c.kind == TEXT]
    if texts:
        room = width - _table_width([widths[c.name] for c in shown if c.kind != TEXT] + [0] * len(texts))
        share = max(room // len(texts), MIN_TEXT)
        for c in texts:
            widths[c.name] = min(natural[c.name], share)
    return shown, widths


def print_table(df: pl.DataFrame, columns: list[Column] | None = None, *, title: str | None = None,
                wide: bool = False, file=None) -> None:
    """Render for stdout (or ``file``, where nothing is left out or cut) and write it."""
    if file is None:
        sys.stdout.write(render(df, columns, title=title, width=terminal_width(), wide=wide))
    else:
        file.write(render(df, columns, title=title, width=None, wide=True))


# Cost tables: the group keys come first (KEY), then money before ratios.
COST_TABLE_COLUMNS = [
    Column("total_cost", "cost", NUMBER, 1, usd), Column("total_cost_monthly", "$/month", NUMBER, 0, usd),
    Column("share", "share", NUMBER, 3, ratio), Column("idle_cost", "idle", NUMBER, 4, usd),
    Column("cpu_efficiency", "CPU eff", NUMBER, 5, ratio), Column("memory_efficiency", "mem eff", NUMBER, 6, ratio),
    Column("gpu_efficiency", "GPU eff", NUMBER, 7, ratio), Column("waste_monthly", "waste $/mo", NUMBER, 2, usd),
]
WASTE_TABLE_COLUMNS = [
    Column("namespace", kind=KEY), Column("workload_kind", "kind", NUMBER, 5), Column("workload", kind=KEY),
    Column("waste_monthly", "waste $/mo", NUMBER, 0, usd), Column("cpu_waste_monthly", "CPU", NUMBER, 1, usd),
    Column("memory_waste_monthly", "memory", NUMBER, 2, usd), Column("gpu_waste_monthly", "GPU", NUMBER, 3, usd),
    Column("waste_fraction", "unused", NUMBER, 4, ratio),
]


def cost_columns(keys: list[str]) -> list[Column]:
    return [Column(k, kind=KEY) for k in keys] + COST_TABLE_COLUMNS


def recommendation_table(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[Column]]:
    """One line per recommendation: workload, container, kind, now -> proposed (human units), $/month, why."""
    shown = frame.with_columns(
        pl.concat_str(pl.col("namespace"), pl.col("workload"), separator="/").alias("workload"),
        pl.struct("resource", "current_request", "kind").map_elements(
            lambda s: ("gpu " if s["kind"].startswith("gpu") else "")
            + human_value(s["resource"], s["current_request"], "-"), return_dtype=pl.String).alias("now"),
        pl.struct("resource", "proposed_request", "kind").map_elements(
            lambda s: (s["resource"].rsplit("/", 1)[-1] + " " if s["kind"].startswith("gpu") else "")
            + human_value(s["resource"], s["proposed_request"], "-"), return_dtype=pl.String).alias("proposed"),
        pl.col("reason").str.split(";").list.first().alias("why"),
    )
    columns = [
        Column("workload", kind=KEY), Column("workload_kind", "controller", NUMBER, 8),
        Column("container", kind=KEY), Column("kind", "change", NUMBER, 3), Column("resource", "resource", NUMBER, 4),
        Column("now", "now", NUMBER, 2), Column("proposed", "proposed", NUMBER, 1),
        Column("monthly_saving_usd", "$/month", NUMBER, 0, usd), Column("confidence_label", "confidence", NUMBER, 5),
        Column("why", "why", TEXT, 9),
    ]
    return shown, columns


def forecast_columns(keys: list[str]) -> list[Column]:
    """Forecast summary: identity, then p95 and peak first (what sizing uses), then the rest."""
    def q(name: str, priority: int) -> Column:
        return Column(name, name, NUMBER, priority)
    return ([Column(k, kind=KEY) for k in keys] +
            [q("p50", 4), q("p90", 3), q("p95", 0), q("p99", 2), q("peak", 1),
             Column("trend", "trend", NUMBER, 5), Column("drift", "drift", NUMBER, 6), Column("model", "model", NUMBER, 7)])
