"""`kubetune collect` through the console script, against the real Prometheus of the session fixture."""

from __future__ import annotations

import io
import socket

import polars as pl
import polars.testing

from analyzer.snapshot import load_snapshot
from tests.support.cli_helpers import assert_clean_error, run_cli


def _window(truth):
    return truth.manifest.start.isoformat(), truth.manifest.end.isoformat()


def test_collect_from_prometheus(prom_cluster, tmp_path):
    start, end = _window(prom_cluster.truth)
    out = tmp_path / "snap"
    result = run_cli("collect", "--prometheus-url", prom_cluster.url, "--start", start, "--end", end, "--out", out,
                     "--cluster", "ci", env={"KUBETUNE_PROMETHEUS_TOKEN": "s3cr3t-t0ken-value"})
    assert result.code == 0, result.err
    assert "s3cr3t-t0ken-value" not in result.out + result.err
    snap = load_snapshot(out)
    assert snap.manifest.cluster == "ci"
    truth_pods = set(prom_cluster.truth.containers.get_column("pod").cast(pl.String))
    got_pods = set(snap.containers.get_column("pod").cast(pl.String))
    assert got_pods == truth_pods
    assert snap.usage.filter(pl.col("resource") == "cpu").height > 0
    # The collected snapshot feeds the analysis commands directly.
    cost = run_cli("cost", "--snapshot", out, "--format", "csv")
    assert cost.code == 0, cost.err
    positional = run_cli("cost", out, "--format", "csv")  # `kubetune cost SNAPSHOT` means the same
    assert positional.code == 0, positional.err
    # same table; floats may differ in the last digits (parallel sums add in any order)
    pl.testing.assert_frame_equal(pl.read_csv(io.StringIO(positional.out)), pl.read_csv(io.StringIO(cost.out)),
                                  check_exact=False, rel_tol=1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collect_unreachable_prometheus_writes_nothing(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    result = run_cli("collect", "--prometheus-url", url, "--history", "1d", "--out", tmp_path / "snap",
                     "--timeout", "2", env={"KUBETUNE_PROMETHEUS_TOKEN": "s3cr3t-t0ken-value"})
    assert result.code in (1, 2), result.err
    assert "Traceback" not in result.err and "s3cr3t-t0ken-value" not in result.out + result.err
    assert url.split("//")[1] in result.err or "127.0.0.1" in result.err
    assert not (tmp_path / "snap").exists()
    assert list(tmp_path.iterdir()) == []


def test_collect_needs_a_source_and_valid_flags(tmp_path):
    assert_clean_error(run_cli("collect", "--out", tmp_path / "s"), 2, "collect needs --prometheus-url")
    assert_clean_error(run_cli("collect", "--prometheus-url", "ftp://x", "--out", tmp_path / "s"), 2, "is not an http(s) URL")
    assert_clean_error(run_cli("collect", "--prometheus-url", "http://x:1", "--start", "yesterday", "--out", tmp_path / "s"),
                       2, "--start 'yesterday' is not an ISO 8601 time")
    assert_clean_error(run_cli("collect", "--prometheus-url", "http://x:1", "--header", "novalue", "--out", tmp_path / "s"),
                       2, "--header needs NAME=VALUE")


def test_positional_url_source_reads_prometheus(tmp_path):
    # an http(s) source is a Prometheus URL: unreachable here, so the error names it (nothing else read)
    url = f"http://127.0.0.1:{_free_port()}"
    result = run_cli("info", url, "--history", "1d", env={"KUBETUNE_PROMETHEUS_TOKEN": "s3cr3t-t0ken-value"})
    assert result.code in (1, 2) and "Traceback" not in result.err
    assert "127.0.0.1" in result.err and "s3cr3t-t0ken-value" not in result.out + result.err
    assert "bundled sample" not in result.err
