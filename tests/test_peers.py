"""The peers' formulas (recommenders/peers.py) on hand-made frames with hand-computable answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from recommenders.peers import OUTPUT_SCHEMA, krr_simple, vpa

MIB, GIB = 2**20, 2**30
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def series(values, resource: str, *, pod: str = "p-0", container: str = "app", workload: str = "w",
           start: datetime = T0) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame({
        "timestamp": [start + i * STEP for i in range(n)],
        "namespace": ["ns"] * n, "workload_kind": ["Deployment"] * n, "workload": [workload] * n,
        "pod": [pod] * n, "container": [container] * n, "resource": [resource] * n,
        "value": [float(v) for v in values],
    })


def constant(value: float, resource: str, days: float, **kw) -> pl.DataFrame:
    return series([value] * int(days * 288), resource, **kw)


def one(df: pl.DataFrame, **key) -> dict:
    for k, v in key.items():
        df = df.filter(pl.col(k) == v)
    assert df.height == 1, df
    return df.row(0, named=True)


def bucket_end(value: float, first: float) -> float:
    """VPA exponential histogram (5% growth): end of the bucket holding ``value``, by hand."""
    b = math.floor(math.log(value * 0.05 / first + 1) / math.log(1.05))
    return first * (1.05 ** (b + 1) - 1) / 0.05


def oom_event(at: datetime, limit: int, pod: str = "p-0", container: str = "app") -> pl.DataFrame:
    return pl.DataFrame({
        "timestamp": [at], "namespace": ["ns"], "workload_kind": ["Deployment"], "workload": ["w"],
        "pod": [pod], "container": [container], "reason": ["OOMKilled"], "exit_code": [137],
        "restart_count": [1], "memory_limit": [limit],
    })


# ------------------------------------------------------------------------------------------- VPA


def test_vpa_constant_series_is_value_times_margin_up_to_the_bucket():
    usage = pl.concat([constant(0.5, "cpu", 3), constant(GIB, "memory", 3)])
    r = one(vpa(usage))
    # bucket of 0.5 core: floor(log(0.5*0.05/0.01 + 1)/log 1.05) = 25, its end 0.01(1.05^26-1)/0.05
    assert bucket_end(0.5, 0.01) == pytest.approx(0.5111, abs=1e-4)
    assert r["cpu_request"] == 0.588  # 0.5111 x 1.15 = 0.5878, rounded up to 1m
    assert 0.5 * 1.15 <= r["cpu_request"] <= 0.5 * 1.05 * 1.15 + 0.001
    assert r["memory_request"] == math.ceil(bucket_end(GIB, 1e7) * 1.15)
    assert GIB * 1.15 <= r["memory_request"] <= GIB * 1.05 * 1.15
    assert r["memory_limit"] == r["memory_request"]
    assert r["cpu_limit"] is None


def test_vpa_decay_weights_the_last_day():
    # 13.75 days at 0.1 core, the last 6 h at 1 core: 1.8% of the samples but ~16% of the decayed
    # weight (24 h half-life), so the decayed p90 lands in the 1-core bucket; KRR's p95 does not.
    quiet, busy = [0.1] * (int(13.75 * 288)), [1.0] * 72
    usage = pl.concat([series(quiet + busy, "cpu"), series([GIB] * len(quiet + busy), "memory")])
    assert one(vpa(usage))["cpu_request"] == math.ceil(bucket_end(1.0, 0.01) * 1.15 * 1000 - 1e-6) / 1000
    assert one(krr_simple(usage))["cpu_request"] == 0.1
    # reversed (busy long ago): the old samples have decayed, the target follows the recent 0.1
    old = pl.concat([series(busy + quiet, "cpu"), series([GIB] * len(quiet + busy), "memory")])
    assert one(vpa(old))["cpu_request"] == math.ceil(bucket_end(0.1, 0.01) * 1.15 * 1000 - 1e-6) / 1000


def test_vpa_memory_uses_daily_peaks_of_the_last_8_days_only():
    values = [GIB] * (10 * 288)
    values[100] = 4 * GIB  # a spike on day 1: outside VPA's 8-day history, inside KRR's window
    usage = pl.concat([series(values, "memory"), constant(0.2, "cpu", 10)])
    assert one(vpa(usage))["memory_request"] == math.ceil(bucket_end(GIB, 1e7) * 1.15)
    k = one(krr_simple(usage))
    assert k["memory_request"] == math.ceil(4 * GIB * 1.15 / MIB) * MIB == k["memory_limit"]


def test_vpa_memory_pools_pods_and_takes_the_p90_of_peaks():
    # pod a peaks at 1 GiB every day; pod b at 2 GiB: 16 peaks, half at 2 GiB -> p90 in the 2 GiB bucket
    usage = pl.concat([constant(GIB, "memory", 8, pod="a"), constant(2 * GIB, "memory", 8, pod="b"),
                       constant(0.1, "cpu", 8, pod="a"), constant(0.1, "cpu", 8, pod="b")])
    assert one(vpa(usage))["memory_request"] == math.ceil(bucket_end(2 * GIB, 1e7) * 1.15)


def test_vpa_oom_bump_up():
    usage = pl.concat([constant(GIB, "memory", 8), constant(0.1, "cpu", 8)])
    at = T0 + timedelta(days=7, hours=12)
    # used = peak 1 GiB -> needed = max(1 GiB + 100 MiB, 1.2 GiB) = 1.2 GiB; the last interval's
    # peak weighs about half of all (24 h half-life), so p90 is that bucket
    r = one(vpa(usage, oom_event(at, GIB)))
    assert r["memory_request"] == math.ceil(bucket_end(1.2 * GIB, 1e7) * 1.15)
    # with the request known (2 GiB), used = max(request, peak) = 2 GiB -> 2.4 GiB
    containers = pl.DataFrame({"namespace": ["ns"], "pod": ["p-0"], "container": ["app"], "memory_request": [2 * GIB]})
    r = one(vpa(usage, oom_event(at, GIB), containers=containers))
    assert r["memory_request"] == math.ceil(bucket_end(2.4 * GIB, 1e7) * 1.15)
    # small peaks: the 100 MiB minimum bump wins (300 MiB + 100 MiB > 360 MiB)
    small = pl.concat([constant(300 * MIB, "memory", 8), constant(0.1, "cpu", 8)])
    r = one(vpa(small, oom_event(at, 300 * MIB)))
    assert r["memory_request"] == math.ceil(bucket_end(400 * MIB, 1e7) * 1.15)


def test_vpa_pod_minimums_split_across_containers():
    usage = pl.concat([constant(0.001, "cpu", 2, container=c) for c in ("app", "sidecar")]
                      + [constant(MIB, "memory", 2, container=c) for c in ("app", "sidecar")])
    out = vpa(usage)
    assert out.height == 2
    for row in out.iter_rows(named=True):
        assert row["cpu_request"] == 0.013  # 25m / 2 = 12.5m, rounded up to 1m
        assert row["memory_request"] == 250 * MIB // 2


def test_vpa_resource_without_samples_is_null():
    r = one(vpa(constant(0.3, "cpu", 2)))
    assert r["cpu_request"] is not None and r["memory_request"] is None and r["memory_limit"] is None


# ------------------------------------------------------------------------------------------- KRR


def test_krr_cpu_is_max_over_pods_of_each_pods_p95():
    a = series([0.001 * i for i in range(1, 101)], "cpu", pod="a")  # p95 (linear) = 0.09505
    b = constant(0.05, "cpu", 1, pod="b")
    mem = pl.concat([constant(200 * MIB, "memory", 1, pod="a"), constant(100 * MIB, "memory", 1, pod="b")])
    r = one(krr_simple(pl.concat([a, b, mem])))
    assert r["cpu_request"] == 0.096  # max(0.09505, 0.05) rounded up to 1m
    assert r["cpu_limit"] is None
    assert r["memory_request"] == r["memory_limit"] == 230 * MIB  # peak 200 MiB x 1.15


def test_krr_floors_and_rounding():
    usage = pl.concat([constant(0.0001, "cpu", 1), constant(MIB, "memory", 1)])
    r = one(krr_simple(usage))
    assert r["cpu_request"] == 0.01 and r["memory_request"] == 100 * MIB
    usage = pl.concat([constant(0.1234, "cpu", 1), constant(300 * MIB + 1, "memory", 1)])
    r = one(krr_simple(usage))
    assert r["cpu_request"] == 0.124
    assert r["memory_request"] == math.ceil((300 * MIB + 1) * 1.15 / MIB) * MIB


def test_krr_needs_100_points():
    usage = pl.concat([series([0.5] * 99, "cpu"), series([GIB] * 100, "memory")])
    r = one(krr_simple(usage))
    assert r["cpu_request"] is None and r["memory_request"] is not None


def test_krr_oom_bumps_memory_to_the_limit_at_oom_times_1_25():
    usage = pl.concat([constant(0.2, "cpu", 1), constant(300 * MIB, "memory", 1)])
    r = one(krr_simple(usage, oom_event(T0 + timedelta(hours=3), 512 * MIB)))
    assert r["memory_request"] == 640 * MIB
    other = oom_event(T0, 512 * MIB, container="other")  # another container's OOM changes nothing
    assert one(krr_simple(usage, other))["memory_request"] == math.ceil(300 * 1.15) * MIB


def test_one_row_per_container_with_the_output_schema():
    usage = pl.concat([
        constant(0.2, "cpu", 1, workload="w1"), constant(GIB, "memory", 1, workload="w1"),
        constant(0.4, "cpu", 1, workload="w2", container="c2"), constant(GIB, "memory", 1, workload="w2", container="c2"),
        constant(0.5, "gpu", 1, workload="w3"),  # no cpu/memory: no row
    ]).with_columns(pl.col("namespace", "workload_kind", "workload", "pod", "container").cast(pl.Categorical))
    for f in (krr_simple, vpa):
        out = f(usage)
        assert out.schema == pl.Schema(OUTPUT_SCHEMA)
        assert out.select("workload", "container").rows() == [("w1", "app"), ("w2", "c2")]
        assert out["cpu_request"][0] < out["cpu_request"][1]
