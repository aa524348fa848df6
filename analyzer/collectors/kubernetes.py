"""Kubernetes API collector: what the cluster intends (specs, owners, nodes, HPAs, PDBs).

Prometheus knows usage; the API server knows requests and limits as written, which
controller owns which pod, which nodes are spot, which workloads scale with an HPA or have a
PodDisruptionBudget. Three entry points, one conversion (``kube_specs.SpecBuilder``):

    snap = collect_kubernetes(KubeConfig(kubeconfig="~/.kube/config", context="prod"))
    snap = collect_kubernetes(KubeConfig(in_cluster=True, namespaces=("shop",)))
    snap = collect_from_kubectl("cluster.json")   # kubectl get pods,deploy,... -A -o json
    merged, report = merge_specs(prometheus_snapshot, snap)

The spec snapshot has ``containers``, ``workloads``, ``nodes``, ``events`` and ``namespaces``;
``usage`` and ``gpus`` are empty and listed in ``manifest.absent``, as is every kind that
could not be read (with a warning that says which RBAC rule to grant). Its window is the
moment of collection. Nothing is written here; ``Snapshot.write`` is atomic.

``merge_specs`` combines it with a usage snapshot (Prometheus): spec from the API, usage
from Prometheus, and every workload, container or node present in one source only kept and
reported (``MergeReport``, also summarised in the manifest warnings), never silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.collectors.kube_api import Forbidden, KubeAPI, KubeConfig, NotFound, Progress
from analyzer.collectors.kube_fields import BY_KIND, BY_RESOURCE, KINDS, Kind
from analyzer.collectors.kube_specs import SpecBuilder
from analyzer.errors import InputError
from analyzer.manifests import parse_objects
from analyzer.schema import FRAMES, KEYS
from analyzer.snapshot import Manifest, Snapshot

__all__ = ["KubeConfig", "MergeReport", "collect_from_kubectl", "collect_from_options", "collect_kubernetes",
           "merge_specs"]

SPEC_STEP_SECONDS = 300  # nominal: a spec snapshot is one moment, its usage frame is empty
ALWAYS_ABSENT = ["usage", "gpus"]

# What is lost without each kind, for the warning a 403 produces.
_WITHOUT = {
    "namespaces": "namespace labels (team, cost-center) are absent",
    "nodes": "node types, capacity and spot/on-demand are absent",
    "deployments": "Deployments have no labels, replicas or rollout strategy",
    "statefulsets": "StatefulSets have no labels, replicas or storage facts",
    "daemonsets": "DaemonSets have no labels or rollout strategy",
    "replicasets": "pods are placed in Deployments by their pod-template-hash label",
    "cronjobs": "CronJobs have no labels or pod template facts",
    "jobs": "CronJob runs are shown as separate Jobs",
    "horizontalpodautoscalers": "HPA facts are absent",
    "poddisruptionbudgets": "PDB facts are absent",
    "rollouts": "Argo Rollouts have no labels, replicas or strategy",
}


def rbac_hint(kind: Kind, namespace: str | None = None) -> str:
    where = f" in namespace {namespace}" if namespace else ""
    verb = "get" if kind.resource == "namespaces" and namespace else "list"
    return (f"no permission to {verb} {kind.rbac}{where} (403 Forbidden), so {_WITHOUT[kind.resource]}; grant "
            f"verb '{verb}' on resource '{kind.resource}' in apiGroup '{kind.group}' (deploy/base/rbac.yaml).")


def collect_kubernetes(config: KubeConfig, *, progress: Progress | None = None,
                       collected_at: datetime | None = None, api: KubeAPI | None = None) -> Snapshot:
    """Read the cluster's objects through the API server into a spec Snapshot (in memory)."""
    own = api is None
    api = api or KubeAPI(config, progress)
    try:
        version = api.version()
        host = api.conn.host
        builder = SpecBuilder(f"the Kubernetes API at {host}", config.namespaces, config.include_kube_system)
        absent, warnings = list(ALWAYS_ABSENT), []

        def skip(kind: Kind, message: str) -> None:
            builder.start(kind.resource)  # drop a partial list
            if kind.resource not in absent:
                absent.append(kind.resource)
            warnings.append(message)

        for kind in KINDS:
            if progress:
                progress(f"listing {kind.resource}")
            namespaces: Sequence[str | None] = config.namespaces if kind.namespaced and config.namespaces else [None]
            try:
                if kind.resource == "namespaces" and config.namespaces:
                    builder.start("namespaces")
                    for ns in config.namespaces:
                        obj = api.read_namespace(ns)
                        if obj is None:
                            warnings.append(f"namespace {ns} does not exist in the cluster.")
                        else:
                            builder.add("namespaces", [obj])
                    continue
                api.read_kind(kind, builder, namespaces)
            except Forbidden as exc:
                current = exc.namespace
                if kind.resource == "pods":
                    scope = (f"in namespace {current}" if current else "in all namespaces")
                    raise InputError(
                        f"no permission to list pods {scope} (403 Forbidden), and without pods there is nothing "
                        "to collect; grant verb 'list' on resource 'pods' (deploy/base/rbac.yaml)"
                        + ("" if config.namespaces else " or pass --namespace for the namespaces you may read")
                        + "."
                    ) from None
                skip(kind, rbac_hint(kind, current))
            except NotFound:
                builder.start(kind.resource)
                if not kind.optional_api:  # a CRD that is not installed is nothing to warn about
                    skip(kind, f"the API server does not serve {kind.api_version} {kind.resource} (an older "
                               f"Kubernetes?), so {_WITHOUT[kind.resource]}.")
        frames = builder.finish(collected_at)
    finally:
        if own:
            api.close()
    at = _moment(collected_at)
    scope = f" namespaces={','.join(config.namespaces)}" if config.namespaces else (
        " all namespaces" + ("" if config.include_kube_system else " but kube-system"))
    manifest = Manifest(cluster=api.conn.cluster, start=at, end=at, step_seconds=SPEC_STEP_SECONDS,
                        source=f"kubernetes API {host}" + (f" ({version})" if version else "") + scope,
                        absent=absent, warnings=warnings)
    return Snapshot.build(manifest, **frames)


def _moment(at: datetime | None) -> datetime:
    at = at or datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def collect_from_options(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None,
                         in_cluster: bool = False, namespaces: Sequence[str] = (), include_kube_system: bool = False,
                         progress: Progress | None = None, **options: Any) -> Snapshot:
    """The CLI's shortcut: ``collect_kubernetes(KubeConfig(...))``; extra options go to ``KubeConfig``."""
    config = KubeConfig(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster,
                        namespaces=tuple(namespaces or ()), include_kube_system=include_kube_system, **options)
    return collect_kubernetes(config, progress=progress)


# ---------------------------------------------------------------------------------------------
# Offline input: kubectl get ... -A -o json


def read_objects(path: str | os.PathLike[str]) -> list[Any]:
    """The items of a ``kind: List`` (or any ``*List``, or one object) in a JSON/YAML file or directory.

    A directory's ``.json``/``.yaml`` files are read in name order; an object found in two of
    them (``pods.json`` beside ``all.json``) is taken once.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root} does not exist.")
    files = sorted(p for p in root.iterdir() if p.suffix in (".json", ".yaml", ".yml")) if root.is_dir() else [root]
    if root.is_dir() and not files:
        raise InputError(f"{root} holds no .json or .yaml files from kubectl.")
    items: list[Any] = []
    seen: set[tuple] = set()
    for f in files:
        for it in _file_items(f):
            meta = it.get("metadata") if isinstance(it, dict) else None
            if len(files) > 1 and isinstance(meta, dict):  # e.g. pods.json beside all.json: read once
                key = (it.get("kind"), meta.get("namespace"), meta.get("name"))
                if key in seen:
                    continue
                seen.add(key)
            items.append(it)
    return items


def _file_items(path: Path) -> list[Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({type(exc).__name__}).") from None
    return parse_objects(raw, path, yaml_ok=path.suffix in (".yaml", ".yml"))


def collect_from_kubectl(path: str | os.PathLike[str], *, cluster: str = "kubectl", namespaces: Sequence[str] = (),
                         include_kube_system: bool = False, collected_at: datetime | None = None) -> Snapshot:
    """Build a spec Snapshot from saved kubectl JSON (a file or a directory of files)."""
    items = read_objects(path)
    builder = SpecBuilder(str(path), tuple(namespaces), include_kube_system)
    ignored = builder.add_objects(items)
    known = sum(1 for it in items if isinstance(it, dict) and it.get("kind") in BY_KIND)
    if not builder.seen:
        kinds = ", ".join(sorted(ignored)) or "none"
        raise InputError(f"{path} holds no objects kubetune reads (pods, workloads, nodes, ...); kinds found: {kinds}.")
    frames = builder.finish(collected_at)
    absent, warnings = list(ALWAYS_ABSENT), []
    for resource, what in (("pods", "pods"), ("nodes", "nodes"), ("namespaces", "namespaces")):
        if resource not in builder.seen:
            absent.append(resource)
            warnings.append(f"{Path(path).name} holds no {BY_RESOURCE[resource].kind} objects, so "
                            + ("containers are absent" if what == "pods" else _WITHOUT[resource]) + ".")
    if ignored:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(ignored.items()))
        warnings.append(f"ignored objects of kinds kubetune does not read: {kinds}.")
    at = _moment(collected_at)
    manifest = Manifest(cluster=cluster, start=at, end=at, step_seconds=SPEC_STEP_SECONDS,
                        source=f"kubectl {Path(path).name} ({known:,} objects)", absent=absent, warnings=warnings)
    return Snapshot.build(manifest, **frames)


# ---------------------------------------------------------------------------------------------
# Merging with a usage snapshot


@dataclass
class MergeReport:
    """What the two sources disagree on. Nothing in here was dropped from the merged snapshot."""

    workloads_only_in_usage: list[tuple[str, str, str]] = field(default_factory=list)
    workloads_only_in_spec: list[tuple[str, str, str]] = field(default_factory=list)
    workloads_outside_spec_scope: list[tuple[str, str, str]] = field(default_factory=list)
    containers_only_in_usage: int = 0
    containers_only_in_spec: int = 0
    pods_reassigned: list[tuple[str, str, str, str]] = field(default_factory=list)  # ns, pod, from, to
    nodes_only_in_usage: list[str] = field(default_factory=list)
    nodes_only_in_spec: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.workloads_only_in_usage or self.workloads_only_in_spec or self.pods_reassigned
                    or self.nodes_only_in_usage or self.nodes_only_in_spec)

    def lines(self, examples: int = 3) -> list[str]:
        """One sentence per disagreement, with a few examples."""
        def ex(keys: list) -> str:
            shown = ", ".join("/".join(k) if isinstance(k, tuple) else str(k) for k in keys[:examples])
            return f" (e.g. {shown}{', ...' if len(keys) > examples else ''})"

        found = [
            (self.workloads_only_in_usage, ("workloads have usage but no spec in the API, kept with the usage source's "
                                           "facts"), None),
            (self.workloads_only_in_spec, "workloads have a spec but no usage in the window, kept without usage", None),
            (self.workloads_outside_spec_scope, ("workloads with usage are in namespaces the API collection did not "
                                                "read, kept without spec"), None),
            (self.pods_reassigned, ("pods were placed in a different workload by the API's owner references than by "
                                   "the usage source; the API's owner is used"), [(p[0], p[1]) for p in self.pods_reassigned]),
            (self.nodes_only_in_usage, "nodes appear in usage only (gone now?)", None),
            (self.nodes_only_in_spec, "nodes appear in the API only (new?)", None),
        ]
        return [f"{len(items)} {text}{ex(items if keys is None else keys)}." for items, text, keys in found if items]

    def to_json(self) -> dict[str, Any]:
        return {
            "workloads_only_in_usage": ["/".join(k) for k in self.workloads_only_in_usage],
            "workloads_only_in_spec": ["/".join(k) for k in self.workloads_only_in_spec],
            "workloads_outside_spec_scope": ["/".join(k) for k in self.workloads_outside_spec_scope],
            "containers_only_in_usage": self.containers_only_in_usage,
            "containers_only_in_spec": self.containers_only_in_spec,
            "pods_reassigned": [{"namespace": a, "pod": b, "from": c, "to": d} for a, b, c, d in self.pods_reassigned],
            "nodes_only_in_usage": self.nodes_only_in_usage,
            "nodes_only_in_spec": self.nodes_only_in_spec,
        }


_WKEY = ["namespace", "workload_kind", "workload"]
_PROVIDES = {  # usage-source absences that a spec snapshot fills, and the kind that must have been read
    "requests": "pods", "limits": "pods", "replicaset_owners": "replicasets", "job_owners": "jobs",
    "hpa": "horizontalpodautoscalers", "node_labels": "nodes", "node_capacity": "nodes",
    "namespace_labels": "namespaces",
}


def _str(df: pl.DataFrame, frame: str) -> pl.DataFrame:
    """Categoricals as strings, so joins across snapshots compare values, not dictionaries."""
    return df.with_columns(pl.col(c.name).cast(pl.String) for c in FRAMES[frame].columns
                           if c.dtype == pl.Categorical and c.name in df.columns)


def _keys(df: pl.DataFrame) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in df.select(_WKEY).unique().sort(_WKEY).iter_rows()]


def merge_specs(usage: Snapshot, spec: Snapshot) -> tuple[Snapshot, MergeReport]:
    """One snapshot from a usage source (Prometheus) and a spec source (the API or kubectl JSON).

    Usage, GPU devices and the window come from ``usage``; containers, workloads, node facts,
    namespace labels and events from ``spec`` where it has them, else from ``usage``. A pod the
    API places in another workload than the usage source did is moved (usage rows included) to
    the API's workload. Prices and first/last seen of nodes stay with the usage source.

    Length: one join per frame in a fixed order, with the report filled as it goes; splitting it would pass
    both snapshots and the report around.
    """
    report = MergeReport()
    # Pods the API places differently: the API's owner references win, in every frame.
    s_cont, u_cont = _str(spec.containers, "containers"), _str(usage.containers, "containers")
    s_pods = s_cont.select("namespace", "pod", "workload_kind", "workload").unique(["namespace", "pod"])
    u_pods = u_cont.select("namespace", "pod", "workload_kind", "workload").unique(["namespace", "pod"])
    moved = u_pods.join(s_pods, on=["namespace", "pod"], suffix="_api").filter(
        (pl.col("workload_kind") != pl.col("workload_kind_api")) | (pl.col("workload") != pl.col("workload_api")))
    report.pods_reassigned = [(r[0], r[1], f"{r[2]}/{r[3]}", f"{r[4]}/{r[5]}") for r in moved.sort(
        ["namespace", "pod"]).select("namespace", "pod", "workload_kind", "workload", "workload_kind_api",
                                     "workload_api").iter_rows()]
    remap = moved.select("namespace", "pod", "workload_kind_api", "workload_api")

    def relabel(df: pl.DataFrame, frame: str) -> pl.DataFrame:
        if remap.is_empty() or df.is_empty():
            return df
        out = _str(df, frame).join(remap, on=["namespace", "pod"], how="left").with_columns(
            pl.coalesce("workload_kind_api", "workload_kind").alias("workload_kind"),
            pl.coalesce("workload_api", "workload").alias("workload")).drop("workload_kind_api", "workload_api")
        return out.select(df.columns)

    usage_rows = relabel(usage.usage, "usage")
    u_cont = relabel(u_cont, "containers")
    u_events = relabel(_str(usage.events, "events"), "events")

    # Containers: the API's rows, plus the usage source's for pods the API no longer has.
    ckey = KEYS["containers"]
    only_u = u_cont.join(s_cont, on=ckey, how="anti")
    report.containers_only_in_usage = only_u.height
    report.containers_only_in_spec = s_cont.join(u_cont, on=ckey, how="anti").height
    containers = pl.concat([s_cont, only_u.select(s_cont.columns)], how="vertical_relaxed")

    # Workloads: the API's rows, plus the usage source's for workloads the API does not have.
    s_work = _str(spec.workloads, "workloads")
    u_work = _str(usage.workloads, "workloads")
    with_usage = pl.concat([_str(usage_rows, "usage").select(_WKEY), u_cont.select(_WKEY)]).unique()
    # A usage-side workload whose pods all moved to an API workload was the same one under a guessed name.
    renamed = moved.select(_WKEY).unique().join(with_usage, on=_WKEY, how="anti")
    u_work = u_work.join(renamed, on=_WKEY, how="anti")
    usage_side = pl.concat([with_usage, u_work.select(_WKEY)]).unique()
    spec_side = s_work.select(_WKEY).unique()
    covered = set(_str(spec.namespaces, "namespaces").get_column("namespace").to_list()) | set(
        spec_side.get_column("namespace").to_list()) | set(s_cont.get_column("namespace").to_list())
    only_usage = usage_side.join(spec_side, on=_WKEY, how="anti")
    in_scope = only_usage.filter(pl.col("namespace").is_in(sorted(covered)))
    report.workloads_only_in_usage = _keys(in_scope)
    report.workloads_outside_spec_scope = _keys(only_usage.join(in_scope, on=_WKEY, how="anti"))
    report.workloads_only_in_spec = _keys(spec_side.join(with_usage, on=_WKEY, how="anti"))
    missing_rows = only_usage.join(u_work, on=_WKEY, how="inner")
    synthesized = only_usage.join(u_work.select(_WKEY), on=_WKEY, how="anti")  # usage rows but no workload row
    workloads = pl.concat([s_work, missing_rows.select([c for c in s_work.columns if c in missing_rows.columns]),
                           synthesized], how="diagonal_relaxed")

    # Nodes: the API's facts, the usage source's prices and first/last seen.
    s_nodes, u_nodes = _str(spec.nodes, "nodes"), _str(usage.nodes, "nodes")
    report.nodes_only_in_usage = sorted(u_nodes.join(s_nodes, on="node", how="anti").get_column("node").to_list())
    report.nodes_only_in_spec = sorted(s_nodes.join(u_nodes, on="node", how="anti").get_column("node").to_list())
    both = s_nodes.join(u_nodes, on="node", how="inner", suffix="_u")
    prefer_usage = {"hourly_price", "price_source", "first_seen", "last_seen"}
    exprs = []
    for c in FRAMES["nodes"].columns:
        if c.name == "node":
            continue
        if c.name in prefer_usage:
            exprs.append(pl.coalesce(f"{c.name}_u", c.name).alias(c.name))
        elif c.name in ("capacity_type", "provider"):
            own = pl.col(c.name).cast(pl.String)
            exprs.append(pl.when(own == "unknown").then(pl.col(f"{c.name}_u").cast(pl.String)).otherwise(own)
                         .alias(c.name))
        elif c.name in ("labels", "taints"):
            exprs.append(pl.when(pl.col(c.name).list.len() > 0).then(c.name).otherwise(f"{c.name}_u").alias(c.name))
        else:
            exprs.append(pl.coalesce(c.name, f"{c.name}_u").alias(c.name))
    nodes = pl.concat([
        both.select("node", *exprs),
        s_nodes.join(u_nodes, on="node", how="anti"),
        u_nodes.join(s_nodes, on="node", how="anti"),
    ], how="diagonal_relaxed")

    # Events: both, without the API's copy of a termination the usage source already has.
    s_events = _str(spec.events, "events")
    dup_key = ["namespace", "pod", "container", "reason", "restart_count"]
    events = pl.concat([u_events, s_events.join(u_events.select(dup_key), on=dup_key, how="anti")],
                       how="vertical_relaxed").unique(KEYS["events"], keep="first", maintain_order=True)

    s_ns, u_ns = _str(spec.namespaces, "namespaces"), _str(usage.namespaces, "namespaces")
    namespaces = pl.concat([s_ns, u_ns.join(s_ns, on="namespace", how="anti")], how="vertical_relaxed")

    um, sm = usage.manifest, spec.manifest
    read = {k.resource for k in KINDS} - set(sm.absent)
    absent = [a for a in um.absent if not (a in _PROVIDES and _PROVIDES[a] in read)]
    absent += [a for a in sm.absent if a not in ALWAYS_ABSENT and a not in absent]
    warnings = list(dict.fromkeys([*um.warnings, *sm.warnings, *report.lines()]))
    manifest = Manifest(cluster=um.cluster, start=um.start, end=um.end, step_seconds=um.step_seconds,
                        source=f"{um.source} + {sm.source}", absent=absent, warnings=warnings)
    merged = Snapshot.build(manifest, usage=usage_rows, containers=containers, workloads=workloads, nodes=nodes,
                            events=events, gpus=usage.gpus, namespaces=namespaces)
    return merged, report
