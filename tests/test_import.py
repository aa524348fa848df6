"""`kubetune import`: long-format usage (+ requests) into a Snapshot, and its bad-input errors."""

from __future__ import annotations

import polars as pl
import pytest

from analyzer.collectors.files import import_files
from analyzer.errors import InputError
from analyzer.snapshot import frames_equal, load_snapshot
from analyzer.units import format_cpu, format_memory
from tests.support.tiny import STEP, tiny_snapshot

USAGE_COLS = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value", "device"]


def _usage_csv(snap, path, epoch=False):
    df = snap.usage.select(USAGE_COLS).with_columns(pl.col(c).cast(pl.String) for c in USAGE_COLS[1:7] + ["device"])
    if epoch:
        df = df.with_columns((pl.col("timestamp").dt.epoch("s")).alias("timestamp"))
    else:
        df = df.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    df.write_csv(path)
    return path


def _containers_csv(snap, path, human=True):
    df = snap.containers.select(["namespace", "pod", "container", "container_type", "cpu_request", "cpu_limit",
                                 "memory_request", "memory_limit", "node"])
    df = df.with_columns(pl.col(c).cast(pl.String) for c in ("namespace", "pod", "container", "container_type", "node"))
    if human:
        df = df.with_columns(
            pl.col("cpu_request").map_elements(format_cpu, return_dtype=pl.String),
            pl.col("cpu_limit").map_elements(format_cpu, return_dtype=pl.String),
            pl.col("memory_request").map_elements(format_memory, return_dtype=pl.String),
            pl.col("memory_limit").map_elements(format_memory, return_dtype=pl.String),
        )
    df.write_csv(path)
    return path


@pytest.mark.parametrize("epoch", [False, True])
def test_import_round_trip_csv(tmp_path, epoch):
    snap = tiny_snapshot()
    imported = import_files(_usage_csv(snap, tmp_path / "u.csv", epoch), _containers_csv(snap, tmp_path / "c.csv"))
    assert frames_equal("usage", imported.usage, snap.usage)
    assert imported.manifest.step_seconds == STEP
    assert imported.manifest.start == snap.manifest.start and imported.manifest.end == snap.manifest.end
    cols = ["namespace", "pod", "container", "container_type", "cpu_request", "memory_limit", "node"]
    key = ["namespace", "pod", "container"]
    got = imported.containers.select(cols).with_columns(pl.col(c).cast(pl.String) for c in cols if c not in ("cpu_request", "memory_limit")).sort(key)
    want = snap.containers.select(cols).with_columns(pl.col(c).cast(pl.String) for c in cols if c not in ("cpu_request", "memory_limit")).sort(key)
    assert got.equals(want)
    path = imported.write(tmp_path / "snap")
    assert load_snapshot(path).equals(imported)


def test_import_parquet_without_containers(tmp_path):
    snap = tiny_snapshot()
    snap.usage.write_parquet(tmp_path / "u.parquet")
    imported = import_files(tmp_path / "u.parquet")
    assert frames_equal("usage", imported.usage, snap.usage)
    assert "requests" in imported.manifest.absent
    assert imported.containers.get_column("cpu_request").null_count() == imported.containers.height


def _bad(tmp_path, text, name="u.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "timestamp,namespace,workload_kind,workload,pod,container,resource,value\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("timestamp,namespace,workload,pod,container,resource,value\n2026-01-01T00:00:00Z,a,w,p,c,cpu,1\n",
         r"u\.csv lacks the column 'workload_kind'"),
        (HEADER + "2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,1\n2026-01-01T00:05:00Z,a,Deployment,w,p,c,cpu,lots\n",
         r"u\.csv column 'value' has a non-numeric value at line 3"),
        (HEADER + "2026-01-01T00:00:00Z,a,Deployment,w,p,c,disk,1\n", r"column 'resource' has 'disk' at line 2"),
        (HEADER + "yesterday,a,Deployment,w,p,c,cpu,1\n", r"column 'timestamp' has an unreadable value at line 2"),
        (HEADER + "2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,-1\n", r"column 'value' has a negative value at line 2"),
        (HEADER + "2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,1\n2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,2\n",
         r"two values for the same container"),
        (HEADER + "2026-01-01T00:00:00Z,a,Deployment,,p,c,cpu,1\n", r"column 'workload' is empty at line 2"),
        (HEADER, r"has no rows"),
    ],
)
def test_import_bad_usage(tmp_path, body, message):
    with pytest.raises(InputError, match=message):
        import_files(_bad(tmp_path, body))


def test_import_bad_containers(tmp_path):
    usage = _bad(tmp_path, HEADER + "2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,1\n")
    containers = _bad(tmp_path, "namespace,pod,container,cpu_request\na,p,c,lots\n", "c.csv")
    with pytest.raises(InputError, match=r"c\.csv column 'cpu_request' has 'lots' at line 2, not a quantity"):
        import_files(usage, containers)
    orphan = _bad(tmp_path, "namespace,pod,container,cpu_request\na,p,c,1\na,q,c,1\n", "c2.csv")
    with pytest.raises(InputError, match=r"lists a/q/c, which has no usage rows"):
        import_files(usage, orphan)


def test_import_missing_file_and_extension(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        import_files(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown extension"):
        import_files(_bad(tmp_path, "x", "u.xlsx"))
