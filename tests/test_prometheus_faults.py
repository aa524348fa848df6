"""Faults between the collector and a real Prometheus, injected by a loopback proxy.

Retryable faults (dropped connections, cut answers, 5xx, stalls past the timeout) are retried
and the snapshot comes out the same; the rest (4xx, garbage JSON, a server that stays down)
are one clear sentence, and nothing is written. The bearer token reaches the server but never
any output, log line or error.
"""

from __future__ import annotations

import json
import logging
import re
import time

import polars as pl
import pytest

from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus
from analyzer.errors import InputError, KubetuneError
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.prometheus_server import free_port

TOKEN = "kt-test-token-5f0c2e9a77d14b"


@pytest.fixture(scope="module")
def proxy(prom_cluster):
    p = FaultProxy(prom_cluster.url)
    yield p
    p.close()


def _run(cluster, url, out=None, **config):
    config.setdefault("timeout", 10)
    config.setdefault("retries", 2)
    config.setdefault("backoff", 0.01)
    cfg = PrometheusConfig(url=url, token=TOKEN, **config)
    client = PrometheusClient(cfg)
    m = cluster.truth.manifest
    snap = collect_prometheus(cfg, start=m.start, end=m.end, client=client)
    if out is not None:
        snap.write(out)
    return snap, client


@pytest.fixture(scope="module")
def baseline(prom_cluster, proxy):
    proxy.reset()
    snap, client = _run(prom_cluster, proxy.url)
    return snap, len(client.log)


def _same(a, b) -> bool:
    return a.equals(b) and a.manifest.warnings == b.manifest.warnings


RANGE = "/api/v1/query_range"
TOO_MANY = (b'{"status":"error","errorType":"execution","error":"query processing would load too many samples '
            b'into memory in query execution"}')
MAX_RES = (b'{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per '
           b'timeseries. Try decreasing the query resolution (?step=XX)"}')


@pytest.mark.parametrize("fault", [
    Fault(RANGE, "drop"),
    Fault(RANGE, "truncate"),
    Fault(RANGE, "status", times=2, status=502, body=b"<html>bad gateway</html>"),
    Fault(RANGE, "status", status=503, body=b'{"status":"error","errorType":"unavailable","error":"not ready"}'),
    Fault("/api/v1/query?", "status", times=2, status=500),
    Fault("label/__name__", "drop", times=2),
    Fault(RANGE, "stall", seconds=2.5),
], ids=["drop", "truncated-body", "502-twice", "503", "instant-500", "first-request-dropped", "stall-past-timeout"])
def test_retryable_faults_are_retried(prom_cluster, proxy, baseline, fault):
    proxy.reset(fault)
    snap, client = _run(prom_cluster, proxy.url, timeout=1.5 if fault.action == "stall" else 10)
    assert fault.hits >= 1
    assert _same(snap, baseline[0])
    assert len(client.log) == baseline[1] + fault.hits


@pytest.mark.parametrize("body", [TOO_MANY, MAX_RES], ids=["422-too-many-samples", "400-max-resolution"])
def test_too_large_range_query_is_split_by_time(prom_cluster, proxy, baseline, body):
    proxy.reset(Fault((RANGE, "container_cpu_usage"), "status", times=3, status=422 if b"execution" in body else 400,
                      body=body))
    snap, client = _run(prom_cluster, proxy.url)
    assert proxy.count("container_cpu_usage_seconds_total") > 2  # split into windows
    assert _same(snap, baseline[0])


@pytest.mark.parametrize("fault, error, needle", [
    (Fault((RANGE, "container_memory"), "status", status=422,
           body=b'{"status":"error","errorType":"execution","error":"expanding series: disk I/O error"}'),
     KubetuneError, "rejected the memory usage query (HTTP 422 execution: expanding series: disk I/O error)"),
    (Fault("/api/v1/query?", "status", status=400,
           body=b'{"status":"error","errorType":"bad_data","error":"1:23: parse error: unexpected"}'),
     KubetuneError, "rejected the"),
    (Fault((RANGE, "container_cpu"), "garbage"), KubetuneError, "unreadable answer to the CPU usage query"),
    (Fault((RANGE, "container_memory"), "garbage", body=b"<html><body>Proxy error</body></html>"),
     KubetuneError, "not valid JSON"),
    (Fault((RANGE, "container_cpu"), "status", times=None, status=503), KubetuneError, "kept failing on the CPU usage query"),
    (Fault((RANGE, "container_cpu"), "stall", times=None, seconds=3), KubetuneError, "gave no answer to the CPU usage query within 1 s"),
    (Fault("label/__name__", "status", status=401, body=b"Unauthorized"), InputError, "401 Unauthorized"),
    (Fault("label/__name__", "status", status=403, body=b"Forbidden"), InputError, "403 Forbidden"),
    (Fault("label/__name__", "status", status=404, body=b"404 page not found"), InputError, "HTTP 404"),
    (Fault(RANGE, "status", status=503,
           body=b'{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}',
           times=None), KubetuneError, "timed out"),
], ids=["422-other", "400-bad-data", "garbage-json", "html-instead-of-json", "503-forever", "stall-forever", "401",
        "403", "404", "server-query-timeout"])
def test_other_faults_are_one_clear_error_and_nothing_is_written(prom_cluster, proxy, tmp_path, fault, error, needle):
    proxy.reset(fault)
    out = tmp_path / "snap"
    with pytest.raises(error) as err:
        _run(prom_cluster, proxy.url, out, timeout=1 if fault.action == "stall" else 10)
    message = str(err.value)
    assert needle in message, message
    assert "\n" not in message and "Traceback" not in message
    assert TOKEN not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []
    if fault.status in (400, 401, 403, 404, 422) and fault.action == "status":
        assert fault.hits == 1  # never retried


def test_prometheus_down_mid_run(prom_cluster, proxy, tmp_path):
    """Answers the first requests, then the server is gone: one error after the retries, no snapshot."""
    proxy.reset()
    real = proxy._handle
    calls = {"n": 0}

    def handle(h):
        calls["n"] += 1
        if calls["n"] > 6:
            proxy.down = True
        real(h)

    proxy._handle = handle
    try:
        with pytest.raises(KubetuneError, match=r"cannot reach Prometheus at http://127\.0\.0\.1:\d+ \(.*3 tries\)"):
            _run(prom_cluster, proxy.url, tmp_path / "snap")
    finally:
        proxy._handle = real
    assert not (tmp_path / "snap").exists()


def test_unreachable_server(prom_cluster, tmp_path):
    with pytest.raises(KubetuneError, match=r"cannot reach Prometheus at http://127\.0\.0\.1:\d+ \(connection refused"):
        _run(prom_cluster, f"http://127.0.0.1:{free_port()}", tmp_path / "snap", retries=1)
    assert not (tmp_path / "snap").exists()


def test_nan_and_inf_samples_are_dropped_with_one_warning(prom_cluster, proxy, baseline):
    def poison(body: bytes) -> bytes:
        body, n = re.subn(rb'\[(\d+(?:\.\d+)?),"[0-9.e+-]+"\]', rb'[\1,"NaN"]', body, count=7)
        body, m = re.subn(rb'(\d),"[0-9.e+-]+"\]\]', rb'\1,"+Inf"]]', body, count=3)
        assert n == 7 and m == 3
        return body

    proxy.reset(Fault((RANGE, "container_memory"), "rewrite", rewrite=poison))
    snap, _ = _run(prom_cluster, proxy.url)
    base = baseline[0]
    memory = snap.usage.filter(pl.col("resource") == "memory")
    assert memory.height == base.usage.filter(pl.col("resource") == "memory").height - 10
    assert memory["value"].is_finite().all()
    assert [w for w in snap.manifest.warnings if "NaN/Inf" in w] == [
        "dropped 10 memory usage samples that were NaN/Inf or had no pod label."]


def test_series_with_gaps(prom_cluster, proxy, baseline):
    """Missing samples (a scrape outage) leave holes; the rest is unchanged."""
    def gap(body: bytes) -> bytes:
        data = json.loads(body)
        for series in [s for s in data["data"]["result"] if len(s["values"]) >= 50][:3]:
            series["values"] = series["values"][:10] + series["values"][40:]
        return json.dumps(data, separators=(",", ":")).encode()

    proxy.reset(Fault((RANGE, "container_cpu_usage"), "rewrite", rewrite=gap))
    snap, _ = _run(prom_cluster, proxy.url)
    base = baseline[0]
    cpu, base_cpu = (s.usage.filter(pl.col("resource") == "cpu") for s in (snap, base))
    assert cpu.height == base_cpu.height - 90
    assert cpu.join(base_cpu, on=["namespace", "pod", "container", "timestamp"], how="anti").height == 0
    assert snap.containers.equals(base.containers)


def test_missing_required_metrics_name_what_to_install(prom_cluster, proxy):
    def drop(body: bytes) -> bytes:
        data = json.loads(body)
        data["data"] = [n for n in data["data"] if n not in (
            "container_memory_working_set_bytes", "kube_pod_container_resource_requests")]
        return json.dumps(data).encode()

    proxy.reset(Fault("label/__name__", "rewrite", rewrite=drop))
    with pytest.raises(InputError) as err:
        _run(prom_cluster, proxy.url)
    message = str(err.value)
    assert "lacks required metrics: container_memory_working_set_bytes, kube_pod_container_resource_requests" in message
    assert "cAdvisor" in message and "kube-state-metrics" in message


def test_missing_optional_metrics_are_one_warning_each(prom_cluster, proxy):
    optional = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_FB_USED", "kube_node_labels",
                "node_total_hourly_cost", "kube_horizontalpodautoscaler_spec_target_metric",
                "kube_horizontalpodautoscaler_info")

    def drop(body: bytes) -> bytes:
        data = json.loads(body)
        data["data"] = [n for n in data["data"] if n not in optional]
        return json.dumps(data).encode()

    proxy.reset(Fault("label/__name__", "rewrite", rewrite=drop))
    snap, _ = _run(prom_cluster, proxy.url)
    m = snap.manifest
    assert {"gpu", "gpu_memory", "node_labels", "prices", "hpa"} <= set(m.absent)
    for needle in ("DCGM", "kube_node_labels", "node_total_hourly_cost", "HorizontalPodAutoscaler"):
        assert sum(needle in w for w in m.warnings) == 1, (needle, m.warnings)
    assert snap.usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"])).height == 0
    assert snap.usage.filter(pl.col("resource") == "cpu").height > 0
    assert (snap.nodes["capacity_type"].cast(pl.String) == "unknown").all()


def test_bearer_token_is_sent_but_never_shown(prom_cluster, proxy, caplog, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBETUNE_PROMETHEUS_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    proxy.reset(Fault(RANGE, "drop"))
    cfg = PrometheusConfig(url=proxy.url, timeout=10, retries=2, backoff=0.01)  # token from the environment
    lines: list[str] = []
    m = prom_cluster.truth.manifest
    snap = collect_prometheus(cfg, start=m.start, end=m.end, progress=lines.append)
    out = snap.write(tmp_path / "snap")
    assert proxy.seen and all(s.authorization == f"Bearer {TOKEN}" for s in proxy.seen)
    shown = [repr(cfg), str(cfg), caplog.text, *lines, json.dumps(snap.manifest.to_json()),
             *(p.read_text(errors="replace") for p in out.glob("*.json")), *capsys.readouterr()]
    assert lines and all(TOKEN not in text for text in shown)
    for fault in (Fault("label/__name__", "status", status=401, body=b"bad token"),
                  Fault(RANGE, "garbage", body=TOKEN.encode())):
        proxy.reset(fault)
        with pytest.raises(KubetuneError) as err:
            collect_prometheus(cfg, start=m.start, end=m.end)
        assert TOKEN not in str(err.value) and TOKEN not in repr(err.value)
    assert TOKEN not in caplog.text


def _iso(dt) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_cli_collect_writes_a_snapshot_and_never_shows_the_token(prom_cluster, proxy, tmp_path):
    from tests.support.cli_helpers import run_cli

    proxy.reset(Fault(RANGE, "drop"))
    m = prom_cluster.truth.manifest
    out = tmp_path / "snap"
    result = run_cli("collect", "--prometheus-url", proxy.url, "--start", _iso(m.start), "--end", _iso(m.end),
                     "--out", out, env={"KUBETUNE_PROMETHEUS_TOKEN": TOKEN})
    assert result.code == 0, result.err
    assert TOKEN not in result.out + result.err
    assert all(s.authorization == f"Bearer {TOKEN}" for s in proxy.seen)
    from analyzer.snapshot import load_snapshot

    snap = load_snapshot(out)
    assert snap.containers.height == prom_cluster.truth.containers.height
    assert TOKEN not in (out / "manifest.json").read_text()


def test_cli_collect_fault_is_one_line_nonzero_exit_and_no_output(prom_cluster, proxy, tmp_path):
    from tests.support.cli_helpers import assert_clean_error, run_cli

    proxy.reset(Fault((RANGE, "container_memory"), "garbage"))
    m = prom_cluster.truth.manifest
    out = tmp_path / "snap"
    result = run_cli("collect", "--prometheus-url", proxy.url, "--start", _iso(m.start), "--end", _iso(m.end),
                     "--out", out, "--token", TOKEN)
    assert_clean_error(result, code=1, contains="unreadable answer to the memory usage query")
    assert TOKEN not in result.out + result.err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_ctrl_c_during_a_slow_query_exits_at_once(prom_cluster, proxy, tmp_path):
    """Ctrl-C while a usage query is in flight (the server stalls for a minute): exit 130 within
    seconds, one line, nothing written; queries not yet started are not sent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proxy.reset(Fault((RANGE, "container_cpu"), "stall", times=None, seconds=60))
    m = prom_cluster.truth.manifest
    out = tmp_path / "snap"
    proc = subprocess.Popen([sys.executable, "-m", "kubetune", "collect", "--prometheus-url", proxy.url, "--start",
                             _iso(m.start), "--end", _iso(m.end), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not any(s.fault == "stall" for s in proxy.seen):  # the CPU query is in flight, stalled
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    sent = len(proxy.seen)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=50)
    took = time.monotonic() - t0
    proxy.reset()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted." and "Traceback" not in err
    assert took < 20, took  # not the 60 s stall (nor the 120 s HTTP timeout)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []
    assert len(proxy.seen) <= sent + 3  # at most the queries already running when Ctrl-C came


def test_nothing_more_is_sent_after_a_query_fails(prom_cluster, proxy):
    """A failed collection stops querying: tasks already running (the node, workload and event reads
    send several requests in turn) stop at their next request instead of querying on for nobody."""
    proxy.reset(Fault((RANGE, "container_memory"), "status", status=422,
                      body=b'{"status":"error","errorType":"execution","error":"expanding series: disk I/O error"}'))
    with pytest.raises(KubetuneError, match="rejected the memory usage query"):
        _run(prom_cluster, proxy.url, parallel=1)
    sent = len(proxy.seen)
    time.sleep(2)
    # One slot: at most the one request in flight when the error came out arrives afterwards.
    assert len(proxy.seen[sent:]) <= 1, [s.target[:80] for s in proxy.seen[sent:]]
