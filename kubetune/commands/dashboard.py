"""`kubetune dashboard`: start the Streamlit FinOps app (dashboards/app/main.py) on one source.

The app runs as a child process (`python -m dashboards.app.serve`, i.e. `streamlit run`), handed its source in the environment
(dashboards.app.data.Config). It binds 127.0.0.1 unless --address says otherwise, never opens a
browser by itself, sends no usage statistics, and only reads. A source that fails to load is shown
by the app as a sentence (the app still starts); bad usage (two sources, a busy port) is exit 2.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError, KubetuneError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def streamlit_command(address: str, port: int) -> list[str]:
    """`streamlit run dashboards/app/main.py` through dashboards.app.serve (imports done before listening)."""
    return [
        sys.executable, "-m", "dashboards.app.serve",
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--server.runOnSave", "false",
        "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
    ]


def _check_port(address: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {address} is already in use; choose another with --port.") from None
            raise InputError(f"cannot listen on {address}:{port} ({exc.strerror}); check --address.") from None


def _supervise(proc: subprocess.Popen, grace: float = 5.0) -> int:
    """Wait for Streamlit; on SIGTERM stop it (SIGTERM, then SIGKILL after ``grace`` s: a read-only server has
    nothing to flush, and Streamlit's graceful shutdown can outlast a pod's termination grace period) and
    exit 143. Polls rather than blocking in ``wait()``, so the signal handler never waits inside a wait."""
    stopping: list[float] = []

    def on_term(*_):
        if not stopping:
            stopping.append(time.monotonic())
            proc.terminate()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while (code := proc.poll()) is None:
            if stopping and time.monotonic() - stopping[0] > grace:
                proc.kill()
            time.sleep(0.1)
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopping:
        sys.exit(143)
    return code


def dashboard(
    source: Annotated[str | None, typer.Argument(
        help="A snapshot directory, a report directory (`kubetune report --out`), a history directory "
             "(`--history-dir` of the CronJob) or a Prometheus URL (http[s]://...). Default: the bundled sample.",
        show_default=False)] = None,
    snapshot: Annotated[Path | None, typer.Option("--snapshot", "-s", help="Snapshot directory (same as SOURCE).")] = None,
    prometheus_url: Annotated[str | None, typer.Option(
        "--prometheus-url", help="Read a live Prometheus (14 days) instead of a snapshot.",
        envvar="KUBETUNE_PROMETHEUS_URL")] = None,
    history_dir: Annotated[Path | None, typer.Option(
        "--history-dir", help="Directory of past reports (<timestamp>/ + latest): the newest is shown, the "
                              "Overview adds the trend across all of them.")] = None,
    team_label: Annotated[str, typer.Option(help="Label (workload, else namespace) that names a team.")] = "team",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option(
        help="Address to bind. The default serves only this machine; anything else should sit behind an "
             "authenticating proxy (deploy/dashboard/ has an oauth2-proxy example).")] = "127.0.0.1",
) -> None:
    """Start the Streamlit FinOps dashboard: Overview, Workloads, GPUs, Recommendations, Forecast quality.

    Read-only: it never changes the cluster; patches leave only as a zip download to review.
    Computing from a snapshot happens once and is cached; a saved run (report directory or
    history) is read as written.

    Examples:
      kubetune dashboard                              # the bundled sample, on http://127.0.0.1:8501
      kubetune dashboard snap/ --port 8600
      kubetune dashboard --history-dir /var/lib/kubetune/history
      kubetune dashboard report/ --address 0.0.0.0    # only behind an authenticating proxy
    """
    from dashboards.app.config import ENV_ERROR, ENV_HISTORY, ENV_SOURCE, Config

    given = [n for n, v in (("SOURCE", source), ("--snapshot", snapshot), ("--prometheus-url", prometheus_url),
                            ("--history-dir", history_dir)) if v]
    if len(given) > 1:
        raise InputError(f"give one source, not both {given[0]} and {given[1]}.")
    chosen = source or (str(snapshot) if snapshot else prometheus_url)
    _check_port(address, port)
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-dashboard-"))
    try:
        error = None
        if chosen and re.match(r"(?i)https?://", chosen):
            chosen, error = _read_live(chosen, scratch)
        elif chosen and not Path(chosen).exists():
            typer.echo(f"warning: {chosen} does not exist; the dashboard starts and says so.", err=True)
        config = Config(source=chosen, history_dir=str(history_dir) if history_dir else None, team_label=team_label,
                        error=error)
        env = {k: v for k, v in os.environ.items() if k not in (ENV_SOURCE, ENV_HISTORY, ENV_ERROR)} | config.env()
        _serve(config, env, address, port)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_live(url: str, scratch: Path) -> tuple[str | None, str | None]:
    """A Prometheus source is read once, here, into a snapshot the app then analyses; a failure becomes the
    sentence the app shows (it still starts)."""
    from kubetune.sources import Source, load_source

    typer.echo(f"Reading Prometheus at {url} (14 days)...", err=True)
    try:
        snap = load_source(Source(prometheus_url=url), note=lambda line: typer.echo(line, err=True))
        return str(snap.write(scratch / "snapshot")), None
    except KubetuneError as exc:
        typer.echo(f"warning: {exc} The dashboard starts and says so.", err=True)
        return None, f"Cannot read Prometheus at {url}: {exc}"


def _serve(config, env: dict[str, str], address: str, port: int) -> None:
    if address not in LOOPBACK:
        typer.echo(f"warning: listening on {address}: anyone who can reach it sees your costs; put it behind an "
                   "authenticating proxy (deploy/dashboard/).", err=True)
    host = f"[{address}]" if ":" in address else address
    typer.echo(f"kubetune dashboard on http://{host}:{port} ({config.history_dir or config.source or 'the bundled sample'}); "
               "Ctrl+C stops it.", err=True)
    try:
        proc = subprocess.Popen(streamlit_command(address, port), env=env)
    except OSError as exc:
        raise KubetuneError(f"cannot start Streamlit ({exc.strerror}).") from None
    code = _supervise(proc)
    if code:
        raise KubetuneError(f"Streamlit stopped with exit code {code}.")
