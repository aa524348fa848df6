"""Patches checked against the user's --base before they are written: container order from the
base, and patches that could not apply (workload or container missing) set aside, so `kubectl
kustomize` builds. Real kubectl renders the base and builds the result."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess

import pytest

from analyzer import yamlio
from analyzer.errors import InputError
from analyzer.simulator.kube_objects import kube_lists
from recommenders.base_manifests import read_base, resolve_base
from recommenders.patches import pod_spec_path, write_patches
from tests.support.cli_helpers import assert_clean_error, run_cli


KUBECTL = shutil.which("kubectl")
LISTS = ("deployments", "statefulsets", "daemonsets", "jobs", "cronjobs")


def _spec(doc):
    for key in pod_spec_path(doc["kind"]):
        doc = doc[key]
    return doc


def _patched_keys(sample_recommendations):
    return sorted({(r.target.namespace, r.target.workload_kind, r.target.workload)
                   for r in sample_recommendations.recommendations if r.pod_spec_patch})


def _items(snap):
    lists = kube_lists(snap)
    return [copy.deepcopy(i) for k in LISTS for i in lists[k]["items"]]


def _find(items, key):
    return next(i for i in items if (i["metadata"]["namespace"], i["kind"], i["metadata"]["name"]) == key)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (the test command installs it)")
def test_base_order_wins_and_unmatched_patches_are_set_aside(tmp_path, sample_snapshot, sample_recommendations):
    items = _items(sample_snapshot)
    keys = _patched_keys(sample_recommendations)
    with_init = next(k for k in keys if sample_recommendations.container_order.get(k, {}).get("initContainers"))
    gone, renamed = [k for k in keys if k != with_init][:2]
    # the base has an init container the snapshot never saw, first; one workload is absent; one
    # workload's containers have other names than the snapshot's
    spec = _spec(_find(items, with_init))
    spec["initContainers"].insert(0, {"name": "aaa-migrate", "image": "busybox:1.36"})
    items.remove(_find(items, gone))
    for c in _spec(_find(items, renamed))["containers"]:
        c["name"] = "renamed-" + c["name"]
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "workloads.yaml").write_text(yamlio.dump_all(items))
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [workloads.yaml]\n")

    written = write_patches(sample_recommendations, tmp_path / "patches", base="../base")
    assert len(written.unmatched) == 2
    assert any("not in the base" in w and gone[2] in w for w in written.unmatched)
    assert any("has no container" in w and renamed[2] in w for w in written.unmatched)
    kust = yamlio.load((tmp_path / "patches" / "kustomization.yaml").read_text())
    listed = {p["path"] for p in kust["patches"]}
    aside = {p.name for p in (tmp_path / "patches" / "unmatched").glob("*.yaml")}
    assert len(aside) == 2 and not listed & aside
    assert (tmp_path / "patches" / "unmatched" / next(iter(aside))).read_text().startswith("# Not in kustomization.yaml:")
    assert json.loads((tmp_path / "patches" / "recommendations.json").read_text())["unmatched"] == written.unmatched

    built = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "patches")], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    docs = [d for d in yamlio.load_all(built.stdout) if d]
    out = _spec(_find(docs, with_init))
    assert [c["name"] for c in out["initContainers"]] == [c["name"] for c in spec["initContainers"]]
    assert out["initContainers"][0] == {"name": "aaa-migrate", "image": "busybox:1.36"}  # untouched, still first
    assert all("image" in c for d in docs for key in ("containers", "initContainers") for c in _spec(d).get(key, []))


def test_read_base_plain_directory_file_and_bad_input(tmp_path):
    d = tmp_path / "m"
    (d / "sub").mkdir(parents=True)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "b"}, {"name": "a"}]}}}}
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "ops"},
          "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}}}
    (d / "web.yaml").write_text(yamlio.dump(dep))
    (d / "sub" / "list.yml").write_text(yamlio.dump({"apiVersion": "v1", "kind": "List", "items": [cj]}))
    (d / "notes.txt").write_text("not yaml: [")
    base = read_base(d)
    assert base.order("any-namespace", "Deployment", "web") == {"containers": ["b", "a"], "initContainers": ["init"]}
    assert base.order("ops", "CronJob", "nightly")["containers"] == ["job"]
    assert base.order("other", "CronJob", "nightly") is None
    assert base.missing("x", "Deployment", "web", {"containers": {"a"}}) is None
    assert "no init container zz" in base.missing("x", "Deployment", "web", {"initContainers": {"zz"}})
    assert read_base(d / "web.yaml").order("x", "Deployment", "web") is not None

    (d / "broken.yaml").write_text("kind: Deployment\nmetadata: {name: [\n")
    with pytest.raises(InputError, match=r"broken.yaml is neither valid JSON nor valid YAML at line \d"):
        read_base(d)
    with pytest.raises(InputError, match="does not exist"):
        read_base(tmp_path / "nope")
    assert resolve_base(tmp_path / "patches", "../base") == tmp_path / "base"
    assert resolve_base(tmp_path / "patches", "https://github.com/org/repo//base?ref=main") is None


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
def test_a_base_kustomize_cannot_build_is_a_clear_error(tmp_path, sample_recommendations):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(InputError, match="kubectl kustomize .* failed"):
        write_patches(sample_recommendations, tmp_path / "patches", base="../base")
    assert not (tmp_path / "patches").exists()


def test_cli_refuses_a_missing_base_before_working(tmp_path):
    res = run_cli("recommend", "--patches", str(tmp_path / "p"), "--base", "../nowhere")
    assert_clean_error(res, 2, "--base ../nowhere does not exist")
    assert not (tmp_path / "p").exists()
