"""Reliability and secrets (issue 15, items 4, 6-10, 12): signals, overwrite, values, errors, API gaps.

Real parts throughout: the console script in a subprocess, real signals, a real tmpfs (in a user
namespace) for a full or read-only disk, the loopback API server for Kubernetes, a loopback proxy
that echoes credentials back in an error body.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from analyzer import redact
from analyzer.sanity import clean_usage
from analyzer.snapshot import load_snapshot
from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.tiny import tiny_snapshot

HEADER = "timestamp,namespace,workload_kind,workload,pod,container,resource,value\n"


def _usage_csv(path: Path, rows: list[str]) -> Path:
    base = [f"2026-11-01T00:{m:02d}:00Z,shop,Deployment,web,web-a,app,cpu,0.5" for m in range(0, 60, 5)]
    path.write_text(HEADER + "\n".join(base + rows) + "\n", encoding="utf-8")
    return path


def _one_line(result) -> None:
    assert "Traceback" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1, result.err


# -- 4. One redaction registry -----------------------------------------------------------------


def test_registry_redacts_every_registered_secret_and_the_basic_string():
    redact.clear()
    redact.register("tok-123456789")
    redact.register("pw-secret", basic_user="alice")
    redact.register("abc")  # too short to be a secret worth masking words for
    basic = base64.b64encode(b"alice:pw-secret").decode()
    text = f"Bearer tok-123456789 / Basic {basic} / alice:pw-secret / abc"
    assert redact.redact(text) == "Bearer *** / Basic *** / *** / abc"
    import logging

    redact.install_log_filter()
    record = logging.getLogger("some.library").makeRecord("x", logging.ERROR, "f", 1, "token %s", ("tok-123456789",),
                                                          None)
    assert record.getMessage() == "token ***"
    from dashboards.report.push import slack_webhook

    hook = "https://hooks.slack.example/services/T000/B000/kt-webhook-secret"
    os.environ["KUBETUNE_TEST_HOOK"] = hook
    try:
        import dashboards.report.push as push

        old, push.SLACK_ENV = push.SLACK_ENV, "KUBETUNE_TEST_HOOK"
        assert slack_webhook(None) == hook and redact.redact(f"POST {hook} failed") == "POST *** failed"
    finally:
        push.SLACK_ENV = old
        del os.environ["KUBETUNE_TEST_HOOK"]
    redact.clear()


def test_credentials_echoed_by_prometheus_never_reach_stderr(tmp_path):
    from tests.support.fault_proxy import Fault, FaultProxy
    from tests.support.prometheus_server import free_port

    token, password, header = "kt-echo-SECRET-31415926", "pw-SECRET-1618", "hdr-SECRET-271828"
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": (
        f"echo: Authorization: Bearer {token}; Basic {basic}; X-Key: {header}; {password}")}).encode()
    proxy = FaultProxy(f"http://127.0.0.1:{free_port()}")
    try:
        proxy.reset(Fault("/api/v1/", "status", times=None, status=400, body=body))
        result = run_cli("collect", "--prometheus-url", proxy.url, "--out", tmp_path / "snap", "--token", token,
                         "--username", "alice", "--password", password, "--header", f"X-Key={header}")
    finally:
        proxy.close()
    assert result.code == 1 and "***" in result.err
    for secret in (token, password, header, basic):
        assert secret not in result.err + result.out
    _one_line(result)


# -- 6. Ctrl-C -> 130, SIGTERM -> 143, one line, temp files removed -----------------------------


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted."), (signal.SIGTERM, 143, "terminated.")])
def test_signals_exit_130_and_143_and_leave_no_temp_files(tmp_path, sig, code, word):
    old = tmp_path / "snap"
    tiny_snapshot().write(old)
    before = sorted(p.name for p in old.iterdir())
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "kubetune", "simulate", "--workloads", "150", "--days", "14",
                             "--out", str(old), "--overwrite"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".snap.tmp-") for p in tmp_path.iterdir()):  # inside the atomic write
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip() == word and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]  # no .snap.tmp-*, no .snap.old-*
    assert sorted(p.name for p in old.iterdir()) == before  # the old snapshot, untouched


# -- 7. --overwrite replaces only what kubetune wrote ----------------------------------------------


def test_overwrite_refuses_a_users_directory_and_file(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    result = run_cli("simulate", "--workloads", "2", "--days", "0.1", "--out", user, "--overwrite")
    assert_clean_error(result, 2, "did not write")
    assert (user / "notes.txt").read_text() == "precious"
    afile = tmp_path / "afile"
    afile.write_text("precious")
    result = run_cli("simulate", "--workloads", "2", "--days", "0.1", "--out", afile, "--overwrite", cwd=tmp_path)
    assert_clean_error(result, 2, "is a file")
    assert afile.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine"]  # no .afile.old-PID


def test_overwrite_replaces_kubetune_output_and_leaves_nothing_behind(tmp_path):
    for args in (["simulate", "--workloads", "2", "--days", "0.1", "--out", tmp_path / "snap"],
                 ["recommend", "--patches", tmp_path / "patches"]):
        assert run_cli(*args).code == 0
        marker = tmp_path / args[-1].name / ".kubetune"
        assert marker.is_file() or (tmp_path / "snap" / "manifest.json").is_file()
        result = run_cli(*args, "--overwrite")
        assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patches", "snap"]


# -- 8. Out-of-range values stop at the boundary ---------------------------------------------------


def test_import_drops_impossible_rows_with_counted_warnings(tmp_path):
    usage = _usage_csv(tmp_path / "u.csv", [
        "9999-12-31T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5",
        "1970-01-01T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5",
        "2026-11-01T01:00:00Z,shop,Deployment,web,web-a,app,cpu,1e300",
        "2026-11-01T01:00:00Z,shop,Deployment,web,web-a,app,gpu,5.0",
    ])
    result = run_cli("import", usage, "--out", tmp_path / "snap")
    assert result.code == 0, result.err
    assert "dropped 2 usage sample(s) with timestamps before 2000-01-01 or after tomorrow" in result.err
    assert "dropped 2 usage sample(s) with values beyond any real container" in result.err
    snap = load_snapshot(tmp_path / "snap")
    assert snap.usage.height == 12 and snap.manifest.end < datetime(2026, 11, 2, tzinfo=UTC)
    cost = run_cli("cost", tmp_path / "snap", "-f", "json")
    assert cost.code == 0 and "OverflowError" not in cost.err


def test_import_refuses_an_unknown_workload_kind(tmp_path):
    usage = _usage_csv(tmp_path / "u.csv", ["2026-11-01T01:00:00Z,shop,Banana,web,web-a,app,cpu,0.5"])
    result = run_cli("import", usage, "--out", tmp_path / "snap")
    assert_clean_error(result, 2, "column 'workload_kind' has 'Banana' at line 14")
    assert not (tmp_path / "snap").exists()


def test_a_window_beyond_400_days_needs_max_window(tmp_path):
    usage = _usage_csv(tmp_path / "u.csv", ["2024-01-01T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5"])
    result = run_cli("import", usage, "--out", tmp_path / "snap")
    assert_clean_error(result, 2, "more than the 400-day limit")
    assert run_cli("import", usage, "--out", tmp_path / "snap", "--max-window", "2000").code == 0
    result = run_cli("info", tmp_path / "snap")
    assert_clean_error(result, 2, "--max-window")
    assert run_cli("info", tmp_path / "snap", "--max-window", "2000").code == 0


def test_snapshot_load_drops_nan_negative_and_gpu_above_one(tmp_path):
    snap = tiny_snapshot()
    usage = snap.usage.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(float("nan"))
        .when(pl.int_range(pl.len()) == 1).then(-4.0)
        .when((pl.col("resource") == "gpu") & (pl.int_range(pl.len()) < 40)).then(5.0)
        .otherwise(pl.col("value")).alias("value"))
    snap.usage = usage
    snap.write(tmp_path / "snap")
    loaded = load_snapshot(tmp_path / "snap")
    values = loaded.usage.get_column("value")
    assert values.is_finite().all() and (values >= 0).all()
    assert loaded.usage.filter(pl.col("resource") == "gpu").get_column("value").max() <= 1.0
    assert any("NaN or infinite" in w for w in loaded.load_warnings)
    assert any("negative values" in w for w in loaded.load_warnings)
    result = run_cli("cost", tmp_path / "snap")
    assert result.code == 0 and "dropped 1 usage sample(s) with negative values" in result.err


def test_clean_usage_keeps_good_rows_untouched():
    usage = tiny_snapshot().usage
    cleaned, warnings = clean_usage(usage)
    assert warnings == [] and cleaned.equals(usage)


def test_negative_prometheus_samples_are_dropped_at_collect(prom_cluster):
    import re

    from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus
    from tests.support.fault_proxy import Fault, FaultProxy

    def negate(body: bytes) -> bytes:
        body, n = re.subn(rb'\[(\d+(?:\.\d+)?),"([0-9.e+]+)"\]', rb'[\1,"-\2"]', body, count=25)
        assert n == 25
        return body

    proxy = FaultProxy(prom_cluster.url)
    try:
        proxy.reset(Fault(("/api/v1/query_range", "container_cpu"), "rewrite", rewrite=negate))
        cfg = PrometheusConfig(url=proxy.url, timeout=30, retries=1, backoff=0.01)
        m = prom_cluster.truth.manifest
        snap = collect_prometheus(cfg, start=m.start, end=m.end, client=PrometheusClient(cfg))
    finally:
        proxy.close()
    assert (snap.usage.get_column("value") >= 0).all()
    assert any(re.match(r"dropped \d+ usage sample\(s\) with negative values", w) for w in snap.manifest.warnings)


# -- 9. cost table on a snapshot without nodes ------------------------------------------------------


def test_cost_table_on_an_import_snapshot(tmp_path):
    usage = _usage_csv(tmp_path / "u.csv", [])
    assert run_cli("import", usage, "--out", tmp_path / "snap").code == 0
    result = run_cli("cost", tmp_path / "snap")
    assert result.code == 0, result.err
    assert "idle unknown (no nodes in the snapshot)" in " ".join(result.out.split())


# -- 10. One sentence and exit 2 for output paths that cannot be written ----------------------------


def test_output_under_a_file_and_out_at_a_directory(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = run_cli("cost", "-f", "csv", "--out", tmp_path / "afile" / "c.csv")
    assert_clean_error(result, 2, "is a file, not a directory")
    _one_line(result)
    result = run_cli("cost", "-f", "csv", "--out", tmp_path)
    assert_clean_error(result, 2, "is a directory; give a file path")
    _one_line(result)
    os.mkfifo(tmp_path / "pipe")  # a special file: replacing it would destroy it (think /dev/null as root)
    result = run_cli("cost", "-f", "csv", "--out", tmp_path / "pipe")
    assert_clean_error(result, 2, "not a regular file")
    assert (tmp_path / "pipe").is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "pipe"]


def _can_unshare() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs user namespaces (unshare -rm) to mount a small tmpfs")
@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_full_and_read_only_disks_are_one_sentence(tmp_path, mode):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    remount = f"mount -o remount,ro {mnt} && " if mode == "read-only" else ""
    script = (f"mount -t tmpfs -o size=64k tmpfs {mnt} && {remount}"
              f"{sys.executable} -m kubetune simulate --workloads 5 --days 2 --out {mnt}/snap; echo rc=$? >&2; "
              f"{sys.executable} -m kubetune forecast --hourly -f csv --out {mnt}/f.csv; echo rc=$? >&2; ls -A {mnt}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if not line.startswith("rc=")]
    assert [line for line in lines if line.startswith("rc=")] == ["rc=2", "rc=2"], proc.stderr
    wanted = "no space left on the device holding" if mode == "full" else "is on a read-only file system"
    assert len([e for e in errors if e.startswith("error:") and wanted in e]) == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout.strip() == ""  # nothing left on the disk


# -- 12. Kubernetes API gaps ---------------------------------------------------------------------------


@pytest.fixture
def kube_objects():
    from tests.support import kube_fixtures as F

    return F.objects()


def _kubeconfig(tmp_path, url, user: dict | None = None) -> Path:
    from tests.support.kube_api_server import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kubeconfig", url)
    if user is not None:
        doc = json.loads(path.read_text())
        doc["users"][0]["user"] = user
        path.write_text(json.dumps(doc))
    return path


def test_hpas_fall_back_to_autoscaling_v1(tmp_path, kube_objects):
    from analyzer.collectors.kubernetes import KubeConfig, collect_kubernetes
    from tests.support.kube_api_server import Faults, KubeAPIServer

    v1 = []
    for obj in kube_objects:
        if obj["kind"] == "HorizontalPodAutoscaler":
            spec = {k: v for k, v in obj["spec"].items() if k != "metrics"}
            cpu = [m for m in obj["spec"].get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
            if cpu:
                spec["targetCPUUtilizationPercentage"] = cpu[0]["resource"]["target"]["averageUtilization"]
            obj = {**obj, "apiVersion": "autoscaling/v1", "spec": spec}
        v1.append(obj)
    assert any(o["apiVersion"] == "autoscaling/v1" for o in v1)
    with KubeAPIServer(v1, Faults(versions={"horizontalpodautoscalers": "v1"})) as srv:
        snap = collect_kubernetes(KubeConfig(kubeconfig=_kubeconfig(tmp_path, srv.url), retries=0))
        paths = [p for _, p, _ in srv.seen]
    assert "/apis/autoscaling/v2/horizontalpodautoscalers" in paths
    assert "/apis/autoscaling/v1/horizontalpodautoscalers" in paths
    assert "horizontalpodautoscalers" not in snap.manifest.absent
    scaled = snap.workloads.filter(pl.col("hpa_name").is_not_null())
    assert scaled.height >= 1
    metrics = scaled.get_column("hpa_metrics").to_list()[0]
    assert metrics[0]["metric"] == "cpu" and metrics[0]["target_type"] == "Utilization"


@pytest.mark.parametrize("status,needle", [(404, "is not a Kubernetes API server"), (403, "refused GET /version")])
def test_version_403_and_404_are_one_sentence(tmp_path, kube_objects, status, needle):
    from tests.support.kube_api_server import Faults, KubeAPIServer

    with KubeAPIServer(kube_objects, Faults(version_status=status)) as srv:
        result = run_cli("collect", "--kubeconfig", _kubeconfig(tmp_path, srv.url), "--out", tmp_path / "snap")
    assert_clean_error(result, 2, needle)
    _one_line(result)
    assert not (tmp_path / "snap").exists()


@pytest.mark.parametrize("user,needle", [
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kt-no-such-plugin"}},
     "credential plugin 'kt-no-such-plugin' is not installed"),
    ({"client-certificate": "/nonexistent/cert.pem", "client-key": "/nonexistent/key.pem"},
     "client-certificate /nonexistent/cert.pem does not exist"),
    ({"tokenFile": "/nonexistent/token"}, "tokenFile /nonexistent/token does not exist"),
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "false"}},
     "its credential plugin failed (exec: process returned 1)"),
])
def test_missing_credentials_are_named(tmp_path, kube_objects, user, needle):
    from tests.support.kube_api_server import Faults, KubeAPIServer

    with KubeAPIServer(kube_objects, Faults(token="loopback-token")) as srv:
        result = run_cli("collect", "--kubeconfig", _kubeconfig(tmp_path, srv.url, user), "--out", tmp_path / "snap")
    assert_clean_error(result, 2, needle)
    _one_line(result)
    assert "ERROR:root" not in result.err and "expired" not in result.err


def test_a_far_future_row_does_not_break_cost_json(tmp_path):
    usage = _usage_csv(tmp_path / "u.csv", ["9999-12-31T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5"])
    assert run_cli("import", usage, "--out", tmp_path / "snap").code == 0
    result = run_cli("cost", tmp_path / "snap", "-f", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)["summary"]
    assert math.isfinite(summary["total_cost"]) and "OverflowError" not in result.err
    assert summary["window_end"].startswith("2026-11-01") and summary["hours"] < 2  # not 70 million hours
