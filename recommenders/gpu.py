"""GPU recommendations (issue 7, item 2; calibrated in issue 21): remove, optimize or share GPUs.

Kubecost's three types (docs/domain-reference.md section 5): *remove* a GPU nobody uses, *optimize*
a multi-GPU request that uses fewer, *share* a single GPU used in part - a MIG slice where the
model supports it and isolation is wanted (``recommenders.mig``), else time-slicing or MPS
(``GpuSettings.sharing``). Samples are cleaned first (``recommenders.gpu_quality``: glitches, gaps,
coverage; engine preallocation flagged); the framebuffer margin and the busy quantile are
calibrated out of sample per container (``recommenders.gpu_calibration``) unless a fixed
``margin`` is set. Statistics are computed for all GPU containers at once with Polars; only the
final records are built per row. Proposals never go below the observed peak framebuffer (times
``1 + margin``); an unknown GPU model gets a Skip, not a guess. Fleet packing: ``gpu_packing``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import polars as pl

from analyzer import yamlio
from analyzer.cost import HOURS_PER_MONTH
from analyzer.snapshot import Snapshot
from analyzer.units import GIB, MIB
from recommenders.gpu_calibration import calibrate
from recommenders.gpu_packing import packing_note
from recommenders.gpu_pooling import pool_time_sliced
from recommenders.gpu_quality import clean, preallocation
from recommenders.gpu_settings import GpuSettings
from recommenders.mig import COMPUTE_SLICES, MIG_PROFILES, normalise_gpu_model, profile, profiles_frame
from recommenders.rates import WORKLOAD, WorkloadRates, workload_rates
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target

KEY = [*WORKLOAD, "container"]
GPU = "nvidia.com/gpu"
SHARED = "nvidia.com/gpu.shared"  # what time-slicing/MPS advertise with renameByDefault: true
MIG_PREFIX = "nvidia.com/mig-"
REMOVE_MAX_BUSY = 0.01  # "uses none": DCGM busy never above 1% ...
REMOVE_MAX_FB = 128 * MIB  # ... and no CUDA context worth the name (a context alone takes ~300 MiB)
MAX_TIME_SLICES = 10  # the device plugin's documented example; more replicas only add contention
FULL_HISTORY_HOURS = 168.0  # a week of history = full confidence
DEVICE_PLUGIN_NAMESPACE = "gpu-operator"
FIXED_BUSY_QUANTILE = 0.95  # with a fixed margin: margin over the P95 busy (the issue-7 rule)


def recommend_gpu(snapshot: Snapshot, rates: WorkloadRates | None = None, settings: GpuSettings | None = None,
                  **overrides: Any) -> RecommendationSet:
    """Recommendations for every container that requests GPUs; see the module docstring.

    ``settings`` (default ``GpuSettings()``); keyword ``overrides`` replace single fields, e.g.
    ``recommend_gpu(snap, margin=0.2, min_history_hours=12)``."""
    settings = replace(settings or GpuSettings(), **overrides)
    out = RecommendationSet()
    facts = _container_facts(snapshot)
    if facts.is_empty():
        out.cluster_notes["gpu"] = packing_note([], _gpus_in_cluster(snapshot))
        return out
    step_h = snapshot.manifest.step_seconds / 3600.0
    raw = _samples(snapshot)
    samples, quality = clean(raw, facts.select(*KEY, "device_memory"), KEY, step_h, settings)
    per_pod = _per_pod(samples)
    cal, cal_note = calibrate(per_pod, KEY, settings, step_h)
    stats = (_stats(samples, step_h).join(cal, on=KEY, how="left").join(quality, on=KEY, how="left")
             .join(preallocation(per_pod, facts.select(*KEY, "device_memory"), KEY, settings), on=KEY, how="left"))
    rows = _decide(facts.join(stats, on=KEY, how="left"), settings)
    if settings.sharing == "time-slicing":
        rows = pool_time_sliced(rows, per_pod, KEY, settings)
    rows = _risk(_proposal(rows), per_pod)
    rates = rates if rates is not None else workload_rates(snapshot)
    rows = rates.attach(rows).with_columns(
        (pl.col("gpu_rate") * (pl.col("current_units") - pl.col("proposed_units")) * pl.col("replicas")
         * HOURS_PER_MONTH).fill_null(0.0).alias("saving"))
    if rates.basis != "node prices":
        out.notes.append(f"GPU savings use {rates.basis}.")
    for r in rows.sort(KEY).iter_rows(named=True):
        target = Target(r["namespace"], r["workload_kind"], r["workload"], r["container"], r["container_type"])
        if r["action"] == "skip":
            out.skipped.append(Skip(target, r["skip_kind"], r["resource"], r["skip_reason"]))
        elif r["action"] == "keep" and r["preallocated"]:
            out.skipped.append(Skip(target, "gpu-share", r["resource"], _prealloc_keep(r)))
        elif r["action"] != "keep":
            out.recommendations.append(_record(target, r, settings, rates.basis))
    note = packing_note(rows.iter_rows(named=True), _gpus_in_cluster(snapshot))
    note["calibration"] = cal_note if settings.margin is None else {"fixed_margin": settings.margin}
    out.cluster_notes["gpu"] = note
    return out


def _gpus_in_cluster(snapshot: Snapshot) -> int:
    return int(snapshot.nodes["gpu_count"].fill_null(0).sum()) if "gpu_count" in snapshot.nodes.columns else 0


# --- facts -------------------------------------------------------------------------------------

def _container_facts(snapshot: Snapshot) -> pl.DataFrame:
    """One row per (workload, container) requesting GPUs: what it asks for and on which GPUs."""
    c = snapshot.containers.filter(pl.col("gpu_resource").is_not_null()
                                   & (pl.coalesce("gpu_limit", "gpu_request").fill_null(0) > 0))
    c = c.select(*[pl.col(k).cast(pl.String) for k in KEY], pl.col("pod").cast(pl.String),
                 pl.col("container_type").cast(pl.String), pl.col("node").cast(pl.String),
                 "gpu_resource", "gpu_request", "gpu_limit", "ended_at")
    if c.is_empty():
        return c
    nodes = snapshot.nodes.select(pl.col("node").cast(pl.String), "gpu_model", "gpu_memory", "mig_strategy",
                                  "mig_config", "gpu_sharing", "gpu_replicas")
    devs = (snapshot.gpus.filter(pl.col("pod").is_not_null())
            .select(pl.col("namespace").cast(pl.String), pl.col("pod").cast(pl.String),
                    pl.col("container").cast(pl.String), pl.col("model").alias("dev_model"), "mig_profile",
                    pl.when(pl.col("mig_profile").is_null()).then(pl.col("memory_total")).alias("dev_memory"))
            .group_by("namespace", "pod", "container")
            .agg(pl.col("dev_model").drop_nulls().first(), pl.col("mig_profile").drop_nulls().first(),
                 pl.col("dev_memory").max()))
    j = c.join(nodes, on="node", how="left").join(devs, on=["namespace", "pod", "container"], how="left")
    facts = j.group_by(KEY).agg(
        pl.col("container_type").first(),
        pl.col("gpu_resource").drop_nulls().mode().sort().first().alias("resource"),
        pl.coalesce("gpu_limit", "gpu_request").max().alias("devices"),
        pl.col("gpu_request").is_not_null().any().alias("sets_requests"),
        pl.col("gpu_limit").is_not_null().any().alias("sets_limits"),
        pl.coalesce("gpu_model", "dev_model").drop_nulls().mode().sort().first().alias("model"),
        pl.coalesce("gpu_memory", "dev_memory").max().alias("device_memory"),
        pl.col("mig_profile").drop_nulls().first(),
        pl.col("mig_config").drop_nulls().first(),
        ((pl.col("mig_strategy") == "single") & pl.col("mig_config").is_not_null()
         & (pl.col("mig_config") != "all-disabled")).fill_null(False).any().alias("single_mig"),
        (pl.col("gpu_sharing").is_in(["time-slicing", "mps"]) | (pl.col("gpu_replicas") > 1))
        .fill_null(False).any().alias("shared_node"),
        pl.col("gpu_replicas").max().alias("node_replicas"),
        pl.col("node").drop_nulls().unique().sort().alias("nodes"),
        pl.col("pod").filter(pl.col("ended_at").is_null()).n_unique().alias("running_pods"),
        pl.col("pod").n_unique().alias("pods"),
    )
    wl = snapshot.workloads.select(*[pl.col(k).cast(pl.String) for k in WORKLOAD], "replicas")
    family = {m: normalise_gpu_model(m) for m in facts["model"].drop_nulls().unique().to_list()}
    current_profile = pl.coalesce(pl.col("resource").str.extract(r"^nvidia\.com/mig-(.+)$", 1), pl.col("mig_profile"),
                                  pl.col("mig_config").str.extract(r"^all-(\d+g\.\d+gb)$", 1))
    return (
        facts.join(wl, on=WORKLOAD, how="left")
        .with_columns(
            pl.coalesce("replicas", pl.when(pl.col("running_pods") > 0).then("running_pods"), "pods")
            .cast(pl.Int64).alias("replicas"),
            pl.col("model").replace_strict(family, default=None, return_dtype=pl.String).alias("family"),
            (pl.col("resource").str.starts_with(MIG_PREFIX) | pl.col("mig_profile").is_not_null()
             | pl.col("single_mig")).alias("on_mig"),
            ((pl.col("resource") == SHARED) | pl.col("shared_node")).alias("shared"),
            current_profile.alias("current_profile"),
        )
        .with_columns(
            # Physical GPU per requested device: a MIG slice is g/7 (as the cost model charges it),
            # a time-sliced GPU 1/replicas.
            pl.when(pl.col("on_mig"))
            .then(pl.col("current_profile").str.extract(r"^(\d+)g", 1).cast(pl.Float64) / COMPUTE_SLICES)
            .when(pl.col("shared") & (pl.col("node_replicas") > 1)).then(1.0 / pl.col("node_replicas"))
            .otherwise(1.0).fill_null(1.0).alias("current_unit"),
        )
        .with_columns((pl.col("devices") * pl.col("current_unit")).alias("current_units"))
    )


def _samples(snapshot: Snapshot) -> pl.DataFrame:
    """DCGM samples per (container, pod, device, timestamp): raw busy fraction and framebuffer bytes
    (``gpu_quality.clean`` drops the impossible ones)."""
    u = (snapshot.usage.lazy()
         .filter(pl.col("resource").is_in(["gpu", "gpu_memory"]))
         .select(*[pl.col(k).cast(pl.String) for k in KEY], pl.col("pod").cast(pl.String),
                 pl.col("device").cast(pl.String).fill_null(""), "timestamp", "resource", "value"))
    return (u.group_by([*KEY, "pod", "device", "timestamp"])
            .agg(pl.col("value").filter(pl.col("resource") == "gpu").max().alias("busy"),
                 pl.col("value").filter(pl.col("resource") == "gpu_memory").max().alias("fb"))
            .collect())


def _per_pod(samples: pl.DataFrame) -> pl.DataFrame:
    """Summed over a pod's devices at each timestamp: what a multi-GPU pod needs in device units."""
    def total(c: str) -> pl.Expr:
        return pl.when(pl.col(c).count() > 0).then(pl.col(c).sum())

    return samples.group_by([*KEY, "pod", "timestamp"]).agg(
        total("busy").alias("busy_sum"), total("fb").alias("fb_sum"), pl.len().alias("n_dev"))


def _stats(samples: pl.DataFrame, step_h: float) -> pl.DataFrame:
    dev = samples.group_by(KEY).agg(
        pl.col("busy").quantile(0.5, "linear").alias("busy_p50"),
        pl.col("busy").quantile(FIXED_BUSY_QUANTILE, "linear").alias("busy_pq"),
        pl.col("busy").max().alias("busy_peak"),
        pl.col("fb").max().alias("fb_peak"),
        (pl.col("busy").count() + pl.col("fb").count()).alias("n_samples"),
        pl.col("timestamp").min().alias("t0"), pl.col("timestamp").max().alias("t1"),
        pl.col("timestamp").n_unique().alias("n_ts"),
    )
    pod = _per_pod(samples).group_by(KEY).agg(
        pl.col("busy_sum").quantile(FIXED_BUSY_QUANTILE, "linear").alias("sum_busy_pq"),
        pl.col("fb_sum").max().alias("sum_fb_peak"),
        pl.col("n_dev").max().alias("devices_seen"),
    )
    span_h = (pl.col("t1") - pl.col("t0")).dt.total_seconds() / 3600.0 + step_h
    return dev.join(pod, on=KEY, how="left").with_columns(
        pl.min_horizontal(span_h, pl.col("n_ts") * step_h).alias("history_hours"))


# --- decisions ---------------------------------------------------------------------------------

def _decide(rows: pl.DataFrame, st: GpuSettings) -> pl.DataFrame:
    """Adds ``action`` (remove, optimize, share-mig, share-ts, keep, skip) with the skip reason, and
    what sizes it (``need_busy``, ``need_fb``, the MIG ``profile``, ``ts_replicas``, ``needed``)."""
    if st.margin is not None:  # fixed: margin over the P95 busy and the framebuffer peak
        m = st.margin
        rows = rows.with_columns(pl.lit(m).alias("fb_m"), (pl.col("busy_pq") * (1 + m)).alias("need_busy"),
                                 (pl.col("sum_busy_pq") * (1 + m)).alias("sum_need_busy"))
    else:  # calibrated: the busy level already carries its risk, the framebuffer its own margin
        fallback = pl.col("busy_pq") * 1.2
        pooled_memory = st.sharing == "time-slicing"  # nothing limits one replica: pairs' margin (calibration)
        rows = rows.with_columns(pl.col("fb_margin_shared" if pooled_memory else "fb_margin").fill_null(0.2).alias("fb_m"),
                                 pl.coalesce("busy_need", fallback).alias("need_busy"),
                                 pl.coalesce("busy_need", pl.col("sum_busy_pq") * 1.2).alias("sum_need_busy"))
    rows = rows.with_columns((pl.col("fb_peak") * (1 + pl.col("fb_m"))).alias("need_fb"))
    cand = (rows.filter((pl.col("devices") == 1) & pl.col("family").is_not_null())
            .select(*KEY, "family", "need_fb", "need_busy")
            .join(profiles_frame(), on="family")
            .filter((pl.col("usable_bytes") >= pl.col("need_fb"))
                    & (pl.col("compute_slices") / COMPUTE_SLICES >= pl.col("need_busy") - 1e-12))
            .sort([*KEY, "compute_slices", "memory_gb"])
            .group_by(KEY, maintain_order=True).first()
            .select(*KEY, "profile", "compute_slices", "memory_slices", "max_per_gpu", "usable_bytes"))
    rows = rows.join(cand, on=KEY, how="left")
    big = float(MAX_TIME_SLICES)
    by_busy = pl.when(pl.col("need_busy") > 0).then((1.0 / pl.col("need_busy")).floor()).otherwise(big)
    by_mem = pl.when(pl.col("need_fb") > 0).then((pl.col("device_memory") / pl.col("need_fb")).floor()).otherwise(big)
    needed = pl.max_horizontal(pl.col("sum_need_busy").ceil(),
                               (pl.col("sum_fb_peak") * (1 + pl.col("fb_m")) / pl.col("device_memory")).ceil(),
                               pl.lit(1.0))
    capable = pl.col("family").is_in(list(MIG_PROFILES)).fill_null(False)
    rows = rows.with_columns(
        pl.min_horizontal(by_busy, by_mem, pl.lit(big)).cast(pl.Int64).alias("ts_replicas"),
        needed.cast(pl.Int64).alias("needed"),
        (capable & pl.lit(st.sharing in ("auto", "mig"))).alias("mig_capable"),
        pl.lit("mps" if st.sharing == "mps" else "time-slicing").alias("ts_mode"),
    )
    no_mig = pl.lit(st.sharing == "mig") & ~capable
    has_data = pl.col("n_samples").fill_null(0) > 0
    quiet = ((pl.col("busy_peak").fill_null(0.0) <= REMOVE_MAX_BUSY) & (pl.col("fb_peak").fill_null(0.0) <= REMOVE_MAX_FB)
             & (pl.col("busy_peak").is_not_null() | pl.col("fb_peak").is_not_null()))
    complete = pl.col("busy_pq").is_not_null() & pl.col("fb_peak").is_not_null()
    multi = pl.col("devices") > 1
    hours = pl.col("history_hours").fill_null(0.0).round(1).cast(pl.String)
    min_hours = st.min_history_hours
    short = pl.col("history_hours").fill_null(0.0) < min_hours
    erratic = pl.col("fb_growth").fill_null(0.0) > st.max_fb_margin
    action = (
        pl.when(~has_data).then(pl.lit("skip"))
        .when(short | pl.col("quality_reason").is_not_null()).then(pl.lit("skip"))
        .when(quiet).then(pl.lit("remove"))
        .when(pl.col("on_mig") | pl.col("shared")).then(pl.lit("skip"))
        .when(~complete | erratic).then(pl.lit("skip"))
        .when(multi & pl.col("device_memory").is_null()).then(pl.lit("skip"))
        .when(multi & (pl.col("needed") < pl.col("devices"))).then(pl.lit("optimize"))
        .when(multi).then(pl.lit("keep"))
        .when(pl.col("family").is_null() | no_mig).then(pl.lit("skip"))
        .when(pl.col("mig_capable") & (pl.col("compute_slices") < COMPUTE_SLICES)).then(pl.lit("share-mig"))
        .when(pl.col("mig_capable")).then(pl.lit("keep"))
        .when(pl.col("device_memory").is_null()).then(pl.lit("skip"))
        .when(pl.col("ts_replicas") >= 2).then(pl.lit("share-ts"))
        .otherwise(pl.lit("keep"))
    )
    reason = (
        pl.when(~has_data).then(pl.lit("no DCGM samples for this container: unused and unmonitored look the same"))
        .when(short)
        .then(pl.format("only {} h of GPU history (at least {} h needed)", hours, pl.lit(f"{min_hours:g}")))
        .when(pl.col("quality_reason").is_not_null()).then(pl.col("quality_reason"))
        .when(pl.col("on_mig")).then(pl.format("already on a MIG slice ({}); not re-sliced",
                                               pl.coalesce("current_profile", pl.lit("unknown profile"))))
        .when(pl.col("shared")).then(pl.lit("already on a shared GPU (time-slicing or MPS); not shared further"))
        .when(~complete).then(pl.lit("busy or framebuffer samples are missing; no sharing proposal without both"))
        .when(erratic).then(pl.format(
            "too erratic to size: its framebuffer peak grew by {} from the first 70% of its history to the last 30% "
            "(more than {})", (pl.col("fb_growth") * 100).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("%"),
            pl.lit(f"{st.max_fb_margin:.0%}")))
        .when(multi & pl.col("device_memory").is_null())
        .then(pl.lit("GPU memory per device unknown (no node gpu_memory, no DCGM device); cannot size the request"))
        .when(pl.col("model").is_null())
        .then(pl.lit("GPU model unknown (no nvidia.com/gpu.product on the node, no DCGM modelName); no share proposal is guessed"))
        .when(pl.col("family").is_null())
        .then(pl.format("GPU model '{}' is not in kubetune's MIG/sharing table; no share proposal is guessed", "model"))
        .when(no_mig).then(pl.format("GPU model '{}' has no MIG and sharing is set to mig only", "model"))
        .when(pl.col("device_memory").is_null())
        .then(pl.lit("GPU memory per device unknown; cannot size time-slicing replicas"))
    )
    return rows.with_columns(action.alias("action"), reason.alias("skip_reason"), pl.lit(False).alias("pooled"),
                             pl.when(multi).then(pl.lit("gpu-optimize")).otherwise(pl.lit("gpu-share")).alias("skip_kind"))


def _proposal(rows: pl.DataFrame) -> pl.DataFrame:
    """The proposal of each decided row and the capacity it gives (``cap_compute`` in device units,
    ``cap_memory`` in bytes)."""
    a = pl.col("action")
    return rows.with_columns(
        pl.when(a == "remove").then(0).when(a == "optimize").then(pl.col("needed"))
        .when(a.str.starts_with("share")).then(1).alias("proposed_count"),
        pl.when(a == "share-mig").then(pl.lit(MIG_PREFIX) + pl.col("profile"))
        .when(a == "share-ts").then(pl.lit(SHARED)).otherwise(pl.col("resource")).alias("proposed_resource"),
        pl.when(a == "remove").then(0.0).when(a == "optimize").then(pl.col("needed").cast(pl.Float64))
        .when(a == "share-mig").then(pl.col("compute_slices") / COMPUTE_SLICES)
        .when(a == "share-ts").then(1.0 / pl.col("ts_replicas")).otherwise(pl.col("current_units"))
        .alias("proposed_units"),
        pl.when(a == "remove").then(REMOVE_MAX_BUSY).when(a == "optimize").then(pl.col("needed").cast(pl.Float64))
        .when(a == "share-mig").then(pl.col("compute_slices") / COMPUTE_SLICES)
        .when(a == "share-ts").then(1.0 / pl.col("ts_replicas")).alias("cap_compute"),
        pl.when(a == "remove").then(float(REMOVE_MAX_FB))
        .when(a == "optimize").then(pl.col("needed") * pl.col("device_memory").cast(pl.Float64))
        .when(a == "share-mig").then(pl.col("usable_bytes").cast(pl.Float64))
        .when(a == "share-ts").then(pl.col("device_memory") / pl.col("ts_replicas")).alias("cap_memory"),
    )


def _risk(rows: pl.DataFrame, per_pod: pl.DataFrame) -> pl.DataFrame:
    """Risk = share of observed pod-samples above the proposed compute or memory, plus a small prior
    that grows when history is short and usage is close to the proposal; confidence falls with both."""
    caps = rows.filter(pl.col("cap_compute").is_not_null()).select(*KEY, "cap_compute", "cap_memory")
    shortfall = (per_pod.join(caps, on=KEY)
                 .group_by(KEY).agg(((pl.col("busy_sum") > pl.col("cap_compute") + 1e-9)
                                     | (pl.col("fb_sum") > pl.col("cap_memory"))).mean().alias("shortfall")))
    a = pl.col("action")
    close = (pl.when(a == "remove").then(0.0)
             .when(a == "optimize").then(pl.max_horizontal(pl.col("sum_busy_pq") / pl.col("cap_compute"),
                                                           pl.col("sum_fb_peak") / pl.col("cap_memory")))
             .otherwise(pl.max_horizontal(pl.col("busy_pq") / pl.col("cap_compute"),
                                          pl.col("fb_peak") / pl.col("cap_memory"))))
    hist = (0.4 + 0.6 * pl.col("history_hours").fill_null(0.0) / FULL_HISTORY_HOURS).clip(0.0, 1.0)
    return (rows.join(shortfall, on=KEY, how="left")
            .with_columns(close.fill_null(0.0).fill_nan(1.0).clip(0.0, 1.0).alias("closeness"), hist.alias("hist_factor"))
            .with_columns(
                (pl.col("shortfall").fill_null(0.0) + 0.05 * pl.col("closeness") * (1 - pl.col("hist_factor")))
                .clip(0.0, 1.0).alias("risk"),
                (pl.col("hist_factor") * (1.5 - pl.col("closeness")).clip(0.0, 1.0)).clip(0.0, 1.0).alias("confidence")))


# --- records -----------------------------------------------------------------------------------

def _record(target: Target, r: dict[str, Any], st: GpuSettings, basis: str) -> Recommendation:
    action, k, res = r["action"], int(r["devices"]), r["resource"]
    new, count = r["proposed_resource"], int(r["proposed_count"])
    changes: dict[str, Any] = {res: None} if action == "remove" else {res: count} if new == res else {res: None, new: count}
    notes: list[str] = ["busy = DCGM busy fraction of one device; framebuffer = DCGM_FI_DEV_FB_USED."]
    extra: tuple[dict[str, Any], ...] = ()
    fb, model, m = _gib(r["fb_peak"]), r["model"] or "GPU", float(r["fb_m"])
    hours = r["history_hours"]
    calibrated = st.margin is None and r["busy_need"] is not None
    level = f"P{r['busy_level'] * 100:g}" if calibrated else f"P{FIXED_BUSY_QUANTILE * 100:g}"
    busy_txt = (f"busy {level} {_pct(r['busy_need'])} (calibrated: {_pct(r['busy_cal_risk'])} of later samples above it)"
                if calibrated else f"P95 busy {_pct(r['busy_pq'])} + {m:.0%}")
    margin_txt = (f"framebuffer peak {fb} + {m:.0%} (calibrated out of sample)" if st.margin is None
                  else f"framebuffer peak {fb} + {m:.0%}")
    if action == "remove":
        kind = "gpu-remove"
        reason = (f"Requests {k} GPU(s) but used none in {hours:.0f} h: peak busy {_pct(r['busy_peak'])}, "
                  f"peak framebuffer {_mib(r['fb_peak'])}. Removing the request frees {k * r['replicas']} device(s).")
        notes.append("Also drop GPU tolerations/node selectors so the pod can leave the GPU node; "
                     "the saving assumes it does.")
    elif action == "optimize":
        kind = "gpu-optimize"
        reason = (f"Requests {k} GPUs per pod but needs {count}: busy summed over its devices "
                  f"{r['sum_need_busy']:.2f} devices ({level}), peak framebuffer summed {_gib(r['sum_fb_peak'])} "
                  f"of {_gib(r['device_memory'])} per device, with a {m:.0%} margin.")
        notes.append("Multi-GPU code often assumes its device count (world size, tensor parallelism): "
                     "check the job's launch arguments before applying.")
        if (r["devices_seen"] or 0) < k:
            notes.append(f"DCGM reported {r['devices_seen']} of the {k} devices; unreported ones counted as idle.")
    elif action == "share-mig":
        kind = "gpu-share"
        p = profile(r["family"], r["profile"])
        reason = (f"Uses part of one {model}: {busy_txt}, {margin_txt}. MIG {r['profile']} "
                  f"({p.compute_slices}/7 compute, {_gib(p.usable_bytes)} usable) holds both, isolated from its "
                  f"neighbours; {p.max_per_gpu} fit on one GPU.")
        nodes = " ".join(r["nodes"] or []) or "<gpu-node>"
        notes += [
            (f"Needs a node with MIG strategy mixed and a layout offering {r['profile']}: "
             f"kubectl label node {nodes} nvidia.com/mig.config=all-{r['profile']} --overwrite "
             "(or a dedicated MIG node pool); the GPU operator's MIG manager repartitions the GPUs and "
             "evicts the GPU pods running there."),
            f"Required node label: nvidia.com/mig.config=all-{r['profile']}",
            "DCGM_FI_DEV_GPU_UTIL is not reported on MIG instances: watch DCGM_FI_PROF_GR_ENGINE_ACTIVE after the change.",
            f"Proposed slice memory: {p.usable_bytes} bytes usable (nominal {p.memory_gb} GB).",
        ]
    else:
        kind = "gpu-share"
        n, mode = int(r["ts_replicas"]), r["ts_mode"]
        reason = (f"Uses part of one {model}: {busy_txt}, {margin_txt} of {_gib(r['device_memory'])}; "
                  f"{mode} with {n} replicas per GPU holds both.")
        if r["pooled"]:
            reason = (f"Uses part of one {model}: {busy_txt}; its framebuffer peak {fb} is more than 1/{n} of the "
                      f"{_gib(r['device_memory'])} GPU, but summed with each of the {r['pool_pairs']} pods already in "
                      f"the {n}-replica time-slicing pool it stayed below the GPU with a {m:.0%} margin (calibrated on "
                      "pairs): time-slicing pools the memory.")
        cm = _sharing_configmap(n, mode)
        extra = (cm,)
        notes += [
            (f"Apply the ConfigMap {cm['metadata']['name']} and point the device plugin at it: "
             f"kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p "
             f"'{{\"spec\":{{\"devicePlugin\":{{\"config\":{{\"name\":\"{cm['metadata']['name']}\"}}}}}}}}' "
             "then label the nodes to share: kubectl label node <node> nvidia.com/device-plugin.config=any --overwrite."),
            ("MPS limits each replica to 1/replicas of the GPU's memory and compute (experimental in the device "
             "plugin, no MIG)." if mode == "mps" else
             "Time-slicing gives no memory or fault isolation between replicas; MPS (sharing.mps, same layout) "
             "limits each replica to 1/replicas of memory and compute, the isolated alternative (experimental, no MIG)."),
            f"Proposed share: 1/{n} GPU, {int(r['device_memory'] / n)} bytes of framebuffer per replica"
            + (" on average; this pod may use more while its neighbour uses less (no per-replica limit)."
               if r["pooled"] else "."),
        ]
    if r["preallocated"]:
        notes.append(_prealloc_note(r, action))
    if r["busy_glitches"] or r["fb_glitches"]:
        notes.append(f"Dropped as exporter glitches before sizing: {r['busy_glitches']} sample(s) with busy above 100%, "
                     f"{r['fb_glitches']} with framebuffer above the device.")
    observed = {
        "busy_p50": r["busy_p50"], "busy_p95": r["busy_pq"], "busy_peak": r["busy_peak"],
        "framebuffer_peak_bytes": r["fb_peak"], "device_memory_bytes": r["device_memory"], "devices_requested": float(k),
        "devices_seen": r["devices_seen"], "shortfall_fraction": r["shortfall"],
        "proposed_compute_fraction": r["cap_compute"], "proposed_memory_bytes": r["cap_memory"],
        "busy_needed": r["need_busy"], "busy_calibrated_level": r["busy_level"] if calibrated else None,
        "busy_calibrated_risk": r["busy_cal_risk"] if calibrated else None,
        "framebuffer_growth_in_history": r["fb_growth"], "gpu_sample_coverage": r["coverage"],
        "preallocated_share": r["prealloc_share"] if r["preallocated"] else None,
    }
    if action == "optimize":
        observed |= {"summed_busy_p95": r["sum_busy_pq"], "summed_framebuffer_peak_bytes": r["sum_fb_peak"]}
    evidence = Evidence(
        reason=reason, history_start=r["t0"], history_end=r["t1"], history_hours=float(hours),
        observed={key: float(v) for key, v in observed.items() if v is not None and math.isfinite(float(v))},
        quantile_used=(f"calibrated {level} busy" if calibrated else f"observed {level} busy per device")
        + (" (summed over devices)" if action == "optimize" else ""),
        margin=m, notes=tuple(notes))
    key = "containers" if target.container_type == "app" else "initContainers"
    resources: dict[str, Any] = {}
    if r["sets_limits"] or not r["sets_requests"]:
        resources["limits"] = dict(changes)
    if r["sets_requests"]:
        resources["requests"] = dict(changes)
    return Recommendation(
        target=target, kind=kind, resource=new if action != "remove" else res,
        current_request=float(k) if r["sets_requests"] else None,
        proposed_request=float(count) if r["sets_requests"] else None,
        current_limit=float(k) if r["sets_limits"] else None,
        proposed_limit=float(count) if r["sets_limits"] else None,
        monthly_saving_usd=float(r["saving"]), risk=float(r["risk"]), confidence=float(r["confidence"]),
        evidence=evidence, replicas=int(r["replicas"] or 0),
        pod_spec_patch={key: [{"name": target.container, "resources": resources}]},
        extra_manifests=extra, saving_basis=basis)


def _prealloc_note(r: dict[str, Any], action: str) -> str:
    share = f"{r['prealloc_share']:.0%}"
    head = (f"Framebuffer flat at {share} of the device: the serving engine preallocates it (vLLM "
            "gpu_memory_utilization, TensorRT-LLM kv_cache_free_gpu_mem_fraction, SGLang mem_fraction_static), "
            "so it shows what was reserved, not what the model needs.")
    if action == "share-ts":
        return head + (f" Every replica sees the whole GPU: lower the engine's memory fraction to at most "
                       f"1/{r['ts_replicas']} of the device (e.g. gpu_memory_utilization={0.95 / r['ts_replicas']:.2f}) "
                       "or the second replica cannot allocate.")
    return head + " On a MIG slice the fraction applies to the slice: check that it still leaves the KV cache you need."


def _prealloc_keep(r: dict[str, Any]) -> str:
    return (f"framebuffer flat at {r['prealloc_share']:.0%} of the device for {r['history_hours']:.0f} h: preallocated "
            "by the serving engine, so it says nothing about need; lower the engine's memory fraction (vLLM "
            "gpu_memory_utilization) and re-measure before sharing this GPU")


def _sharing_configmap(replicas: int, mode: str = "time-slicing") -> dict[str, Any]:
    """Device-plugin config (k8s-device-plugin README): renamed resource so only pods that opted in share."""
    key = "mps" if mode == "mps" else "timeSlicing"
    body: dict[str, Any] = {"renameByDefault": True, "resources": [{"name": GPU, "replicas": int(replicas)}]}
    if key == "timeSlicing":
        body = {"renameByDefault": True, "failRequestsGreaterThanOne": True, "resources": body["resources"]}
    config = {"version": "v1", "sharing": {key: body}}
    name = f"{'mps' if key == 'mps' else 'time-slicing'}-config-{replicas}"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": DEVICE_PLUGIN_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "kubetune"}},
            "data": {"any": yamlio.dump(config)}}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _gib(x: float | None) -> str:
    return "n/a" if x is None else f"{x / GIB:.1f} GiB"


def _mib(x: float | None) -> str:
    return "n/a" if x is None else f"{x / MIB:.0f} MiB"
