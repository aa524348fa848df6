"""The notebooks stay runnable: each executes top to bottom on the bundled sample (and on the real
traces in ../shared/data/real when present), uses only public project names, and is committed with
its outputs stripped."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # notebooks/real_traces.py: the trace readers they share
REAL = ROOT.parent / "shared" / "data" / "real"
PACKAGES = ("analyzer", "forecasting", "recommenders", "dashboards", "kubetune")
NAMES = ["01-cost-breakdown", "02-forecast-evaluation", "03-gpu-sharing", "04-risk-vs-savings"]


def code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_the_four_notebooks_exist_and_the_readme_lists_them():
    assert [p.stem for p in NOTEBOOKS] == NAMES
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    assert "notebooks/" in layout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    assert not {"widgets", "execution"} & set(nb.metadata), f"{path.name}: run metadata left in the file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_public_names_and_one_snapshot_variable(path):
    nb = nbformat.read(path, as_version=4)
    first = ast.parse(code(nb)[0])
    assert any(isinstance(n, ast.Assign) and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["SNAPSHOT"]
               for n in first.body), f"{path.name}: the first code cell must set SNAPSHOT"
    modules: set[str] = set()
    for src in code(nb):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private and not any(p.startswith("_") for p in node.module.split(".")), \
                    f"{path.name}: imports private {node.module} {private}"
                modules.add(node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] in PACKAGES for a in node.names), \
                    f"{path.name}: import project modules by name (from x import y) so the check can see them"
    assert modules, f"{path.name} uses no kubetune function"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, monkeypatch):
    from nbclient import NotebookClient

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    # the kernel inherits this process's environment, and importing streamlit (the dashboard tests) sets
    # MPLBACKEND=Agg in it, which would silently drop every figure
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if os.environ.get("NOTEBOOK_OUT"):  # keep the executed copies to read (never the committed files)
        nbformat.write(nb, Path(os.environ["NOTEBOOK_OUT"]) / path.name)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the bundled sample draws at least one figure in every notebook; the real-trace sections add more
    wanted = 2 if (REAL / "README.md").is_file() else 1
    drawn = sum("image/png" in o.get("data", {}) for o in outputs)
    assert drawn >= wanted, f"{path.name} drew {drawn} plot(s), expected at least {wanted}"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if (REAL / "README.md").is_file():
        assert "Skipped:" not in text, f"{path.name} skipped its real-trace cells although {REAL} is present"
    elif path.stem != "01-cost-breakdown":
        assert f"Skipped: {REAL}" in text, f"{path.name} gave no reason for skipping the real traces"
