"""The Prometheus collector against a real Prometheus holding a simulated cluster (ground truth).

The simulator's snapshot is the truth; its OpenMetrics rendering (real exporter names and
labels, counter resets, pod-level series, a duplicate scrape job) is backfilled into a real
Prometheus; the collected snapshot must match: per-container p95 CPU within 2 %, peak memory
exact, requests/limits exact, pods resolved to the right workload, OOM kills present, GPU
utilization per pod and device.
"""

from __future__ import annotations

import polars as pl
import pytest

from analyzer.collectors.prometheus import PrometheusClient, PrometheusConfig, collect_prometheus
from analyzer.errors import InputError
from analyzer.schema import KEYS
from analyzer.snapshot import load_snapshot

KEY = ["namespace", "pod", "container"]


def _collect(cluster, **kwargs):
    config = PrometheusConfig(url=cluster.url, timeout=60, retries=1, backoff=0.1, **kwargs.pop("config", {}))
    client = PrometheusClient(config)
    m = cluster.truth.manifest
    snap = collect_prometheus(config, start=m.start, end=m.end, client=client, **kwargs)
    return snap, client


@pytest.fixture(scope="module")
def collected(prom_cluster):
    return _collect(prom_cluster)


def _str(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


def _per_container(usage: pl.DataFrame, resource: str) -> pl.DataFrame:
    return _str(usage).filter(pl.col("resource") == resource).group_by(KEY).agg(
        pl.col("value").quantile(0.95, interpolation="linear").alias("p95"), pl.col("value").max().alias("max"),
        pl.col("value").mean().alias("mean"), pl.len().alias("n"))


# ---------------------------------------------------------------------------------------------


def test_window_step_and_source(prom_cluster, collected):
    snap, _ = collected
    truth = prom_cluster.truth.manifest
    assert (snap.manifest.start, snap.manifest.end) == (truth.start, truth.end)
    assert snap.manifest.step_seconds == truth.step_seconds == 300
    assert snap.manifest.source.startswith("prometheus http://127.0.0.1:")


def test_bulk_queries_only(collected, prom_cluster):
    """A handful of requests for the whole cluster, none per workload or container."""
    snap, client = collected
    assert snap.containers.height > 50
    # A fixed set, whatever the cluster's size: listing, build info, scrape interval, series index,
    # up to three per spec family group (at the end, ended series on the grid, exact fill), the
    # usage families, GPU, throttling and the events (candidates, then their range queries).
    assert len(client.log) <= 30, [e[0] for e in client.log.entries]
    assert all(status == 200 for _w, _p, _s, status, _b in client.log.entries)


def test_specs_read_on_a_grid_equal_the_exact_scan(prom_cluster, collected):
    """kube-state-metrics specs read on a coarse grid + the series it missed (promlast) give the
    same snapshot as the exact ``last_over_time`` scan of every sample."""
    snap, client = collected
    whats = [e[0] for e in client.log.entries]
    # Pods that ended during the window were read on the grid; those that lived between two grid
    # points (the CronJobs') exactly, narrowed to them.
    for what in ("requests and limits", "pod owners"):
        assert f"{what} (ended series)" in whats and f"{what} (fill)" in whats, whats
    # Restart and OOM counters: two points per series alive at both ends, the rest exactly.
    assert "restarted containers (fill)" in whats, whats
    exact, exact_client = _collect(prom_cluster, config={"spec_grid": 0})
    assert not any("(fill)" in e[0] or "(ended series)" in e[0] for e in exact_client.log.entries)
    for name in ("containers", "workloads", "nodes", "events", "gpus", "namespaces"):
        a, b = getattr(snap, name), getattr(exact, name)
        assert (a is None) == (b is None), name
        if a is not None:
            a, b = a.drop(THROTTLED, strict=False), b.drop(THROTTLED, strict=False)
            assert a.equals(b), (name, a.join(b, on=a.columns, how="anti").head(3))
    _same_throttling(snap, exact)
    # A grid finer than the pods' lives needs no fill at all, and still gives the same.
    fine, _ = _collect(prom_cluster, config={"spec_grid": 300})
    assert fine.containers.equals(snap.containers)


THROTTLED = "cpu_throttled_fraction"


def _same_throttling(snap, exact):
    """Throttled / all CFS periods: last minus first sample of each counter where both ends are in the
    window, against ``increase()``, whose extrapolation towards zero differs per counter (0.3 % here)."""
    joined = snap.containers.select(*KEY, THROTTLED).join(exact.containers.select(*KEY, THROTTLED), on=KEY,
                                                          suffix="_exact")
    assert joined[THROTTLED].is_null().equals(joined[f"{THROTTLED}_exact"].is_null())
    both = joined.drop_nulls()
    assert both.height > 10
    assert ((both[THROTTLED] - both[f"{THROTTLED}_exact"]).abs() <= 0.01 * both[f"{THROTTLED}_exact"] + 1e-9).all()


def test_specs_with_too_many_ended_series_to_name_are_scanned_exactly(prom_cluster, collected, monkeypatch):
    from analyzer.collectors import promlast

    monkeypatch.setattr(promlast, "MAX_NARROW", 1)
    snap, client = _collect(prom_cluster)
    whats = [e[0] for e in client.log.entries]
    assert "requests and limits (fill)" in whats and "requests and limits (ended series)" not in whats, whats
    for name in ("containers", "workloads", "nodes"):
        assert getattr(snap, name).equals(getattr(collected[0], name)), name


def test_no_duplicate_rows_despite_two_scrape_jobs_and_pod_level_series(collected):
    snap, _ = collected
    for name, keys in KEYS.items():
        frame = getattr(snap, name)
        assert frame.select(keys).is_duplicated().sum() == 0, name
    assert not _str(snap.usage).filter(pl.col("container").is_in(["", "POD"])).height


def test_containers_requests_and_limits_exact(prom_cluster, collected):
    snap, _ = collected
    cols = ["cpu_request", "cpu_limit", "memory_request", "memory_limit", "gpu_resource", "gpu_request", "gpu_limit"]
    truth = _str(prom_cluster.truth.containers)
    got = _str(snap.containers)
    assert set(map(tuple, got.select(KEY).rows())) == set(map(tuple, truth.select(KEY).rows()))
    joined = truth.select(*KEY, *cols).join(got.select(*KEY, *cols), on=KEY, suffix="_got")
    for col in cols:
        diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got")))
        assert diff.height == 0, (col, diff.head(5))


def test_pods_resolve_to_their_workloads(prom_cluster, collected):
    snap, _ = collected
    cols = ["workload_kind", "workload", "owner_kind", "owner_name", "container_type", "node"]
    truth = _str(prom_cluster.truth.containers).select(*KEY, *cols)
    got = _str(snap.containers).select(*KEY, *cols)
    joined = truth.join(got, on=KEY, suffix="_got")
    for col in cols:
        diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got")))
        assert diff.height == 0, (col, diff.head(5))
    kinds = set(got["workload_kind"].unique())
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"} <= kinds
    # The usage rows carry the same workload as the containers they belong to.
    pairs = _str(snap.usage).select(*KEY, "workload_kind", "workload").unique()
    assert pairs.join(got.select(*KEY, "workload_kind", "workload"), on=[*KEY, "workload_kind", "workload"],
                      how="anti").height == 0


def test_pod_start_and_end(prom_cluster, collected):
    """Start from kube_pod_start_time (exact); end from the last sample (within one scrape)."""
    snap, _ = collected
    step = snap.manifest.step_seconds
    joined = _str(prom_cluster.truth.containers).select(*KEY, "started_at", "ended_at").join(
        _str(snap.containers).select(*KEY, "started_at", "ended_at"), on=KEY, suffix="_got")
    assert joined.filter(pl.col("started_at").ne_missing(pl.col("started_at_got"))).height == 0
    assert (joined["ended_at"].is_null() == joined["ended_at_got"].is_null()).all()
    lag = joined.drop_nulls("ended_at").select((pl.col("ended_at") - pl.col("ended_at_got")).dt.total_seconds())
    assert lag.height > 0 and lag.to_series().is_between(0, step - 1).all(), lag


def test_cpu_p95_within_2_percent(prom_cluster, collected):
    snap, _ = collected
    truth = _per_container(prom_cluster.truth.usage, "cpu")
    got = _per_container(snap.usage, "cpu")
    joined = truth.filter(pl.col("n") >= 12).join(got, on=KEY, how="left", suffix="_got")
    assert joined["p95_got"].null_count() == 0, joined.filter(pl.col("p95_got").is_null())
    err = joined.with_columns(((pl.col("p95_got") - pl.col("p95")).abs() / pl.col("p95").clip(lower_bound=1e-3))
                              .alias("rel"))
    bad = err.filter(pl.col("rel") > 0.02)
    assert bad.height == 0, bad.select(*KEY, "p95", "p95_got", "rel", "n", "n_got")


def test_peak_memory_exact(prom_cluster, collected):
    snap, _ = collected
    truth = _per_container(prom_cluster.truth.usage, "memory")
    got = _per_container(snap.usage, "memory")
    joined = truth.join(got, on=KEY, how="left", suffix="_got")
    bad = joined.filter(pl.col("max").ne_missing(pl.col("max_got")))
    assert bad.height == 0, bad.select(*KEY, "max", "max_got", "n", "n_got")


def test_oom_kills_present(prom_cluster, collected):
    snap, _ = collected
    step = snap.manifest.step_seconds
    truth = _str(prom_cluster.truth.events).filter(pl.col("reason") == "OOMKilled")
    got = _str(snap.events).filter(pl.col("reason") == "OOMKilled")
    assert truth.height > 0
    near = truth.join(got.select(*KEY, pl.col("timestamp").alias("t_got")), on=KEY, how="left").filter(
        (pl.col("t_got") - pl.col("timestamp")).dt.total_seconds().abs() <= step)
    missing = truth.join(near.select(*KEY, "timestamp").unique(), on=[*KEY, "timestamp"], how="anti")
    assert missing.height == 0, missing
    assert got.height == truth.height, got
    assert got["memory_limit"].null_count() == 0


def test_gpu_utilization_per_pod_and_device(prom_cluster, collected):
    snap, _ = collected
    keys = [*KEY, "device"]
    for resource, tolerance in (("gpu", 0.01), ("gpu_memory", 2**20)):
        truth = _str(prom_cluster.truth.usage).filter(pl.col("resource") == resource).group_by(keys).agg(
            pl.col("value").mean().alias("mean"), pl.col("value").max().alias("max"))
        got = _str(snap.usage).filter(pl.col("resource") == resource).group_by(keys).agg(
            pl.col("value").mean().alias("mean_got"), pl.col("value").max().alias("max_got"))
        assert truth.height > 0, resource
        joined = truth.join(got, on=keys, how="full", coalesce=True)
        bad = joined.filter(((pl.col("mean") - pl.col("mean_got")).abs() > tolerance)
                            | pl.col("mean").is_null() | pl.col("mean_got").is_null())
        assert bad.height == 0, (resource, bad)
    assert {"gpu", "gpu_memory"}.isdisjoint(snap.manifest.absent)


def test_gpus_frame(prom_cluster, collected):
    snap, _ = collected
    cols = ["node", "device", "gpu_index", "model", "mig_profile", "memory_total", "namespace", "pod", "container"]
    truth = _str(prom_cluster.truth.gpus).select(cols).sort("node", "device")
    got = _str(snap.gpus).select(cols).sort("node", "device")
    assert got.select("node", "device").equals(truth.select("node", "device"))
    for col in cols[2:]:
        diff = truth.join(got, on=["node", "device"], suffix="_got").filter(pl.col(col).ne_missing(pl.col(f"{col}_got")))
        assert diff.height == 0, (col, diff.head(5))


def test_nodes(prom_cluster, collected):
    snap, _ = collected
    cols = ["instance_type", "capacity_type", "cpu_capacity", "cpu_allocatable", "memory_capacity",
            "memory_allocatable", "gpu_count", "gpu_model", "mig_strategy", "mig_config", "zone", "region"]
    truth = _str(prom_cluster.truth.nodes)
    got = _str(snap.nodes)
    assert set(got["node"]) == set(truth["node"])
    joined = truth.select("node", *cols).join(got.select("node", *cols), on="node", suffix="_got")
    for col in cols:
        diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got")))
        assert diff.height == 0, (col, diff.select("node", col, f"{col}_got"))
    def pairs(df: pl.DataFrame, col: str) -> dict:
        return {r["node"]: sorted(tuple(x.values()) for x in (r[col] or [])) for r in df.select("node", col).to_dicts()}

    assert pairs(got, "taints") == pairs(truth, "taints")
    assert pairs(got, "labels") == pairs(truth, "labels")  # well-known keys read back from label_<sanitized>
    if got["hourly_price"].null_count() < got.height:  # the rendering includes OpenCost prices
        priced = got.filter(pl.col("hourly_price").is_not_null())
        assert (priced["price_source"] == "opencost node_total_hourly_cost").all()
        assert "prices" not in snap.manifest.absent


def test_workloads_and_autoscalers(prom_cluster, collected):
    snap, _ = collected
    key = ["namespace", "workload_kind", "workload"]
    truth = _str(prom_cluster.truth.workloads)
    got = _str(snap.workloads)
    assert set(map(tuple, got.select(key).rows())) == set(map(tuple, truth.select(key).rows()))
    replicas = truth.select(*key, "replicas").join(got.select(*key, "replicas"), on=key, suffix="_got")
    assert replicas.filter(pl.col("replicas").ne_missing(pl.col("replicas_got"))).height == 0, replicas
    if "hpa" not in snap.manifest.absent:
        cols = ["hpa_name", "hpa_min_replicas", "hpa_max_replicas", "hpa_metrics"]
        joined = truth.select(*key, *cols).join(got.select(*key, *cols), on=key, suffix="_got")
        for col in cols:
            diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got")))
            assert diff.height == 0, (col, diff)


def test_namespace_labels(prom_cluster, collected):
    """kube_namespace_labels: well-known keys come back as written, others as KSM sanitized them."""
    from analyzer.kube import KNOWN_NODE_LABELS

    def labels(df: pl.DataFrame, sanitize: bool) -> dict:
        out = {}
        for r in _str(df).to_dicts():
            keys = [(x["key"] if not sanitize or x["key"] in KNOWN_NODE_LABELS else
                     "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in x["key"]), x["value"])
                    for x in r["labels"] or []]
            out[r["namespace"]] = sorted(keys)
        return out

    snap, _ = collected
    assert labels(snap.namespaces, False) == labels(prom_cluster.truth.namespaces, True)


def test_snapshot_writes_and_loads(collected, tmp_path):
    snap, _ = collected
    out = snap.write(tmp_path / "snap")
    again = load_snapshot(out)
    assert again.equals(snap)


def test_dcgm_hostname_label_and_single_job(prom_cluster, prom_cluster_hostname, collected):
    """Newer dcgm-exporters say `hostname`; no duplicate job, no pod-level series: same answer."""
    snap, _ = collected
    other, _ = _collect(prom_cluster_hostname)
    for frame in ("usage", "containers", "gpus", "events"):
        key = KEYS[frame]
        a = _str(getattr(snap, frame)).sort(key, nulls_last=True)
        b = _str(getattr(other, frame)).sort(key, nulls_last=True)
        assert a.equals(b), frame


def test_namespace_filter(prom_cluster):
    snap, _ = _collect(prom_cluster, namespaces=["ml-serving", "payments"])
    assert set(_str(snap.usage)["namespace"].unique()) == {"ml-serving", "payments"}
    assert set(_str(snap.containers)["namespace"].unique()) == {"ml-serving", "payments"}
    assert snap.nodes.height == prom_cluster.truth.nodes.height  # nodes are cluster-wide


def test_cluster_label_that_matches_nothing_is_one_clear_error(prom_cluster):
    with pytest.raises(InputError, match=r"has no metrics at all .* \(with cluster=nope\)"):
        _collect(prom_cluster, config={"cluster_label": "cluster=nope"})


def test_collect_from_options_uses_the_history(prom_cluster):
    from analyzer.collectors.prometheus import collect_from_options

    end = prom_cluster.truth.manifest.end
    snap = collect_from_options(prom_cluster.url, history="6h", end=end, timeout=60)
    assert snap.manifest.end == end
    assert (snap.manifest.end - snap.manifest.start).total_seconds() <= 6 * 3600


def test_victoriametrics_gives_the_same_numbers(vm_cluster):
    """VictoriaMetrics (Debian's victoria-metrics, loaded from the same TSDB with vmctl)."""
    snap, client = _collect(vm_cluster)
    assert len(client.log) <= 25
    truth = vm_cluster.truth

    def settled(usage: pl.DataFrame) -> pl.DataFrame:
        # VictoriaMetrics guesses a new series' previous sample from its scrape interval, so the
        # first two steps of a container that starts inside the window can differ (measured
        # once: the second sample of a CronJob pod read as its whole counter). Skip them.
        return usage.filter(pl.col("timestamp").rank("ordinal").over(KEY) > 2)

    cpu = _per_container(settled(truth.usage), "cpu").filter(pl.col("n") >= 12).join(
        _per_container(settled(snap.usage), "cpu"), on=KEY, how="left", suffix="_got")
    rel = ((cpu["p95_got"] - cpu["p95"]).abs() / cpu["p95"].clip(lower_bound=1e-3))
    assert cpu["p95_got"].null_count() == 0 and (rel <= 0.02).all(), cpu.filter(rel > 0.02).rows()
    mem = _per_container(truth.usage, "memory").join(_per_container(snap.usage, "memory"), on=KEY, how="left",
                                                    suffix="_got")
    assert mem.filter(pl.col("max").ne_missing(pl.col("max_got"))).height == 0
    cols = ["cpu_request", "cpu_limit", "memory_request", "memory_limit", "workload_kind", "workload"]
    joined = _str(truth.containers).select(*KEY, *cols).join(_str(snap.containers).select(*KEY, *cols), on=KEY,
                                                             suffix="_got")
    assert joined.height == truth.containers.height
    for col in cols:
        assert joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got"))).height == 0, (col, joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_got"))).select(*KEY, col, f"{col}_got").rows())


def test_oom_kills_from_the_last_termination_reason_alone(prom_cluster, tmp_path):
    """Without restart or OOM counters (kube-state-metrics trimmed by --metric-denylist, cAdvisor's
    oom_event group disabled), OOM kills come from ``kube_pod_container_status_last_terminated_reason``:
    the first step of each stretch where a container's last termination reads OOMKilled."""
    from analyzer.simulator.openmetrics import write_openmetrics
    from tests.support.prometheus_server import backfill, need, start_prometheus

    need("prometheus", "promtool")
    truth = prom_cluster.truth
    full, trimmed = tmp_path / "full.om", tmp_path / "cluster.om"
    write_openmetrics(truth, full, pod_level_series=False)
    with open(full, "rb") as src, open(trimmed, "wb") as dst:
        dst.writelines(line for line in src if b"container_status_restarts" not in line
                       and b"container_oom_events" not in line)
    full.unlink()
    backfill(trimmed, tmp_path / "tsdb")
    server = start_prometheus(tmp_path / "tsdb", tmp_path / "run")
    try:
        config = PrometheusConfig(url=server.url, timeout=60, retries=1, backoff=0.1)
        client = PrometheusClient(config)
        snap = collect_prometheus(config, start=truth.manifest.start, end=truth.manifest.end, client=client)
    finally:
        server.stop()
    assert "OOM-killed containers" in [e[0] for e in client.log.entries]
    step = snap.manifest.step_seconds
    kills = _str(truth.events).filter(pl.col("reason") == "OOMKilled")
    got = _str(snap.events).filter(pl.col("reason") == "OOMKilled")
    assert kills.height > 0 and got.height > 0
    # Every container OOM-killed is found, and every kill found is one of the true kills (within a step);
    # kills in a row while the last termination still reads OOMKilled count once.
    assert set(got.select(KEY).unique().rows()) == set(kills.select(KEY).unique().rows())
    near = got.join(kills.select(*KEY, pl.col("timestamp").alias("t_true")), on=KEY).filter(
        (pl.col("t_true") - pl.col("timestamp")).dt.total_seconds().abs() <= step)
    assert near.select(*KEY, "timestamp").unique().height == got.height, got
