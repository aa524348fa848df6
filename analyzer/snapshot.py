"""The Snapshot: a directory of Parquet frames plus ``manifest.json``; load, validate, write.

Loading is strict, because everything downstream trusts the frames: a missing column, a
dtype that cannot be read losslessly, a null in a not-null column or an unknown schema
version is one ``SnapshotError`` naming the file and the column. Writing goes to a temporary
directory beside the target and is renamed into place, so a crash never leaves half a snapshot.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.atomic import atomic_directory
from analyzer.errors import SnapshotError
from analyzer.redact import redact
from analyzer.sanity import check_window, clean_names, clean_usage
from analyzer.schema import FORMAT_NAME, FRAMES, KEYS, SCHEMA_VERSION, Frame

MANIFEST = "manifest.json"


@dataclass
class Manifest:
    """What a snapshot covers and where it came from."""

    cluster: str
    start: datetime
    end: datetime
    step_seconds: int
    source: str
    absent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    format: str = FORMAT_NAME
    schema_version: int = SCHEMA_VERSION
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "schema_version": self.schema_version,
            "cluster": self.cluster,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "step_seconds": int(self.step_seconds),
            "source": self.source,
            "created_at": _iso(self.created_at),
            "absent": list(self.absent),
            "warnings": [redact(w) for w in self.warnings],
            "frames": {name: {"file": FRAMES[name].file, "rows": n} for name, n in self.rows.items()},
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> Manifest:
        if not isinstance(data, dict):
            raise SnapshotError(f"{path} is not a kubetune manifest (expected a JSON object).")
        fmt = data.get("format")
        if fmt != FORMAT_NAME:
            raise SnapshotError(f"{path} has format {fmt!r}, expected {FORMAT_NAME!r}.")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SnapshotError(
                f"{path} has schema version {version!r}; this kubetune reads version {SCHEMA_VERSION} only."
            )
        missing = [k for k in ("cluster", "start", "end", "step_seconds", "source") if k not in data]
        if missing:
            raise SnapshotError(f"{path} lacks the field {missing[0]!r}.")
        try:
            start, end = _parse_time(data["start"]), _parse_time(data["end"])
            step = int(data["step_seconds"])
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"{path} has an unreadable start, end or step_seconds ({exc}).") from None
        if step <= 0 or end < start:
            raise SnapshotError(f"{path} has end before start or a step_seconds that is not positive.")
        frames = data.get("frames") or {}
        return cls(
            cluster=str(data["cluster"]),
            start=start,
            end=end,
            step_seconds=step,
            source=str(data["source"]),
            absent=[str(a) for a in data.get("absent") or []],
            warnings=[str(w) for w in data.get("warnings") or []],
            created_at=_parse_time(data["created_at"]) if data.get("created_at") else datetime.now(UTC),
            rows={k: int(v.get("rows", 0)) for k, v in frames.items() if isinstance(v, dict)},
        )


@dataclass
class Snapshot:
    """All frames of one cluster over one window. Frames follow ``analyzer.schema``."""

    manifest: Manifest
    usage: pl.DataFrame
    containers: pl.DataFrame
    workloads: pl.DataFrame
    nodes: pl.DataFrame
    events: pl.DataFrame
    gpus: pl.DataFrame = field(default_factory=lambda: FRAMES["gpus"].empty())
    namespaces: pl.DataFrame = field(default_factory=lambda: FRAMES["namespaces"].empty())
    path: Path | None = None
    load_warnings: list[str] = field(default_factory=list)  # what ``load_snapshot`` dropped, counted

    def frames(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in FRAMES}

    @classmethod
    def build(cls, manifest: Manifest, **frames: pl.DataFrame) -> Snapshot:
        """Assemble a snapshot from collector output, coercing frames to the schema; rows whose names
        hold control characters are dropped, counted in the manifest's warnings."""
        unknown = set(frames) - set(FRAMES)
        if unknown:
            raise ValueError(f"unknown frames: {sorted(unknown)}")
        conformed, dropped = clean_names({name: conform(FRAMES[name], frames.get(name)) for name in FRAMES})
        manifest.warnings.extend(w for w in dropped if w not in manifest.warnings)
        return cls(manifest=manifest, **conformed)

    def equals(self, other: Snapshot) -> bool:
        """Same manifest window and the same rows in every frame (order ignored)."""
        a, b = self.manifest, other.manifest
        if (a.cluster, a.start, a.end, a.step_seconds) != (b.cluster, b.start, b.end, b.step_seconds):
            return False
        return all(frames_equal(name, getattr(self, name), getattr(other, name)) for name in FRAMES)

    def write(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write atomically: a temp directory beside the target, renamed into place."""
        return write_snapshot(self, Path(directory), overwrite=overwrite)


def frames_equal(name: str, left: pl.DataFrame, right: pl.DataFrame) -> bool:
    cols = list(FRAMES[name].schema)
    keys = [k for k in KEYS[name] if k in cols]
    l = left.select(cols).with_columns(_cat_to_str(FRAMES[name])).sort(keys, nulls_last=True)
    r = right.select(cols).with_columns(_cat_to_str(FRAMES[name])).sort(keys, nulls_last=True)
    return l.equals(r)


def _cat_to_str(frame: Frame) -> list[pl.Expr]:
    return [pl.col(c.name).cast(pl.String) for c in frame.columns if c.dtype == pl.Categorical]


def conform(frame: Frame, df: pl.DataFrame | None) -> pl.DataFrame:
    """Coerce a collector's frame to the schema: add missing nullable columns, cast, order.

    Extra columns are kept after the schema's columns. A missing not-null column is a
    programming error in a collector, so it raises ``ValueError``.
    """
    if df is None:
        return frame.empty()
    exprs = []
    for col in frame.columns:
        if col.name in df.columns:
            exprs.append(pl.col(col.name).cast(col.dtype))
        elif col.nullable:
            exprs.append(pl.lit(None, dtype=col.dtype).alias(col.name))
        else:
            raise ValueError(f"frame {frame.name!r} lacks the not-null column {col.name!r}")
    extra = [c for c in df.columns if c not in frame.schema]
    return df.select(*exprs, *extra)


def _castable(found: pl.DataType, expected: pl.DataType) -> bool:
    """Lossless reads we accept: strings <-> categoricals, ints -> floats, any datetime unit."""
    if found == expected or found == pl.Null:
        return True
    if expected == pl.Categorical or isinstance(expected, pl.Enum):
        return found in (pl.String, pl.Categorical) or isinstance(found, pl.Enum)
    if expected == pl.String:
        return found == pl.Categorical or isinstance(found, pl.Enum)
    if expected == pl.Float64:
        return found.is_numeric()
    if expected == pl.Int64:
        return found.is_integer()
    if isinstance(expected, pl.Datetime):
        return isinstance(found, pl.Datetime)
    if isinstance(expected, pl.List):
        return isinstance(found, pl.List) and (found.inner == pl.Null or _castable(found.inner, expected.inner))
    if isinstance(expected, pl.Struct):
        if not isinstance(found, pl.Struct):
            return False
        found_fields = {f.name: f.dtype for f in found.fields}
        return all(f.name in found_fields and _castable(found_fields[f.name], f.dtype) for f in expected.fields)
    return False


def validate(frame: Frame, df: pl.DataFrame, file: Path) -> pl.DataFrame:
    """Check a loaded frame against the schema; return it cast to the exact dtypes."""
    for col in frame.columns:
        if col.name not in df.columns:
            raise SnapshotError(f"{file} lacks the column {col.name!r} ({col.dtype}, {col.doc}).")
        found = df.schema[col.name]
        if not _castable(found, col.dtype):
            raise SnapshotError(f"{file} column {col.name!r} has dtype {found}, expected {col.dtype}.")
    exprs = []
    for col in frame.columns:
        found = df.schema[col.name]
        expr = pl.col(col.name)
        if isinstance(col.dtype, pl.Datetime) and isinstance(found, pl.Datetime) and found.time_zone is None:
            expr = expr.dt.replace_time_zone("UTC")
        exprs.append(expr.cast(col.dtype, strict=True))
    extra = [c for c in df.columns if c not in frame.schema]
    try:
        out = df.select(*exprs, *extra)
    except pl.exceptions.PolarsError as exc:
        bad = _first_bad_enum(frame, df)
        if bad:
            raise SnapshotError(f"{file} column {bad[0]!r} holds {bad[1]!r}, which is not one of {bad[2]}.") from None
        raise SnapshotError(f"{file} cannot be read with the snapshot schema: {str(exc).splitlines()[0]}") from None
    nulls = out.select(pl.col(c.name).null_count() for c in frame.columns if not c.nullable)
    for name, count in zip(nulls.columns, nulls.row(0), strict=True):
        if count:
            raise SnapshotError(f"{file} column {name!r} has {count} null values but may not be null.")
    return out


def _first_bad_enum(frame: Frame, df: pl.DataFrame) -> tuple[str, str, list[str]] | None:
    for col in frame.columns:
        if isinstance(col.dtype, pl.Enum):
            allowed = list(col.dtype.categories)
            values = df.get_column(col.name).cast(pl.String).drop_nulls().unique()
            unknown = [v for v in values.to_list() if v not in allowed]
            if unknown:
                return col.name, unknown[0], allowed
    return None


def load_snapshot(directory: str | os.PathLike[str], max_window_days: float | None = None) -> Snapshot:
    """Read and validate a snapshot directory. Impossible usage rows are dropped (counted in
    ``load_warnings``); a window beyond ``max_window_days`` (default 400) is refused."""
    root = Path(directory)
    if not root.exists():
        raise SnapshotError(f"snapshot directory {root} does not exist.")
    if not root.is_dir():
        raise SnapshotError(f"{root} is not a directory (a snapshot is a directory of Parquet files).")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise SnapshotError(f"{root} is not a kubetune snapshot: {MANIFEST} is missing.")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{manifest_path} is not valid JSON ({exc.args[0] if exc.args else exc}).") from None
    manifest = Manifest.from_json(data, manifest_path)
    check_window(manifest.start, manifest.end, str(root), max_window_days)
    frames: dict[str, pl.DataFrame] = {}
    for name, frame in FRAMES.items():
        file = root / frame.file
        if not file.exists():
            if frame.required:
                raise SnapshotError(f"{root} lacks the frame file {frame.file}.")
            frames[name] = frame.empty()
            continue
        try:
            df = pl.read_parquet(file)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise SnapshotError(f"{file} is not a readable Parquet file ({str(exc).splitlines()[0]}).") from None
        frames[name] = validate(frame, df, file)
    frames, dropped = clean_names(frames)
    frames["usage"], more = clean_usage(frames["usage"])
    dropped += more
    return Snapshot(manifest=manifest, path=root, load_warnings=[f"{root}: {w}" for w in dropped], **frames)


def write_snapshot(snapshot: Snapshot, target: Path, overwrite: bool = False) -> Path:
    """Write every frame and the manifest into a temp dir, then rename it to ``target``."""
    target = target.resolve()
    if target.exists() and not overwrite:
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        else:
            raise SnapshotError(f"{target} already exists; choose another --out or pass --overwrite.")
    with atomic_directory(target) as tmp:
        rows = {}
        for name, frame in FRAMES.items():
            df = conform(frame, getattr(snapshot, name))
            df.write_parquet(tmp / frame.file, compression="zstd", statistics=True)
            rows[name] = df.height
        snapshot.manifest.rows = rows
        (tmp / MANIFEST).write_text(json.dumps(snapshot.manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    snapshot.path = target
    return target


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
