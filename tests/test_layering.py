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
