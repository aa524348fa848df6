"""Shared fixtures. The Prometheus collector's (issue 3): a simulated cluster in a real Prometheus.

``prom_cluster`` simulates a small cluster (20 workloads, ~90 containers, 2 days at 5 min),
renders it as the exporters would (``analyzer.simulator.openmetrics``: cAdvisor counters with
resets, pod-level cgroup series, a duplicate scrape job, KSM, DCGM with ``Hostname``, OpenCost),
backfills it with promtool and serves it from ``prometheus`` on 127.0.0.1; once per session,
stopped by PID at teardown. ``prom_cluster_hostname`` is the same cluster rendered the other
way (DCGM ``hostname``, no duplicate job, no pod-level series). Without prometheus/promtool the
tests skip with a reason, or fail under CI=true (``make test`` installs them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

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

    try:
        from analyzer.simulator.openmetrics import write_openmetrics
    except ImportError:  # pragma: no cover - the simulator's exporter rendering lands separately
        pytest.skip("analyzer.simulator.openmetrics (the exporter rendering of the simulator) is not available")

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
