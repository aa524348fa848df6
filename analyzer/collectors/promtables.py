"""The Snapshot's frames (containers, workloads, HPAs, nodes, events, GPUs) from the collected Prometheus rows.

``SnapshotTables`` is mixed into the collection (``prometheus._Collection``), which owns the
window, scope, client and notes; each method here takes the rows it joins and returns one frame.
"""


from __future__ import annotations

import numpy as np
import polars as pl

from analyzer.collectors import promql as q
from analyzer.collectors.promframes import (
    epoch_expr,
    finish_nodes,
    labels_frame,
    namespaces_frame,
    node_labels_frame,
    resource_name,
    tagged,
    to_datetime,
)
from analyzer.collectors.promlast import index_selectors, read_grew, read_last
from analyzer.schema import EVENTS


class SnapshotTables:
    """Frame builders; expects ``client``, ``scope``, ``window``, ``step``, ``t_end``, ``present`` and ``notes``."""

    def _last(self, parts: list[q.Last], what: str) -> tuple[list[dict[str, str]], np.ndarray]:
        """The parts' values over the window (``promlast``: exact, without reading every sample)."""
        return read_last(self.client, parts, self.scope, self.t_end, self.window, what,
                         grid=self.config.spec_grid, index=self._series_index if self.grid else None)

    def _spec_selectors(self) -> list[str]:
        """The spec and counter families read with the series index's help (``promlast``), for the shared index."""
        parts = q.owners(self.present) + q.inventory(self.present) + q.workload_meta(self.present) + q.nodes(
            self.present)
        counters = q.grew(self.present) + (q.throttling_counters() if {q.THROTTLED, q.PERIODS} <= self.present else [])
        return index_selectors(parts + counters, self.scope) if self.grid else []

    def _series_index(self) -> list[dict[str, str]]:
        return self.index_future.result()

    # -- frames ----------------------------------------------------------------------------------

    def _containers(self, inv: pl.DataFrame, pods: pl.DataFrame, spans: pl.DataFrame,
                    throttling: pl.DataFrame | None) -> pl.DataFrame:
        key = ["namespace", "pod", "container"]
        res = pl.col("resource").fill_null("")
        is_gpu = res.str.contains(r"^(nvidia_com|amd_com)_")
        req = inv.filter(pl.col("kt").is_in(["request", "init_request"]))
        lim = inv.filter(pl.col("kt").is_in(["limit", "init_limit"]))

        def pick(frame: pl.DataFrame, cond: pl.Expr, name: str) -> pl.DataFrame:
            return frame.filter(cond).group_by(key).agg(pl.col("value").max().alias(name))

        parts = [
            pick(req, res == "cpu", "cpu_request"), pick(lim, res == "cpu", "cpu_limit"),
            pick(req, res == "memory", "memory_request"), pick(lim, res == "memory", "memory_limit"),
            pick(req, is_gpu, "gpu_request"), pick(lim, is_gpu, "gpu_limit"),
            inv.filter(is_gpu).group_by(key).agg(pl.col("resource").max().alias("_gpu_res")),
        ]
        seen = pl.concat([inv.select(key), spans.select(key)], how="vertical").unique()
        out = seen
        for part in parts:
            out = out.join(part, on=key, how="left")
        node_inv = inv.filter(pl.col("node").is_not_null() & (pl.col("node") != "")).group_by(key).agg(
            pl.col("node").first().alias("_node_inv"))
        init = inv.filter(pl.col("kt").is_in(["init_request", "init_limit", "init_info"])).group_by(key).agg(
            (pl.col("restart_policy").fill_null("") == "Always").any().alias("_sidecar"))
        out = out.join(node_inv, on=key, how="left").join(init.with_columns(pl.lit(True).alias("_init")), on=key,
                                                           how="left")
        # A pod's life: from its first to its last sample of any container (an init container's
        # end is not the pod's); kube_pod_start_time/_completion_time win where present.
        life = spans.group_by(["namespace", "pod"]).agg(pl.col("first").min().alias("_first"),
                                                        pl.col("last").max().alias("_last"))
        out = out.join(life, on=["namespace", "pod"], how="left").join(pods, on=["namespace", "pod"], how="left")
        still_running = pl.col("_last") >= self.t_end - 2 * self.step
        out = out.with_columns(
            pl.col("workload_kind").fill_null("Pod"),
            pl.coalesce("workload", "pod").alias("workload"),
            pl.when(pl.col("_init").fill_null(False) & pl.col("_sidecar").fill_null(False)).then(pl.lit("sidecar"))
            .when(pl.col("_init").fill_null(False)).then(pl.lit("init")).otherwise(pl.lit("app")).alias("container_type"),
            pl.coalesce("_node_inv", "node").alias("node"),
            pl.col("memory_request").round(0).cast(pl.Int64),
            pl.col("memory_limit").round(0).cast(pl.Int64),
            pl.col("gpu_request").round(0).cast(pl.Int64),
            pl.col("gpu_limit").round(0).cast(pl.Int64),
            pl.col("_gpu_res").map_elements(resource_name, return_dtype=pl.String).alias("gpu_resource"),
            pl.coalesce("started_at", epoch_expr("_first")).alias("started_at"),
            pl.coalesce("ended_at", pl.when(still_running).then(None).otherwise(epoch_expr("_last"))).alias("ended_at"),
        )
        if throttling is not None:
            out = out.join(throttling, on=key, how="left")
        return out.drop([c for c in out.columns if c.startswith("_")]).sort(key)

    def _meta_rows(self) -> dict[str, pl.DataFrame]:
        return tagged(*self._last(q.workload_meta(self.present), "replicas and autoscalers"))

    def _workloads(self, containers: pl.DataFrame,
                   rows: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Workloads (replicas, HPAs) and the namespaces frame, from ``_meta_rows``."""
        wl = containers.group_by(["namespace", "workload_kind", "workload"]).agg(
            pl.col("pod").n_unique().alias("_pods"))
        replicas = []
        for metric, (kind, label) in q.REPLICA_METRICS.items():
            frame = rows.get(metric)
            if frame is not None and label in frame.columns:
                replicas.append(frame.select("namespace", pl.lit(kind).alias("workload_kind"),
                                             pl.col(label).alias("workload"), pl.col("value").alias("replicas")))
        if replicas:
            rep = pl.concat(replicas).unique(["namespace", "workload_kind", "workload"])
            wl = wl.join(rep, on=["namespace", "workload_kind", "workload"], how="left")
        else:
            wl = wl.with_columns(pl.lit(None, pl.Float64).alias("replicas"))
        jobs = rows.get("kube_job_spec_parallelism")
        if jobs is not None and "job_name" in jobs.columns:
            # A CronJob runs its Jobs' parallelism: the largest seen among its Jobs in the window.
            cron = containers.filter(pl.col("workload_kind") == "CronJob").select(
                "namespace", "workload", pl.col("owner_name").cast(pl.String).alias("job_name")).unique()
            cron = cron.join(jobs.select("namespace", "job_name", "value"), on=["namespace", "job_name"]).group_by(
                "namespace", "workload").agg(pl.col("value").max().alias("_cron"))
            wl = wl.join(cron.with_columns(pl.lit("CronJob").alias("workload_kind")),
                         on=["namespace", "workload_kind", "workload"], how="left")
            wl = wl.with_columns(pl.coalesce("replicas", "_cron").alias("replicas")).drop("_cron")
        wl = wl.with_columns(
            pl.when(pl.col("workload_kind") == "Pod").then(1).otherwise(pl.col("replicas")).round(0).cast(pl.Int64)
            .alias("replicas"))
        wl = self._hpa(wl, rows)
        if not self._has("namespace_labels"):
            self.notes.missing("namespace_labels", None)
        return wl.drop("_pods").sort(["namespace", "workload_kind", "workload"]), namespaces_frame(rows.get("ns_labels"))

    def _hpa(self, wl: pl.DataFrame, rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
        if not self._has("hpa"):
            self.notes.missing("hpa", "no HorizontalPodAutoscaler metrics (kube_horizontalpodautoscaler_*): "
                               "autoscaled workloads cannot be recognised; enable them in kube-state-metrics.")
            return wl
        key = ["namespace", "horizontalpodautoscaler"]
        info = rows.get("hpa_info")
        if info is not None:
            hpas = info.select(*key, pl.col("scaletargetref_kind").alias("workload_kind"),
                               pl.col("scaletargetref_name").alias("workload")).unique(key)
        else:
            # Without kube_horizontalpodautoscaler_info, assume the HPA is named after its target.
            names = [f.select(key) for t, f in rows.items() if t.startswith("hpa_") and "horizontalpodautoscaler" in f.columns]
            if not names:
                return wl
            hpas = pl.concat(names).unique().with_columns(pl.col("horizontalpodautoscaler").alias("workload"))
            hpas = hpas.join(wl.select("namespace", "workload", "workload_kind").filter(
                pl.col("workload_kind").is_in(["Deployment", "StatefulSet"])), on=["namespace", "workload"], how="inner")
        for tag_, col in (("hpa_min", "hpa_min_replicas"), ("hpa_max", "hpa_max_replicas")):
            frame = rows.get(tag_)
            if frame is not None:
                hpas = hpas.join(frame.select(*key, pl.col("value").round(0).cast(pl.Int64).alias(col)).unique(key),
                                 on=key, how="left")
        target = rows.get("hpa_target")
        if target is not None and "metric_name" in target.columns:
            kinds = {"utilization": "Utilization", "average": "AverageValue", "averagevalue": "AverageValue",
                     "value": "Value"}
            metrics = target.select(*key, pl.struct(
                pl.col("metric_name").alias("metric"),
                pl.col("metric_target_type").fill_null("").str.to_lowercase().replace_strict(
                    kinds, default=pl.col("metric_target_type")).alias("target_type"),
                pl.col("value").alias("target"),
            ).alias("m")).group_by(key).agg(pl.col("m").sort_by(pl.col("m").struct.field("metric")).alias("hpa_metrics"))
            hpas = hpas.join(metrics, on=key, how="left")
        hpas = hpas.rename({"horizontalpodautoscaler": "hpa_name"}).unique(["namespace", "workload_kind", "workload"])
        return wl.join(hpas, on=["namespace", "workload_kind", "workload"], how="left")

    def _node_rows(self) -> dict[str, pl.DataFrame]:
        rows = tagged(*self._last(q.nodes(self.present), "nodes"))
        rows.update(self._node_presence())
        return rows

    def _nodes(self, containers: pl.DataFrame, devices: pl.DataFrame, rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
        names = [containers.select(pl.col("node").cast(pl.String))]
        names += [f.select(pl.col("node")) for f in rows.values() if "node" in f.columns]
        if devices.height and not rows:
            # DCGM's Hostname is the node name only when the exporter is told so; trust it only
            # when kube-state-metrics says nothing about nodes.
            names.append(devices.select("node"))
        nodes = pl.concat(names).filter(pl.col("node").is_not_null() & (pl.col("node") != "")).unique()
        if not self._has("ksm_node_capacity"):
            self.notes.missing("node_capacity", "kube_node_status_capacity is missing: node sizes are absent.")
        for tag_, prefix in (("capacity", "cap"), ("allocatable", "alloc")):
            frame = rows.get(tag_)
            if frame is None:
                continue
            wide = frame.filter(pl.col("resource").is_in(["cpu", "memory", "nvidia_com_gpu"])).pivot(
                on="resource", index="node", values="value", aggregate_function="max")
            wide = wide.rename({c: f"_{prefix}_{c}" for c in wide.columns if c != "node"})
            nodes = nodes.join(wide, on="node", how="left")
        labels = node_labels_frame(rows.get("labels"))
        if labels is None:
            self.notes.missing("node_labels", "kube_node_labels is missing: instance type, zone and spot/on-demand "
                               "are unknown; run kube-state-metrics with --metric-labels-allowlist=nodes=[...].")
        else:
            nodes = nodes.join(labels, on="node", how="left")
        info = rows.get("info")
        if info is not None and "provider_id" in info.columns:
            nodes = nodes.join(info.select("node", pl.col("provider_id").alias("_provider_id")).unique("node"),
                               on="node", how="left")
        price = rows.get("price")
        if price is not None:
            cols = [c for c in ("instance_type", "region", "provider_id") if c in price.columns]
            nodes = nodes.join(price.select("node", pl.col("value").alias("hourly_price"),
                                            *[pl.col(c).alias(f"_oc_{c}") for c in cols]).unique("node"),
                               on="node", how="left")
        elif not self._has("opencost"):
            self.notes.missing("prices", "no OpenCost metrics (node_total_hourly_cost): node prices come from the "
                               "built-in catalog, not from your bill.")
        spot = rows.get("spot")
        if spot is not None:
            nodes = nodes.join(spot.select("node", pl.col("value").alias("_kc_spot")).unique("node"), on="node",
                               how="left")
        taints = rows.get("taint")
        if taints is not None and {"key", "effect"} <= set(taints.columns):
            nodes = nodes.join(taints.group_by("node").agg(pl.struct(
                pl.col("key"), (pl.col("label_value") if "label_value" in taints.columns else pl.lit(None, pl.String))
                .replace("", None).alias("value"), pl.col("effect")).alias("taints")), on="node", how="left")
            nodes = nodes.with_columns(pl.col("taints").fill_null([]))
        for tag_, col in (("first_seen", "first_seen"), ("last_seen", "last_seen")):
            frame = rows.get(tag_)
            if frame is not None:
                nodes = nodes.join(frame.select("node", epoch_expr("value").alias(col)).unique("node"), on="node",
                                   how="left")
        if devices.height:
            per_node = devices.filter(pl.col("mig_profile").is_null()).group_by("node").agg(
                pl.col("device").n_unique().alias("_dcgm_count"), pl.col("model").drop_nulls().first().alias("_dcgm_model"),
                pl.col("memory_total").max().alias("_dcgm_mem"))
            any_model = devices.group_by("node").agg(pl.col("model").drop_nulls().first().alias("_dcgm_any_model"),
                                                     pl.col("mig_profile").is_not_null().any().alias("_dcgm_mig"))
            nodes = nodes.join(per_node, on="node", how="left").join(any_model, on="node", how="left")
        return finish_nodes(nodes).sort("node")

    def _range_rows(self, query: str, what: str, labels: list[str]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
        """A range query over the window at the step: (samples, their series' labels) per answer."""
        out = []
        for m in self.client.range(query, self.t_start, self.t_end, self.step, what):
            if m.labels:
                lab = labels_frame(m.labels, labels).with_row_index("series")
                out.append((m.samples, lab.with_columns(pl.col("series").cast(pl.UInt32))))
        return out

    def _node_presence(self) -> dict[str, pl.DataFrame]:
        """``first_seen`` / ``last_seen`` rows (node, value = epoch seconds), to the step."""
        query = q.node_presence(self.scope, self.present)
        if not query:
            return {}
        frames = [samples.join(lab, on="series").group_by("node").agg(
            pl.col("t").min().alias("first_seen"), pl.col("t").max().alias("last_seen"))
            for samples, lab in self._range_rows(query, "node lifetimes", ["node"])]
        if not frames:
            return {}
        seen = pl.concat(frames).filter(pl.col("node").is_not_null()).group_by("node").agg(
            pl.col("first_seen").min(), pl.col("last_seen").max())
        return {col: seen.select("node", pl.col(col).alias("value")) for col in ("first_seen", "last_seen")}

    def _event_rows(self) -> tuple[list[pl.DataFrame], dict[str, pl.DataFrame]]:
        """OOM kills and restarts: find the few containers whose counters grew, then when.

        One instant query over the window names the containers whose restart or OOM counter
        grew; only those are read as range queries (reading every container's counters at every
        step would cost the server as much as the CPU query). Returns the event rows and the
        candidates, for ``_events``.
        """
        key = ["namespace", "pod", "container"]
        frames = []
        rows = tagged(*read_grew(self.client, q.grew(self.present), self.scope, self.t_end, self.window,
                                 "restarted containers", index=self._series_index if self.grid else None,
                                 scrape=self.scrape))
        if q.LAST_TERMINATED in self.present and q.RESTARTS not in self.present:
            rows.update(tagged(*self.client.instant(q.last_terminated_oom(self.scope, self.window), self.t_end,
                                                    "OOM-killed containers")))

        def scoped(tag_: str) -> q.Scope | None:
            frame = rows.get(tag_)
            if frame is None or frame.height == 0 or "pod" not in frame.columns:
                return None
            frame = frame.filter(pl.col("pod").is_not_null() & pl.col("namespace").is_not_null())
            if frame.height > 2000:  # too many for a selector: read them all
                return self.scope
            return self.scope.only(frame["namespace"].to_list(), frame["pod"].to_list())

        scope = scoped("restarts")
        if scope is not None:
            grew = [samples.join(lab, on="series").select(*key, "t") for samples, lab in self._range_rows(
                q.counter_increase(q.RESTARTS, scope, self.step, self.scrape, self.engine, matchers=()),
                "container restarts", key)]
            if grew and q.LAST_TERMINATED in self.present:
                reasons = [samples.join(lab, on="series").select(*key, "reason", "t") for samples, lab in self._range_rows(
                    q.restart_reasons(scope), "restart reasons", [*key, "reason"])]
            else:
                reasons = []
            if grew:
                restarts = pl.concat(grew)
                if reasons:  # the reason at the same step, as group_left would match it
                    restarts = restarts.join(pl.concat(reasons).sort([*key, "t", "reason"]).unique(
                        [*key, "t"], keep="first", maintain_order=True), on=[*key, "t"], how="left")
                else:
                    restarts = restarts.with_columns(pl.lit(None, pl.String).alias("reason"))
                frames.append(restarts.select(*key, pl.col("reason").fill_null("Restart"), "t",
                                              pl.lit("ksm").alias("_src")))
        scope = scoped("last_oom")
        if scope is not None:
            # No restart counter: an OOM is the first step of each run where the last termination is OOMKilled.
            for samples, lab in self._range_rows(q.oom_kills_ksm(scope), "OOM kills", key):
                runs = samples.sort(["series", "t"]).filter(
                    pl.col("t").diff().over("series").fill_null(float("inf")) > 1.5 * self.step)
                frames.append(runs.join(lab, on="series").select(
                    *key, pl.lit("OOMKilled").alias("reason"), "t", pl.lit("ksm").alias("_src")))
        scope = scoped("oom")
        if scope is not None:
            for samples, lab in self._range_rows(q.counter_increase(q.OOM_EVENTS, scope, self.step, self.scrape, self.engine),
                                     "OOM events", key):
                frames.append(samples.join(lab, on="series").select(
                    *key, pl.lit("OOMKilled").alias("reason"), "t", pl.lit("cadvisor").alias("_src")))
        if not self._has("oom"):
            self.notes.missing("events", "no OOM metrics (container_oom_events_total or "
                               "kube_pod_container_status_last_terminated_reason): OOM kills are not recorded.")
        return frames, rows

    def _events(self, containers: pl.DataFrame, fetched: tuple[list[pl.DataFrame], dict[str, pl.DataFrame]]
                ) -> pl.DataFrame:
        """The events frame from ``_event_rows``: one OOM kill per kill, with the container's workload."""
        key = ["namespace", "pod", "container"]
        frames, rows = fetched
        if not frames:
            return EVENTS.empty()
        ev = pl.concat(frames, how="vertical").filter(pl.col("pod").is_not_null())
        wanted = pl.concat([f.select(key) for t, f in rows.items() if set(key) <= set(f.columns)]).unique()
        ev = ev.join(wanted, on=key, how="semi")
        # cAdvisor and kube-state-metrics both see most OOM kills: keep one per container within two steps.
        ev = ev.sort([*key, "reason", "t", "_src"], descending=[False, False, False, False, False, True])
        close = (pl.col("t").diff().over([*key, "reason"]).fill_null(float("inf")) <= 2 * self.step) & (
            pl.col("reason") == "OOMKilled") & (pl.col("_src") != pl.col("_src").shift().over([*key, "reason"]))
        ev = ev.filter(~close)
        limits = containers.select(*key, "workload_kind", "workload", "memory_limit").unique(key)
        return ev.join(limits, on=key, how="left").select(
            epoch_expr("t").alias("timestamp"), "namespace", pl.col("workload_kind").fill_null("Pod"),
            pl.coalesce("workload", "pod").alias("workload"), "pod", "container", "reason",
            pl.when(pl.col("reason") == "OOMKilled").then(137).otherwise(None).cast(pl.Int64).alias("exit_code"),
            "memory_limit").sort(["timestamp", *key])

    def _gpus(self, devices: pl.DataFrame, gpu_usage: pl.DataFrame) -> pl.DataFrame:
        if devices.height == 0:
            return devices
        # The container a device is assigned to at the end of the window (none if its pod ended).
        end = to_datetime(self.t_end - self.step)
        assigned = (gpu_usage.filter(pl.col("timestamp") >= end).sort("timestamp")
                    .group_by("device").agg(pl.col("namespace", "pod", "container").last())
                    .with_columns(pl.col("device").cast(pl.String), pl.col("namespace", "pod", "container").cast(pl.String)))
        return devices.join(assigned, on="device", how="left").unique(["node", "device"]).sort(["node", "device"])

    _namespaces_frame: pl.DataFrame | None = None
