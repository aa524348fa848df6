"""Prometheus collector pieces that need no server: decoding, step choice, config, PromQL text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analyzer.collectors import promql as q
from analyzer.collectors.promclient import MAX_POINTS_PER_SERIES, PrometheusConfig, _windows, safe_url
from analyzer.collectors.prometheus import _choose_step, _Notes
from analyzer.collectors.promframes import resource_name as _resource_name
from analyzer.collectors.promjson import ResponseError, decode_matrix, decode_strings, decode_vector
from analyzer.errors import InputError

TOKEN = "tok-9f8e7d6c5b4a-secret"


def _matrix(series: list[tuple[dict, list[tuple[float, str]]]], extra: str = "") -> bytes:
    result = [{"metric": m, "values": [[t, v] for t, v in vals]} for m, vals in series]
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    text = json.dumps(body, separators=(",", ":"))
    return (text[:-1] + extra + "}").encode() if extra else text.encode()


def test_decode_matrix_fast_path_matches_json():
    series = [({"namespace": "a", "pod": "p-1", "container": "c"}, [(1700000000, "0.5"), (1700000060.5, "1e-3")]),
              ({"namespace": "b", "pod": "p-2", "container": "d"}, [(1700000000, "NaN"), (1700000060, "+Inf"),
                                                                    (1700000120, "-Inf")])]
    m = decode_matrix(_matrix(series, ',"warnings":["careful"]'))
    assert m.labels == [s[0] for s in series]
    assert m.samples["series"].to_list() == [0, 0, 1, 1, 1]
    assert m.samples["t"].to_list() == [1700000000, 1700000060.5, 1700000000, 1700000060, 1700000120]
    v = m.samples["v"].to_numpy()
    assert v[0] == 0.5 and v[1] == 0.001 and math.isnan(v[2]) and v[3] == math.inf and v[4] == -math.inf
    assert m.warnings == ["careful"]


def test_decode_matrix_label_with_json_syntax_falls_back_correctly():
    tricky = {"pod": 'x},"values":[[1,"2"]]}', "note": "é\"\\"}
    m = decode_matrix(_matrix([(tricky, [(1, "3"), (2, "4")])]))
    assert m.labels == [tricky]
    assert m.samples["v"].to_list() == [3.0, 4.0]


def test_decode_matrix_empty_and_spaced_json():
    assert decode_matrix(_matrix([])).points == 0
    spaced = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"a": "1"}, "values": [[1, "2"]]}]}}).encode()  # with spaces: the json path
    assert decode_matrix(spaced).samples["v"].to_list() == [2.0]


@pytest.mark.parametrize("body, needle", [
    (b"", "not valid JSON"),
    (b"<html>502 Bad Gateway</html>", "not valid JSON"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]', "not valid JSON"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"zz"]]}]}}', "not a"),
    (b'{"status":"success","data":{"resultType":"vector","result":[]}}', "matrix"),
    (b'{"status":"error","errorType":"bad_data","error":"parse error"}', "parse error"),
    (b'[1,2,3]', "not a Prometheus API response"),
])
def test_decode_matrix_rejects_garbage(body, needle):
    with pytest.raises(ResponseError, match=needle):
        decode_matrix(body)


def test_decode_vector_and_strings():
    body = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"kt":"x"},"value":[1,"2.5"]}]}}'
    labels, values = decode_vector(body)
    assert labels == [{"kt": "x"}] and values.tolist() == [2.5]
    assert decode_vector(b'{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}')[1].tolist() == [7.0]
    assert decode_strings(b'{"status":"success","data":["a","b"]}') == ["a", "b"]
    with pytest.raises(ResponseError):
        decode_vector(b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}')


def _big_matrix(n_series: int, points: int) -> bytes:
    rng = np.random.default_rng(0)
    parts = []
    for i in range(n_series):
        vals = ",".join(f'[{1700000000 + 300 * k},"{x:.6g}"]' for k, x in enumerate(rng.random(points)))
        parts.append(f'{{"metric":{{"namespace":"n","pod":"p{i}","container":"c"}},"values":[{vals}]}}')
    return ('{"status":"success","data":{"resultType":"matrix","result":[' + ",".join(parts) + "]}}").encode()


def test_millions_of_points_take_the_fast_path(monkeypatch):
    """1 M points are decoded without json.loads (seconds and ~1 GB for 8 M; timings are benchmarks)."""
    import analyzer.collectors.promjson as pj

    def no_json(body):
        raise AssertionError("the json fallback was used")

    monkeypatch.setattr(pj, "_decode_matrix_json", no_json)
    m = decode_matrix(_big_matrix(250, 4000))
    assert m.points == 1_000_000 and len(m.labels) == 250
    assert m.samples["series"].to_numpy()[[0, 3999, 4000, -1]].tolist() == [0, 0, 1, 249]


def test_decoding_in_batches_gives_the_same_samples(monkeypatch):
    """The values are parsed a few series at a time (bounded memory); the samples are the same."""
    import analyzer.collectors.promjson as pj

    body = _big_matrix(40, 300)
    whole = decode_matrix(body)
    calls = []
    parse = pj._values_frame
    monkeypatch.setattr(pj, "_values_frame", lambda chunks: calls.append(len(chunks)) or parse(chunks))
    monkeypatch.setattr(pj, "DECODE_BATCH_BYTES", 5_000)  # a batch every one or two series
    batched = decode_matrix(body)
    assert len(calls) > 10 and sum(calls) == 40
    assert batched.labels == whole.labels
    assert batched.samples.equals(whole.samples)
    assert batched.samples.height == 12_000


def test_step_choice():
    notes = _Notes()
    day = 86400.0
    assert _choose_step(14 * day, 60, None, notes) == 300  # about 4032 points per series
    assert _choose_step(3 * day, 300, None, notes) == 300  # never finer than the scrape interval
    assert _choose_step(2 * day, 15, None, notes) == 60
    assert _choose_step(90 * day, 30, None, notes) % 60 == 0
    for span, scrape in ((14 * day, 60), (400 * day, 15), (1 * day, 1)):
        step = _choose_step(span, scrape, None, notes)
        assert span / step + 1 <= MAX_POINTS_PER_SERIES and step % scrape == 0
    assert _choose_step(14 * day, 60, 60, notes) == 60  # asked for: honoured (the range query is split)
    assert _choose_step(14 * day, 60, 90, notes) == 120  # a multiple of the scrape interval
    assert _choose_step(14 * day, 60, 10, notes) == 60 and "finer than the scrape interval" in notes.warnings[-1]


def test_windows_split_without_overlap_or_gaps():
    start, step = 1_700_000_100.0, 300.0
    end = start + step * 20_159
    wins = _windows(start, end, step, 3)
    assert wins[0][0] == start and wins[-1][1] == end
    for (a0, a1), (b0, _b1) in zip(wins, wins[1:]):
        assert b0 == a1 + step
    assert sum(round((b - a) / step) + 1 for a, b in wins) == 20_160
    assert all(round((b - a) / step) + 1 <= MAX_POINTS_PER_SERIES for a, b in wins)


def test_config_never_shows_secrets(monkeypatch):
    monkeypatch.setenv("KUBETUNE_PROMETHEUS_TOKEN", TOKEN)
    config = PrometheusConfig(url="https://user:pw-secret@prom.example:9090/prefix?x=1", username="user",
                              password="pw-secret", headers={"X-Scope-OrgID": "tenant-secret"},
                              cluster_label="cluster=prod")
    assert config.bearer_token() == TOKEN
    for text in (repr(config), str(config), f"{config}"):
        assert TOKEN not in text and "pw-secret" not in text and "tenant-secret" not in text
        assert "<hidden>" in text
    assert safe_url(config.url) == "https://prom.example:9090/prefix"
    assert config.cluster_selector() == ("cluster", "prod")


@pytest.mark.parametrize("kwargs, needle", [
    ({"url": "prometheus:9090"}, "not an http"),
    ({"url": "ftp://x"}, "not an http"),
    ({"url": "http://x", "cluster_label": "no-equals"}, "NAME=VALUE"),
    ({"url": "http://x", "cluster_label": "bad-name=1"}, "NAME=VALUE"),
    ({"url": "http://x", "timeout": 0}, "timeout"),
    ({"url": "http://x", "username": "u"}, "username and a password"),
    ({"url": "http://x", "ca_bundle": "/nonexistent/ca.pem"}, "CA bundle"),
    ({"url": "http://x", "headers": {"Bad Header": "v"}}, "header name"),
])
def test_config_rejects_bad_options(kwargs, needle):
    with pytest.raises(InputError, match=needle):
        PrometheusConfig(**kwargs)


def test_config_error_does_not_echo_a_password_in_the_url():
    with pytest.raises(InputError) as err:
        PrometheusConfig(url="gopher://user:hunter2@host")
    assert "hunter2" not in str(err.value)


def test_promql_selectors_scope_and_escape():
    scope = q.Scope(("cluster", 'we"ird'), ("team-a", "b.c"))
    cpu = q.cpu_usage(scope, 300, 60, "prometheus")
    assert 'container!="",container!="POD"' in cpu
    assert 'cluster="we\\"ird"' in cpu and 'namespace=~"team-a|b\\\\.c"' in cpu
    assert "max by (namespace, pod, container)" in cpu and "[330000ms]" in cpu
    assert "increase(" in q.cpu_usage(scope, 300, 60, "victoriametrics")
    assert "[300000ms])) / 300" in q.cpu_usage(scope, 300, 60, "victoriametrics")
    assert "max_over_time" in q.memory_usage(scope, 300) and "[299999ms]" in q.memory_usage(scope, 300)
    nodes = q.last_exact(q.nodes({q.NODE_CAPACITY, q.NODE_LABELS}), scope, 86400)
    assert "namespace=~" not in nodes and 'cluster="we\\"ird"' in nodes  # nodes are cluster-wide
    assert "max by (node, resource) (last_over_time(kube_node_status_capacity" in nodes
    assert 'label_replace(last_over_time(kube_node_labels{cluster="we\\"ird"}[86400000ms]), "kt", "labels"' in nodes
    assert "namespace=~" not in q.node_presence(scope, {q.NODE_CAPACITY})
    assert q.node_presence(scope, {q.NODE_CAPACITY, q.NODE_INFO}).startswith("group by (node) (kube_node_info{")
    assert q.Scope().match() is None and scope.match() == '{cluster="we\\"ird"}'


def test_gpu_resource_names_read_back():
    assert _resource_name("nvidia_com_gpu") == "nvidia.com/gpu"
    assert _resource_name("nvidia_com_mig_1g_10gb") == "nvidia.com/mig-1g.10gb"
    assert _resource_name("nvidia_com_mig_3g_40gb_me") == "nvidia.com/mig-3g.40gb+me"
    assert _resource_name("nvidia_com_gpu_shared") == "nvidia.com/gpu.shared"
    assert _resource_name(None) is None


@pytest.mark.parametrize("url, gzip", [
    ("http://127.0.0.1:9090", False), ("http://localhost:9090", False), ("http://[::1]:9090", False),
    ("http://prometheus:9090", False),  # a Service's short name
    ("http://prometheus-k8s.monitoring.svc:9090", False), ("http://prom.monitoring.svc.cluster.local:9090", False),
    ("http://10.96.12.7:9090", False), ("http://192.168.1.20:9090", False), ("http://[fd00::5]:9090", False),
    ("https://8.8.8.8", True), ("https://[2a00:1450:4001::1]", True),
])
def test_answers_are_compressed_only_across_public_networks(url, gzip):
    """Gzip costs Prometheus 3-4x the query's own CPU on a bulk answer: off in-cluster and on private
    networks, on for public endpoints; `compress` overrides."""
    from analyzer.collectors.promclient import PrometheusClient

    client = PrometheusClient(PrometheusConfig(url=url))
    assert client.session.headers["Accept-Encoding"] == ("gzip" if gzip else "identity")
    forced = PrometheusClient(PrometheusConfig(url=url, compress=not gzip))
    assert forced.session.headers["Accept-Encoding"] == ("identity" if gzip else "gzip")


def test_specs_fill_is_narrowed_to_the_missed_series_and_escaped():
    from analyzer.collectors.promlast import MAX_NARROW, _narrow

    missed = [{"__name__": q.REQUESTS, "namespace": "a", "pod": 'we"b.c-1'}, {"namespace": "b", "pod": "x-2"}]
    assert _narrow(missed) == ('pod=~"we\\"b\\\\.c-1|x-2"', 'namespace=~"a|b"')
    assert _narrow([{"node": "n1"}, {"node": "n.2"}]) == ('node=~"n\\\\.2|n1"',)  # sorted
    # Too many to name, or nothing to name them by: the family is scanned exactly.
    assert _narrow([{"namespace": "a", "pod": f"p{i}"} for i in range(MAX_NARROW + 1)]) is None
    assert _narrow([{"other": "x"}]) is None


def test_specs_aggregate_like_max_by_on_the_server():
    from analyzer.collectors.promlast import _aggregate, _key

    parts = {p.tag: p for p in q.inventory({q.REQUESTS}) + q.nodes({q.NODE_LABELS})}
    values = {
        # Two kube-state-metrics replicas report the same request: counted once, the larger value.
        _key("request", {"namespace": "a", "pod": "p", "container": "c", "resource": "cpu", "unit": "core",
                         "instance": "ksm-0"}): 0.5,
        _key("request", {"namespace": "a", "pod": "p", "container": "c", "resource": "cpu", "unit": "core",
                         "instance": "ksm-1"}): 0.25,
        _key("request", {"namespace": "a", "pod": "q", "container": "c", "resource": "cpu"}): float("nan"),
        _key("labels", {"__name__": q.NODE_LABELS, "node": "n1", "label_zone": "z1", "instance": "ksm-0"}): 1.0,
        _key("unknown", {"node": "n1"}): 1.0,
    }
    labels, vals = _aggregate(values, parts)
    got = sorted(zip((tuple(sorted(lab.items())) for lab in labels), vals))
    assert got == [
        ((("container", "c"), ("kt", "request"), ("namespace", "a"), ("pod", "p"), ("resource", "cpu"),
          ("unit", "core")), 0.5),
        ((("instance", "ksm-0"), ("kt", "labels"), ("label_zone", "z1"), ("node", "n1")), 1.0),
    ]
