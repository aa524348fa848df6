"""The Snapshot contract: round trip, strict validation with errors naming file and column, atomic writes."""

from __future__ import annotations

import json

import polars as pl
import pytest

from analyzer.errors import InputError, SnapshotError
from analyzer.schema import FRAMES, SCHEMA_VERSION, markdown
from analyzer.snapshot import load_snapshot
from tests.support.tiny import tiny_snapshot


def test_round_trip_equal(tmp_path):
    snap = tiny_snapshot()
    path = snap.write(tmp_path / "snap")
    loaded = load_snapshot(path)
    assert loaded.equals(snap)
    assert dict(loaded.usage.schema) == FRAMES["usage"].schema
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "kubetune-snapshot"
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["frames"]["usage"]["rows"] == snap.usage.height
    assert manifest["start"].endswith("Z")


def test_equals_detects_a_changed_value(tmp_path):
    snap = tiny_snapshot()
    other = tiny_snapshot()
    other.usage = other.usage.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(9.0).otherwise(pl.col("value")).alias("value"))
    assert not snap.equals(other)


def _written(tmp_path):
    return tiny_snapshot().write(tmp_path / "snap")


def test_missing_column_names_file_and_column(tmp_path):
    path = _written(tmp_path)
    pl.read_parquet(path / "containers.parquet").drop("memory_request").write_parquet(path / "containers.parquet")
    with pytest.raises(SnapshotError, match=r"containers\.parquet lacks the column 'memory_request'"):
        load_snapshot(path)


def test_wrong_dtype_names_file_and_column(tmp_path):
    path = _written(tmp_path)
    df = pl.read_parquet(path / "usage.parquet").with_columns(pl.col("value").cast(pl.String))
    df.write_parquet(path / "usage.parquet")
    with pytest.raises(SnapshotError, match=r"usage\.parquet column 'value' has dtype String, expected Float64"):
        load_snapshot(path)


def test_lossless_dtype_variants_are_accepted(tmp_path):
    path = _written(tmp_path)
    df = pl.read_parquet(path / "usage.parquet").with_columns(
        pl.col("namespace").cast(pl.String), pl.col("timestamp").dt.replace_time_zone(None).dt.cast_time_unit("ns")
    )
    df.write_parquet(path / "usage.parquet")
    loaded = load_snapshot(path)
    assert dict(loaded.usage.schema) == FRAMES["usage"].schema
    assert loaded.equals(tiny_snapshot())


def test_unknown_enum_value(tmp_path):
    path = _written(tmp_path)
    df = pl.read_parquet(path / "usage.parquet").with_columns(pl.col("resource").cast(pl.String))
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("disk")).otherwise(pl.col("resource")).alias("resource"))
    df.write_parquet(path / "usage.parquet")
    with pytest.raises(SnapshotError, match=r"usage\.parquet column 'resource' holds 'disk'"):
        load_snapshot(path)


def test_null_in_not_null_column(tmp_path):
    path = _written(tmp_path)
    df = pl.read_parquet(path / "usage.parquet").with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("value")).alias("value")
    )
    df.write_parquet(path / "usage.parquet")
    with pytest.raises(SnapshotError, match=r"usage\.parquet column 'value' has 1 null"):
        load_snapshot(path)


def test_unknown_schema_version(tmp_path):
    path = _written(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="schema version 99"):
        load_snapshot(path)


def test_corrupt_parquet(tmp_path):
    path = _written(tmp_path)
    (path / "nodes.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SnapshotError, match=r"nodes\.parquet is not a readable Parquet file"):
        load_snapshot(path)


def test_missing_dir_manifest_and_frame(tmp_path):
    with pytest.raises(SnapshotError, match="does not exist"):
        load_snapshot(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match="manifest.json is missing"):
        load_snapshot(tmp_path / "empty")
    path = _written(tmp_path)
    (path / "events.parquet").unlink()
    with pytest.raises(SnapshotError, match="lacks the frame file events.parquet"):
        load_snapshot(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="is not valid JSON"):
        load_snapshot(path)


def test_optional_frames_may_be_absent(tmp_path):
    path = _written(tmp_path)
    (path / "gpus.parquet").unlink()
    (path / "namespaces.parquet").unlink()
    loaded = load_snapshot(path)
    assert loaded.gpus.is_empty() and loaded.namespaces.is_empty()


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    snap = tiny_snapshot()
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(InputError, match="no space left on the device holding .*snap"):  # one sentence (#15)
        snap.write(tmp_path / "snap")
    assert list(tmp_path.iterdir()) == []  # no target, no temp directory left behind


def test_write_refuses_to_clobber_and_overwrite_replaces(tmp_path):
    snap = tiny_snapshot()
    path = snap.write(tmp_path / "snap")
    with pytest.raises(SnapshotError, match="already exists"):
        snap.write(path)
    smaller = tiny_snapshot(steps=3)
    smaller.write(path, overwrite=True)
    assert load_snapshot(path).usage.height == smaller.usage.height
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_schema_markdown_lists_every_column():
    text = markdown()
    for frame in FRAMES.values():
        assert f"`{frame.file}`" in text
        for col in frame.columns:
            assert f"`{col.name}`" in text
