"""KRR (robusta-dev/krr, ``simple`` strategy, default settings) side by side with kubetune on the SAME TSDB.

The dataset is the one ``end_to_end.py --workloads 200`` builds (``w200-d14-s60``: 200 workloads x 14 d
at 60 s, one pod of app + istio-proxy each). KRR is not on the package index and is not a kubetune
dependency: install it yourself into its own venv (never ``.venv``)::

    # source from github:robusta-dev/krr; dependencies from its requirements.txt, then KRR itself
    python3 -m venv /tmp/krr-venv
    /tmp/krr-venv/bin/pip install -r <(sed 's/ *;.*//' krr/requirements.txt | grep -v pytest)
    /tmp/krr-venv/bin/pip install --no-deps ./krr

    .venv/bin/python benchmarks/krr_side_by_side.py --krr-python /tmp/krr-venv/bin/python --repeat 2

What KRR needs that the TSDB alone does not give, and how it is provided (nothing in the data changes):

* Workload discovery. This KRR version only discovers workloads from the Kubernetes API (there is no
  Prometheus-only mode), so the loopback API server of ``tests/support/kube_api_server.py`` serves the
  Deployments, StatefulSets, DaemonSets and HPAs that the TSDB's kube-state-metrics series describe
  (``kube_pod_owner``, ``kube_replicaset_owner``, ``kube_pod_container_resource_requests/limits``,
  ``kube_horizontalpodautoscaler_*``, read once before the measured runs, cached in ``--workdir``).
  KRR then finds each workload's pods in Prometheus itself, as it does on a real cluster.
* The window. The data lies in the past and KRR has no end-time option: every query of the simple
  strategy (and of its pod discovery) is an *instant* query evaluated at the server's "now". A
  three-line shim in KRR's process adds ``time=<end of the data window>`` to instant queries that do
  not name a time (prometrix ``CustomPrometheusConnect.safe_custom_query``); the queries, their
  number and everything else are KRR's own. KRR's history check (a range query on
  ``prometheus_tsdb_head_series`` up to the wall clock) finds nothing either way (the server scrapes
  nothing) and KRR proceeds as it documents ("will assume it is sufficient").

Measured per run, one after the other (never concurrently; each waits for a 1-minute load average
below ``--max-load``): wall time (process start to exit), HTTP requests Prometheus served (its own
``prometheus_http_requests_total``, ``/metrics`` excluded), Prometheus CPU seconds (/proc), the
client's peak RSS (``wait4`` rusage for KRR; ``end_to_end.py``'s own figure for kubetune), and the load
average before/after. kubetune's numbers come from running ``benchmarks/end_to_end.py --workloads 200
--json`` right after each KRR run. Each KRR run gets a freshly started Prometheus, as end_to_end.py's
runs do. The per-container table compares KRR's CPU/memory request with kubetune's rightsize
recommendation (``recommenders.api.recommend`` on the same window), unmeasured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.end_to_end import cpu_seconds, load  # noqa: E402
from benchmarks.prometheus_collect import DAY, T0, _server_requests  # noqa: E402
from tests.support.kube_api_server import KubeAPIServer, write_kubeconfig  # noqa: E402
from tests.support.prometheus_server import start_prometheus  # noqa: E402

EXTRA = ("--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h")  # as end_to_end.py

# Run inside KRR's venv: pin the evaluation time of instant queries to the end of the data window.
SHIM = r"""
import os, sys
from prometrix.connect.custom_connect import CustomPrometheusConnect
_EVAL_TIME = os.environ["KRR_EVAL_TIME"]
_orig = CustomPrometheusConnect.safe_custom_query
def safe_custom_query(self, query, params=None):
    params = dict(params or {})
    params.setdefault("time", _EVAL_TIME)
    return _orig(self, query, params)
CustomPrometheusConnect.safe_custom_query = safe_custom_query
from robusta_krr.main import run
sys.argv[0] = "krr"
run()
"""

# Run in kubetune's venv (unmeasured): the rightsize recommendations on the same window.
KUBETUNE_RECS = r"""
import json, sys
from datetime import datetime, UTC
sys.path.insert(0, sys.argv[1])
import analyzer.collectors.prometheus as P
import recommenders.api as api
config = P.PrometheusConfig(url=sys.argv[2], timeout=300)
snap = P.collect_prometheus(config, start=datetime.fromtimestamp(float(sys.argv[3]), UTC),
                            end=datetime.fromtimestamp(float(sys.argv[4]), UTC))
frame = api.recommendations_frame(api.recommend(snap, None), include_skipped=True)
print(json.dumps(frame.to_dicts(), default=str))
"""


def query(url: str, q: str, at: float) -> list[dict]:
    import urllib.parse
    import urllib.request
    body = urllib.parse.urlencode({"query": q, "time": f"{at:g}"}).encode()
    with urllib.request.urlopen(url + "/api/v1/query", data=body, timeout=120) as resp:
        return json.loads(resp.read())["data"]["result"]


def quantity(resource: str, value: float) -> tuple[str, str]:
    if resource == "cpu":
        return "cpu", f"{round(value * 1000)}m"
    if resource == "memory":
        return "memory", str(int(value))
    return resource.replace("nvidia_com_gpu", "nvidia.com/gpu"), str(int(value))


def derive_objects(url: str, end: float, days: int) -> dict[str, list[dict]]:
    """Deployments, StatefulSets, DaemonSets and HPAs as the TSDB's kube-state-metrics series describe them."""
    rng = f"{days}d"
    rs_owner = {(m["metric"]["namespace"], m["metric"]["replicaset"]): m["metric"]["owner_name"]
                for m in query(url, f'last_over_time(kube_replicaset_owner{{owner_kind="Deployment"}}[{rng}])', end)}
    workloads: dict[tuple[str, str, str], dict] = {}  # (kind, ns, name) -> {container: {requests, limits}}
    pod_workload: dict[tuple[str, str], tuple[str, str, str]] = {}
    for m in query(url, f"last_over_time(kube_pod_owner[{rng}])", end):
        lab = m["metric"]
        ns, kind, owner = lab["namespace"], lab["owner_kind"], lab["owner_name"]
        if kind == "ReplicaSet":
            kind, owner = "Deployment", rs_owner[(ns, owner)]
        key = (kind, ns, owner)
        workloads.setdefault(key, {})
        pod_workload[(ns, lab["pod"])] = key
    for metric, field in (("kube_pod_container_resource_requests", "requests"),
                          ("kube_pod_container_resource_limits", "limits")):
        for m in query(url, f"last_over_time({metric}[{rng}])", end):
            lab = m["metric"]
            key = pod_workload.get((lab["namespace"], lab["pod"]))
            if key is None:
                continue
            res, qty = quantity(lab["resource"], float(m["value"][1]))
            workloads[key].setdefault(lab["container"], {"requests": {}, "limits": {}})[field][res] = qty
    replicas = {(m["metric"]["namespace"], m["metric"]["deployment"]): int(float(m["value"][1]))
                for m in query(url, f"last_over_time(kube_deployment_spec_replicas[{rng}])", end)}
    out: dict[str, list[dict]] = {"deployments": [], "statefulsets": [], "daemonsets": [],
                                  "horizontalpodautoscalers": [], "namespaces": [], "pods": []}
    resource_of = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
    for (kind, ns, name), containers in sorted(workloads.items()):
        labels = {"app": name}
        spec: dict = {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": c, "image": f"registry.local/{c}:1", "resources": r}
                                    for c, r in sorted(containers.items())]}}}
        if kind == "Deployment":
            spec["replicas"] = replicas.get((ns, name), 1)
        if kind == "StatefulSet":
            spec["serviceName"] = name
            spec["replicas"] = 1
        out[resource_of[kind]].append({"kind": kind, "apiVersion": "apps/v1",
                                       "metadata": {"name": name, "namespace": ns, "labels": labels,
                                                    "uid": f"uid-{kind}-{ns}-{name}"}, "spec": spec})
    hpa: dict[tuple[str, str], dict] = {}
    for m in query(url, f"last_over_time(kube_horizontalpodautoscaler_info[{rng}])", end):
        lab = m["metric"]
        hpa[(lab["namespace"], lab["horizontalpodautoscaler"])] = {
            "target": {"apiVersion": "apps/v1", "kind": lab["scaletargetref_kind"], "name": lab["scaletargetref_name"]},
            "metrics": [], "min": 1, "max": 1}
    for metric, field in (("kube_horizontalpodautoscaler_spec_min_replicas", "min"),
                          ("kube_horizontalpodautoscaler_spec_max_replicas", "max")):
        for m in query(url, f"last_over_time({metric}[{rng}])", end):
            key = (m["metric"]["namespace"], m["metric"]["horizontalpodautoscaler"])
            if key in hpa:
                hpa[key][field] = int(float(m["value"][1]))
    for m in query(url, f"last_over_time(kube_horizontalpodautoscaler_spec_target_metric[{rng}])", end):
        lab = m["metric"]
        key = (lab["namespace"], lab["horizontalpodautoscaler"])
        if key in hpa and lab.get("metric_target_type") == "utilization":
            hpa[key]["metrics"].append({"type": "Resource", "resource": {
                "name": lab["metric_name"], "target": {"type": "Utilization",
                                                       "averageUtilization": int(float(m["value"][1]))}}})
    for (ns, name), h in sorted(hpa.items()):
        out["horizontalpodautoscalers"].append({
            "kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": h["target"], "minReplicas": h["min"], "maxReplicas": h["max"],
                     "metrics": h["metrics"]},
            "status": {"currentReplicas": h["min"], "desiredReplicas": h["min"]}})
    out["namespaces"] = [{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}}
                         for ns in sorted({ns for _, ns, _ in workloads})]
    return out


def wait_quiet(max_load: float, tsdb: Path, timeout: float = 1800) -> None:
    """Until the 1-minute load is below max_load and no other prometheus serves this TSDB."""
    deadline = time.monotonic() + timeout
    while True:
        busy = subprocess.run(["pgrep", "-f", f"storage.tsdb.path={tsdb}"], capture_output=True,
                              text=True, check=False).stdout.split()
        if os.getloadavg()[0] < max_load and not busy:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"machine not quiet after {timeout:.0f} s (load {load()}, prometheus pids {busy})")
        time.sleep(10)


def run_krr(args: argparse.Namespace, tsdb: Path, objects: dict, end: float, index: int) -> dict:
    work = args.workdir / f"krr-run{index}"
    work.mkdir(parents=True, exist_ok=True)
    shim = work / "krr_shim.py"
    shim.write_text(SHIM)
    output = work / "krr.json"
    output.unlink(missing_ok=True)
    wait_quiet(args.max_load, tsdb)
    with KubeAPIServer(objects) as kube:
        kubeconfig = write_kubeconfig(work / "kubeconfig", kube.url)
        server = start_prometheus(tsdb, work / "prometheus", extra_args=EXTRA)
        load_before = load()
        try:
            time.sleep(2)
            before, cpu_before = _server_requests(server.url), cpu_seconds(server.pid)
            cmd = [args.krr_python, str(shim), "simple", "--prometheus-url", server.url, "--kubeconfig",
                   str(kubeconfig), "--formatter", "json", "--fileoutput", str(output)]
            env = {**os.environ, "KRR_EVAL_TIME": f"{end:g}", "HOME": str(work)}
            with open(work / "krr.stdout", "wb") as so, open(work / "krr.stderr", "wb") as se:
                t = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=so, stderr=se, stdin=subprocess.DEVNULL, env=env, cwd=work)
                _, status, rusage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - t
                proc.returncode = os.waitstatus_to_exitcode(status)
            cpu_after, after = cpu_seconds(server.pid), _server_requests(server.url)
        finally:
            server.stop()
        kube_requests = len(kube.seen)
    if proc.returncode != 0 or not output.exists():
        raise SystemExit(f"KRR failed ({proc.returncode}): {(work / 'krr.stderr').read_text()[-3000:]}")
    per_handler = {h: after.get(h, 0) - before.get(h, 0) for h in after if h != "/metrics"}
    result = json.loads(output.read_text())
    scans = result.get("scans", [])
    defined = [s for s in scans
               if all(isinstance(s["recommended"]["requests"].get(r, {}).get("value"), (int, float))
                      for r in ("cpu", "memory"))]
    return {"tool": "KRR simple", "wall_s": wall, "queries": sum(per_handler.values()),
            "per_handler": {h: n for h, n in per_handler.items() if n},
            "prometheus_cpu_s": cpu_after - cpu_before, "peak_rss_mb": rusage.ru_maxrss / 1024,
            "client_cpu_s": rusage.ru_utime + rusage.ru_stime, "load_before": load_before, "load_after": load(),
            "kube_api_requests": kube_requests, "scans": len(scans), "scans_cpu_and_memory": len(defined),
            "output": str(output)}


def run_kubetune(args: argparse.Namespace, tsdb: Path) -> dict:
    wait_quiet(args.max_load, tsdb)
    before = load()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "end_to_end.py"), "--workloads", "200",
                           "--json"], capture_output=True, text=True, cwd=ROOT, timeout=3600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"end_to_end.py failed: {proc.stderr[-3000:]}")
    text = proc.stdout
    run = json.loads(text[text.index("\n{", text.rindex("`kubetune --help`")) + 1:])
    loads = re.search(r"load average before ([\d. ]+), after ([\d. ]+)", text)
    return {"tool": "kubetune", "wall_s": run["wall_s"], "queries": run["queries"],
            "prometheus_cpu_s": run["prometheus_cpu_s"], "peak_rss_mb": run["peak_rss_mb"],
            "client_cpu_s": run["client_cpu_s"], "load_before": loads.group(1) if loads else before,
            "load_after": loads.group(2) if loads else load(), "recommendations": run["recommendations"],
            "skipped": run["skipped"], "containers": run["containers"]}


def per_container(args: argparse.Namespace, tsdb: Path, krr_output: Path, end: float, days: int, n: int) -> None:
    """KRR's request next to kubetune's (recommendations_frame, skips included) for a few containers (unmeasured)."""
    server = start_prometheus(tsdb, args.workdir / "compare-prometheus", extra_args=EXTRA)
    try:
        proc = subprocess.run([sys.executable, "-c", KUBETUNE_RECS, str(ROOT), server.url, str(end - days * DAY),
                               str(end)], capture_output=True, text=True, timeout=3600, check=False)
    finally:
        server.stop()
    if proc.returncode != 0:
        print(f"(per-container comparison skipped: kubetune failed: {proc.stderr[-1500:]})")
        return
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    (args.workdir / "kubetune_recommendations.json").write_text(json.dumps(rows, indent=1))
    kt: dict[tuple, dict] = {}
    for r in rows:
        kt.setdefault((r.get("namespace"), r.get("workload"), r.get("container"), r.get("resource")), r)
    scans = sorted(json.loads(krr_output.read_text())["scans"],
                   key=lambda s: (s["object"]["kind"], s["object"]["name"], s["object"]["container"]))
    picked = [scans[min(len(scans) - 1, i * len(scans) // n + i % 2)] for i in range(min(n, len(scans)))]

    def fmt(resource: str, v) -> str:
        if not isinstance(v, (int, float)):
            return str(v)
        return f"{v * 1000:.0f}m" if resource == "cpu" else f"{v / 2**20:.0f}Mi"

    print(f"\nper container ({len(picked)} of {len(scans)}, evenly spaced in kind/name order, app and istio-proxy "
          f"alternating; current = the spec served to KRR; kubetune = recommendations_frame, skips included, "
          f"all rows in "
          f"{args.workdir / 'kubetune_recommendations.json'}):")
    print("| workload | container | resource | current request | KRR request (info) | kubetune proposed "
          "| kubetune row |")
    print("|---|---|---|--:|--:|--:|---|")
    for s in picked:
        o = s["object"]
        for res in ("cpu", "memory"):
            krr_v = s["recommended"]["requests"][res]["value"]
            info = s["recommended"].get("info", {}).get(res)
            r = kt.get((o["namespace"], o["name"], o["container"], res), {})
            note = f"{r.get('kind')}, {r.get('reason')}" if r else "no row"
            print(f"| {o['namespace']}/{o['kind']}/{o['name']} | {o['container']} | {res} | "
                  f"{fmt(res, o['allocations']['requests'].get(res))} | "
                  f"{fmt(res, krr_v)}{f' ({info})' if info else ''} | "
                  f"{fmt(res, r.get('proposed_request')) if r else '-'} | {str(note)[:80]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--krr-python", default="/tmp/krr-venv/bin/python", help="python of the venv KRR is installed in")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--no-kubetune", action="store_true", help="KRR only")
    ap.add_argument("--compare", type=int, default=8, help="containers in the per-container table (0: none)")
    ap.add_argument("--tsdb", type=Path,
                    default=Path(tempfile.gettempdir()) / "kubetune-bench-prometheus" / "w200-d14-s60" / "tsdb")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "krr-side-by-side")
    args = ap.parse_args()
    if not args.tsdb.exists():
        print(f"skipped: {args.tsdb} missing (run benchmarks/end_to_end.py --workloads 200 first)")
        return
    if not Path(args.krr_python).exists() or subprocess.run(
            [args.krr_python, "-c", "import robusta_krr, prometrix"], capture_output=True, check=False).returncode:
        print(f"skipped: KRR is not installed for {args.krr_python} (see the docstring: --help)")
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    end = float(T0 + args.days * DAY)
    objects_file = args.workdir / "kube_objects.json"
    if not objects_file.exists():
        wait_quiet(args.max_load * 10, args.tsdb)
        server = start_prometheus(args.tsdb, args.workdir / "derive-prometheus", extra_args=EXTRA)
        try:
            objects_file.write_text(json.dumps(derive_objects(server.url, end, args.days)))
        finally:
            server.stop()
    objects = json.loads(objects_file.read_text())
    print("kubernetes objects served to KRR: " + ", ".join(f"{len(v)} {k}" for k, v in objects.items() if v))
    version = subprocess.run([args.krr_python, "-c", "import importlib.metadata as m; print(m.version('robusta_krr'))"],
                             capture_output=True, text=True, check=False).stdout.strip()
    rows = []
    for i in range(args.repeat):
        rows.append(run_krr(args, args.tsdb, objects, end, i))
        print(json.dumps(rows[-1]), flush=True)
        if not args.no_kubetune:
            rows.append(run_kubetune(args, args.tsdb))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nKRR {version} (simple, defaults) vs kubetune on {args.tsdb.parent.name}; window ends {end:.0f}")
    print("| tool | wall s | Prometheus HTTP requests | Prometheus CPU s | client peak RSS MB | client CPU s "
          "| load before | load after | output |")
    print("|---|--:|--:|--:|--:|--:|---|---|---|")
    for r in rows:
        what = (f"{r['scans']} container scans, {r['scans_cpu_and_memory']} with CPU and memory requests"
                if r["tool"].startswith("KRR") else
                f"{r['recommendations']} recommendations, {r['skipped']} skipped, {r['containers']} containers")
        print(f"| {r['tool']} | {r['wall_s']:.1f} | {r['queries']:g} | {r['prometheus_cpu_s']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {r['client_cpu_s']:.1f} | {r['load_before']} | {r['load_after']} | {what} |")
    if args.compare:
        krr_run = next(r for r in rows if r["tool"].startswith("KRR"))
        wait_quiet(args.max_load * 10, args.tsdb)
        per_container(args, args.tsdb, Path(krr_run["output"]), end, args.days, args.compare)


if __name__ == "__main__":
    main()
