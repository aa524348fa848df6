"""`kubetune dashboard` as a command: bad usage is exit 2 with one sentence, it binds loopback by
default and only where told, and SIGTERM stops Streamlit with it (no orphan server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.prometheus_server import free_port


def _start(*args: str) -> tuple[subprocess.Popen, int]:
    """`kubetune dashboard ARGS` on a free port, once its health endpoint answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubetune", "dashboard", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"the dashboard exited: {proc.stdout.read()}") from None
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError("the dashboard did not answer within 120 s") from None
            time.sleep(0.3)


def test_two_sources_are_refused():
    assert_clean_error(run_cli("dashboard", "snap/", "--history-dir", "hist/"), 2, "give one source")
    assert_clean_error(run_cli("dashboard", "--snapshot", "a", "--prometheus-url", "http://x:9090"), 2, "give one source")


def test_a_busy_port_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert_clean_error(run_cli("dashboard", "--port", str(port)), 2, f"port {port} on 127.0.0.1 is already in use")


def test_help_names_the_pages_and_the_default_address():
    out = " ".join(run_cli("dashboard", "--help").out.split())
    assert "Overview, Workloads, GPUs, Recommendations, Forecast quality" in out
    assert "127.0.0.1" in out and "--history-dir" in out


def test_binds_loopback_and_sigterm_stops_streamlit():
    proc, port = _start()
    try:
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        local = {line.split()[3] for line in listening.splitlines() if line.strip()}
        assert local == {f"127.0.0.1:{port}"}, listening
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        out = proc.stdout.read()
        assert "http://127.0.0.1:" in out and "Traceback" not in out
        time.sleep(0.5)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "Streamlit outlived `kubetune dashboard`"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_an_unreachable_prometheus_still_starts_the_app():
    dead = f"http://127.0.0.1:{free_port()}"
    proc, _ = _start(dead)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        out = proc.stdout.read()
        assert "warning:" in out and dead in out and "The dashboard starts and says so." in out, out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
