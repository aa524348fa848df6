"""Faults: RBAC gaps, expired continue tokens, server errors, stalls, bad credentials, bad input.

Each fault either degrades to a warning that says what is missing and which RBAC rule to
grant, or ends in one ``KubetuneError``/``InputError`` sentence; the token in the kubeconfig
never appears in any message, log line or output.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from analyzer.collectors.kube_api import KubeAPI, connect
from analyzer.collectors.kubernetes import KubeConfig, collect_kubernetes
from analyzer.errors import InputError, KubetuneError
from tests.support import kube_fixtures as F
from tests.support.kube_api_server import Faults, KubeAPIServer, write_kubeconfig

TOKEN = "kt-SECRET-7f3a9c1e5b2d4f6a8c0e-token"
FAST = {"retries": 1, "backoff": 0.01, "timeout": (2.0, 2.0)}


@pytest.fixture
def faults():
    return Faults()


@pytest.fixture
def server(faults):
    with KubeAPIServer(F.objects(), faults) as srv:
        yield srv


@pytest.fixture
def kubeconfig(tmp_path, server):
    return write_kubeconfig(tmp_path / "kubeconfig", server.url, token=TOKEN)


def collect(kubeconfig, **kw):
    return collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, **{**FAST, **kw}))


def workload(snap, name):
    return snap.workloads.filter(snap.workloads["workload"].cast(str) == name).to_dicts()[0]


# -- RBAC gaps ----------------------------------------------------------------------------


def test_forbidden_kind_is_skipped_with_the_rule_to_grant(server, faults, kubeconfig):
    faults.forbid = {"poddisruptionbudgets", "horizontalpodautoscalers"}
    snap = collect(kubeconfig)
    assert {"poddisruptionbudgets", "horizontalpodautoscalers"} <= set(snap.manifest.absent)
    text = " ".join(snap.manifest.warnings)
    assert "no permission to list poddisruptionbudgets.policy (403 Forbidden)" in text
    assert "grant verb 'list' on resource 'poddisruptionbudgets' in apiGroup 'policy'" in text
    assert "horizontalpodautoscalers.autoscaling" in text and "apiGroup 'autoscaling'" in text
    web = workload(snap, "web")
    assert web["pdb_name"] is None and web["hpa_name"] is None
    assert snap.containers.height == 23  # everything else is there


def test_forbidden_replicasets_place_pods_by_template_hash(server, faults, kubeconfig):
    faults.forbid = {"replicasets"}
    snap = collect(kubeconfig)
    assert "replicasets" in snap.manifest.absent
    assert any("pod-template-hash" in w for w in snap.manifest.warnings)
    pods = {r["pod"]: (r["workload_kind"], r["workload"]) for r in snap.containers.to_dicts()}
    assert pods["web-5d9f8b7c6d-abcde"] == ("Deployment", "web")
    assert pods["canary-6c8d9e7f5b-p1q2r"] == ("Rollout", "canary")
    assert workload(snap, "web")["hpa_name"] == "web"


def test_forbidden_nodes_and_namespaces(server, faults, kubeconfig):
    faults.forbid = {"nodes", "namespaces"}
    snap = collect(kubeconfig)
    assert snap.nodes.is_empty() and snap.namespaces.is_empty()
    assert {"nodes", "namespaces"} <= set(snap.manifest.absent)
    snap = collect(kubeconfig, namespaces=("shop",))
    assert any("no permission to get namespaces in namespace shop" in w for w in snap.manifest.warnings)


def test_forbidden_pods_is_an_error(server, faults, kubeconfig):
    faults.forbid = {"pods"}
    with pytest.raises(InputError, match=r"no permission to list pods in all namespaces .* --namespace"):
        collect(kubeconfig)
    with pytest.raises(InputError, match="no permission to list pods in namespace shop"):
        collect(kubeconfig, namespaces=("shop",))


def test_rollouts_crd_missing_is_quiet(server, faults, kubeconfig):
    faults.missing = {"rollouts"}
    snap = collect(kubeconfig)
    assert snap.manifest.warnings == [] and "rollouts" not in snap.manifest.absent
    canary = workload(snap, "canary")  # known from its pods' owner chain
    assert (canary["workload_kind"], canary["replicas"]) == ("Rollout", 2)


def test_builtin_kind_missing_is_a_warning(server, faults, kubeconfig):
    faults.missing = {"horizontalpodautoscalers"}
    snap = collect(kubeconfig)
    assert any("does not serve autoscaling/v2 horizontalpodautoscalers" in w for w in snap.manifest.warnings)


# -- paging and server trouble ---------------------------------------------------------------


def test_410_on_continue_relists_from_scratch(server, faults, kubeconfig):
    faults.gone = {"pods": 1}
    snap = collect(kubeconfig, page_size=4)
    pods = server.requests_for("pods")
    firsts = [q for q in pods if "continue" not in q]
    assert len(firsts) == 2  # the list started again
    assert snap.containers.select(["namespace", "pod", "container"]).is_duplicated().sum() == 0
    assert snap.containers["pod"].n_unique() == 14


def test_410_forever_is_an_error(server, faults, kubeconfig):
    faults.gone = {"pods": 100}
    with pytest.raises(KubetuneError, match=r"kept expiring the list of pods \(410 Gone\)"):
        collect(kubeconfig, page_size=4, relists=2)


def test_500_is_retried(server, faults, kubeconfig):
    faults.fail = {"pods": 2}
    snap = collect(kubeconfig, retries=2)
    assert snap.containers.height == 23
    assert len(server.requests_for("pods")) == 3


def test_500_that_persists_is_an_error(server, faults, kubeconfig):
    faults.fail = {"deployments": 10}
    with pytest.raises(KubetuneError, match=r"answered 500 to GET /apis/apps/v1/deployments 2 times: etcdserver"):
        collect(kubeconfig)


def test_stall_times_out(server, faults, kubeconfig):
    faults.stall = {"pods": 3.0}
    t0 = time.perf_counter()
    with pytest.raises(KubetuneError, match=r"did not answer GET /api/v1/pods within 0.3 s \(1 attempts\)"):
        collect(kubeconfig, timeout=(1.0, 0.3), retries=0)
    assert time.perf_counter() - t0 < 2.5


def test_unreachable_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}", token=TOKEN)
    with pytest.raises(KubetuneError) as err:
        collect(kc)
    assert str(err.value) == f"cannot reach the Kubernetes API server at http://127.0.0.1:{port} (connection refused)."


def test_expired_token(server, faults, kubeconfig):
    faults.token = "the-token-the-server-wants"
    with pytest.raises(InputError, match=r"refused the credentials \(401 Unauthorized\)") as err:
        collect(kubeconfig)
    assert TOKEN not in str(err.value)


def test_garbage_answer(server, faults, kubeconfig):
    faults.garbage = {"statefulsets"}
    with pytest.raises(KubetuneError, match="answered GET /apis/apps/v1/statefulsets with something that is not JSON"):
        collect(kubeconfig)


def test_malformed_object_names_it(tmp_path):
    objs = F.objects()
    bad = next(o for o in objs if o["metadata"]["name"] == "debug")
    bad["spec"]["containers"][0]["resources"]["limits"]["memory"] = "lots"
    with KubeAPIServer(objs) as srv:
        kc = write_kubeconfig(tmp_path / "kc", srv.url)
        with pytest.raises(InputError) as err:
            collect(kc)
    assert str(err.value).endswith("Pod shop/debug is malformed (container shell memory limit is 'lots', "
                                   "not a Kubernetes quantity).")


def test_malformed_shapes(tmp_path):
    for mutate, expect in (
        (lambda p: p["spec"].update(containers={"not": "a list"}), "spec.containers is not a list"),
        (lambda p: p["metadata"].update(labels={"a": 1}), "metadata.labels 'a' is not a string"),
        (lambda p: p["metadata"].pop("namespace"), "has no metadata.namespace"),
    ):
        objs = F.objects()
        mutate(next(o for o in objs if o["metadata"]["name"] == "debug"))
        with KubeAPIServer(objs) as srv:
            kc = write_kubeconfig(tmp_path / "kc", srv.url)
            with pytest.raises(InputError, match=expect):
                collect(kc)


# -- configuration ---------------------------------------------------------------------------


def test_kubeconfig_problems(tmp_path, server):
    with pytest.raises(InputError, match="does not exist; pass --kubeconfig PATH or --in-cluster"):
        collect(tmp_path / "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"clusters: [\n  users:\n    token: {TOKEN}\n  - : : ]\n")
    with pytest.raises(InputError, match=r"is not valid YAML \(line \d+\)") as err:
        collect(bad)
    assert TOKEN not in str(err.value)
    kc = write_kubeconfig(tmp_path / "kc", server.url, token=TOKEN, extra_contexts=["staging"])
    with pytest.raises(InputError, match="has no context 'prod'; it has loopback, staging"):
        collect(kc, context="prod")
    snap = collect(kc, context="staging")
    assert snap.manifest.cluster == "loopback-cluster"
    with pytest.raises(InputError, match="either --in-cluster or --kubeconfig"):
        KubeConfig(in_cluster=True, kubeconfig=kc)


def test_in_cluster_outside_a_pod(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match="KUBERNETES_SERVICE_HOST/PORT are not set"):
        collect_kubernetes(KubeConfig(in_cluster=True))


def test_in_cluster_service_account(monkeypatch, tmp_path):
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text(TOKEN)
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBETUNE_CLUSTER", "prod-eu")
    conn = connect(KubeConfig(in_cluster=True))
    assert (conn.host, conn.cluster) == ("https://10.96.0.1:443", "prod-eu")
    assert conn.scrub(f"Bearer {TOKEN}") == "Bearer ***"
    assert TOKEN not in repr(conn) and TOKEN not in repr(KubeConfig(in_cluster=True))


# -- secrecy -------------------------------------------------------------------------------


def test_token_never_printed_or_logged(server, faults, kubeconfig, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    texts = []
    snap = collect(kubeconfig)
    texts += [json.dumps(snap.manifest.to_json()), repr(KubeConfig(kubeconfig=kubeconfig))]
    for setup in ({"token": "other"}, {"forbid": {"pods"}}, {"garbage": {"pods"}}, {"fail": {"pods": 9}}):
        for k, v in setup.items():
            setattr(faults, k, v)
        with pytest.raises(KubetuneError) as err:
            collect(kubeconfig)
        texts.append(str(err.value))
        faults.__init__()
    out, errout = capfd.readouterr()
    texts += [out, errout, caplog.text]
    assert server.seen, "the server was asked"
    for text in texts:
        assert TOKEN not in text


def test_token_not_in_a_separate_process_output(server, faults, tmp_path):
    """A fresh interpreter (no pytest capture): stdout, stderr and the error text stay clean."""
    kc = write_kubeconfig(tmp_path / "kc", server.url, token=TOKEN)
    faults.token = "something-else"
    script = textwrap.dedent(f"""
        import logging
        logging.basicConfig(level=logging.DEBUG)
        from analyzer.collectors.kubernetes import KubeConfig, collect_kubernetes
        from analyzer.errors import KubetuneError
        try:
            collect_kubernetes(KubeConfig(kubeconfig={str(kc)!r}, retries=0))
        except KubetuneError as exc:
            print("error:", exc)
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "error: the API server at" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_reader_counts_requests(server, kubeconfig):
    api = KubeAPI(KubeConfig(kubeconfig=kubeconfig))
    try:
        assert api.version() == "v1.33.1"
        assert api.requests == 1
    finally:
        api.close()


def test_malformed_template_and_selector(tmp_path):
    for name, kind, mutate, expect in (
        ("web", "Deployment", lambda o: o["spec"]["template"]["spec"].update(tolerations="all"),
         "Deployment shop/web is malformed (template tolerations is not a list)"),
        ("web-pdb", "PodDisruptionBudget", lambda o: o["spec"]["selector"].update(matchLabels=["app"]),
         "PodDisruptionBudget shop/web-pdb is malformed (spec.selector.matchLabels is not an object)"),
    ):
        objs = F.objects()
        mutate(next(o for o in objs if o["metadata"]["name"] == name and o["kind"] == kind))
        with KubeAPIServer(objs) as srv:
            kc = write_kubeconfig(tmp_path / "kc", srv.url)
            with pytest.raises(InputError) as err:
                collect(kc)
        assert str(err.value).endswith(expect + "."), str(err.value)


def test_410_in_a_later_namespace_keeps_the_earlier_ones(server, faults, kubeconfig):
    faults.gone = {"pods": 1}
    snap = collect(kubeconfig, page_size=4, namespaces=("data", "shop"))
    assert set(snap.containers["namespace"].cast(str)) == {"data", "shop"}
    assert snap.containers["pod"].n_unique() == 11
    assert snap.containers.select(["namespace", "pod", "container"]).is_duplicated().sum() == 0
    assert len([q for q in server.requests_for("pods") if "continue" not in q]) == 4  # data, shop, data, shop


def test_410_on_a_first_page_is_an_error(server, faults, kubeconfig, monkeypatch):
    from analyzer.collectors import kube_api

    def gone(self, path, call):
        raise kube_api.Gone("")
    monkeypatch.setattr(kube_api.KubeAPI, "_request", gone)
    api = kube_api.KubeAPI(KubeConfig(kubeconfig=kubeconfig))
    from analyzer.collectors.kube_fields import BY_RESOURCE
    from analyzer.collectors.kube_specs import SpecBuilder
    with pytest.raises(KubetuneError, match="answered 410 Gone to GET /api/v1/pods"):
        api.read_kind(BY_RESOURCE["pods"], SpecBuilder())
