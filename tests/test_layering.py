"""Dependencies point one way: analyzer <- forecasting <- recommenders <- dashboards <- kubetune."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["analyzer", "forecasting", "recommenders", "dashboards", "kubetune"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_imports_one_to_its_right():
    violations = []
    for i, package in enumerate(ORDER):
        forbidden = set(ORDER[i + 1 :])
        for path in (ROOT / package).rglob("*.py"):
            bad = _imports(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, violations


def _imported_modules(path: Path) -> set[str]:
    """Full dotted names of every absolute import in a file (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _product_files():
    for package in ORDER:
        yield from (ROOT / package).rglob("*.py")


# The simulator is test and benchmark equipment; only the command that exposes it may import it.
SIMULATOR_USERS = {"analyzer/simulator", "kubetune/commands/simulate.py"}


def test_product_code_never_imports_the_simulator():
    violations = []
    for path in _product_files():
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == u or rel.startswith(u + "/") for u in SIMULATOR_USERS):
            continue
        bad = sorted(m for m in _imported_modules(path) if m == "analyzer.simulator" or m.startswith("analyzer.simulator."))
        if bad:
            violations.append(f"{rel} imports {bad}")
    assert not violations, violations


def test_recommenders_do_not_reach_into_collectors():
    """Parsing Kubernetes text is analyzer.manifests' job; collectors are for collecting."""
    violations = []
    for package in ("forecasting", "recommenders", "dashboards"):
        for path in (ROOT / package).rglob("*.py"):
            bad = sorted(m for m in _imported_modules(path) if m.startswith("analyzer.collectors"))
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {bad}")
    assert not violations, violations


def test_the_checks_catch_a_violation(tmp_path):
    """The rules above see function-level imports too (the way spot.py used to import the simulator)."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from analyzer.simulator.kube_objects import kube_lists\n    import analyzer.collectors.kubernetes\n")
    names = _imported_modules(probe)
    assert "analyzer.simulator.kube_objects" in names and "analyzer.collectors.kubernetes" in names


def test_units_and_spot_labels_are_defined_once():
    """MIB/GIB live in analyzer.units; spot-label values only in analyzer.kube's table."""
    violations = []
    for path in _product_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        for line_no, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if rel != "analyzer/units.py" and stripped.startswith(("MIB =", "GIB =", "MIB, GIB =")):
                violations.append(f"{rel}:{line_no} defines {stripped.split('=')[0].strip()}")
            if rel != "analyzer/kube.py" and '"cloud.google.com/gke-spot": "true"' in line:
                violations.append(f"{rel}:{line_no} lists a spot label")
    assert not violations, violations


def test_one_yaml_library():
    """YAML goes through analyzer.yamlio (ruamel.yaml, which the PR bot needs for round-trip edits);
    PyYAML is only a transitive dependency of the kubernetes client, never imported by kubetune."""
    files = [*_product_files(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    bad = sorted(p.relative_to(ROOT).as_posix() for p in files if "yaml" in _imports(p))
    assert not bad, f"import PyYAML: {bad}"
