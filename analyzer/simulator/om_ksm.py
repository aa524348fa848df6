"""The simulated kube-state-metrics families: pods and containers, controllers, nodes.

Part of ``analyzer.simulator.openmetrics`` (which documents the rendering and its decisions).
"""


from __future__ import annotations

import polars as pl

from analyzer.simulator.kube_identity import (
    CONTAINER_RUNTIME,
    KERNEL,
    KUBELET_VERSION,
    OS_IMAGE,
    PODS_PER_NODE,
    image_id,
    node_extended_resources,
    node_system_info,
    provider_id,
)
from analyzer.simulator.om_format import (KSM_INSTANCE, KSM_JOB, NOT_RESTARTS, NOT_TERMINATIONS, SERIES_KEY, US,
                                          Cluster, Out, int_text, label_set, label_text, num_text, sanitize_label,
                                          str_frame)


def ksm(out: Out, cl: Cluster) -> None:
    """kube-state-metrics' pod and container families on the scrape grid.

    Length: they share one label frame and one grid; controllers and nodes are separate functions.
    """
    c, pods = cl.containers, cl.pods
    scrape = [("instance", KSM_INSTANCE), ("job", KSM_JOB)]
    one = pl.lit("1")

    def emit(name: str, mtype: str, seg: pl.DataFrame) -> None:
        out.family(name, mtype).grid(seg)

    owner_kind = pl.col("owner_kind").fill_null("<none>")
    owner_name = pl.col("owner_name").fill_null("<none>")
    is_ctl = pl.when(pl.col("owner_kind").is_null()).then(pl.lit("<none>")).otherwise(pl.lit("true"))
    pod_key = [("namespace", pl.col("namespace")), ("pod", pl.col("pod")), ("uid", pl.col("uid"))]
    emit("kube_pod_info", "gauge", pods.select(label_set(
        *pod_key, ("host_ip", pl.col("host_ip")), ("pod_ip", pl.col("pod_ip")), ("node", pl.col("node")),
        ("created_by_kind", owner_kind), ("created_by_name", owner_name), ("priority_class", ""),
        ("host_network", "false"), *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_owner", "gauge", pods.select(label_set(
        *pod_key, ("owner_kind", owner_kind), ("owner_name", owner_name), ("owner_is_controller", is_ctl),
        *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_start_time", "gauge",
         pods.filter(pl.col("started_us").is_not_null()).select(
             label_set(*pod_key, *scrape).alias("labels"), (pl.col("started_us") // US).cast(pl.String).alias("v"),
             "k0", "k1"))

    app = pl.col("container_type") == "app"
    ckey = [("namespace", pl.col("namespace")), ("pod", pl.col("pod")), ("uid", pl.col("uid")),
            ("container", pl.col("container"))]
    info = [("image_spec", pl.col("image")), ("image", pl.col("image")),
            ("image_id", pl.col("image").map_elements(image_id, return_dtype=pl.String)),
            ("container_id", pl.concat_str(pl.lit("containerd://"), pl.col("container_id")))]
    emit("kube_pod_container_info", "gauge", c.filter(app).select(
        label_set(*ckey, *info, *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_pod_init_container_info", "gauge",
         c.filter(~app).select(label_set(*ckey, *info, ("restart_policy", pl.when(pl.col("container_type") == "sidecar")
                                                       .then(pl.lit("Always")).otherwise(pl.lit(""))), *scrape)
                               .alias("labels"), one.alias("v"), "k0", "k1"))

    # Requests and limits, long: one row per container x resource.
    gpu_res = pl.col("gpu_resource").str.replace_all(r"[^a-zA-Z0-9_]", "_")
    cpu_req = pl.coalesce("cpu_request", "cpu_limit")
    mem_req = pl.coalesce("memory_request", "memory_limit")
    gpu_lim = pl.coalesce("gpu_limit", "gpu_request")
    gpu_req = pl.coalesce("gpu_request", "gpu_limit")

    def resources(value_cpu: pl.Expr, value_mem: pl.Expr, value_gpu: pl.Expr) -> pl.DataFrame:
        parts = []
        for res, unit, val, fmt in (("cpu", "core", value_cpu, num_text), ("memory", "byte", value_mem, int_text),
                                    (None, "integer", value_gpu, int_text)):
            sel = c.filter(val.is_not_null() & (pl.col("gpu_resource").is_not_null() if res is None else pl.lit(True)))
            name = gpu_res if res is None else pl.lit(res)
            parts.append(sel.select("cid", "container_type", name.alias("resource"), pl.lit(unit).alias("unit"),
                                    fmt(val).alias("v"), "namespace", "pod", "uid", "container", "node", "k0", "k1"))
        return pl.concat(parts).sort("cid", "resource")

    for kind, frame in (("requests", resources(cpu_req, mem_req, gpu_req)),
                        ("limits", resources(pl.col("cpu_limit"), pl.col("memory_limit"), gpu_lim))):
        lab = label_set(*ckey, ("node", pl.col("node")), ("resource", pl.col("resource")), ("unit", pl.col("unit")),
                      *scrape).alias("labels")
        emit(f"kube_pod_container_resource_{kind}", "gauge",
             frame.filter(pl.col("container_type") == "app").select(lab, "v", "k0", "k1"))
        emit(f"kube_pod_init_container_resource_{kind}", "gauge",
             frame.filter(pl.col("container_type") != "app").select(lab, "v", "k0", "k1"))

    # Restarts, last termination reason and exit code: step functions of the events.
    ev = cl.events.join(c.select(*SERIES_KEY, "cid", "k0", "k1", "container_type"), on=SERIES_KEY, how="inner").sort("cid", "ts")
    restarts = ev.filter(~pl.col("reason").is_in(NOT_RESTARTS)).with_columns(
        (pl.int_range(pl.len()).over("cid") + 1).alias("n"), cl.k_ceil(pl.col("ts")).alias("k"))
    base = restarts.group_by("cid").agg(
        (pl.col("restart_count").first() - 1).clip(lower_bound=0).fill_null(0).alias("base"))
    breaks = pl.concat([c.select("cid", pl.col("k0").alias("k"), pl.lit(0, pl.Int64).alias("n")),
                        restarts.select("cid", "k", pl.col("n").cast(pl.Int64))])
    breaks = breaks.group_by("cid", "k").agg(pl.col("n").max()).sort("cid", "k").with_columns(
        pl.col("n").cum_max().over("cid"))
    seg = _segments(breaks, c).join(base, on="cid", how="left").with_columns(
        (pl.col("n") + pl.col("base").fill_null(0)).cast(pl.String).alias("v"))
    lab = label_set(*ckey, *scrape).alias("labels")
    span = [pl.col("start").alias("k0"), pl.col("end").alias("k1")]
    emit("kube_pod_container_status_restarts", "counter",
         seg.filter(pl.col("container_type") == "app").sort("cid", "start").select(lab, "v", *span))
    emit("kube_pod_init_container_status_restarts", "counter",
         seg.filter(pl.col("container_type") != "app").sort("cid", "start").select(lab, "v", *span))

    terms = ev.filter(~pl.col("reason").is_in(NOT_TERMINATIONS)).with_columns(cl.k_ceil(pl.col("ts")).alias("k"))
    terms = terms.group_by("cid", "k").agg(pl.col("reason").last(), pl.col("exit_code").last()).sort("cid", "k")
    tseg = _segments(terms, c)
    rlab = label_set(*ckey, ("reason", pl.col("reason")), *scrape).alias("labels")
    emit("kube_pod_container_status_last_terminated_reason", "gauge",
         tseg.filter(pl.col("container_type") == "app").sort("cid", "reason", "start")
         .select(rlab, one.alias("v"), *span))
    emit("kube_pod_init_container_status_last_terminated_reason", "gauge",
         tseg.filter(pl.col("container_type") != "app").sort("cid", "reason", "start")
         .select(rlab, one.alias("v"), *span))
    emit("kube_pod_container_status_last_terminated_exitcode", "gauge",
         tseg.filter((pl.col("container_type") == "app") & pl.col("exit_code").is_not_null()).sort("cid", "start")
         .select(lab, pl.col("exit_code").cast(pl.String).alias("v"), *span))

    _ksm_controllers(out, cl, scrape)
    _ksm_nodes(out, cl, scrape)


def _segments(breaks: pl.DataFrame, c: pl.DataFrame) -> pl.DataFrame:
    """Step segments [start, end] from per-container breakpoints ``k`` (sorted), clipped to the pod's life."""
    seg = breaks.with_columns((pl.col("k").shift(-1).over("cid") - 1).alias("_next")).join(
        c.select(pl.col("cid").cast(breaks.schema["cid"]), "k0", "k1", "container_type", "namespace", "pod", "uid",
                 "container"), on="cid", how="left")
    return seg.with_columns(
        pl.max_horizontal("k", "k0").alias("start"),
        pl.min_horizontal(pl.coalesce("_next", "k1"), "k1").alias("end"),
    ).filter(pl.col("start") <= pl.col("end"))


def _ksm_controllers(out: Out, cl: Cluster, scrape: list) -> None:
    pods, K = cl.pods, cl.K
    emit = lambda name, mtype, seg: out.family(name, mtype).grid(seg)
    one = pl.lit("1")

    # ReplicaSets (from their first pod to the end: revisionHistoryLimit keeps them) and Jobs (until their last pod).
    rs = pods.filter(pl.col("owner_kind") == "ReplicaSet").group_by("namespace", "owner_name").agg(
        pl.col("workload_kind").first(), pl.col("workload").first(), pl.col("k0").min()).sort("namespace", "owner_name")
    top = pl.col("workload_kind").is_in(["Deployment", "Rollout"])
    emit("kube_replicaset_owner", "gauge", rs.select(label_set(
        ("namespace", pl.col("namespace")), ("replicaset", pl.col("owner_name")),
        ("owner_kind", pl.when(top).then(pl.col("workload_kind")).otherwise(pl.lit("<none>"))),
        ("owner_name", pl.when(top).then(pl.col("workload")).otherwise(pl.lit("<none>"))),
        ("owner_is_controller", pl.when(top).then(pl.lit("true")).otherwise(pl.lit("<none>"))), *scrape)
        .alias("labels"), one.alias("v"), "k0", pl.lit(K - 1).alias("k1")))
    jobs = pods.filter(pl.col("owner_kind") == "Job").group_by("namespace", "owner_name").agg(
        pl.col("workload_kind").first(), pl.col("workload").first(), pl.col("k0").min(), pl.col("k1").max()
    ).sort("namespace", "owner_name")
    cron = pl.col("workload_kind") == "CronJob"
    emit("kube_job_owner", "gauge", jobs.select(label_set(
        ("namespace", pl.col("namespace")), ("job_name", pl.col("owner_name")),
        ("owner_kind", pl.when(cron).then(pl.lit("CronJob")).otherwise(pl.lit("<none>"))),
        ("owner_name", pl.when(cron).then(pl.col("workload")).otherwise(pl.lit("<none>"))),
        ("owner_is_controller", pl.when(cron).then(pl.lit("true")).otherwise(pl.lit("<none>"))), *scrape)
        .alias("labels"), one.alias("v"), "k0", "k1"))

    # Controllers: replicas and HPAs, from their first pod on.
    wl = str_frame(cl.snapshot.workloads)
    life = pods.group_by("namespace", "workload_kind", "workload").agg(pl.col("k0").min())
    wl = wl.join(life, on=["namespace", "workload_kind", "workload"], how="left").with_columns(
        pl.col("k0").fill_null(0), pl.lit(K - 1).alias("k1")).sort("namespace", "workload_kind", "workload")
    replicas = pl.col("replicas").cast(pl.String)
    for name, kind, label in (("kube_deployment_spec_replicas", "Deployment", "deployment"),
                              ("kube_statefulset_replicas", "StatefulSet", "statefulset"),
                              ("kube_daemonset_status_desired_number_scheduled", "DaemonSet", "daemonset")):
        emit(name, "gauge", wl.filter((pl.col("workload_kind") == kind) & pl.col("replicas").is_not_null())
             .select(label_set(("namespace", pl.col("namespace")), (label, pl.col("workload")), *scrape).alias("labels"),
                     replicas.alias("v"), "k0", "k1"))
    par = jobs.join(wl.select("namespace", "workload_kind", "workload", "replicas"),
                    on=["namespace", "workload_kind", "workload"], how="left")
    emit("kube_job_spec_parallelism", "gauge",
         par.select(label_set(("namespace", pl.col("namespace")), ("job_name", pl.col("owner_name")), *scrape)
                    .alias("labels"), pl.col("replicas").fill_null(1).cast(pl.String).alias("v"), "k0", "k1"))

    hpa = wl.filter(pl.col("hpa_name").is_not_null())
    hkey = [("namespace", pl.col("namespace")), ("horizontalpodautoscaler", pl.col("hpa_name"))]
    api = pl.col("workload_kind").replace_strict({"Rollout": "argoproj.io/v1alpha1"}, default="apps/v1",
                                                 return_dtype=pl.String)
    emit("kube_horizontalpodautoscaler_info", "gauge", hpa.select(label_set(
        *hkey, ("scaletargetref_api_version", api), ("scaletargetref_kind", pl.col("workload_kind")),
        ("scaletargetref_name", pl.col("workload")), *scrape).alias("labels"), one.alias("v"), "k0", "k1"))
    emit("kube_horizontalpodautoscaler_spec_min_replicas", "gauge",
         hpa.select(label_set(*hkey, *scrape).alias("labels"),
                    pl.col("hpa_min_replicas").fill_null(1).cast(pl.String).alias("v"), "k0", "k1"))
    emit("kube_horizontalpodautoscaler_spec_max_replicas", "gauge",
         hpa.filter(pl.col("hpa_max_replicas").is_not_null()).select(
             label_set(*hkey, *scrape).alias("labels"), pl.col("hpa_max_replicas").cast(pl.String).alias("v"),
             "k0", "k1"))
    targets = hpa.select("namespace", "hpa_name", "k0", "k1", "hpa_metrics").explode("hpa_metrics").filter(
        pl.col("hpa_metrics").is_not_null()).unnest("hpa_metrics").filter(pl.col("metric").is_not_null())
    ttype = pl.col("target_type").fill_null("Utilization").replace_strict(
        {"Utilization": "utilization", "AverageValue": "average", "Value": "value"}, default="value",
        return_dtype=pl.String)
    emit("kube_horizontalpodautoscaler_spec_target_metric", "gauge",
         targets.sort("namespace", "hpa_name", "metric").select(label_set(
             *hkey, ("metric_name", pl.col("metric")), ("metric_target_type", ttype), *scrape).alias("labels"),
             num_text(pl.col("target").fill_null(0.0)).alias("v"), "k0", "k1"))


def _ksm_nodes(out: Out, cl: Cluster, scrape: list) -> None:
    n = cl.nodes
    emit = lambda name, mtype, seg: out.family(name, mtype).grid(seg)
    one = pl.lit("1")
    rows = n.to_dicts()
    scrape_pairs = [(k, v) for k, v in scrape]

    info = []
    for r in rows:
        sysinfo = node_system_info(r["node"])
        info.append(label_text([
            ("node", r["node"]), ("kernel_version", KERNEL), ("os_image", OS_IMAGE),
            ("container_runtime_version", CONTAINER_RUNTIME), ("kubelet_version", KUBELET_VERSION),
            ("kubeproxy_version", KUBELET_VERSION),
            ("provider_id", provider_id(r["node"], r.get("provider"), r.get("zone")) or ""),
            ("pod_cidr", ""), ("system_uuid", sysinfo["systemUUID"]), ("internal_ip", cl.node_ip[r["node"]]),
            *scrape_pairs]))
    emit("kube_node_info", "gauge",
         n.select(pl.Series("labels", info, dtype=pl.String), one.alias("v"), "k0", "k1"))

    label_sets = []
    for r in rows:
        pairs = [("node", r["node"])] + [(name, value) for name, value in node_label_names(r.get("labels"))]
        label_sets.append(label_text(pairs + scrape_pairs))
    emit("kube_node_labels", "gauge",
         n.select(pl.Series("labels", label_sets, dtype=pl.String), one.alias("v"), "k0", "k1"))

    devices: dict[str, dict[str, int]] = {}
    for g in str_frame(cl.snapshot.gpus).to_dicts():
        res = f"nvidia.com/mig-{g['mig_profile']}" if g.get("mig_profile") else "nvidia.com/gpu"
        devices.setdefault(g["node"], {}).setdefault(res, 0)
        devices[g["node"]][res] += 1
    for status, cpu_col, mem_col in (("capacity", "cpu_capacity", "memory_capacity"),
                                     ("allocatable", "cpu_allocatable", "memory_allocatable")):
        seg_rows = []
        for r in rows:
            res: list[tuple[str, str, str]] = []
            if r.get(cpu_col) is not None:
                res.append(("cpu", "core", repr(float(r[cpu_col]))))
            if r.get(mem_col) is not None:
                res.append(("memory", "byte", str(int(r[mem_col]))))
            res.append(("pods", "integer", str(PODS_PER_NODE)))
            for k, v in node_extended_resources(r, devices.get(r["node"], {})).items():
                res.append((sanitize_label(k), "integer", str(v)))
            for resource, unit, value in res:
                seg_rows.append({"labels": label_text([("node", r["node"]), ("resource", resource), ("unit", unit),
                                                        *scrape_pairs]), "v": value, "k0": r["k0"], "k1": r["k1"]})
        emit(f"kube_node_status_{status}", "gauge",
             pl.DataFrame(seg_rows, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))

    taints = []
    for r in rows:
        for t in r.get("taints") or []:
            taints.append({"labels": label_text([("node", r["node"]), ("key", t.get("key")), ("value", t.get("value")),
                                                  ("effect", t.get("effect")), *scrape_pairs]),
                           "v": "1", "k0": r["k0"], "k1": r["k1"]})
    emit("kube_node_spec_taint", "gauge",
         pl.DataFrame(taints, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))

    ns_labels = {r["namespace"]: r.get("labels") for r in str_frame(cl.snapshot.namespaces).to_dicts()}
    names = sorted(set(ns_labels) | set(cl.pods.get_column("namespace").to_list()))
    ns_rows = [{"labels": label_text([("namespace", ns), *node_label_names(ns_labels.get(ns)), *scrape_pairs]),
                "v": "1", "k0": 0, "k1": cl.K - 1} for ns in names]
    emit("kube_namespace_labels", "gauge",
         pl.DataFrame(ns_rows, schema={"labels": pl.String, "v": pl.String, "k0": pl.Int64, "k1": pl.Int64}))


def node_label_names(pairs: list[dict] | None) -> list[tuple[str, str]]:
    """Kubernetes labels as kube-state-metrics' ``label_<sanitized>`` label pairs, sorted, with conflicts numbered."""
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for p in sorted(pairs or [], key=lambda p: p["key"]):
        if p.get("key") is None or p.get("value") is None:
            continue
        name = "label_" + sanitize_label(p["key"])
        if name in seen:
            seen[name] += 1
            name = f"{name}_conflict{seen[name]}"
        else:
            seen[name] = 0
        out.append((name, p["value"]))
    return out
