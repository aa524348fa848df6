"""Emitted patches, built by the real `kubectl kustomize` over the simulator's manifests: they apply,
validate against the Kubernetes OpenAPI schemas, and change nothing but resources and placement."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from analyzer import yamlio
from analyzer.simulator.kube_objects import kube_lists
from recommenders.patches import merge_fragments, pod_spec_path, write_patches
from tests.support.cli_helpers import assert_clean_error, run_cli


KUBECTL = shutil.which("kubectl")
WORKLOAD_LISTS = ("deployments", "statefulsets", "daemonsets", "jobs", "cronjobs")
ALLOWED = {"nodeSelector", "affinity", "tolerations"}


def _base(tmp: Path, snap) -> dict[tuple, dict]:
    lists = kube_lists(snap)
    items = [i for k in WORKLOAD_LISTS for i in lists[k]["items"]]
    (tmp / "base").mkdir()
    (tmp / "base" / "workloads.yaml").write_text(yamlio.dump_all(items))
    (tmp / "base" / "kustomization.yaml").write_text("resources: [workloads.yaml]\n")
    return {(i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]): i for i in items}


def _diff(a, b, path=()):
    """Paths where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff(a.get(k), b.get(k), (*path, k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _diff(x, y, (*path, i))
        return out
    return [] if a == b else [path]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (the test command installs it)")
def test_kustomize_builds_valid_manifests_changing_only_resources_and_placement(tmp_path, sample_snapshot, sample_recommendations):
    assert sample_recommendations.recommendations, "the sample_snapshot must produce recommendations"
    base = _base(tmp_path, sample_snapshot)
    written = write_patches(sample_recommendations, tmp_path / "patches", base="../base")
    assert written.files and not written.unmatched and (tmp_path / "patches" / "kustomization.yaml").exists()
    built = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "patches")], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    docs = [d for d in yamlio.load_all(built.stdout) if d]
    assert len(docs) == len(base)
    version = kubernetes_validate.latest_version()
    patched = {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs}
    changed = set()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        key = (doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"])
        depth = len(pod_spec_path(doc["kind"]))
        for path in _diff(base[key], doc):
            changed.add(key)
            assert tuple(path[:depth]) == tuple(pod_spec_path(doc["kind"])), (key, path)
            rest = path[depth:]
            ok = rest[0] in ALLOWED or (rest[0] in ("containers", "initContainers") and rest[2] == "resources")
            assert ok, (key, path)
    assert patched == set(base)
    targets = {(r.target.workload_kind, r.target.namespace, r.target.workload) for r in sample_recommendations.recommendations}
    assert changed and changed <= targets
    for extra in (tmp_path / "patches").glob("cluster/*.yaml"):
        kubernetes_validate.validate(yamlio.load(extra.read_text()), version, strict=True)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
def test_proposed_values_land_in_the_built_manifests(tmp_path, sample_snapshot, sample_recommendations):
    _base(tmp_path, sample_snapshot)
    write_patches(sample_recommendations, tmp_path / "patches", base="../base")
    built = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "patches")], capture_output=True, text=True, check=True)
    docs = {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]): d for d in yamlio.load_all(built.stdout) if d}
    checked = 0
    for r in sample_recommendations.recommendations:
        if r.kind != "rightsize" or r.resource not in ("cpu", "memory"):
            continue
        spec = docs[(r.target.workload_kind, r.target.namespace, r.target.workload)]
        for key in pod_spec_path(r.target.workload_kind):
            spec = spec[key]
        lists = spec.get("containers", []) + spec.get("initContainers", [])
        c = next(c for c in lists if c["name"] == r.target.container)
        want = r.pod_spec_patch[next(iter(r.pod_spec_patch))][0]["resources"]["requests"][r.resource]
        assert c["resources"]["requests"][r.resource] == want
        checked += 1
    assert checked > 10


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
def test_components_without_base_build_in_any_overlay(tmp_path, sample_snapshot, sample_recommendations):
    """`recommend --patches DIR` without --base: DIR (or one namespace under it) is a Component an
    overlay lists under `components:`; workloads the overlay lacks are no-ops, not build errors."""
    base = _base(tmp_path, sample_snapshot)
    write_patches(sample_recommendations, tmp_path / "patches")
    alone = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "patches")], capture_output=True, text=True, check=False)
    assert alone.returncode == 0, alone.stderr  # builds on its own too (no resources: nothing to patch)
    targets = {(r.target.workload_kind, r.target.namespace, r.target.workload)
               for r in sample_recommendations.recommendations if r.pod_spec_patch}
    # an overlay with only some of the workloads (half of the patched ones are missing)
    kept = [i for k, i in sorted(base.items()) if k not in targets or len(k[2]) % 2 == 0]
    (tmp_path / "some").mkdir()
    (tmp_path / "some" / "workloads.yaml").write_text(yamlio.dump_all(kept))
    (tmp_path / "some" / "kustomization.yaml").write_text("resources: [workloads.yaml]\n")
    for name, resources, components in (("full", "../base", "../patches"), ("partial", "../some", "../patches"),
                                        ("one-ns", "../base", None)):
        overlay = tmp_path / name
        overlay.mkdir()
        if components is None:
            ns = sorted((tmp_path / "patches" / "namespaces").iterdir())[0]
            components = f"../patches/namespaces/{ns.name}"
        (overlay / "kustomization.yaml").write_text(yamlio.dump(
            {"resources": [resources], "components": [components]}))
        built = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, check=False)
        assert built.returncode == 0, (name, built.stderr)
        docs = {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]): d
                for d in yamlio.load_all(built.stdout) if d}
        assert set(docs) == ({(i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in kept}
                             if name == "partial" else set(base))
        changed = {k for k, d in docs.items() if _diff(base[k], d)}
        if name == "one-ns":
            assert changed and {k[1] for k in changed} == {ns.name}
        else:
            assert changed == targets & set(docs), name


def test_patch_files_open_with_plain_word_evidence(tmp_path, sample_recommendations):
    write_patches(sample_recommendations, tmp_path / "p")
    patches = sorted((tmp_path / "p" / "namespaces").glob("*/*.yaml"))
    text = next(p for p in patches if p.name != "kustomization.yaml").read_text()
    assert text.startswith("# kubetune recommendation") and "why:" in text and "/month" in text
    top = yamlio.load((tmp_path / "p" / "kustomization.yaml").read_text())
    assert top["kind"] == "Component" and "resources" not in top
    per_ns = [yamlio.load((tmp_path / "p" / c / "kustomization.yaml").read_text()) for c in top["components"]]
    assert sum(len(k["patches"]) for k in per_ns) == len([p for p in patches if p.name != "kustomization.yaml"])
    assert all(set(e["target"]) >= {"kind", "name", "namespace"} for k in per_ns for e in k["patches"])
    saved = json.loads((tmp_path / "p" / "recommendations.json").read_text())
    assert saved["schema_version"] == 1 and len(saved["items"]) == len(sample_recommendations.recommendations)


def test_merge_fragments_merges_containers_by_name_and_replaces_other_lists():
    a = {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}], "tolerations": [{"key": "a"}]}
    b = {"containers": [{"name": "app", "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}},
                        {"name": "side", "resources": {"requests": {"cpu": "10m"}}}], "tolerations": [{"key": "b"}]}
    m = merge_fragments(a, b)
    assert m["containers"][0] == {"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                                               "limits": {"memory": "64Mi"}}}
    assert m["containers"][1]["name"] == "side" and m["tolerations"] == [{"key": "b"}]


def test_cli_recommend_json_records_and_patches(tmp_path):
    res = run_cli("recommend", "--format", "json", "--patches", tmp_path / "out", "--kind", "rightsize")
    assert res.code == 0, res.err
    rows = json.loads(res.out)["items"]
    need = {"namespace", "workload_kind", "workload", "container", "kind", "resource", "current_request",
            "proposed_request", "current_limit", "proposed_limit", "monthly_saving_usd", "confidence", "reason",
            "evidence"}
    assert rows and need <= set(rows[0])
    assert all(r["kind"] in ("rightsize", "raise-memory") for r in rows)
    assert (tmp_path / "out" / "kustomization.yaml").exists()
    again = run_cli("recommend", "--patches", tmp_path / "out", "--kind", "rightsize")
    assert_clean_error(again, 2, "already exists")


def test_cli_recommend_table_and_bad_usage():
    res = run_cli("recommend", "--kind", "rightsize", "--skipped")
    assert res.code == 0 and "recommendation(s), net $" in res.out and "skip:rightsize" in res.out
    assert_clean_error(run_cli("recommend", "--risk", "0.9"), 2, "--risk must be between 0 and 0.5")
    assert_clean_error(run_cli("recommend", "--kind", "magic"), 2, "unknown recommendation kind")
    assert_clean_error(run_cli("recommend", "--cpu-limit-ratio", "0.5"), 2, "--cpu-limit-ratio must be at least 1")


def test_cli_recommend_on_imported_usage_says_savings_are_fallback_rates(tmp_path, sample_snapshot):
    usage = sample_snapshot.usage.filter(sample_snapshot.usage["workload"].cast(str).is_in(["cart", "orders"]))
    path = tmp_path / "usage.parquet"
    usage.write_parquet(path)
    imp = run_cli("import", path, "--out", tmp_path / "snap")
    assert imp.code == 0, imp.err
    res = run_cli("recommend", "--snapshot", tmp_path / "snap", "--format", "csv")
    assert res.code == 0, res.err
    assert "fallback" in res.err and res.out.count("\n") > 1


def test_cli_recommend_burstable_records_policy_and_node_check(tmp_path):
    res = run_cli("recommend", "--format", "json", "--kind", "rightsize", "--memory-policy", "burstable",
                  "--patches", tmp_path / "out")
    assert res.code == 0, res.err
    assert "Node check:" in res.err
    mem = [r for r in json.loads(res.out)["items"] if r["resource"] == "memory"]
    assert mem and {r["evidence"]["policy"] for r in mem} <= {"burstable", "guaranteed"}
    assert any(r["evidence"]["policy"] == "burstable" for r in mem)
    for r in mem:
        assert r["proposed_request"] <= r["proposed_limit"]
        assert r["proposed_limit"] >= r["evidence"]["observed"]["peak"]
    text = "".join(p.read_text() for p in (tmp_path / "out").rglob("*.yaml"))
    assert "memory policy: burstable, quantile p" in text
    assert_clean_error(run_cli("recommend", "--node-size", "lots"), 2, "--node-size must be MEMORY/CPU")
    assert_clean_error(run_cli("recommend", "--memory-overcommit", "0.7"), 2, "--memory-overcommit must be")
