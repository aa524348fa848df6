"""A real Prometheus (or VictoriaMetrics) for tests and benchmarks: backfill, start, stop.

Backfill an OpenMetrics file with ``promtool tsdb create-blocks-from openmetrics`` and serve
the blocks from a ``prometheus`` started on 127.0.0.1 with a free port, no scrape targets
and a 100-year retention (retention counts from the newest block). Facts and pitfalls:
``shared/docs/prometheus-testing.md``. Nothing here installs anything: ``make test`` installs
Debian's ``prometheus`` when missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def tool(name: str) -> str | None:
    return shutil.which(name)


def need(*names: str) -> None:
    """Skip (locally) or fail (under CI=true) when a binary the test needs is missing."""
    missing = [n for n in names if not tool(n)]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (Debian package prometheus; `make test` installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(openmetrics: Path, tsdb: Path, *, max_block_hours: int = 744) -> float:
    """promtool create-blocks-from openmetrics; returns seconds taken."""
    tsdb.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [tool("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
         f"--max-block-duration={max_block_hours}h", str(openmetrics), str(tsdb)],
        capture_output=True, text=True, timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def block_samples(tsdb: Path) -> int:
    """Total samples in the TSDB (promtool tsdb list): out-of-order samples are dropped silently."""
    out = subprocess.run([tool("promtool") or "promtool", "tsdb", "list", str(tsdb)], capture_output=True, text=True,
                         check=True, timeout=600).stdout
    total = 0
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[4].isdigit():
            total += int(parts[4])
    return total


@dataclass
class Server:
    """A running server process; ``stop()`` ends it by PID."""

    url: str
    proc: subprocess.Popen
    log: Path
    kind: str
    data: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def peak_rss_bytes(self) -> int | None:
        """VmHWM of the server process (Linux), while it runs."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server at {url} not ready after {timeout} s: {log.read_text()[-2000:]}")


def start_prometheus(tsdb: Path, workdir: Path, *, extra_args: tuple[str, ...] = ()) -> Server:
    """Serve a backfilled TSDB (used in place: Prometheus writes lock, wal/ and may compact)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    port = free_port()
    log = workdir / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [tool("prometheus") or "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y", "--log.level=warn",
             *extra_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        _wait_ready(url, proc, log, "/-/ready", 60)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        raise
    return Server(url, proc, log, "prometheus", tsdb)


def _victoria(data: Path, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [tool("victoria-metrics") or "victoria-metrics", f"-storageDataPath={data}",
             f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y", "-loggerLevel=WARN",
             "-search.latencyOffset=0s", "-search.disableCache"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return url, proc


def start_victoria(openmetrics: Path, workdir: Path) -> Server:
    """VictoriaMetrics (Debian's victoria-metrics) loaded with the same OpenMetrics text.

    The text goes through VictoriaMetrics' Prometheus-text import with timestamps turned into
    milliseconds. (vmctl's TSDB import was tried first: with 1.79 a few series went missing
    at random from one import to the next.)
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "victoria.log"
    data = workdir / "vmdata"
    url, proc = _victoria(data, log)
    try:
        _wait_ready(url, proc, log, "/health", 60)
        batch: list[bytes] = []

        def send() -> None:
            req = urllib.request.Request(url + "/api/v1/import/prometheus", data=b"".join(batch), method="POST")
            urllib.request.urlopen(req, timeout=300).read()
            batch.clear()

        with open(openmetrics, "rb") as fh:
            for line in fh:
                if line.startswith(b"#") or not line.strip():
                    continue
                head, _, ts = line.rstrip(b"\n").rpartition(b" ")
                batch.append(b"%s %d\n" % (head, round(float(ts) * 1000)))
                if len(batch) >= 50_000:
                    send()
        if batch:
            send()
        urllib.request.urlopen(url + "/internal/force_flush", timeout=30).read()
        time.sleep(1.5)  # new series become searchable after the next index flush (about 1 s)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        raise
    return Server(url, proc, log, "victoriametrics", data)
