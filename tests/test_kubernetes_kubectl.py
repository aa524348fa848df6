"""Offline input (``kubectl get ... -A -o json``): the same frames as the API, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from analyzer import yamlio
from analyzer.collectors.kubernetes import KubeConfig, collect_from_kubectl, collect_kubernetes
from analyzer.errors import InputError
from analyzer.schema import FRAMES
from analyzer.snapshot import frames_equal
from tests.support import kube_fixtures as F
from tests.support.kube_api_server import RESOURCES, KubeAPIServer, items_by_resource, write_kubeconfig


AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def from_api(tmp_path_factory):
    with KubeAPIServer(F.objects()) as srv:
        kc = write_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig", srv.url)
        return collect_kubernetes(KubeConfig(kubeconfig=kc, page_size=5), collected_at=AT)


def same_frames(a, b) -> None:
    for name in FRAMES:
        assert frames_equal(name, getattr(a, name), getattr(b, name)), name


def test_kind_list_file_gives_the_api_frames(tmp_path, from_api):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(F.kubectl_list()))
    snap = collect_from_kubectl(path, collected_at=AT)
    same_frames(snap, from_api)
    assert snap.manifest.source == "kubectl cluster.json (47 objects)"
    assert snap.manifest.absent == ["usage", "gpus"] and snap.manifest.warnings == []


def test_directory_of_typed_lists_and_yaml(tmp_path, from_api):
    """API-style ``PodList`` files (items without kind) and YAML files read the same."""
    for resource, items in items_by_resource(F.objects()).items():
        group, version, kind, _ = RESOURCES[resource]
        bare = [{k: v for k, v in it.items() if k not in ("kind", "apiVersion")} for it in items]
        doc = {"apiVersion": f"{group}/{version}" if group else version, "kind": f"{kind}List",
               "metadata": {"resourceVersion": "42"}, "items": bare}
        if resource in ("nodes", "namespaces"):
            (tmp_path / f"{resource}.yaml").write_text(yamlio.dump(doc))
        else:
            (tmp_path / f"{resource}.json").write_text(json.dumps(doc))
    (tmp_path / "notes.txt").write_text("not read")
    same_frames(collect_from_kubectl(tmp_path, collected_at=AT), from_api)


def test_namespace_filter_offline(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(F.kubectl_list()))
    snap = collect_from_kubectl(path, namespaces=["data"])
    assert set(snap.workloads["namespace"].cast(str)) == {"data"}
    snap = collect_from_kubectl(path, include_kube_system=True)
    assert "kube-system" in set(snap.containers["namespace"].cast(str))


def test_partial_export_is_flagged(tmp_path):
    objs = [o for o in F.objects() if o["kind"] not in ("Node", "Namespace")]
    objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}})
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(F.kubectl_list(objs)))
    snap = collect_from_kubectl(path)
    assert {"nodes", "namespaces"} <= set(snap.manifest.absent)
    text = " ".join(snap.manifest.warnings)
    assert "holds no Node objects" in text and "ConfigMap (1)" in text


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("{not json", r"is not valid JSON \(line 1, column 2\)"),
    ("[1, 2]", "does not hold Kubernetes objects"),
    ('{"hello": 1}', "neither a Kubernetes list nor an object"),
    ('{"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "s"}}]}',
     "holds no objects kubetune reads .* kinds found: Secret"),
    ('{"kind": "List", "items": [{"kind": "Pod", "metadata": {"namespace": "a"}}]}', "a Pod has no metadata.name"),
    ('{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p", "namespace": "a", "creationTimestamp": '
     '"2026-11-02"}, "status": {"startTime": "yesterday"}}]}', "pod startTime 'yesterday' is not an RFC 3339 time"),
])
def test_bad_input(tmp_path, content, message):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        collect_from_kubectl(path)


def test_empty_directory(tmp_path):
    with pytest.raises(InputError, match="holds no .json or .yaml files"):
        collect_from_kubectl(tmp_path)
