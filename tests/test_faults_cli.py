"""The fault matrix (issue 15): every command against bad inputs, through the real CLI entry point.

Each case runs ``kubetune.cli.main`` in a fresh directory holding a good snapshot, a user's
directory and a user's file, and asserts what a user is promised: the exit code (2 bad input,
1 failure), exactly one error line on stderr naming the culprit (after progress log lines, if
any), no traceback, nothing half-written,
and every file that was there before still there, unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from kubetune.cli import main
from tests.support.prometheus_server import free_port
from tests.support.tiny import tiny_snapshot

PROGRESS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
HEADER = "timestamp,namespace,workload_kind,workload,pod,container,resource,value\n"
GOOD_ROW = "2026-11-01T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5\n"


def _setup(root: Path) -> None:
    """The world each case starts from."""
    tiny_snapshot().write(root / "snap")
    (root / "user").mkdir()
    (root / "user" / "notes.txt").write_text("the user's own file\n")
    (root / "afile").write_text("another user file\n")
    broken = root / "broken"
    tiny_snapshot().write(broken)
    (broken / "manifest.json").write_text("{not json")
    old = tiny_snapshot()
    old.manifest.start = old.manifest.start.replace(year=2024)  # a 2-year window
    old.write(root / "ancient")
    (root / "u-kind.csv").write_text(HEADER + GOOD_ROW + "2026-11-01T00:05:00Z,shop,Banana,web,web-a,app,cpu,0.5\n")
    (root / "u-ctrl.csv").write_text(HEADER + GOOD_ROW + '2026-11-01T00:05:00Z,shop,Deployment,"a\nb",web-a,app,cpu,1\n')
    (root / "u-future.csv").write_text(HEADER + "9999-12-31T00:00:00Z,shop,Deployment,web,web-a,app,cpu,0.5\n")
    (root / "u-nan.csv").write_text(HEADER + GOOD_ROW + "2026-11-01T00:05:00Z,shop,Deployment,web,web-a,app,cpu,NaN\n")
    (root / "u-neg.csv").write_text(HEADER + GOOD_ROW + "2026-11-01T00:05:00Z,shop,Deployment,web,web-a,app,cpu,-1\n")
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                  "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                  "users": [{"name": "u", "user": {"tokenFile": str(root / "no-such-token")}}],
                  "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}
    (root / "kubeconfig").write_text(json.dumps(kubeconfig))


def _state(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@dataclass
class Case:
    name: str
    args: Callable[[Path], list[str]]
    code: int
    needle: str


ANALYSIS = ["info", "cost", "forecast", "recommend", "report"]
FILE_OUT = ["cost", "forecast", "recommend"]

CASES: list[Case] = []
for cmd in ANALYSIS:
    extra = (lambda r: ["--out", str(r / "new-report")]) if cmd == "report" else (lambda r: [])
    CASES += [
        Case(f"{cmd}-missing-snapshot", lambda r, c=cmd, e=extra: [c, str(r / "nope"), *e(r)], 2, "does not exist"),
        Case(f"{cmd}-corrupt-manifest", lambda r, c=cmd, e=extra: [c, str(r / "broken"), *e(r)], 2, "is not valid JSON"),
        Case(f"{cmd}-window-too-long", lambda r, c=cmd, e=extra: [c, str(r / "ancient"), *e(r)], 2, "--max-window"),
        Case(f"{cmd}-bad-flag", lambda r, c=cmd: [c, str(r / "snap"), "--no-such-flag"], 2, "No such option"),
    ]
for cmd in FILE_OUT:
    CASES += [
        Case(f"{cmd}-out-under-a-file", lambda r, c=cmd: [c, str(r / "snap"), "-f", "csv", "--out", str(r / "afile" / "x.csv")],
             2, "is a file, not a directory"),
        Case(f"{cmd}-out-is-a-directory", lambda r, c=cmd: [c, str(r / "snap"), "-f", "csv", "--out", str(r / "user")],
             2, "is a directory"),
    ]
SIM = ["simulate", "--workloads", "2", "--days", "0.1"]
CASES += [
    Case("simulate-overwrite-user-dir", lambda r: [*SIM, "--out", str(r / "user"), "--overwrite"], 2, "did not write"),
    Case("simulate-overwrite-user-file", lambda r: [*SIM, "--out", str(r / "afile"), "--overwrite"], 2, "is a file"),
    Case("simulate-out-exists", lambda r: [*SIM, "--out", str(r / "user")], 2, "already exists"),
    Case("simulate-out-under-a-file", lambda r: [*SIM, "--out", str(r / "afile" / "snap")], 2, "is a file, not a directory"),
    Case("recommend-patches-over-user-dir", lambda r: ["recommend", str(r / "snap"), "--patches", str(r / "user"),
                                                       "--overwrite"], 2, "did not write"),
    Case("import-missing-file", lambda r: ["import", str(r / "nope.csv"), "--out", str(r / "new")], 2, "does not exist"),
    Case("import-unknown-kind", lambda r: ["import", str(r / "u-kind.csv"), "--out", str(r / "new")], 2, "'Banana'"),
    Case("import-control-chars", lambda r: ["import", str(r / "u-ctrl.csv"), "--out", str(r / "new")], 2,
         "control character"),
    Case("import-only-far-future", lambda r: ["import", str(r / "u-future.csv"), "--out", str(r / "new")], 2,
         "no usable rows"),
    Case("import-nan", lambda r: ["import", str(r / "u-nan.csv"), "--out", str(r / "new")], 2, "non-numeric"),
    Case("import-negative", lambda r: ["import", str(r / "u-neg.csv"), "--out", str(r / "new")], 2, "negative"),
    Case("import-overwrite-user-dir", lambda r: ["import", str(r / "u-kind.csv"), "--out", str(r / "user"), "--overwrite"],
         2, "did not write"),
    Case("collect-prometheus-down", lambda r: ["collect", "--prometheus-url", f"http://127.0.0.1:{free_port()}",
                                               "--out", str(r / "new"), "--timeout", "2"], 1, "cannot reach Prometheus"),
    Case("collect-missing-token-file", lambda r: ["collect", "--kubeconfig", str(r / "kubeconfig"), "--out",
                                                  str(r / "new")], 2, "no-such-token does not exist"),
    Case("collect-overwrite-user-dir", lambda r: ["collect", "--kubeconfig", str(r / "kubeconfig"), "--out",
                                                  str(r / "user"), "--overwrite"], 2, "did not write"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    _setup(root)
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case: Case, world: Path, tmp_path: Path, capsys, monkeypatch):
    import shutil

    root = tmp_path / "w"
    shutil.copytree(world, root, symlinks=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("KUBETUNE_PROMETHEUS_RETRIES", "0")
    before = _state(root)
    code = main(case.args(root))
    out, err = capsys.readouterr()
    assert code == case.code, err
    assert "Traceback" not in err + out
    # progress log lines (non-TTY progress: "<UTC time> loading the source") may precede; the error is one line
    lines = [line for line in err.strip().splitlines() if not PROGRESS.match(line)]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    assert case.needle in lines[0], lines[0]
    assert out == ""  # nothing on stdout either: no partial result
    assert _state(root) == before  # no partial output, no user file lost or changed


def test_a_good_run_changes_only_its_output(world, tmp_path, capsys, monkeypatch):
    """The matrix's control: the same world, a valid command, exit 0 and only the new output added."""
    import shutil

    root = tmp_path / "w"
    shutil.copytree(world, root, symlinks=True)
    monkeypatch.chdir(root)
    before = _state(root)
    assert main(["cost", str(root / "snap"), "-f", "csv", "--out", str(root / "c.csv")]) == 0
    after = _state(root)
    assert set(after) - set(before) == {"c.csv"} and {k: after[k] for k in before} == before
    assert pl.read_csv(root / "c.csv").height > 0
