"""The manifest editor: only the intended lines change, in the file's own style, and the result
parses to exactly the old object with the fragment merged (checked with an independent parser)."""

from __future__ import annotations

import difflib

import pytest
from analyzer import yamlio
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from analyzer.units import parse_cpu, parse_memory
from recommenders.gitops.edit import EditError, append_to_list, apply_fragment, load_documents, style_quantity
from recommenders.gitops.plan import _expected, _norm

SPEC = ["spec", "template", "spec"]


def changed(old: str, new: str) -> list[str]:
    return [ln.rstrip("\n") for ln in difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


@pytest.mark.parametrize(("resource", "new", "old", "want"), [
    ("cpu", "250m", "500m", "250m"),
    ("cpu", "250m", 0.5, 0.25),
    ("cpu", "1500m", 1, 1.5),
    ("cpu", "2", "500m", "2000m"),
    ("cpu", "250m", DoubleQuotedScalarString("1"), DoubleQuotedScalarString("0.25")),
    ("memory", "768Mi", "1Gi", "768Mi"),
    ("memory", "2Gi", "1Gi", "2Gi"),
    ("memory", "1536Mi", "1Gi", "1536Mi"),
    ("memory", "1280Mi", SingleQuotedScalarString("2Gi"), SingleQuotedScalarString("1280Mi")),
    ("memory", "256Mi", 536870912, 268435456),
    ("memory", "512Mi", "1G", "537M"),  # decimal stays decimal, rounded up (never below the proposal)
    ("nvidia.com/gpu", "1", "2", "1"),
])
def test_quantities_keep_the_files_style_and_never_go_below(resource, new, old, want):
    got = style_quantity(resource, new, old)
    assert got == want and type(got) is type(want)
    parse = parse_cpu if resource == "cpu" else parse_memory if resource == "memory" else float
    assert parse(got) >= parse(new)


MANIFEST = """\
# header comment
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  cpu: "500m"   # not a container: must not change
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api    # the API
  annotations:
    note: 'keep "quotes"'
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: migrate:1
      containers:
        - name: api
          image: "api:1"   # pinned
          resources:
            requests:
              cpu: "500m"  # tuned
              memory: 1Gi
            limits:
              cpu: 2
              memory: 1Gi

        - name: sidecar
          image: envoy
          resources: {}
      # end of containers
"""


def _check(old: str, new: str, doc: int, fragment: dict) -> None:
    before = list(yamlio.load_all(old))[doc]
    after = list(yamlio.load_all(new))
    assert _norm(after[doc]) == _norm(_expected(before, fragment))
    assert [d for i, d in enumerate(after) if i != doc] == [d for i, d in enumerate(yamlio.load_all(old)) if i != doc]


def test_values_change_in_place_and_nothing_else():
    frag = {"containers": [{"name": "api", "resources": {"requests": {"cpu": "250m", "memory": "768Mi"},
                                                         "limits": {"memory": "768Mi"}}}]}
    new = apply_fragment(MANIFEST, "m.yaml", 1, SPEC, frag)
    assert changed(MANIFEST, new) == [
        '-              cpu: "500m"  # tuned', "-              memory: 1Gi",
        '+              cpu: "250m"  # tuned', "+              memory: 768Mi",
        "-              memory: 1Gi", "+              memory: 768Mi"]
    _check(MANIFEST, new, 1, frag)


def test_limit_removed_blocks_added_and_flow_style_rewritten():
    frag = {"containers": [{"name": "api", "resources": {"limits": {"cpu": None}}},
                           {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "migrate", "resources": {"requests": {"cpu": "50m"}}}]}
    new = apply_fragment(MANIFEST, "m.yaml", 1, SPEC, frag)
    assert changed(MANIFEST, new) == [
        "+          resources:", "+            requests:", "+              cpu: 50m",
        "-              cpu: 2",
        "-          resources: {}", "+          resources:", "+            requests:", "+              cpu: 100m",
        "+              memory: 64Mi"]
    _check(MANIFEST, new, 1, frag)
    assert "# end of containers" in new and "# header comment" in new and "note: 'keep \"quotes\"'" in new


def test_removing_the_last_limit_removes_the_limits_block():
    frag = {"containers": [{"name": "api", "resources": {"limits": {"cpu": None, "memory": None}}}]}
    new = apply_fragment(MANIFEST, "m.yaml", 1, SPEC, frag)
    assert changed(MANIFEST, new) == ["-            limits:", "-              cpu: 2", "-              memory: 1Gi"]
    _check(MANIFEST, new, 1, frag)


def test_placement_is_added_with_the_files_indentation():
    frag = {"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                             "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "In", "values": ["spot"]}]}}]}}}
    new = apply_fragment(MANIFEST, "m.yaml", 1, SPEC, frag)
    lines = changed(MANIFEST, new)
    assert lines[0] == "+      tolerations:" and lines[1] == "+        - key: kubernetes.azure.com/scalesetpriority"
    assert all(ln.startswith("+") for ln in lines)
    _check(MANIFEST, new, 1, frag)


def test_a_missing_container_is_an_error_not_a_new_container():
    with pytest.raises(EditError, match="no container named 'worker'"):
        apply_fragment(MANIFEST, "m.yaml", 1, SPEC, {"containers": [{"name": "worker", "resources": {}}]})


@pytest.mark.parametrize(("text", "says"), [
    ("a: [1, 2\n", "m.yaml is not valid YAML at line 2"),
    ("metadata:\n  name: {{ .Release.Name }}\n", "m.yaml is templated"),
])
def test_bad_files_are_named(text, says):
    with pytest.raises(EditError, match=says):
        load_documents(text, "m.yaml")


def test_append_to_a_kustomization_list():
    k = "resources:\n  - ../../base\npatches:\n  - path: a.yaml   # mine\n# trailing\n"
    new = append_to_list(k, "k.yaml", "patches", {"path": "kubetune-x.yaml"})
    assert changed(k, new) == ["+  - path: kubetune-x.yaml"]
    assert append_to_list(new, "k.yaml", "patches", {"path": "kubetune-x.yaml"}) == new
    bare = "resources:\n- ../../base\n"
    assert changed(bare, append_to_list(bare, "k.yaml", "patches", {"path": "p.yaml"})) == [
        "+patches:", "+- path: p.yaml"]


def test_insertion_after_a_block_scalar_and_a_sequence_at_its_keys_column():
    text = """\
kind: Job
spec:
  template:
    spec:
      containers:
      - name: run
        image: tool
        args:
        - --all
        command: |
          set -e
          run --now

      # a comment about volumes
      volumes: []
"""
    frag = {"containers": [{"name": "run", "resources": {"requests": {"cpu": "100m"}}}]}
    new = apply_fragment(text, "j.yaml", 0, SPEC, frag)
    assert changed(text, new) == ["+        resources:", "+          requests:", "+            cpu: 100m"]
    assert new.index("run --now") < new.index("resources:") < new.index("# a comment about volumes")
    _check(text, new, 0, frag)
