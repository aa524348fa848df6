"""Shared fixtures. The Prometheus collector's (issue 3): a simulated cluster in a real Prometheus.

``prom_cluster`` simulates a small cluster (20 workloads, ~90 containers, 2 days at 5 min),
renders it as the exporters would (``analyzer.simulator.openmetrics``: cAdvisor counters with
resets, pod-level cgroup series, a duplicate scrape job, KSM, DCGM with ``Hostname``, OpenCost),
backfills it with promtool and serves it from ``prometheus`` on 127.0.0.1; once per session,
stopped by PID at teardown. ``prom_cluster_hostname`` is the same cluster rendered the other
way (DCGM ``hostname``, no duplicate job, no pod-level series). Without prometheus/promtool the
tests skip with a reason, or fail under CI=true (``make test`` installs them).

Threads: BLAS and OpenMP pools (scikit-learn's HistGradientBoosting starts one thread per core,
and several test processes share the cores) are capped to ``KUBETUNE_TEST_THREADS`` (default 1)
for the tests and the CLI subprocesses they start. Measured on the shared 2-core machine:
``test_cli.py::test_forecast_command`` 206 s uncapped, 26 s capped.
"""

from __future__ import annotations

import os

_THREADS = os.environ.get("KUBETUNE_TEST_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _THREADS)  # inherited by every `python -m kubetune` the tests run

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(int(os.environ["OMP_NUM_THREADS"]))  # pools already loaded in this process

from tests.support.prometheus_server import Server, backfill, block_samples, need, start_prometheus, start_victoria, tool

SIM = {"workloads": 20, "days": 2, "step_seconds": 300, "seed": 3}


@dataclass
class PromCluster:
    """A running server holding a simulated cluster, and that cluster's ground truth."""

    url: str
    truth: object  # analyzer.snapshot.Snapshot
    server: Server
    samples: int


def _build(tmp: Path, *, server: str = "prometheus", **render) -> PromCluster:
    from analyzer.simulator import simulate
    from analyzer.simulator.openmetrics import write_openmetrics

    truth = simulate(**SIM)
    om = tmp / "cluster.om"
    write_openmetrics(truth, om, **render)
    if server == "victoriametrics":
        srv = start_victoria(om, tmp / "vm")
        om.unlink()
        return PromCluster(srv.url, truth, srv, 0)
    tsdb = tmp / "tsdb"
    backfill(om, tsdb)
    om.unlink()
    samples = block_samples(tsdb)
    srv = start_prometheus(tsdb, tmp / "run")
    return PromCluster(srv.url, truth, srv, samples)


@pytest.fixture(scope="session")
def prom_cluster(tmp_path_factory):
    need("prometheus", "promtool")
    cluster = _build(tmp_path_factory.mktemp("prom"), hostname_label="Hostname", duplicate_job=True,
                     pod_level_series=True)
    yield cluster
    cluster.server.stop()


@pytest.fixture(scope="session")
def prom_cluster_hostname(tmp_path_factory):
    need("prometheus", "promtool")
    cluster = _build(tmp_path_factory.mktemp("prom-hostname"), hostname_label="hostname", duplicate_job=False,
                     pod_level_series=False)
    yield cluster
    cluster.server.stop()


@pytest.fixture(scope="session")
def vm_cluster(tmp_path_factory):
    if not tool("victoria-metrics"):
        pytest.skip("victoria-metrics not installed (optional: `apt-get install victoria-metrics` to run this too)")
    cluster = _build(tmp_path_factory.mktemp("vm"), server="victoriametrics", hostname_label="Hostname",
                     duplicate_job=True, pod_level_series=True)
    yield cluster
    cluster.server.stop()


@pytest.fixture(scope="session")
def sample_snapshot():
    """The bundled sample snapshot, loaded once (tests must not modify it)."""
    from analyzer.paths import sample_snapshot_dir
    from analyzer.snapshot import load_snapshot

    return load_snapshot(sample_snapshot_dir())


@pytest.fixture(scope="session")
def sample_recommendations(sample_snapshot):
    """Every recommender's output on the bundled sample, computed once."""
    from recommenders.api import KINDS, recommend

    return recommend(sample_snapshot, kinds=KINDS)
