"""End to end near the Prometheus limit (issue 20): collect + recommend, where the time and memory go.

Builds its own simulated cluster (the exporter-shaped generator of ``prometheus_collect.py``),
backfills it into a TSDB with promtool, serves it from a real ``prometheus`` on 127.0.0.1 and runs,
in a fresh Python process, what ``kubetune recommend --prometheus-url URL --history 14d`` runs:
``collect_prometheus`` then ``recommenders.api.recommend`` (the CLI has no ``--end``, and the data
lies in the past, so the driver passes the window itself; everything else is the CLI's code path).

Printed: a breakdown table (start-up/imports, each query's HTTP time = server + transfer, and its
decode time, the rest of the collector's frame work, ``Snapshot.build``, rates, each recommender,
drift and forecast), the HTTP requests Prometheus counted, Prometheus's CPU time during the run
(from /proc), the client's peak RSS, and the wall time of ``kubetune --help`` with whether it
imported scikit-learn. The load average is printed before and after: the machine may be shared.

    .venv/bin/python benchmarks/end_to_end.py --workloads 200                 # 200 workloads x 14 d
    .venv/bin/python benchmarks/end_to_end.py --containers 2000               # 2,000 containers x 14 d
    .venv/bin/python benchmarks/end_to_end.py --workloads 50 --days 2         # a quick one

TSDBs are kept in ``--workdir`` (shared with ``prometheus_collect.py``) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.prometheus_collect import DAY, T0, RssSampler, _server_requests, build_tsdb  # noqa: E402
from tests.support.prometheus_server import block_samples, need, start_prometheus  # noqa: E402

# The measured process: timers wrapped around the real functions (benchmark-only instrumentation).
DRIVER = r"""
import json, resource, sys, threading, time
t_begin = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from datetime import datetime, UTC
import analyzer.collectors.prometheus as P
from analyzer.collectors import promclient
t_collector_import = time.perf_counter() - t_begin
import recommenders.api as api
t_import = time.perf_counter() - t_begin
url, start, end, workers = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

timers, lock, local = {}, threading.Lock(), threading.local()
def add(name, seconds):
    with lock:
        timers[name] = timers.get(name, 0.0) + seconds
def timed(module, attr, name=None):
    fn = getattr(module, attr)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            add(name or attr, time.perf_counter() - t)
    setattr(module, attr, wrapper)

get = promclient.PrometheusClient.get
def get_timed(self, path, params, what, **k):
    local.what = what
    return get(self, path, params, what, **k)
promclient.PrometheusClient.get = get_timed
for attr in ("decode_matrix", "decode_vector"):
    fn = getattr(promclient, attr)
    def wrapper(body, fn=fn):
        t = time.perf_counter()
        try:
            return fn(body)
        finally:
            add("decode: " + getattr(local, "what", "?"), time.perf_counter() - t)
    setattr(promclient, attr, wrapper)
import analyzer.snapshot as S
def timed_classmethod(owner, attr, name):
    fn = getattr(owner, attr).__func__
    def wrapper(cls, *a, **k):
        t = time.perf_counter()
        try:
            return fn(cls, *a, **k)
        finally:
            add(name, time.perf_counter() - t)
    setattr(owner, attr, classmethod(wrapper))
timed_classmethod(S.Snapshot, "build", "Snapshot.build")
import forecasting
import recommenders.contract as C
import recommenders.rightsizing as R
for module in (R, forecasting):
    for attr in ("detect_drift", "extract_series", "forecast_snapshot"):
        if hasattr(module, attr):
            timed(module, attr)
timed_classmethod(C.Context, "build", "rates")
for cls in C.registered(None):
    def run_timed(self, snapshot, ctx, run=cls.run, name=cls.name):
        t = time.perf_counter()
        try:
            return run(self, snapshot, ctx)
        finally:
            add("recommender: " + name, time.perf_counter() - t)
    cls.run = run_timed

def hwm():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

config = P.PrometheusConfig(url=url, timeout=300, **({"parallel": workers} if workers else {}))
client = promclient.PrometheusClient(config)
t0 = time.perf_counter()
snap = P.collect_prometheus(config, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
                            client=client)
collect_s = time.perf_counter() - t0
rss_collect = hwm()
t1 = time.perf_counter()
result = api.recommend(snap, None)
recommend_s = time.perf_counter() - t1
print(json.dumps({
    "import_s": t_import, "collector_import_s": t_collector_import, "collect_s": collect_s,
    "recommend_s": recommend_s, "process_s": time.perf_counter() - t_begin,
    "log": [dict(zip(["what", "path", "seconds", "status", "bytes"], e)) for e in client.log.entries],
    "timers": timers, "peak_rss_mb": hwm(), "rss_after_collect_mb": rss_collect,
    "usage_rows": snap.usage.height, "containers": snap.containers.height, "step": snap.manifest.step_seconds,
    "recommendations": len(result.recommendations), "skipped": len(result.skipped),
    "sklearn_loaded": "sklearn" in sys.modules, "warnings": snap.manifest.warnings,
    "client_cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
}))
"""

HELP = r"""
import sys, time
t = time.perf_counter()
sys.argv = ["kubetune", "--help"]
from kubetune.cli import app
try:
    app()
except SystemExit:
    pass
print(time.perf_counter() - t, "sklearn" in sys.modules, file=sys.stderr)
"""


def load() -> str:
    return " ".join(os.getloadavg().__repr__().strip("()").split(", ")[:3])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(run: dict) -> list[tuple[str, str, str]]:
    """Rows (step, seconds, note) of the table."""
    rows = [("start-up: imports (collector + recommenders)", f"{run['import_s']:.2f}",
             f"collector alone {run['collector_import_s']:.2f} s")]
    per: dict[str, list[float]] = {}
    for e in run["log"]:
        agg = per.setdefault(e["what"], [0, 0.0, 0])
        agg[0] += 1
        agg[1] += e["seconds"]
        agg[2] += e["bytes"]
    http_total = decode_total = 0.0
    for what, (n, seconds, size) in per.items():
        dec = run["timers"].get("decode: " + what, 0.0)
        http_total += seconds
        decode_total += dec
        rows.append((f"query: {what}", f"{seconds:.2f} + {dec:.2f}",
                     f"{n} request(s), {size / 1e6:.1f} MB; HTTP (server + transfer) + decode"))
    build = run["timers"].get("Snapshot.build", 0.0)
    rest = run["collect_s"] - http_total - decode_total - build
    rows.append(("collector frame work (the rest)", f"{rest:.2f}",
                 "collect wall - HTTP - decode - build (negative = queries overlapped)"))
    rows.append(("Snapshot.build", f"{build:.2f}", ""))
    rows.append(("= collect", f"{run['collect_s']:.2f}", f"{len(run['log'])} HTTP requests"))
    for name in ("rates", "recommender: rightsize", "detect_drift", "extract_series", "forecast_snapshot",
                 "recommender: gpu", "recommender: spot"):
        if name in run["timers"]:
            inside = " (inside rightsize)" if name in ("detect_drift", "extract_series", "forecast_snapshot") else ""
            rows.append((name + inside, f"{run['timers'][name]:.2f}", ""))
    for name in sorted(k for k in run["timers"] if k.startswith("recommender: ") and k not in
                       ("recommender: rightsize", "recommender: gpu", "recommender: spot")):
        rows.append((name, f"{run['timers'][name]:.2f}", ""))
    rows.append(("= recommend", f"{run['recommend_s']:.2f}",
                 f"{run['recommendations']} recommendations, {run['skipped']} skipped"))
    rows.append(("= process (imports + collect + recommend)", f"{run['process_s']:.2f}", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--workloads", type=int, help="one pod (app + istio-proxy) per workload")
    size.add_argument("--containers", type=int, help="two containers per pod, four pods per workload")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--scrape", type=int, default=60)
    ap.add_argument("--slice-days", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=0, help="queries in flight (0: the collector's default)")
    ap.add_argument("--max-samples", type=int, help="start Prometheus with this --query.max-samples")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kubetune-bench-prometheus")
    ap.add_argument("--json", action="store_true", help="also print the raw measurements as JSON")
    args = ap.parse_args()
    need("prometheus", "promtool")
    if args.workloads:
        containers, ppw, key = 2 * args.workloads, 1, f"w{args.workloads}-d{args.days}-s{args.scrape}"
    else:
        containers, ppw = args.containers or 2000, 4
        key = f"c{containers}-d{args.days}-s{args.scrape}"
    base = args.workdir / key
    tsdb, meta_file = base / "tsdb", base / "build.json"
    if not meta_file.exists():
        shutil.rmtree(base, ignore_errors=True)
        tsdb.mkdir(parents=True)
        print(f"generating and backfilling {containers} containers x {args.days} d at {args.scrape} s", flush=True)
        t = time.perf_counter()
        meta = build_tsdb(containers, args.days, args.scrape, tsdb, args.slice_days, pods_per_workload=ppw)
        meta["build_s"] = time.perf_counter() - t
        meta["samples_in_tsdb"] = block_samples(tsdb)
        meta_file.write_text(json.dumps(meta, indent=2))
    meta = json.loads(meta_file.read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    help_run = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, cwd=ROOT, env=env)
    help_s, help_sklearn = help_run.stderr.strip().splitlines()[-1].split()
    work = base / "run"
    shutil.rmtree(work, ignore_errors=True)
    extra = ("--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h")
    if args.max_samples:
        extra += (f"--query.max-samples={args.max_samples}",)
    server = start_prometheus(tsdb, work, extra_args=extra)
    load_before = load()
    try:
        time.sleep(2)
        before, cpu_before = _server_requests(server.url), cpu_seconds(server.pid)
        sampler = RssSampler(server.pid)
        sampler.start()
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), server.url, str(T0), str(T0 + args.days * DAY),
                               str(args.parallel)], capture_output=True, text=True, timeout=3600, env=env)
        wall = time.perf_counter() - t
        sampler.stop_.set()
        sampler.join()
        cpu_after, after = cpu_seconds(server.pid), _server_requests(server.url)
        if proc.returncode != 0:
            raise SystemExit(f"the run failed: {proc.stderr[-3000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    queries = sum(after.get(h, 0) - before.get(h, 0) for h in after if h != "/metrics")
    print(f"\ndataset: {containers} containers ({key}), {meta['samples_in_tsdb']:,} samples in the TSDB; "
          f"load average before {load_before}, after {load()}")
    rows = breakdown(run)
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'step'.ljust(width)} | seconds | note |\n|{'-' * (width + 2)}|--------:|------|")
    for name, sec, note in rows:
        print(f"| {name.ljust(width)} | {sec} | {note} |")
    print(f"\nwall (process start to exit): {wall:.1f} s; Prometheus: {queries:g} HTTP requests, "
          f"{cpu_after - cpu_before:.1f} s CPU, peak RSS {sampler.peak / 1e6:.0f} MB; client CPU "
          f"{run['client_cpu_s']:.1f} s, peak RSS "
          f"{run['peak_rss_mb']:.0f} MB ({run['rss_after_collect_mb']:.0f} MB after collect); usage rows "
          f"{run['usage_rows']:,} at step {run['step']} s; scikit-learn loaded: {run['sklearn_loaded']}")
    print(f"`kubetune --help`: {float(help_s):.2f} s, scikit-learn loaded: {help_sklearn}")
    if args.json:
        print(json.dumps({"wall_s": wall, "queries": queries, "prometheus_cpu_s": cpu_after - cpu_before,
                          "help_s": float(help_s), **run}, indent=1))


if __name__ == "__main__":
    main()
