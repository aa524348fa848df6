"""From the rows ``SpecBuilder`` collected to Snapshot frames: owners resolved, columns typed.

``SpecFrames`` is mixed into ``kube_specs.SpecBuilder``; ``finish()`` is the only entry point.
"""


from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from analyzer.collectors.kube_fields import HpaRow, PdbRow, TemplateFacts, WorkloadRow, guess_from_hash, key_values
from analyzer.errors import InputError
from analyzer.kube import selector_matches
from analyzer.schema import CONTAINERS, EVENTS, NAMESPACES, NODES, TIMESTAMP, WORKLOADS


class SpecFrames:
    """``finish()`` and the frame builders it calls; state comes from ``SpecBuilder``."""

    def finish(self, collected_at: datetime | None = None) -> dict[str, pl.DataFrame]:
        """Resolve owners and build the frames (containers, workloads, nodes, events, namespaces)."""
        now = (collected_at or datetime.now(UTC)).astimezone(UTC)
        P = self.pods
        n = len(P.p["pod"])
        # 1. Each pod's top controller: dict lookups only (no scan per pod).
        top_kind: list[str] = [""] * n
        top_name: list[str] = [""] * n
        rs_owner, job_owner = self.rs_owner, self.job_owner
        inferred: dict[tuple[str, str, str], int] = {}  # (ns, kind, name) -> a pod index, for tops with no object
        for i in range(n):
            ns, okind, oname = P.p["namespace"][i], P.p["owner_kind"][i], P.p["owner_name"][i]
            if okind is None:
                kind, name = "Pod", P.p["pod"][i]
            elif okind == "ReplicaSet":
                if (ns, oname) in rs_owner:
                    up = rs_owner[(ns, oname)]
                    kind, name = up if up is not None else ("ReplicaSet", oname)
                else:
                    kind, name = guess_from_hash(oname, P.p["rs_hash"][i], P.p["rollout_hash"][i])
            elif okind == "Job":
                up = job_owner.get((ns, oname))
                kind, name = up if up is not None else ("Job", oname)
            else:
                kind, name = okind, oname
            top_kind[i], top_name[i] = kind, name
            inferred.setdefault((ns, kind, name), i)
        pods = pl.DataFrame({
            "_i": pl.Series(range(n), dtype=pl.Int64),
            "namespace": pl.Series(P.p["namespace"], dtype=pl.String),
            "workload_kind": pl.Series(top_kind, dtype=pl.String),
            "workload": pl.Series(top_name, dtype=pl.String),
            "pod": pl.Series(P.p["pod"], dtype=pl.String),
            "owner_kind": pl.Series(P.p["owner_kind"], dtype=pl.String),
            "owner_name": pl.Series(P.p["owner_name"], dtype=pl.String),
            "node": pl.Series(P.p["node"], dtype=pl.String),
            "started_at": self._times(P.p["started"], "pod startTime"),
            "ended_at": self._times(P.p["ended"], "container finishedAt"),
        })
        cont = pl.DataFrame({
            "_i": pl.Series(P.c["i"], dtype=pl.Int64),
            "container": pl.Series(P.c["container"], dtype=pl.String),
            "container_type": pl.Series(P.c["container_type"], dtype=pl.String),
            "cpu_request": pl.Series(P.c["cpu_request"], dtype=pl.Float64),
            "cpu_limit": pl.Series(P.c["cpu_limit"], dtype=pl.Float64),
            "memory_request": pl.Series(P.c["memory_request"], dtype=pl.Int64),
            "memory_limit": pl.Series(P.c["memory_limit"], dtype=pl.Int64),
            "gpu_resource": pl.Series(P.c["gpu_resource"], dtype=pl.String),
            "gpu_request": pl.Series(P.c["gpu_request"], dtype=pl.Int64),
            "gpu_limit": pl.Series(P.c["gpu_limit"], dtype=pl.Int64),
        })
        pod_cols = ["namespace", "workload_kind", "workload", "pod"]
        containers = cont.join(pods, on="_i", how="left").select(
            [c.name for c in CONTAINERS.columns]).with_columns(_casts(CONTAINERS))
        ev = pl.DataFrame({
            "_i": pl.Series(P.e["i"], dtype=pl.Int64),
            "container": pl.Series(P.e["container"], dtype=pl.String),
            "timestamp": self._times(P.e["timestamp"], "container finishedAt"),
            "reason": pl.Series(P.e["reason"], dtype=pl.String),
            "exit_code": pl.Series(P.e["exit_code"], dtype=pl.Int64),
            "restart_count": pl.Series(P.e["restart_count"], dtype=pl.Int64),
            "memory_limit": pl.Series(P.e["memory_limit"], dtype=pl.Int64),
        }).with_columns(pl.col("timestamp").fill_null(pl.lit(now).cast(TIMESTAMP)))
        events = ev.join(pods.select("_i", *pod_cols), on="_i", how="left").select(
            [c.name for c in EVENTS.columns]).unique(subset=["namespace", "pod", "container", "timestamp", "reason"],
                                                    keep="first", maintain_order=True).with_columns(_casts(EVENTS))
        workloads = self._workloads_frame(inferred, top_kind, top_name)
        nodes = self._nodes_frame(now)
        namespaces = pl.DataFrame(self.ns_rows, schema=NAMESPACES.schema) if self.ns_rows else NAMESPACES.empty()
        return {"containers": containers, "workloads": workloads, "nodes": nodes, "events": events,
                "namespaces": namespaces}

    def _times(self, values: list[str | None], what: str) -> pl.Series:
        raw = pl.Series(values, dtype=pl.String)
        parsed = raw.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        bad = parsed.is_null() & raw.is_not_null()
        if bad.any():
            raise InputError(f"{self.source}: {what} {raw.filter(bad)[0]!r} is not an RFC 3339 time.")
        return parsed

    def _workloads_frame(self, inferred: dict[tuple[str, str, str], int], top_kind: list[str],
                         top_name: list[str]) -> pl.DataFrame:
        records: list[WorkloadRow] = []
        for resource in ("deployments", "statefulsets", "daemonsets", "cronjobs", "rollouts"):
            records.extend(self.controllers.get(resource, []))
        records.extend(self.rs_top)
        records.extend(self.job_top)
        known = {(w.namespace, w.kind, w.name) for w in records}
        deployments = {(w.namespace, w.name): w for w in self.controllers.get("deployments", [])}
        P = self.pods
        # Pod counts per top, for DaemonSets without status and for tops known only through their pods.
        pod_count: dict[tuple[str, str, str], int] = {}
        for i, ns in enumerate(P.p["namespace"]):
            if P.p["ended"][i] is None:
                key = (ns, top_kind[i], top_name[i])
                pod_count[key] = pod_count.get(key, 0) + 1
        for key, i in inferred.items():
            if key in known:
                continue
            ns, kind, name = key
            if kind == "Pod":
                annotations, facts = P.bare[i]
                records.append(WorkloadRow(ns, "Pod", name, 1, P.labels[i], annotations, facts))
            else:  # known only through its pods: what one of them carries
                records.append(WorkloadRow(ns, kind, name, pod_count.get(key, 0), {}, {}, TemplateFacts(labels=P.labels[i])))
            known.add(key)
        # HPAs by target; RS/Job targets are lifted to their top controller.
        hpa_by: dict[tuple[str, str, str], HpaRow] = {}
        for h in sorted(self.hpas, key=lambda h: h.name):
            kind, name = h.target_kind, h.target_name
            if kind == "ReplicaSet" and self.rs_owner.get((h.namespace, name)):
                kind, name = self.rs_owner[(h.namespace, name)]
            hpa_by.setdefault((h.namespace, kind, name), h)
        pdbs_by_ns: dict[str, list[PdbRow]] = {}
        for p in sorted(self.pdbs, key=lambda p: p.name):
            pdbs_by_ns.setdefault(p.namespace, []).append(p)
        rows = []
        for w in records:
            t = w.facts
            if w.workload_ref and t.empty and w.workload_ref[0] == "Deployment":
                ref = deployments.get((w.namespace, w.workload_ref[1]))
                t = ref.facts if ref else t
            replicas = w.replicas
            if replicas is None:
                replicas = pod_count.get((w.namespace, w.kind, w.name), 0)
            hpa = hpa_by.get((w.namespace, w.kind, w.name))
            pdb = next((p for p in pdbs_by_ns.get(w.namespace, ()) if selector_matches(p.selector, t.labels)), None)
            rows.append({
                "namespace": w.namespace, "workload_kind": w.kind, "workload": w.name, "replicas": replicas,
                # pod-level annotations (safe-to-evict, spot opt-in) live on the template: they win
                "labels": key_values(w.labels), "annotations": key_values({**w.annotations, **t.annotations}),
                "hpa_name": hpa.name if hpa else None,
                "hpa_min_replicas": hpa.min_replicas if hpa else None,
                "hpa_max_replicas": hpa.max_replicas if hpa else None,
                "hpa_metrics": hpa.metrics if hpa else None,
                "pdb_name": pdb.name if pdb else None,
                "pdb_min_available": pdb.min_available if pdb else None,
                "pdb_max_unavailable": pdb.max_unavailable if pdb else None,
                "update_strategy": w.strategy[0], "max_unavailable": w.strategy[1], "max_surge": w.strategy[2],
                "uses_empty_dir": t.uses_empty_dir, "uses_local_storage": t.uses_local_storage,
                "node_selector": key_values(t.node_selector), "tolerations": t.tolerations, "affinity": t.affinity,
            })
        if not rows:
            return WORKLOADS.empty()
        return pl.DataFrame(rows, schema=WORKLOADS.schema)

    def _nodes_frame(self, now: datetime) -> pl.DataFrame:
        cols = dict(self.nodes)
        created = self._times(cols.pop("_created"), "node creationTimestamp")
        df = pl.DataFrame({c.name: pl.Series(c.name, cols[c.name], dtype=_plain(c.dtype), strict=False)
                           for c in NODES.columns if c.name not in ("first_seen", "last_seen")})
        return df.with_columns(created.alias("first_seen"), pl.lit(now).cast(TIMESTAMP).alias("last_seen")).select(
            [c.name for c in NODES.columns]).with_columns(_casts(NODES))


def _plain(dtype: pl.DataType) -> pl.DataType:
    if dtype == pl.Categorical or isinstance(dtype, pl.Enum):
        return pl.String
    return dtype


def _casts(frame) -> list[pl.Expr]:
    return [pl.col(c.name).cast(c.dtype) for c in frame.columns]
