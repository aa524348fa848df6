"""Every `--flag` a message, note or reason names is a flag the command printing it accepts.

Messages are found in the code itself: every string literal (f-strings included) in the product
packages. A module's messages are printed by the commands that run it (``PRINTED_BY``); flags of
other programs (``kubectl ... --overwrite``, kube-state-metrics' ``--metric-labels-allowlist``,
Prometheus' ``--query.timeout``) are recognised by the program named before them in the text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import typer.main

from kubetune.cli import app

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("analyzer", "forecasting", "recommenders", "dashboards", "kubetune")
ANALYSIS = ("info", "report", "cost", "forecast", "recommend")
# Module path prefix -> the commands that can print its messages (first match wins).
PRINTED_BY = [
    ("analyzer/simulator/", ("simulate",)),
    ("analyzer/collectors/files.py", ("import",)),
    ("analyzer/collectors/", ("collect",)),
    ("analyzer/snapshot.py", ("simulate", "import", "collect")),
    ("analyzer/cost/rollup.py", ("cost",)),
    ("analyzer/cost/", ("cost", "recommend")),
    ("analyzer/", ANALYSIS + ("collect", "simulate", "import")),
    ("forecasting/", ("forecast", "recommend")),
    ("recommenders/", ("recommend",)),
    ("dashboards/", ("report",)),
    ("kubetune/sources.py", ANALYSIS),
    ("kubetune/options.py", ANALYSIS),
    ("kubetune/settings_flags.py", ("recommend",)),
    ("kubetune/commands/collect.py", ("collect",)),
    ("kubetune/commands/cost.py", ("cost",)),
    ("kubetune/commands/forecast.py", ("forecast",)),
    ("kubetune/commands/recommend.py", ("recommend",)),
    ("kubetune/commands/simulate.py", ("simulate",)),
    ("kubetune/commands/imports.py", ("import",)),
    ("kubetune/commands/inspect.py", ("info", "report")),  # refined per function below
    ("kubetune/output.py", ("info", "cost", "forecast", "recommend")),
    ("kubetune/console.py", ("simulate", "import", "collect", "recommend")),
    ("kubetune/", ()),  # the app itself (--help)
]
OTHER_PROGRAMS = re.compile(r"kubectl|kube-state-metrics|dcgm-exporter|promtool|helm", re.IGNORECASE)
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(\.[a-z]|-?\{)?")
DECLARATION = re.compile(r"^(--?[a-z][a-z0-9-]*)(/--?[a-z][a-z0-9-]*)?$")  # typer.Option("--out", "-o")


def _strings(path: Path):
    """(line, text, function) of every message-like string literal: docstrings and option declarations
    are not messages; an f-string is one text with its holes as '{}'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    owner = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip |= {id(v) for v in node.values}
    for top in tree.body:
        for node in ast.walk(top):
            owner[id(node)] = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if not DECLARATION.match(text):
            yield node.lineno, text, owner.get(id(node))


def _named_flags(text: str) -> list[str]:
    flags = []
    for m in FLAG.finditer(text):
        if m.group(2):  # --query.timeout: a server's dotted flag; --no-{name}: a flag being built
            continue
        if OTHER_PROGRAMS.search(text[: m.start()].rsplit(". ", 1)[-1]):
            continue
        flags.append(m.group(1))
    return flags


def _accepted() -> dict[str, set[str]]:
    group = typer.main.get_command(app)
    ctx = click.Context(group)
    out = {}
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        out[name] = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    return out


def _command_functions() -> dict[str, str]:
    """Python function name -> command name, for strings inside a command's own function."""
    return {info.callback.__name__: info.name or info.callback.__name__.replace("_", "-")
            for info in app.registered_commands}


def _printed_by(rel: str, function: str | None, functions: dict[str, str]) -> tuple[str, ...]:
    if rel.startswith("kubetune/commands/") and function in functions:
        return (functions[function],)
    return next(cmds for prefix, cmds in PRINTED_BY if rel.startswith(prefix))


def test_every_flag_a_message_names_exists_on_the_command_that_prints_it():
    accepted = _accepted()
    functions = _command_functions()
    problems, seen = [], 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, text, function in _strings(path):
                commands = _printed_by(rel, function, functions)
                for flag in _named_flags(text):
                    seen += 1
                    where = commands or tuple(accepted)
                    missing = [c for c in where if flag not in accepted[c]]
                    if commands and missing or not commands and len(missing) == len(where):
                        problems.append(f"{rel}:{line} names {flag}, which `kubetune {'/'.join(missing)}` lacks")
    assert seen > 50  # the scan does find the messages
    assert not problems, "\n".join(problems)


def test_the_scan_catches_the_bugs_users_hit():
    """The two reported cases would be found: --hpa (right-sizer) and --prometheus-token (collector)."""
    accepted = _accepted()
    assert _named_flags("or use --hpa allow") == ["--hpa"] and "--hpa" not in accepted["recommend"]
    assert _named_flags("a token (--prometheus-token or X)") == ["--prometheus-token"]
    assert "--prometheus-token" not in accepted["collect"]
    assert _named_flags("kubectl label node n k=v --overwrite") == []
    assert _named_flags("run kube-state-metrics with --metric-labels-allowlist=nodes") == []
    assert _named_flags("its --query.timeout; shorten --history") == ["--history"]
