"""The README stays true: schema section in sync, the two commands present, CI calls the test command."""

from pathlib import Path

from scripts.readme_schema import render

ROOT = Path(__file__).resolve().parent.parent


def test_schema_section_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render(readme) == readme, "run: python scripts/readme_schema.py"


def test_two_commands_and_ci():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
