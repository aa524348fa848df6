"""Readers for the real traces in ../shared/data/real (see its README.md): each turns the publisher's
files into kubetune's long usage format, the file `kubetune import` (``import_files``) reads.

The notebooks share these so the trace formats are parsed in one place; the traces themselves are
never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

# notebooks/ -> the repository -> its parent, where shared/ sits beside the checkouts
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
BITBRAINS = REAL / "bitbrains-rnd-2013-07"
ALIBABA = REAL / "alibaba-gentd26-gpu"
USAGE_COLUMNS = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value"]


def skip_reason(directory: Path) -> str | None:
    """Why a real-trace section cannot run, or None when it can."""
    if directory.is_dir():
        return None
    return f"Skipped: {directory} is absent (the real traces are not part of the repository)."


def bitbrains_usage(limit: int, directory: Path = BITBRAINS) -> pl.DataFrame:
    """The first ``limit`` usable VMs: CPU in cores and memory in bytes, resampled to 5 minutes,
    one workload per VM in namespace ``bitbrains``."""
    frames = []
    for f in sorted(directory.glob("*.csv.gz"), key=lambda p: int(p.name.split(".")[0])):
        if len(frames) == limit:
            break
        df = pl.read_csv(f, separator=";", infer_schema_length=0)
        df = df.rename({c: c.strip() for c in df.columns}).select(
            pl.col("Timestamp [ms]").str.strip_chars().cast(pl.Int64).alias("ts"),  # seconds, despite the name
            pl.col("CPU cores").str.strip_chars().cast(pl.Float64).alias("cores"),
            pl.col("CPU capacity provisioned [MHZ]").str.strip_chars().cast(pl.Float64).alias("cap"),
            pl.col("CPU usage [MHZ]").str.strip_chars().cast(pl.Float64).alias("mhz"),
            pl.col("Memory usage [KB]").str.strip_chars().cast(pl.Float64).alias("kb"),
        ).filter((pl.col("cores") > 0) & (pl.col("cap") > 0))
        if df.is_empty():
            continue  # a few VMs report 0 cores/capacity
        vm = f"vm-{f.name.split('.')[0]}"
        frames.append(
            df.with_columns(pl.from_epoch("ts", "s").dt.truncate("5m").alias("timestamp"),
                            (pl.col("mhz") / (pl.col("cap") / pl.col("cores"))).alias("cpu"),
                            (pl.col("kb") * 1024).alias("memory"))
            .group_by("timestamp").agg(pl.col("cpu").max(), pl.col("memory").max())
            .unpivot(["cpu", "memory"], index="timestamp", variable_name="resource", value_name="value")
            .with_columns(pl.lit("bitbrains").alias("namespace"), pl.lit("Deployment").alias("workload_kind"),
                          pl.lit(vm).alias("workload"), pl.lit(f"{vm}-0").alias("pod"), pl.lit("vm").alias("container"))
        )
    return pl.concat(frames).filter(pl.col("value").is_finite() & (pl.col("value") >= 0)).select(USAGE_COLUMNS)


def alibaba_gpu_usage(directory: Path = ALIBABA, gpu_model: str = "NVIDIA-A100-SXM4-80GB",
                      gpu_memory: str = "80Gi") -> pl.DataFrame:
    """GPU busy (fraction) and framebuffer (bytes) per serving pod, one device per pod. The trace
    names no GPU model: ``gpu_model``/``gpu_memory`` are an assumption (as in benchmarks/gpu_replay.py)."""
    def one(name: str, resource: str, scale: float) -> pl.DataFrame:
        return pl.read_csv(directory / name).drop_nulls(["container_ip", "value"]).select(
            pl.from_epoch(pl.col("timestamp_anon").cast(pl.Int64), "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            .alias("timestamp"), pl.col("container_ip").alias("ip"), pl.lit(resource).alias("resource"),
            (pl.col("value").cast(pl.Float64) * scale).alias("value"))

    u = pl.concat([one("pod_gpu_duty_cycle_anon.csv.gz", "gpu", 0.01),  # percent -> busy fraction
                   one("pod_gpu_memory_used_bytes_anon.csv.gz", "gpu_memory", 1.0)])
    pod = pl.lit("infer-") + pl.col("ip").str.slice(0, 12)
    return u.select("timestamp", pl.lit("alibaba").alias("namespace"), pl.lit("Deployment").alias("workload_kind"),
                    pod.alias("workload"), pod.alias("pod"), pl.lit("main").alias("container"), "resource", "value",
                    (pl.lit("GPU-") + pl.col("ip").str.slice(0, 32)).alias("device"),
                    pl.lit(gpu_model).alias("gpu_model"), pl.lit(gpu_memory).alias("gpu_memory_total"))
