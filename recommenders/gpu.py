"""GPU recommendations (issue 7, item 2): remove, optimize or share GPUs from DCGM history.

Kubecost's three types (docs/domain-reference.md section 5): *remove* a GPU nobody uses, *optimize*
a multi-GPU request that uses fewer, *share* a single GPU used in part - a MIG slice where the
model supports it (``recommenders.mig``), else time-slicing. Statistics are computed for all GPU
containers at once with Polars; only the final records are built per row. Proposals never go below
the observed peak framebuffer (times ``1 + margin``); an unknown GPU model gets a Skip, not a guess.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

import polars as pl

from analyzer import yamlio
from analyzer.cost import HOURS_PER_MONTH
from analyzer.snapshot import Snapshot
from analyzer.units import GIB, MIB
from recommenders.gpu_settings import GpuSettings
from recommenders.mig import COMPUTE_SLICES, MEMORY_SLICES, MIG_PROFILES, normalise_gpu_model, profile, profiles_frame
from recommenders.rates import WORKLOAD, WorkloadRates, workload_rates
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target


KEY = [*WORKLOAD, "container"]
GPU = "nvidia.com/gpu"
SHARED = "nvidia.com/gpu.shared"  # what time-slicing advertises with renameByDefault: true
MIG_PREFIX = "nvidia.com/mig-"
REMOVE_MAX_BUSY = 0.01  # "uses none": DCGM busy never above 1% ...
REMOVE_MAX_FB = 128 * MIB  # ... and no CUDA context worth the name (a context alone takes ~300 MiB)
MAX_TIME_SLICES = 10  # the device plugin's documented example; more replicas only add contention
FULL_HISTORY_HOURS = 168.0  # a week of history = full confidence
DEVICE_PLUGIN_NAMESPACE = "gpu-operator"


def recommend_gpu(snapshot: Snapshot, rates: WorkloadRates | None = None, settings: GpuSettings | None = None, *,
                  margin: float | None = None, busy_quantile: float | None = None,
                  min_hours: float | None = None) -> RecommendationSet:
    """Recommendations for every container that requests GPUs; see the module docstring.

    ``settings`` (default ``GpuSettings()``): ``margin`` is added to the busy quantile and the peak
    framebuffer before fitting; ``min_history_hours`` of DCGM history are required, else a Skip says
    why. The keywords override single settings (``min_hours`` is ``min_history_hours``).
    """
    given = {"margin": margin, "busy_quantile": busy_quantile, "min_history_hours": min_hours}
    st = replace(settings or GpuSettings(), **{k: v for k, v in given.items() if v is not None})
    margin, busy_quantile, min_hours = st.margin, st.busy_quantile, st.min_history_hours
    out = RecommendationSet()
    facts = _container_facts(snapshot)
    if facts.is_empty():
        out.cluster_notes["gpu"] = _packing(facts, snapshot)
        return out
    samples = _samples(snapshot)
    stats = _stats(samples, busy_quantile, snapshot.manifest.step_seconds / 3600.0)
    rows = _decide(facts.join(stats, on=KEY, how="left"), margin, min_hours)
    rows = _risk(rows, samples)
    rates = rates if rates is not None else workload_rates(snapshot)
    rows = rates.attach(rows).with_columns(
        (pl.col("gpu_rate") * (pl.col("current_units") - pl.col("proposed_units")) * pl.col("replicas")
         * HOURS_PER_MONTH).fill_null(0.0).alias("saving"))
    if rates.basis != "node prices":
        out.notes.append(f"GPU savings use {rates.basis}.")
    qname = f"busy_p{round(busy_quantile * 100)}"
    for r in rows.sort(KEY).iter_rows(named=True):
        target = Target(r["namespace"], r["workload_kind"], r["workload"], r["container"], r["container_type"])
        if r["action"] == "skip":
            out.skipped.append(Skip(target, r["skip_kind"], r["resource"], r["skip_reason"]))
        elif r["action"] != "keep":
            out.recommendations.append(_record(target, r, margin, qname, rates.basis))
    out.cluster_notes["gpu"] = _packing(rows, snapshot)
    return out


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
    """DCGM samples per (container, pod, device, timestamp): busy fraction and framebuffer bytes."""
    u = (snapshot.usage.lazy()
         .filter(pl.col("resource").is_in(["gpu", "gpu_memory"]))
         .select(*[pl.col(k).cast(pl.String) for k in KEY], pl.col("pod").cast(pl.String),
                 pl.col("device").cast(pl.String).fill_null(""), "timestamp", "resource", "value"))
    return (u.group_by([*KEY, "pod", "device", "timestamp"])
            .agg(pl.col("value").filter(pl.col("resource") == "gpu").max().clip(0.0, 1.0).alias("busy"),
                 pl.col("value").filter(pl.col("resource") == "gpu_memory").max().alias("fb"))
            .collect())


def _per_pod(samples: pl.DataFrame) -> pl.DataFrame:
    """Summed over a pod's devices at each timestamp: what a multi-GPU pod needs in device units."""
    return samples.group_by([*KEY, "pod", "timestamp"]).agg(
        pl.col("busy").sum().alias("busy_sum"), pl.col("fb").sum().alias("fb_sum"), pl.len().alias("n_dev"))


def _stats(samples: pl.DataFrame, q: float, step_h: float) -> pl.DataFrame:
    dev = samples.group_by(KEY).agg(
        pl.col("busy").quantile(0.5, "linear").alias("busy_p50"),
        pl.col("busy").quantile(q, "linear").alias("busy_pq"),
        pl.col("busy").max().alias("busy_peak"),
        pl.col("fb").max().alias("fb_peak"),
        pl.len().alias("n_samples"),
        pl.col("timestamp").min().alias("t0"), pl.col("timestamp").max().alias("t1"),
        pl.col("timestamp").n_unique().alias("n_ts"),
    )
    pod = _per_pod(samples).group_by(KEY).agg(
        pl.col("busy_sum").quantile(q, "linear").alias("sum_busy_pq"),
        pl.col("fb_sum").max().alias("sum_fb_peak"),
        pl.col("n_dev").max().alias("devices_seen"),
    )
    span_h = (pl.col("t1") - pl.col("t0")).dt.total_seconds() / 3600.0 + step_h
    return dev.join(pod, on=KEY, how="left").with_columns(
        pl.min_horizontal(span_h, pl.col("n_ts") * step_h).alias("history_hours"))


# --- decisions ---------------------------------------------------------------------------------

def _decide(rows: pl.DataFrame, m: float, min_hours: float) -> pl.DataFrame:
    """Adds ``action`` (remove, optimize, share-mig, share-ts, keep, skip), the proposal and the
    capacity it gives (``cap_compute`` in device units, ``cap_memory`` in bytes)."""
    rows = rows.with_columns(
        (pl.col("busy_pq") * (1 + m)).alias("need_busy"),
        (pl.col("fb_peak") * (1 + m)).alias("need_fb"),
    )
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
    needed = pl.max_horizontal((pl.col("sum_busy_pq") * (1 + m)).ceil(),
                               (pl.col("sum_fb_peak") * (1 + m) / pl.col("device_memory")).ceil(), pl.lit(1.0))
    rows = rows.with_columns(
        pl.min_horizontal(by_busy, by_mem, pl.lit(big)).cast(pl.Int64).alias("ts_replicas"),
        needed.cast(pl.Int64).alias("needed"),
        pl.col("family").is_in(list(MIG_PROFILES)).fill_null(False).alias("mig_capable"),
    )
    has_data = pl.col("n_samples").fill_null(0) > 0
    quiet = ((pl.col("busy_peak").fill_null(0.0) <= REMOVE_MAX_BUSY) & (pl.col("fb_peak").fill_null(0.0) <= REMOVE_MAX_FB)
             & (pl.col("busy_peak").is_not_null() | pl.col("fb_peak").is_not_null()))
    complete = pl.col("busy_pq").is_not_null() & pl.col("fb_peak").is_not_null()
    multi = pl.col("devices") > 1
    hours = pl.col("history_hours").fill_null(0.0).round(1).cast(pl.String)
    action = (
        pl.when(~has_data).then(pl.lit("skip"))
        .when(pl.col("history_hours").fill_null(0.0) < min_hours).then(pl.lit("skip"))
        .when(quiet).then(pl.lit("remove"))
        .when(pl.col("on_mig") | pl.col("shared")).then(pl.lit("skip"))
        .when(~complete).then(pl.lit("skip"))
        .when(multi & pl.col("device_memory").is_null()).then(pl.lit("skip"))
        .when(multi & (pl.col("needed") < pl.col("devices"))).then(pl.lit("optimize"))
        .when(multi).then(pl.lit("keep"))
        .when(pl.col("family").is_null()).then(pl.lit("skip"))
        .when(pl.col("mig_capable") & (pl.col("compute_slices") < COMPUTE_SLICES)).then(pl.lit("share-mig"))
        .when(pl.col("mig_capable")).then(pl.lit("keep"))
        .when(pl.col("device_memory").is_null()).then(pl.lit("skip"))
        .when(pl.col("ts_replicas") >= 2).then(pl.lit("share-ts"))
        .otherwise(pl.lit("keep"))
    )
    reason = (
        pl.when(~has_data).then(pl.lit("no DCGM samples for this container: unused and unmonitored look the same"))
        .when(pl.col("history_hours").fill_null(0.0) < min_hours)
        .then(pl.format("only {} h of GPU history (at least {} h needed)", hours, pl.lit(f"{min_hours:g}")))
        .when(pl.col("on_mig")).then(pl.format("already on a MIG slice ({}); not re-sliced",
                                               pl.coalesce("current_profile", pl.lit("unknown profile"))))
        .when(pl.col("shared")).then(pl.lit("already on a shared GPU (time-slicing or MPS); not shared further"))
        .when(~complete).then(pl.lit("busy or framebuffer samples are missing; no sharing proposal without both"))
        .when(multi & pl.col("device_memory").is_null())
        .then(pl.lit("GPU memory per device unknown (no node gpu_memory, no DCGM device); cannot size the request"))
        .when(pl.col("model").is_null())
        .then(pl.lit("GPU model unknown (no nvidia.com/gpu.product on the node, no DCGM modelName); no share proposal is guessed"))
        .when(pl.col("family").is_null())
        .then(pl.format("GPU model '{}' is not in kubetune's MIG/sharing table; no share proposal is guessed", "model"))
        .when(pl.col("device_memory").is_null())
        .then(pl.lit("GPU memory per device unknown; cannot size time-slicing replicas"))
    )
    rows = rows.with_columns(action.alias("action"), reason.alias("skip_reason"),
                             pl.when(multi).then(pl.lit("gpu-optimize")).otherwise(pl.lit("gpu-share")).alias("skip_kind"))
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


def _risk(rows: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
    """Risk = share of observed pod-samples above the proposed compute or memory, plus a small prior
    that grows when history is short and usage is close to the proposal; confidence falls with both."""
    caps = rows.filter(pl.col("cap_compute").is_not_null()).select(*KEY, "cap_compute", "cap_memory")
    shortfall = (_per_pod(samples).join(caps, on=KEY)
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

def _record(target: Target, r: dict[str, Any], m: float, qname: str, basis: str) -> Recommendation:
    action, k, res = r["action"], int(r["devices"]), r["resource"]
    new, count = r["proposed_resource"], int(r["proposed_count"])
    changes: dict[str, Any] = {res: None} if action == "remove" else {res: count} if new == res else {res: None, new: count}
    notes: list[str] = ["busy = DCGM busy fraction of one device; framebuffer = DCGM_FI_DEV_FB_USED."]
    extra: tuple[dict[str, Any], ...] = ()
    fb, p95, model = _gib(r["fb_peak"]), r["busy_pq"], r["model"] or "GPU"
    hours = r["history_hours"]
    if action == "remove":
        kind = "gpu-remove"
        reason = (f"Requests {k} GPU(s) but used none in {hours:.0f} h: peak busy {_pct(r['busy_peak'])}, "
                  f"peak framebuffer {_mib(r['fb_peak'])}. Removing the request frees {k * r['replicas']} device(s).")
        notes.append("Also drop GPU tolerations/node selectors so the pod can leave the GPU node; "
                     "the saving assumes it does.")
    elif action == "optimize":
        kind = "gpu-optimize"
        reason = (f"Requests {k} GPUs per pod but needs {count}: P95 of busy summed over its devices "
                  f"{r['sum_busy_pq']:.2f} devices, peak framebuffer summed {_gib(r['sum_fb_peak'])} "
                  f"of {_gib(r['device_memory'])} per device, with a {m:.0%} margin.")
        notes.append("Multi-GPU code often assumes its device count (world size, tensor parallelism): "
                     "check the job's launch arguments before applying.")
        if (r["devices_seen"] or 0) < k:
            notes.append(f"DCGM reported {r['devices_seen']} of the {k} devices; unreported ones counted as idle.")
    elif action == "share-mig":
        kind = "gpu-share"
        p = profile(r["family"], r["profile"])
        reason = (f"Uses part of one {model}: P95 busy {_pct(p95)}, peak framebuffer {fb}. MIG {r['profile']} "
                  f"({p.compute_slices}/7 compute, ~{_gib(p.usable_bytes)} usable) holds both with a {m:.0%} margin; "
                  f"{p.max_per_gpu} fit on one GPU.")
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
        n = int(r["ts_replicas"])
        reason = (f"Uses part of one {model} (no MIG): P95 busy {_pct(p95)}, peak framebuffer {fb} of "
                  f"{_gib(r['device_memory'])}; time-slicing {n} replicas per GPU holds both with a {m:.0%} margin.")
        cm = _time_slicing_configmap(n)
        extra = (cm,)
        notes += [
            (f"Apply the ConfigMap {cm['metadata']['name']} and point the device plugin at it: "
             f"kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p "
             f"'{{\"spec\":{{\"devicePlugin\":{{\"config\":{{\"name\":\"{cm['metadata']['name']}\"}}}}}}}}' "
             "then label the nodes to share: kubectl label node <node> nvidia.com/device-plugin.config=any --overwrite."),
            ("Time-slicing gives no memory or fault isolation between replicas; MPS (sharing.mps, same layout) "
             "limits each replica to 1/replicas of memory and compute, the isolated alternative (experimental, no MIG)."),
            f"Proposed share: 1/{n} GPU, {int(r['device_memory'] / n)} bytes of framebuffer per replica.",
        ]
    observed = {
        "busy_p50": r["busy_p50"], qname: p95, "busy_peak": r["busy_peak"], "framebuffer_peak_bytes": r["fb_peak"],
        "device_memory_bytes": r["device_memory"], "devices_requested": float(k),
        "devices_seen": r["devices_seen"], "shortfall_fraction": r["shortfall"],
        "proposed_compute_fraction": r["cap_compute"], "proposed_memory_bytes": r["cap_memory"],
    }
    if action == "optimize":
        observed |= {f"summed_{qname}": r["sum_busy_pq"], "summed_framebuffer_peak_bytes": r["sum_fb_peak"]}
    evidence = Evidence(
        reason=reason, history_start=r["t0"], history_end=r["t1"], history_hours=float(hours),
        observed={key: float(v) for key, v in observed.items() if v is not None and math.isfinite(float(v))},
        quantile_used=f"observed {qname} busy per device" + (" (summed over devices)" if action == "optimize" else ""),
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


def _time_slicing_configmap(replicas: int) -> dict[str, Any]:
    """Device-plugin config (k8s-device-plugin README): renamed resource so only pods that opted in share."""
    config = {"version": "v1", "sharing": {"timeSlicing": {
        "renameByDefault": True, "failRequestsGreaterThanOne": True,
        "resources": [{"name": GPU, "replicas": int(replicas)}]}}}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"time-slicing-config-{replicas}", "namespace": DEVICE_PLUGIN_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "kubetune"}},
            "data": {"any": yamlio.dump(config)}}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _gib(x: float | None) -> str:
    return "n/a" if x is None else f"{x / GIB:.1f} GiB"


def _mib(x: float | None) -> str:
    return "n/a" if x is None else f"{x / MIB:.0f} MiB"


# --- bin packing -------------------------------------------------------------------------------

def _packing(rows: pl.DataFrame, snapshot: Snapshot) -> dict[str, Any]:
    """GPUs the GPU containers need now and after the proposals, packing slices and time-sliced
    replicas per GPU model; the difference is what the cluster could release."""
    now: dict[str, list] = {"whole": [0], "mig": [], "ts": []}
    after: dict[str, list] = {"whole": [0], "mig": [], "ts": []}
    profiles: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    requested = 0.0
    for r in rows.iter_rows(named=True):
        n = int(r["replicas"] or 0)
        k = int(r["devices"] or 0)
        requested += float(r["current_units"] or 0.0) * n
        cur = _items(r, k, r["current_profile"] if r["on_mig"] else None, r["node_replicas"] if r["shared"] else None)
        _add(now, cur, n)
        act = r.get("action", "keep")
        if act == "remove":
            new: tuple = ("whole", 0)
        elif act == "optimize":
            new = ("whole", int(r["proposed_count"]))
        elif act == "share-mig":
            new = _items(r, 1, r["profile"], None)
            profiles[f"mig-{r['profile']}"] += n
        elif act == "share-ts":
            new = _items(r, 1, None, int(r["ts_replicas"]))
            profiles[f"time-slicing x{r['ts_replicas']}"] += n
        else:
            new = cur
        if act in ("remove", "optimize", "share-mig", "share-ts"):
            kinds["gpu-share" if act.startswith("share") else f"gpu-{act}"] += 1
        _add(after, new, n)
    needed_now, needed_after = _count(now), _count(after)
    return {
        "gpus_requested_now": round(requested, 3),
        "gpus_needed_now": needed_now,
        "gpus_needed_after": needed_after,
        "gpus_released": needed_now - needed_after,
        "gpus_in_cluster": int(snapshot.nodes["gpu_count"].fill_null(0).sum()),
        "proposals": dict(kinds),
        "profiles": dict(profiles),
        "method": ("MIG slices first-fit decreasing on 7 compute / 8 memory slices per GPU model, time-sliced "
                   "pods ceil(pods / replicas) per model, whole GPUs as requested; node boundaries and MIG "
                   "placement rules are ignored, so the release is an upper estimate."),
    }


def _items(r: dict[str, Any], k: int, mig_profile: str | None, ts_replicas: int | None) -> tuple:
    model = r["family"] or r["model"] or "unknown"
    if mig_profile:
        p = profile(r["family"], mig_profile)
        if p is not None:
            return ("mig", model, p.compute_slices, p.memory_slices, k)
        g = int(mig_profile.split("g")[0]) if mig_profile[:1].isdigit() else COMPUTE_SLICES
        return ("mig", model, g, min(MEMORY_SLICES, g + 1), k)  # unknown layout: a conservative guess for packing only
    if ts_replicas and ts_replicas > 1:
        return ("ts", model, int(ts_replicas), k)
    return ("whole", k)


def _add(acc: dict[str, list], item: tuple, n: int) -> None:
    if item[0] == "whole":
        acc["whole"].append(item[1] * n)
    elif item[0] == "mig":
        acc["mig"] += [item[1:4]] * (item[4] * n)
    else:
        acc["ts"] += [item[1:3]] * (item[3] * n)


def _count(acc: dict[str, list]) -> int:
    total = sum(acc["whole"])
    for model in {m for m, *_ in acc["mig"]}:
        bins: list[list[int]] = []
        for _, g, mem in sorted((i for i in acc["mig"] if i[0] == model), key=lambda i: (-i[1], -i[2])):
            b = next((b for b in bins if b[0] >= g and b[1] >= mem), None)
            if b is None:
                bins.append(b := [COMPUTE_SLICES, MEMORY_SLICES])
            b[0] -= g
            b[1] -= mem
        total += len(bins)
    for key, count in Counter(acc["ts"]).items():
        total += math.ceil(count / key[1])
    return int(total)
