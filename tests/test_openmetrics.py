"""The simulator's OpenMetrics rendering: promtool takes every sample; the exporters' shapes hold."""

from __future__ import annotations

import re
import shutil
import subprocess

import polars as pl
import pytest

from analyzer.simulator import simulate
from analyzer.simulator.openmetrics import write_openmetrics
from tests.support.prometheus_server import need

SIM = {"workloads": 18, "days": 0.5, "step_seconds": 600, "seed": 4}
LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\} (\S+) (\d+)$')


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    snap = simulate(**SIM)
    path = tmp_path_factory.mktemp("om") / "cluster.om"
    counts = write_openmetrics(snap, path, duplicate_job=True)
    return snap, path, counts


def _samples(path, family):
    out = []
    with open(path) as fh:
        for line in fh:
            if line.startswith(family + "{"):
                m = LINE.match(line.rstrip("\n"))
                out.append((m[2], float(m[3]), int(m[4])))
    return out


def test_format_rules(rendered):
    snap, path, counts = rendered
    text = path.read_text()
    assert text.endswith("# EOF\n") and "\n\n" not in text and "\r" not in text
    families, seen_series, last = [], set(), {}
    start, end = snap.manifest.start.timestamp(), snap.manifest.end.timestamp()
    current = None
    for line in text.splitlines()[:-1]:
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in families, f"family {name} written twice"
            families.append(name)
            continue
        m = LINE.match(line)
        assert m, line
        series, ts = f"{m[1]}{{{m[2]}}}", int(m[4])
        assert start <= ts <= end  # seconds, inside the window
        if series != current:
            assert series not in seen_series, f"series not contiguous: {series}"
            seen_series.add(series)
            current = series
        else:
            assert ts > last[series], "timestamps must strictly increase"
        last[series] = ts
    assert sum(c["samples"] for c in counts.values()) == sum(1 for _ in text.splitlines()) - len(families) - 1


def test_promtool_backfills_every_sample(rendered, tmp_path):
    need("promtool")
    _, path, counts = rendered
    subprocess.run([shutil.which("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    "--max-block-duration=744h", str(path), str(tmp_path / "tsdb")], check=True, capture_output=True)
    listing = subprocess.run([shutil.which("promtool"), "tsdb", "list", "-r", str(tmp_path / "tsdb")],
                             check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    header = listing.splitlines()[0].split("  ")
    assert rows, listing
    samples_col = [h.strip() for h in header if h.strip()].index("NUM SAMPLES")
    total = sum(int(r[samples_col + 6]) for r in rows)  # MIN/MAX TIME columns hold 3 words each
    assert total == sum(c["samples"] for c in counts.values())


def test_cpu_counter_integrates_samples_and_resets_on_restart(rendered):
    snap, path, _ = rendered
    step = snap.manifest.step_seconds
    series: dict[str, list[tuple[int, float]]] = {}
    for labels, value, ts in _samples(path, "container_cpu_usage_seconds_total"):
        if 'job="kubelet"' in labels and 'container=""' not in labels and 'container="POD"' not in labels:
            series.setdefault(labels, []).append((ts, value))
    cpu = snap.usage.filter(pl.col("resource") == "cpu").with_columns(pl.col(c).cast(pl.String) for c in ("pod", "container"))
    restarted = set(snap.events.filter(pl.col("reason").is_in(["OOMKilled", "Error"]))
                    .select(pl.concat_str([pl.col("pod").cast(pl.String), pl.col("container").cast(pl.String)], separator="/"))
                    .to_series().to_list())
    resets = 0
    checked = 0
    for labels, points in series.items():
        pod = re.search(r'pod="([^"]+)"', labels)[1]
        container = re.search(r'container="([^"]+)"', labels)[1]
        truth = dict(cpu.filter((pl.col("pod") == pod) & (pl.col("container") == container))
                     .select(pl.col("timestamp").dt.epoch("s"), "value").iter_rows())
        for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
            if v1 < v0:
                resets += 1
                assert f"{pod}/{container}" in restarted
                continue
            assert v1 - v0 == pytest.approx(truth[t1] * step, abs=1e-5)
            checked += 1
    assert checked > 100
    assert resets >= 1  # the simulated OOM kills restart containers


def test_noise_series_and_duplicate_job(rendered):
    _, path, _ = rendered
    mem = _samples(path, "container_memory_working_set_bytes")
    assert any('container=""' in labels for labels, _, _ in mem)
    assert any('container="POD"' in labels for labels, _, _ in mem)
    assert {re.search(r'job="([^"]+)"', labels)[1] for labels, _, _ in mem} == {"kubelet", "cadvisor"}


def test_dcgm_shapes(rendered, tmp_path):
    snap, path, _ = rendered
    util = _samples(path, "DCGM_FI_DEV_GPU_UTIL")
    engine = _samples(path, "DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    assert util and engine
    assert not any("GPU_I_PROFILE" in labels for labels, _, _ in util), "GPU_UTIL is absent on MIG instances"
    assert any("GPU_I_PROFILE" in labels for labels, _, _ in engine)
    assert all('Hostname="' in labels for labels, _, _ in engine)
    assert all(0 <= v <= 100 for _, v, _ in util) and all(0 <= v <= 1 for _, v, _ in engine)
    new = tmp_path / "new.om"
    write_openmetrics(snap, new, hostname_label="hostname", pod_level_series=False)
    newer = _samples(new, "DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    assert newer and all('hostname="' in labels and "Hostname" not in labels for labels, _, _ in newer)
    assert not any('container=""' in labels for labels, _, _ in _samples(new, "container_memory_working_set_bytes"))


def test_kube_state_metrics_requests_match_the_snapshot(rendered):
    snap, path, _ = rendered
    got = {}
    for family in ("kube_pod_container_resource_requests", "kube_pod_init_container_resource_requests"):
        for labels, value, _ in _samples(path, family):
            d = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            got[(d["pod"], d["container"], d["resource"])] = value
    c = snap.containers.with_columns(pl.col(x).cast(pl.String) for x in ("pod", "container"))
    for row in c.iter_rows(named=True):
        if row["cpu_request"] is not None and (row["pod"], row["container"], "cpu") in got:
            assert got[(row["pod"], row["container"], "cpu")] == pytest.approx(row["cpu_request"])
        if row["memory_request"] is not None and (row["pod"], row["container"], "memory") in got:
            assert got[(row["pod"], row["container"], "memory")] == row["memory_request"]
    with_requests = c.filter(pl.col("cpu_request").is_not_null()).height
    assert sum(1 for k in got if k[2] == "cpu") >= with_requests * 0.9  # pods outside the window have none
