"""The collector against a real Prometheus started with a low ``--query.max-samples`` (issue 20).

A range query the server refuses for size (or times out on) is split by time window, then by namespace; the
snapshot comes out the same as from an unlimited server. A query that cannot be split small
enough is one sentence naming it and how to narrow it, exit 1, and nothing is written.
"""

from __future__ import annotations

import subprocess

import pytest

from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus
from analyzer.collectors.promclient import TooLarge
from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.prometheus_server import start_prometheus


TOO_MANY = (b'{"status":"error","errorType":"execution","error":"query processing would load too many samples '
            b'into memory in query execution"}')


def _limited(prom_cluster, tmp, max_samples: int):
    """A second server over hard links of the fixture's (immutable) blocks, with a sample limit."""
    copy = tmp / "tsdb"
    copy.mkdir(parents=True)
    for block in prom_cluster.server.data.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            subprocess.run(["cp", "-al", str(block), str(copy / block.name)], check=True)
    return start_prometheus(copy, tmp / "run", extra_args=(f"--query.max-samples={max_samples}",))


def _collect(url, truth, **config):
    cfg = PrometheusConfig(url=url, timeout=30, retries=0, **config)
    client = PrometheusClient(cfg)
    snap = collect_prometheus(cfg, start=truth.manifest.start, end=truth.manifest.end, client=client)
    return snap, client


@pytest.fixture(scope="module")
def baseline(prom_cluster):
    return _collect(prom_cluster.url, prom_cluster.truth)


def _same(a, b) -> bool:
    return a.equals(b) and a.manifest.warnings == b.manifest.warnings


def test_low_max_samples_is_split_by_time_and_gives_the_same_snapshot(prom_cluster, baseline, tmp_path):
    server = _limited(prom_cluster, tmp_path, 20_000)
    try:
        snap, client = _collect(server.url, prom_cluster.truth)
    finally:
        server.stop()
    refused = [e for e in client.log.entries if e[3] == 422]
    assert refused, "the limit must actually bite (else the test proves nothing)"
    assert {e[0] for e in refused} >= {"CPU usage", "memory usage"}
    assert len(client.log) > len(baseline[1].log)
    assert _same(snap, baseline[0])


def _whole_cluster_cpu_refused(prom_cluster, status: int, body: bytes):
    """Collect through a proxy that answers ``status``/``body`` to every CPU-usage range query not
    narrowed to namespaces; returns the snapshot and the CPU queries sent (whole-cluster, namespaced)."""
    proxy = FaultProxy(prom_cluster.url)
    try:
        proxy.reset(Fault(("/api/v1/query_range", 'container!="POD"}'), "status", times=None, status=status,
                          body=body))
        snap, _ = _collect(proxy.url, prom_cluster.truth)
    finally:
        proxy.close()
    cpu = [s.target for s in proxy.seen if "query_range" in s.target and "container_cpu" in s.target]
    return snap, [t for t in cpu if "namespace=~" not in t], [t for t in cpu if "namespace=~" in t]


def test_refused_even_by_time_window_is_split_by_namespace(prom_cluster, baseline):
    # The whole-cluster CPU query is refused at every time window (a Mimir-like per-query series
    # limit); the same query narrowed to namespaces passes.
    snap, _, namespaced = _whole_cluster_cpu_refused(prom_cluster, 422, TOO_MANY)
    assert len(namespaced) >= 2
    assert _same(snap, baseline[0])


MIMIR_SERIES = (b'{"status":"error","errorType":"execution","error":"the query exceeded the maximum number of series '
                b'(limit: 150 series) (err-mimir-max-series-per-query). Consider reducing the time range and/or number of '
                b'series selected by the query."}')


def test_series_limit_goes_straight_to_the_namespace_split(prom_cluster, baseline):
    # A per-query series limit (Mimir's wording) refuses the whole-cluster query whatever its time
    # window, so the collector splits by namespace at once instead of halving the window five times.
    snap, whole, namespaced = _whole_cluster_cpu_refused(prom_cluster, 422, MIMIR_SERIES)
    assert len(whole) == 1  # one refusal, no time-window retries
    assert len(namespaced) >= 2
    assert _same(snap, baseline[0])


TIMEOUT = b'{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}'


def test_timeouts_split_by_time_then_by_namespace(prom_cluster, baseline):
    # The whole-cluster CPU query times out on the server at every window (its --query.timeout):
    # then halves, then quarters (the first refusal of each ends that try), then the namespace split,
    # which answers; the snapshot is the same.
    snap, whole, namespaced = _whole_cluster_cpu_refused(prom_cluster, 503, TIMEOUT)
    assert len(whole) == 3  # the whole window, its first half, its first quarter
    assert len(namespaced) >= 2
    assert _same(snap, baseline[0])


def test_timeout_that_no_split_cures_is_one_sentence(prom_cluster, tmp_path):
    proxy = FaultProxy(prom_cluster.url)
    out = tmp_path / "snap"
    try:
        proxy.reset(Fault(("/api/v1/query_range", "container_cpu"), "status", times=None, status=503, body=TIMEOUT))
        m = prom_cluster.truth.manifest
        result = run_cli("collect", "--prometheus-url", proxy.url, "--start", m.start.isoformat(), "--end",
                         m.end.isoformat(), "--out", out)
    finally:
        proxy.close()
    assert_clean_error(result, code=1, contains="timed out running the CPU usage query")
    assert "--namespace" in result.err and "--history" in result.err and "--step" in result.err
    assert not out.exists()


def test_unsplittable_refusal_is_one_sentence_and_writes_nothing(prom_cluster, tmp_path):
    server = _limited(prom_cluster, tmp_path / "srv", 1_000)
    out = tmp_path / "snap"
    try:
        with pytest.raises(TooLarge) as err:
            _collect(server.url, prom_cluster.truth)
        m = prom_cluster.truth.manifest
        result = run_cli("collect", "--prometheus-url", server.url, "--start", m.start.isoformat(), "--end",
                         m.end.isoformat(), "--out", out)
    finally:
        server.stop()
    message = str(err.value)
    assert message.count(". ") == 0 and message.endswith(".")
    assert "query as too large" in message and "--namespace" in message and "--history" in message
    assert "--step" in message
    assert_clean_error(result, code=1, contains="query as too large")
    assert not out.exists()
