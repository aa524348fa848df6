"""The ``kubetune`` console script: the Typer app, one registration line per command, exit codes.

Commands live in ``kubetune/commands/`` (one module each); shared options in ``kubetune.options``,
table shaping in ``kubetune.tables``. Exit codes: 0 ok, 1 the job failed (e.g. a server error),
2 bad usage or bad input (including an output path that cannot be written), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM). Errors are one sentence on stderr, never a
traceback (set ``KUBETUNE_DEBUG=1`` to see one for a bug).
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from typing import Annotated

import typer

from analyzer.errors import KubetuneError, os_error_sentence
from analyzer.redact import install_log_filter
from kubetune import signals
from kubetune.commands import collect, cost, dashboard, forecast, imports, pr, recommend, report, simulate
from kubetune.commands import inspect as inspect_cmd
from kubetune.console import err_console, safe

# Typer may vendor click; find its exception base classes through the public names.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ClickExit = typer.Exit
ClickAbort = typer.Abort

app = typer.Typer(
    name="kubetune",
    help=(
        "Kubernetes cost and utilization analyzer with ML autotuning.\n\n"
        "Every analysis command reads one Snapshot: a first argument (a snapshot directory or a Prometheus URL), "
        "--snapshot DIR, a live --prometheus-url, or (with no source) the bundled sample; -n/--namespace and "
        "-l/--selector narrow it. Start with `kubetune report --out report/`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
PLANNED_PANEL = "Not yet available in this build"


def teaching_help(func) -> str:
    """A command's docstring with each prose paragraph on one line, so the terminal wraps it evenly at
    any width (Typer keeps single line breaks: 100-column lines became ragged at 80); indented lines
    (examples) stay as written."""
    paragraphs = inspect.cleandoc(func.__doc__ or "").split("\n\n")
    out = []
    for para in paragraphs:
        lines = para.splitlines()
        if any(line.startswith(" ") for line in lines[1:]):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def register(func, name: str | None = None, *, planned: bool = False) -> None:
    app.command(name, help=teaching_help(func), rich_help_panel=PLANNED_PANEL if planned else None)(func)


def _version(value: bool) -> None:
    if value:
        from analyzer.envelope import kubetune_version

        sys.stdout.write(f"kubetune {kubetune_version()}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Kubernetes cost and utilization analyzer with ML autotuning."""


register(simulate.simulate)
register(imports.import_, "import")
register(collect.collect)
register(inspect_cmd.info)
register(report.report)
register(cost.cost)
register(forecast.forecast)
register(recommend.recommend)
register(pr.pr)
register(dashboard.dashboard)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn user-facing errors into one line and an exit code."""
    install_log_filter()
    with signals.interruptible():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except ClickExit as exc:
        return exc.exit_code
    except ClickException as exc:  # bad usage: one line, with where to look
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _error(f"{exc.format_message().rstrip('.')}{where}.")
        return 2
    except ClickAbort:
        err_console.print("aborted.")
        return 1
    except KubetuneError as exc:
        _error(str(exc))
        return exc.exit_code
    except signals.Interrupted as exc:
        err_console.print(f"{exc.word}.", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted.")
        return 130
    except OSError as exc:
        if exc.filename is None or os.environ.get("KUBETUNE_DEBUG"):
            return _internal(exc)
        _error(os_error_sentence(exc))
        return 2
    except Exception as exc:  # a bug: say so briefly, traceback only on request
        return _internal(exc)
    return 0


def _error(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {safe(message)}", highlight=False)


def _internal(exc: Exception) -> int:
    if os.environ.get("KUBETUNE_DEBUG"):
        raise exc
    first = str(exc).splitlines()[0] if str(exc) else ""
    err_console.print(
        f"[bold red]internal error:[/bold red] {safe(f'{type(exc).__name__}: {first}')} "
        "(set KUBETUNE_DEBUG=1 for the traceback and please report it).",
        highlight=False,
    )
    return 1


def entry() -> None:  # pragma: no cover - console script
    code = main()
    if code in (130, 143) and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                  if t is not threading.main_thread()):
        # interrupted with queries in flight on worker threads: leave now instead of waiting for their
        # answers (up to the HTTP timeout); temporary files were already removed while unwinding
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
