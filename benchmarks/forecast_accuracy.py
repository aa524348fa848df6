"""Forecast accuracy on the real Bitbrains Rnd traces (issue 6).

Converts the VMs (one workload per VM, namespace ``bitbrains``) to long-format usage, imports it
through ``analyzer.collectors.files.import_files`` (the ``kubetune import`` path), then backtests
every model: train on the 14 days before each origin, forecast the next 7 days; origins at day 14,
16, ... while a full week fits. Reported separately for the development VMs (1-125, on which design
choices were made), the held-out VMs (126-250) and all. Usage:
python benchmarks/forecast_accuracy.py [--vms N] [--split 125]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from analyzer.collectors.files import import_files
from forecasting import SeriesSet, backtest_snapshot, extract_series

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "bitbrains-rnd-2013-07"


def bitbrains_usage(directory: Path = REAL, limit: int | None = None) -> pl.DataFrame:
    files = sorted(directory.glob("*.csv.gz"), key=lambda p: int(p.name.split(".")[0]))[:limit]
    frames = []
    for f in files:
        df = pl.read_csv(f, separator=";", infer_schema_length=0)
        df = df.rename({c: c.strip() for c in df.columns}).select(
            pl.col("Timestamp [ms]").str.strip_chars().cast(pl.Int64).alias("ts"),
            pl.col("CPU cores").str.strip_chars().cast(pl.Float64).alias("cores"),
            pl.col("CPU capacity provisioned [MHZ]").str.strip_chars().cast(pl.Float64).alias("cap"),
            pl.col("CPU usage [MHZ]").str.strip_chars().cast(pl.Float64).alias("mhz"),
            pl.col("Memory usage [KB]").str.strip_chars().cast(pl.Float64).alias("kb"),
        )
        if df.is_empty() or (df["cores"] <= 0).all() or (df["cap"] <= 0).all():
            continue  # README: a few VMs report 0 cores/capacity
        vm = f"vm-{f.name.split('.')[0]}"
        df = (
            df.filter((pl.col("cores") > 0) & (pl.col("cap") > 0))
            .with_columns(pl.from_epoch("ts", "s").dt.truncate("5m").alias("timestamp"),
                          (pl.col("mhz") / (pl.col("cap") / pl.col("cores"))).alias("cpu"),
                          (pl.col("kb") * 1024).alias("memory"))
            .group_by("timestamp").agg(pl.col("cpu").max(), pl.col("memory").max())  # resample to 5 min
            .unpivot(["cpu", "memory"], index="timestamp", variable_name="resource", value_name="value")
            .with_columns(pl.lit("bitbrains").alias("namespace"), pl.lit("Deployment").alias("workload_kind"),
                          pl.lit(vm).alias("workload"), pl.lit(f"{vm}-0").alias("pod"), pl.lit("vm").alias("container"))
        )
        frames.append(df)
    out = pl.concat(frames).filter(pl.col("value").is_finite() & (pl.col("value") >= 0))
    return out.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).select(
        "timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "value")


def bitbrains_snapshot(limit: int | None = None):
    usage = bitbrains_usage(REAL, limit)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.parquet"
        usage.write_parquet(path)
        return import_files(path, cluster="bitbrains", step_seconds=300)


def subset(ss: SeriesSet, lo: int, hi: int) -> SeriesSet:
    """Series of VMs lo..hi (inclusive, by file number)."""
    vm = ss.keys["workload"].str.split("-").list.get(1).cast(pl.Int64).to_numpy()
    keep = (vm >= lo) & (vm <= hi)
    return SeriesSet(ss.keys.filter(pl.Series(keep)), ss.times, ss.values[keep], ss.high[keep], ss.bucket_seconds)


def report(name: str, table: pl.DataFrame) -> None:
    with pl.Config(tbl_cols=-1, tbl_width_chars=200, float_precision=4, tbl_rows=-1):
        print(f"\n== {name}")
        print(table)
    base = table.filter(pl.col("model") != "kubetune-global")
    me = table.filter(pl.col("model") == "kubetune-global").row(0, named=True)
    best = base["pinball_p95"].min()
    print(f"P95 pinball vs best baseline: {100 * (1 - me['pinball_p95'] / best):.1f}% lower (target >= 15%)")
    print(f"P95 coverage: {100 * me['coverage_p95']:.1f}% (target 93-97%)")
    sn = base.filter(pl.col("model").str.starts_with("seasonal-naive"))["mase_p50"].min()
    print(f"P50 MASE {me['mase_p50']:.3f} vs seasonal naive {sn:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=None)
    ap.add_argument("--split", type=int, default=125,
                    help="VMs 1..split are the development set (design choices), the rest held out")
    args = ap.parse_args()
    if not REAL.exists():
        print(f"skipped: {REAL} is absent")
        return 0
    t = time.perf_counter()
    snap = bitbrains_snapshot(args.vms)
    ss = extract_series(snap.usage)
    print(f"import: {ss.n_series} series x {ss.values.shape[1]} hours in {time.perf_counter() - t:.1f}s")
    T = ss.values.shape[1]
    origins = list(range(14 * 24, T - 168 + 1, 48))
    print(f"origins (hour): {origins}; train = 14 days before each, horizon 7 days")
    # each set is backtested on its own: the global model is fit only on that set's training windows
    for name, part in ((f"dev (VMs 1-{args.split})", subset(ss, 1, args.split)),
                       (f"held-out (VMs {args.split + 1}-250)", subset(ss, args.split + 1, 10 ** 9)),
                       ("all", ss)):
        if part.n_series == 0:
            continue
        t = time.perf_counter()
        table = backtest_snapshot(part, horizon=timedelta(days=7), origins=origins, train=timedelta(days=14))
        print(f"{name}: {part.n_series} series, backtest {time.perf_counter() - t:.1f}s")
        report(name, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
