"""deploy/base/rbac.yaml grants exactly what the collector reads; the test fixtures are real objects."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes import client as k8s
from kubernetes_validate.utils import ValidationError

from analyzer import yamlio
from analyzer.collectors.kube_fields import KINDS
from tests.support import kube_fixtures as F
from tests.support.kube_api_server import KubeAPIServer

RBAC = Path(__file__).resolve().parent.parent / "deploy" / "base" / "rbac.yaml"
K8S_VERSION = "1.33"


def docs() -> list[dict]:
    return [d for d in yamlio.load_all(RBAC.read_text()) if d]


def test_rbac_manifests_validate():
    kinds = []
    for doc in docs():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds.append(doc["kind"])
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]


def test_cluster_role_is_exactly_what_the_collector_reads():
    role = next(d for d in docs() if d["kind"] == "ClusterRole")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    needed = {(k.group, k.resource, "list") for k in KINDS} | {("", "namespaces", "get")}
    assert granted == needed
    assert all(set(rule["verbs"]) <= {"get", "list"} for rule in role["rules"])
    assert not any("*" in rule["resources"] or "*" in rule["apiGroups"] for rule in role["rules"])


def test_binding_ties_role_to_service_account():
    sa, role, binding = docs()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": sa["metadata"]["namespace"]}]


def test_fixture_objects_validate():
    checked = 0
    for obj in F.objects():
        if obj["kind"] == "Rollout":  # a CRD: not in the Kubernetes OpenAPI schemas
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        checked += 1
    assert checked == 46


def test_validation_would_catch_a_fake():
    bad = F.pods()[0]
    bad["spec"]["containers"][0]["resources"] = {"requests": {"cpu": ["not", "a", "quantity"]}}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_client_models_accept_the_loopback_answers():
    """The client's own deserialisation (the path the collector skips for speed) reads every list."""
    with KubeAPIServer(F.objects()) as srv:
        cfg = k8s.Configuration(host=srv.url)
        with k8s.ApiClient(cfg) as api:
            pods = k8s.CoreV1Api(api).list_pod_for_all_namespaces(limit=100)
            assert len(pods.items) == 15
            assert pods.items[0].spec.containers[0].resources.requests is not None
            assert len(k8s.AppsV1Api(api).list_deployment_for_all_namespaces().items) == 4
            assert len(k8s.BatchV1Api(api).list_cron_job_for_all_namespaces().items) == 1
            hpas = k8s.AutoscalingV2Api(api).list_horizontal_pod_autoscaler_for_all_namespaces().items
            assert hpas[0].spec.metrics[0].resource.target.average_utilization == 70
            assert len(k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces().items) == 2
            assert len(k8s.CoreV1Api(api).list_node().items) == 8
            rollouts = k8s.CustomObjectsApi(api).list_cluster_custom_object("argoproj.io", "v1alpha1", "rollouts")
            assert rollouts["items"][0]["metadata"]["name"] == "canary"
