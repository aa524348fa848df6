"""The small pure pieces of the object->frame conversion: labels, selectors, affinity, owners."""

from __future__ import annotations

import pytest

from analyzer.collectors.kube_fields import guess_from_hash
from analyzer.collectors.kube_specs import SpecBuilder
from analyzer.kube import affinity_summary, capacity_type, provider_of, selector_matches


@pytest.mark.parametrize(("labels", "expect"), [
    ({"karpenter.sh/capacity-type": "spot"}, "spot"),
    ({"karpenter.sh/capacity-type": "on-demand"}, "on-demand"),
    ({"karpenter.sh/capacity-type": "reserved"}, "reserved"),
    ({"eks.amazonaws.com/capacityType": "SPOT"}, "spot"),
    ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand"),
    ({"eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"}, "reserved"),
    ({"cloud.google.com/gke-nodepool": "p", "cloud.google.com/gke-spot": "true"}, "spot"),
    ({"cloud.google.com/gke-nodepool": "p", "cloud.google.com/gke-preemptible": "true"}, "spot"),
    ({"cloud.google.com/gke-nodepool": "p"}, "on-demand"),
    ({"kubernetes.azure.com/agentpool": "a", "kubernetes.azure.com/scalesetpriority": "spot"}, "spot"),
    ({"kubernetes.azure.com/agentpool": "a"}, "on-demand"),
    ({"node.kubernetes.io/lifecycle": "spot"}, "spot"),
    ({"lifecycle": "Ec2Spot"}, "spot"),
    ({"kubernetes.io/hostname": "bare-metal-1"}, "unknown"),
])
def test_capacity_type(labels, expect):
    assert capacity_type(labels) == expect


@pytest.mark.parametrize(("provider_id", "labels", "expect"), [
    ("aws:///us-east-1a/i-0abc", {}, "aws"),
    ("gce://proj/us-central1-a/n1", {}, "gcp"),
    ("azure:///subscriptions/x/resourceGroups/y", {}, "azure"),
    (None, {"eks.amazonaws.com/nodegroup": "ng"}, "aws"),
    (None, {"cloud.google.com/gke-nodepool": "p"}, "gcp"),
    (None, {"kubernetes.azure.com/agentpool": "a"}, "azure"),
    (None, {"node.kubernetes.io/instance-type": "m5.2xlarge"}, "aws"),
    (None, {"node.kubernetes.io/instance-type": "p4d.24xlarge"}, "aws"),
    (None, {"node.kubernetes.io/instance-type": "n2-standard-8"}, "gcp"),
    (None, {"node.kubernetes.io/instance-type": "Standard_D8s_v5"}, "azure"),
    ("kind://docker/kind/kind-control-plane", {"node.kubernetes.io/instance-type": "k3s"}, "unknown"),
])
def test_provider(provider_id, labels, expect):
    assert provider_of(provider_id, labels) == expect


def test_selector_semantics():
    labels = {"app": "web", "tier": "front"}
    assert selector_matches({}, labels)  # policy/v1: empty selects every pod
    assert not selector_matches(None, labels)
    assert selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "api"}}, labels)
    exprs = [({"key": "tier", "operator": "In", "values": ["front", "edge"]}, True),
             ({"key": "tier", "operator": "NotIn", "values": ["front"]}, False),
             ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),
             ({"key": "app", "operator": "Exists"}, True),
             ({"key": "app", "operator": "DoesNotExist"}, False),
             ({"key": "app", "operator": "Gt", "values": ["1"]}, False)]
    for expr, expect in exprs:
        assert selector_matches({"matchExpressions": [expr]}, labels) is expect, expr


def test_affinity_summary():
    term = {"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}
    assert affinity_summary(None) is None
    assert affinity_summary({"podAntiAffinity": {"x": 1}}) is None
    assert affinity_summary({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term, {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}) == (
        "required: karpenter.sh/capacity-type In [spot] or gpu DoesNotExist")
    assert affinity_summary({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a", "b"]}]}}]}}) == (
        "required: karpenter.sh/capacity-type In [spot]; preferred: topology.kubernetes.io/zone In [a, b]")


def test_guess_owner_from_template_hash():
    assert guess_from_hash("web-5d9f8b7c6d", "5d9f8b7c6d", None) == ("Deployment", "web")
    assert guess_from_hash("api-6c8d9e7f5b", None, "6c8d9e7f5b") == ("Rollout", "api")
    assert guess_from_hash("orphan", None, None) == ("ReplicaSet", "orphan")


def test_relisting_a_kind_forgets_its_first_attempt():
    b = SpecBuilder("test")
    node = {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}}}
    b.add("nodes", [node])
    b.start("nodes")
    b.add("nodes", [node, {**node, "metadata": {"name": "n2"}}])
    assert sorted(b.finish()["nodes"]["node"].cast(str)) == ["n1", "n2"]


def test_quantities_are_memoised_and_exact():
    b = SpecBuilder("test")
    pods = [{"metadata": {"name": f"p{i}", "namespace": "a"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": q, "memory": m}}}]}}
        for i, (q, m) in enumerate([("100m", "1Ki"), ("0.1", "1e3"), ("1500u", "1.5Gi"), ("2", "129M"), ("100m", "1Ki")])]
    b.add("pods", pods)
    c = b.finish()["containers"].sort("pod")
    assert c["cpu_request"].to_list() == [0.1, 0.1, 0.002, 2.0, 0.1]  # 1500u rounds up to 2m
    assert c["memory_request"].to_list() == [1024, 1000, 1610612736, 129_000_000, 1024]


def test_pod_template_annotations_reach_the_workload_and_win():
    """cluster-autoscaler's safe-to-evict is a pod annotation: set on the template, spot must see it."""
    b = SpecBuilder("test")
    dep = {"metadata": {"name": "web", "namespace": "a", "annotations": {
        "kubetune.io/spot": "true", "deployment.kubernetes.io/revision": "3",
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}, "annotations": {
            "cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "kubetune.io/spot": "false"}},
            "spec": {"containers": [{"name": "c"}]}}}}
    b.add("deployments", [dep])
    w = b.finish()["workloads"].row(0, named=True)
    got = {kv["key"]: kv["value"] for kv in w["annotations"]}
    assert got == {"deployment.kubernetes.io/revision": "3", "kubetune.io/spot": "false",
                   "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
