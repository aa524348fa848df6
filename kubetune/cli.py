"""The ``kubetune`` console script: the Typer app, one registration line per command, exit codes.

Commands live in ``kubetune/commands/`` (one module each); shared options in ``kubetune.options``,
table shaping in ``kubetune.tables``. Exit codes: 0 ok, 1 the job failed (e.g. a server error),
2 bad usage or bad input, 130 interrupted (Ctrl-C). Errors are one sentence on stderr, never a
traceback (set ``KUBETUNE_DEBUG=1`` to see one for a bug).
"""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from analyzer.errors import KubetuneError
from kubetune.commands import collect, cost, dashboard, forecast, imports, inspect, pr, recommend, report, simulate
from kubetune.console import err_console

# Typer may vendor click; find its exception base classes through the public names.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ClickExit = typer.Exit
ClickAbort = typer.Abort

app = typer.Typer(
    name="kubetune",
    help=(
        "Kubernetes cost and utilization analyzer with ML autotuning.\n\n"
        "Every analysis command reads one Snapshot: --snapshot DIR, a live --prometheus-url, "
        "or (with no source) the bundled sample. Start with `kubetune report --out report/`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command()(simulate.simulate)
app.command("import")(imports.import_)
app.command()(collect.collect)
app.command()(inspect.info)
app.command()(report.report)
app.command()(cost.cost)
app.command()(forecast.forecast)
app.command()(recommend.recommend)
app.command()(pr.pr)
app.command()(dashboard.dashboard)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn user-facing errors into one line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except ClickExit as exc:
        return exc.exit_code
    except ClickException as exc:
        exc.show(file=sys.stderr)
        return 2
    except ClickAbort:
        err_console.print("aborted.")
        return 1
    except KubetuneError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted.")
        return 130
    except Exception as exc:  # a bug: say so briefly, traceback only on request
        if os.environ.get("KUBETUNE_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(set KUBETUNE_DEBUG=1 for the traceback and please report it).",
            highlight=False,
        )
        return 1
    return 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
