"""A hand-made three-container snapshot for tests that need exact, readable data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from analyzer.snapshot import Manifest, Snapshot

START = datetime(2026, 11, 2, tzinfo=UTC)
STEP = 300


def tiny_snapshot(steps: int = 12) -> Snapshot:
    times = [START + timedelta(seconds=STEP * i) for i in range(steps)]
    rows = []
    for i, t in enumerate(times):
        rows += [
            (t, "shop", "Deployment", "web", "web-abc-1", "app", "cpu", 0.2 + 0.01 * i, None),
            (t, "shop", "Deployment", "web", "web-abc-1", "app", "memory", float(300 * 2**20), None),
            (t, "shop", "Deployment", "web", "web-abc-1", "envoy", "cpu", 0.05, None),
            (t, "shop", "Deployment", "web", "web-abc-1", "envoy", "memory", float(64 * 2**20), None),
            (t, "ml", "Deployment", "infer", "infer-x-1", "server", "cpu", 1.0, None),
            (t, "ml", "Deployment", "infer", "infer-x-1", "server", "memory", float(2 * 2**30), None),
            (t, "ml", "Deployment", "infer", "infer-x-1", "server", "gpu", 0.1, "GPU-0001"),
            (t, "ml", "Deployment", "infer", "infer-x-1", "server", "gpu_memory", float(3 * 2**30), "GPU-0001"),
        ]
    usage = pl.DataFrame(
        rows,
        schema=["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value", "device"],
        orient="row",
    )
    containers = pl.DataFrame(
        {
            "namespace": ["shop", "shop", "ml"],
            "workload_kind": ["Deployment"] * 3,
            "workload": ["web", "web", "infer"],
            "pod": ["web-abc-1", "web-abc-1", "infer-x-1"],
            "container": ["app", "envoy", "server"],
            "container_type": ["app", "sidecar", "app"],
            "node": ["n1", "n1", "g1"],
            "cpu_request": [0.5, 0.1, 2.0],
            "cpu_limit": [None, None, 4.0],
            "memory_request": [512 * 2**20, 128 * 2**20, 4 * 2**30],
            "memory_limit": [512 * 2**20, 128 * 2**20, 4 * 2**30],
            "gpu_resource": [None, None, "nvidia.com/gpu"],
            "gpu_request": [None, None, 1],
            "gpu_limit": [None, None, 1],
        }
    )
    workloads = pl.DataFrame(
        {"namespace": ["shop", "ml"], "workload_kind": ["Deployment", "Deployment"], "workload": ["web", "infer"],
         "replicas": [1, 1]}
    )
    nodes = pl.DataFrame(
        {
            "node": ["n1", "g1"],
            "instance_type": ["m5.xlarge", "g5.xlarge"],
            "capacity_type": ["on-demand", "spot"],
            "cpu_allocatable": [3.9, 3.9],
            "memory_allocatable": [15 * 2**30, 15 * 2**30],
            "gpu_count": [0, 1],
        }
    )
    events = pl.DataFrame(
        {"timestamp": [times[min(5, steps - 1)]], "namespace": ["shop"], "workload_kind": ["Deployment"], "workload": ["web"],
         "pod": ["web-abc-1"], "container": ["app"], "reason": ["OOMKilled"], "exit_code": [137]}
    )
    manifest = Manifest(cluster="tiny", start=times[0], end=times[-1], step_seconds=STEP, source="tests/support/tiny.py")
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes, events=events)
