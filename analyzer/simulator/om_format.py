"""OpenMetrics text for the simulated exporters: escaping, label sets, families, the writer, shared inputs.

Building blocks of ``analyzer.simulator.openmetrics`` (which documents the rendering).
"""


from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO, Any

import polars as pl

from analyzer.simulator.kube_identity import (
    container_id,
    image_for,
    node_ip,
    object_uid,
    pod_cgroup,
    pod_ip,
    qos_class,
    sandbox_id,
)
from analyzer.snapshot import Snapshot


US = 1_000_000


CFS_PERIODS_PER_SECOND = 10  # 100 ms CFS periods


PAUSE_CPU = 0.0001  # cores


PAUSE_MEMORY = 512 * 1024  # bytes


DRIVER_VERSION = "550.127.05"


KUBELET_JOB = "kubelet"


DUPLICATE_JOB = "cadvisor"


KSM_JOB = "kube-state-metrics"


KSM_INSTANCE = "10.96.44.17:8080"


DCGM_JOB = "nvidia-dcgm-exporter"


OPENCOST_JOB = "opencost"


NOT_RESTARTS = ("Completed", "Evicted")


NOT_TERMINATIONS = ("Restart", "Evicted")


SERIES_KEY = ["namespace", "pod", "container"]


SANITIZE = re.compile(r"[^a-zA-Z0-9_]")


def escape_expr(expr: pl.Expr) -> pl.Expr:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return (expr.cast(pl.String).fill_null("").str.replace_all("\\", "\\\\", literal=True)
            .str.replace_all('"', '\\"', literal=True).str.replace_all("\n", "\\n", literal=True))


def escape_text(value: Any) -> str:
    return ("" if value is None else str(value)).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_set(*items: tuple[str, Any] | tuple[str, Any, pl.Expr]) -> pl.Expr:
    """``{a="x",b="y"}`` from (name, value expr or str[, present-when expr]) items."""
    parts = []
    for item in items:
        name, value = item[0], item[1]
        value_expr = pl.lit(escape_text(value)) if isinstance(value, str) else escape_expr(value)
        frag = pl.concat_str(pl.lit(f',{name}="'), value_expr, pl.lit('"'))
        if len(item) == 3:
            frag = pl.when(item[2]).then(frag).otherwise(pl.lit(""))
        parts.append(frag)
    return pl.concat_str(pl.lit("{"), pl.concat_str(parts).str.slice(1), pl.lit("}"))


def label_text(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(f'{k}="{escape_text(v)}"' for k, v in pairs) + "}"


def ts_text(col: str = "ts") -> pl.Expr:
    """Microseconds since the epoch -> seconds as text (fraction only when there is one)."""
    sec = pl.col(col).floordiv(US)
    frac = pl.col(col).mod(US)
    return pl.when(frac == 0).then(sec.cast(pl.String)).otherwise(pl.concat_str(
        sec.cast(pl.String), pl.lit("."), frac.cast(pl.String).str.zfill(6).str.strip_chars_end("0")))


def num_text(expr: pl.Expr) -> pl.Expr:
    """A float as sample text."""
    return expr.cast(pl.Float64).cast(pl.String)


def int_text(expr: pl.Expr) -> pl.Expr:
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def sanitize_label(name: str) -> str:
    return SANITIZE.sub("_", name)


def str_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


def to_us(expr: pl.Expr) -> pl.Expr:
    return expr.dt.convert_time_zone("UTC").dt.epoch("us")


class Family:
    def __init__(self, out: Out, name: str, mtype: str):
        self.out, self.name, self.mtype = out, name, mtype
        self.sample_name = name + "_total" if mtype == "counter" else name
        self.series = 0
        self.samples = 0
        self.started = False

    def _header(self) -> None:
        if not self.started:
            self.started = True
            self.out.fh.write(f"# TYPE {self.name} {self.mtype}\n".encode())

    def _lines(self, frame: pl.DataFrame) -> None:
        """frame: labels, v, ts (microseconds), already in output order."""
        if frame.height == 0:
            return
        self._header()
        frame.select(pl.concat_str(pl.lit(self.sample_name), pl.col("labels"), pl.lit(" "), pl.col("v"),
                                   pl.lit(" "), ts_text("ts")).alias("line")).write_csv(
            self.out.fh, include_header=False, quote_style="never")
        self.samples += frame.height

    def samples_by_series(self, labels: pl.Series, samples: pl.DataFrame) -> None:
        """labels: one label set per series id; samples: sid, ts, v sorted by (sid, ts)."""
        if samples.height == 0:
            return
        self.series += samples.get_column("sid").n_unique()
        step = self.out.chunk_lines
        for off in range(0, samples.height, step):
            part = samples.slice(off, step)
            self._lines(part.select(labels.gather(part.get_column("sid")).alias("labels"), "v", "ts"))

    def grid(self, segments: pl.DataFrame) -> None:
        """segments: labels, v, k0, k1 (grid indices, inclusive), in output order."""
        seg = segments.filter(pl.col("k1") >= pl.col("k0"))
        if seg.height == 0:
            return
        self.series += seg.get_column("labels").n_unique()
        n = pl.col("k1") - pl.col("k0") + 1
        seg = seg.with_columns(((n.cum_sum() - n) // self.out.chunk_lines).alias("_chunk"))
        start, step = self.out.start_us, self.out.step_us
        for part in seg.partition_by("_chunk", maintain_order=True):
            lines = part.select("labels", "v", pl.int_ranges(pl.col("k0"), pl.col("k1") + 1).alias("k")).explode("k")
            self._lines(lines.select("labels", "v", (pl.col("k") * step + start).alias("ts")))


class Out:
    def __init__(self, fh: IO[bytes], start_us: int, step_us: int, chunk_lines: int):
        self.fh, self.start_us, self.step_us, self.chunk_lines = fh, start_us, step_us, chunk_lines
        self.families: list[Family] = []

    def family(self, name: str, mtype: str) -> Family:
        f = Family(self, name, mtype)
        self.families.append(f)
        return f


class Cluster:
    """The snapshot's pods, containers, nodes and devices with the identity the exporters print."""

    def __init__(self, snapshot: Snapshot):
        m = snapshot.manifest
        self.snapshot = snapshot
        self.step_s = int(m.step_seconds)
        self.step_us = self.step_s * US
        self.start_us = int(round(m.start.timestamp() * US))
        self.end_us = int(round(m.end.timestamp() * US))
        self.K = max(int((self.end_us - self.start_us) // self.step_us) + 1, 1)
        self.usage = snapshot.usage
        self.events = str_frame(snapshot.events).with_columns(to_us(pl.col("timestamp")).alias("ts"))
        self._containers()
        self._pods()
        self.nodes = self._nodes()

    # grid indices of a time (microseconds): first grid point at/after, last at/before
    def k_ceil(self, ts: pl.Expr) -> pl.Expr:
        return (-((self.start_us - ts) // self.step_us)).clip(0, self.K)

    def k_floor(self, ts: pl.Expr) -> pl.Expr:
        return ((ts - self.start_us) // self.step_us).clip(-1, self.K - 1)

    def _containers(self) -> None:
        cont = str_frame(self.snapshot.containers).with_columns(
            to_us(pl.col("started_at")).alias("started_us"), to_us(pl.col("ended_at")).alias("ended_us"))
        spans = str_frame(self.usage.group_by(SERIES_KEY).agg(
            pl.col("workload_kind").first(), pl.col("workload").first(),
            to_us(pl.col("timestamp")).min().alias("first_us"), to_us(pl.col("timestamp")).max().alias("last_us")))
        c = cont.join(spans.select(*SERIES_KEY, "first_us", "last_us"), on=SERIES_KEY, how="left")
        extra = spans.join(cont.select(SERIES_KEY), on=SERIES_KEY, how="anti").with_columns(
            pl.lit("app").alias("container_type"))
        if extra.height:
            c = pl.concat([c, extra], how="diagonal_relaxed")
        c = c.with_columns(pl.col("container_type").fill_null("app")).sort(["namespace", "pod", "container"])
        rows = c.select(*SERIES_KEY, "workload").rows()
        self.containers = c.with_row_index("cid").with_columns(
            pl.Series("container_id", [container_id(ns, p, n) for ns, p, n, _ in rows], dtype=pl.String),
            pl.Series("image", [image_for(ns, w or p, n) for ns, p, n, w in rows], dtype=pl.String))

    def _pods(self) -> None:
        c = self.containers
        win0, win1 = self.start_us, self.end_us
        pods = c.group_by("namespace", "pod").agg(
            pl.col("workload_kind").drop_nulls().first(), pl.col("workload").drop_nulls().first(),
            pl.col("owner_kind").drop_nulls().first(), pl.col("owner_name").drop_nulls().first(),
            pl.col("node").drop_nulls().first(), pl.col("started_us").min(),
            pl.when(pl.col("ended_us").is_null().any()).then(None).otherwise(pl.col("ended_us").max())
            .alias("ended_us"),
            pl.col("first_us").min(), pl.col("last_us").max(),
        ).sort("namespace", "pod")
        t0 = pl.min_horizontal(pl.col("started_us").fill_null(win0), pl.col("first_us"))
        t1 = pl.max_horizontal(pl.col("ended_us").fill_null(win1), pl.col("last_us"))
        pods = pods.with_columns(
            pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"),
            self.k_ceil(t0).alias("k0"), self.k_floor(t1).alias("k1"))
        # Without a recorded direct owner, a controller's pod is owned by the controller itself.
        owned = pl.col("owner_kind").is_null() & (pl.col("workload_kind") != "Pod")
        pods = pods.with_columns(pl.when(owned).then(pl.col("workload_kind")).otherwise(pl.col("owner_kind"))
                                 .alias("owner_kind"),
                                 pl.when(owned).then(pl.col("workload")).otherwise(pl.col("owner_name"))
                                 .alias("owner_name"))
        per_pod: dict[tuple[str, str], list[dict]] = {}
        for r in c.select(*SERIES_KEY, "cpu_request", "cpu_limit", "memory_request", "memory_limit").to_dicts():
            per_pod.setdefault((r["namespace"], r["pod"]), []).append(r)
        keys = pods.select("namespace", "pod").rows()
        uids = [object_uid("Pod", ns, p) for ns, p in keys]
        qos = [qos_class(per_pod.get((ns, p), [])) for ns, p in keys]
        self.pods = pods.with_row_index("pid").with_columns(
            pl.Series("uid", uids, dtype=pl.String),
            pl.Series("pod_ip", [pod_ip(ns, p) for ns, p in keys], dtype=pl.String),
            pl.Series("cgroup", [pod_cgroup(u, q) for u, q in zip(uids, qos, strict=True)], dtype=pl.String),
            pl.Series("sandbox", [sandbox_id(ns, p) for ns, p in keys], dtype=pl.String),
        )
        node_names = [n for n in self.pods.get_column("node").unique().drop_nulls().to_list()]
        self.node_ip = {n: node_ip(n) for n in node_names}
        self.pods = self.pods.with_columns(
            pl.col("node").replace_strict(self.node_ip, default=None, return_dtype=pl.String).alias("host_ip"))
        pod_cols = self.pods.select("namespace", "pod", "pid", "uid", "cgroup", "host_ip", "k0", "k1",
                                    pl.col("node").alias("_node"), pl.col("workload_kind").alias("_kind"),
                                    pl.col("workload").alias("_workload"))
        self.containers = self.containers.join(pod_cols, on=["namespace", "pod"], how="left").with_columns(
            pl.coalesce("node", "_node").alias("node"), pl.col("_kind").alias("workload_kind"),
            pl.col("_workload").alias("workload")).drop("_node", "_kind", "_workload").sort("cid")

    def _nodes(self) -> pl.DataFrame:
        n = str_frame(self.snapshot.nodes).with_columns(
            to_us(pl.col("first_seen")).alias("first_us"), to_us(pl.col("last_seen")).alias("last_us"))
        known = set(n.get_column("node").to_list())
        missing = sorted({x for x in self.containers.get_column("node").drop_nulls().to_list() if x not in known})
        if missing:
            n = pl.concat([n, pl.DataFrame({"node": missing})], how="diagonal_relaxed")
        n = n.sort("node").with_columns(
            self.k_ceil(pl.col("first_us").fill_null(self.start_us)).alias("k0"),
            self.k_floor(pl.col("last_us").fill_null(self.end_us)).alias("k1"))
        self.node_ip.update({x: node_ip(x) for x in n.get_column("node").to_list()})
        return n

    def restart_runs(self, samples: pl.DataFrame) -> pl.DataFrame:
        """Add ``run``: how many restart events of the sample's container happened at or before it."""
        ev = self.events.filter(~pl.col("reason").is_in(NOT_RESTARTS)).join(
            self.containers.select(*SERIES_KEY, "cid"), on=SERIES_KEY, how="inner").sort("cid", "ts").select(
            "cid", "ts", (pl.int_range(pl.len()).over("cid") + 1).alias("run"))
        if ev.height == 0:
            return samples.with_columns(pl.lit(0, pl.Int64).alias("run"))
        out = samples.join_asof(ev.with_columns(pl.col("cid").cast(samples.schema["cid"])), on="ts", by="cid",
                                strategy="backward", check_sortedness=False)
        return out.with_columns(pl.col("run").fill_null(0).cast(pl.Int64))
