"""Kubernetes API collector at scale (issue 4): 10,000 pods with their owners and 500 nodes.

Generates a cluster as genuine API objects (pods with status, managedFields, probes, env and
volume mounts, so a pod is ~5 KB of JSON as on a real server): 500 nodes (Karpenter
on-demand/spot, GPU), Deployments with their ReplicaSets (some with an istio sidecar), an
Argo Rollout, StatefulSets, CronJobs with their Jobs, two DaemonSets on every node, HPAs and
PDBs. The loopback API server (``tests/support/kube_api_server.py``) serves them from a child process,
paged at 500 per request, and ``collect_kubernetes`` reads and resolves everything through the
real ``kubernetes`` client. Reported: wall time split into HTTP+JSON and frame building,
requests, the collecting process's peak RSS, and the same pod list read through the client's model classes
(``_preload_content=True``) for comparison. Checks: every pod and container present, every
pod's owner chain resolved to its top controller, nodes and their capacity types.

    .venv/bin/python benchmarks/kubernetes_collect.py            # the full benchmark
    .venv/bin/python benchmarks/kubernetes_collect.py --pods 2000 --nodes 100   # a quick one
    .venv/bin/python benchmarks/kubernetes_collect.py --source sim    # the simulator's objects, ~10,000 pods
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.kube_api_server import start_process_from, write_kubeconfig
from tests.support.kube_fixtures import meta

T0 = "2026-11-01T00:00:00Z"
TARGET_SECONDS = 20.0


def _meta(name, ns=None, labels=None, owner=None, annotations=None, uid=0):
    """The test fixtures' metadata plus what real API objects carry beyond it (numeric uids,
    generation, managedFields), so the benchmark parses objects of realistic size."""
    m = meta(name, ns, labels, annotations, owner, created=T0)
    m.update(uid=f"5f1c{uid:08x}-aaaa-bbbb-cccc-{uid:012x}", resourceVersion=str(100000 + uid), generation=1)
    if owner:
        m["ownerReferences"][0]["uid"] = f"owner-{owner[2]}"
    m["managedFields"] = [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                           "time": T0, "fieldsType": "FieldsV1", "fieldsV1": {
                               "f:metadata": {"f:labels": {".": {}, **{f"f:{k}": {} for k in (labels or {})}}},
                               "f:spec": {"f:containers": {}, "f:dnsPolicy": {}, "f:restartPolicy": {}}}},
                          {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": T0,
                           "fieldsType": "FieldsV1", "subresource": "status",
                           "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:phase": {}}}}]
    return m


def _container(name, cpu, mem, cpu_lim=None, mem_lim=None, **extra):
    res = {"requests": {"cpu": cpu, "memory": mem}}
    lim = {k: v for k, v in (("cpu", cpu_lim), ("memory", mem_lim)) if v}
    if lim:
        res["limits"] = lim
    c = {"name": name, "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1.42.7", "resources": res,
         "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File",
         "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
         "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "OTEL_EXPORTER_OTLP_ENDPOINT",
                                                            "value": "http://otel-collector.monitoring:4317"},
                 {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                            "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
         "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                           "readOnly": True}]}
    c.update(extra)
    return c


def _status(names, node_ip, restarts=0, oom=False):
    st = []
    for n in names:
        s = {"name": n, "ready": True, "restartCount": restarts, "started": True,
             "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{n}:v1.42.7",
             "imageID": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{n}@sha256:{'ab' * 32}",
             "containerID": f"containerd://{'cd' * 32}", "state": {"running": {"startedAt": T0}}, "lastState": {}}
        if oom:
            s["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": T0,
                                             "finishedAt": "2026-11-20T10:00:00Z", "containerID": "containerd://x"}}
        st.append(s)
    return {"phase": "Running", "hostIP": node_ip, "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
            "startTime": T0, "qosClass": "Burstable", "containerStatuses": st, "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": T0}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]}


def generate(pods: int, nodes: int, seed: int = 4) -> tuple[dict[str, list[dict]], dict]:
    """The cluster as ``{resource: [items]}`` and the truth the check needs."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {r: [] for r in ("pods", "nodes", "namespaces", "replicasets", "deployments",
                                                 "statefulsets", "daemonsets", "jobs", "cronjobs",
                                                 "horizontalpodautoscalers", "poddisruptionbudgets", "rollouts")}
    truth: dict[str, tuple[str, str]] = {}
    uid = iter(range(1, 10**9))
    node_names = []
    for i in range(nodes):
        spot = i % 3 == 0
        gpu = i % 50 == 0
        name = f"ip-10-{i // 250}-{i % 250}-17.ec2.internal"
        node_names.append(name)
        labels = {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
                  "node.kubernetes.io/instance-type": "g5.xlarge" if gpu else "m5.2xlarge",
                  "topology.kubernetes.io/region": "us-east-1", "topology.kubernetes.io/zone": f"us-east-1{'abc'[i % 3]}",
                  "karpenter.sh/nodepool": "spot" if spot else "general",
                  "karpenter.sh/capacity-type": "spot" if spot else "on-demand"}
        if gpu:
            labels.update({"nvidia.com/gpu.product": "NVIDIA-A10G", "nvidia.com/gpu.count": "1",
                           "nvidia.com/gpu.memory": "22888"})
        out["nodes"].append({"metadata": _meta(name, labels=labels, uid=next(uid)),
                             "spec": {"providerID": f"aws:///us-east-1a/i-{i:017x}"},
                             "status": {"capacity": {"cpu": "8", "memory": "32408312Ki", "pods": "58"},
                                        "allocatable": {"cpu": "7910m", "memory": "31390456Ki", "pods": "58"},
                                        "nodeInfo": {"kubeletVersion": "v1.33.1", "containerRuntimeVersion": "containerd://2.0.5"}}})
    namespaces = [f"team-{k:02d}" for k in range(40)]
    for ns in namespaces + ["monitoring"]:
        out["namespaces"].append({"metadata": _meta(ns, labels={"kubernetes.io/metadata.name": ns, "team": ns,
                                                               "cost-center": f"cc-{hash(ns) % 9000 + 1000}"},
                                                    uid=next(uid)), "spec": {"finalizers": ["kubernetes"]}})

    def add_pod(ns, name, spec, labels, owner, top, restarts=0, oom=False, node=None):
        node = node or node_names[int(rng.integers(len(node_names)))]
        p = {"metadata": _meta(name, ns, labels, owner, uid=next(uid)), "spec": {**spec, "nodeName": node},
             "status": _status([c["name"] for c in spec["containers"]], "10.1.2.3", restarts, oom)}
        out["pods"].append(p)
        truth[f"{ns}/{name}"] = top

    # Two DaemonSets on every node.
    for ds in ("node-exporter", "fluent-bit"):
        spec = {"containers": [_container(ds, "100m", "128Mi", None, "256Mi")], "tolerations": [{"operator": "Exists"}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": ds}
        out["daemonsets"].append({"metadata": _meta(ds, "monitoring", {"app": ds}, uid=next(uid)),
                                  "spec": {"selector": {"matchLabels": {"app": ds}},
                                           "template": {"metadata": {"labels": {"app": ds}}, "spec": spec},
                                           "updateStrategy": {"type": "RollingUpdate",
                                                              "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
                                  "status": {"desiredNumberScheduled": nodes}})
        for n in node_names:
            add_pod("monitoring", f"{ds}-{next(uid):05x}", spec, {"app": ds}, ("apps/v1", "DaemonSet", ds),
                    ("DaemonSet", ds), node=n)
    k = 0
    while len(out["pods"]) < pods:
        ns = namespaces[k % len(namespaces)]
        kind = ("Deployment", "Deployment", "Deployment", "Deployment", "StatefulSet", "CronJob", "Rollout")[k % 7]
        name = f"svc-{k:04d}"
        left = pods - len(out["pods"])
        replicas = min(left, int(rng.integers(2, 9)))
        sidecar = k % 3 == 0
        containers = [_container("app", f"{int(rng.choice([100, 250, 500, 1000]))}m",
                                 f"{int(rng.choice([256, 512, 1024]))}Mi", None, "2Gi")]
        spec = {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default", "volumes": [{"name": "kube-api-access", "projected": {
                    "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]}
        if sidecar:
            spec["initContainers"] = [_container("istio-proxy", "100m", "128Mi", "2", "1Gi", restartPolicy="Always")]
        labels = {"app": name, "team": ns}
        tmpl = {"metadata": {"labels": {"app": name}}, "spec": spec}
        if kind in ("Deployment", "Rollout"):
            group = "apps/v1" if kind == "Deployment" else "argoproj.io/v1alpha1"
            obj = {"metadata": _meta(name, ns, labels, uid=next(uid)),
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": tmpl}}
            out["deployments" if kind == "Deployment" else "rollouts"].append(obj)
            h = f"{next(uid):010x}"[-10:]
            rs = f"{name}-{h}"
            hash_label = "pod-template-hash" if kind == "Deployment" else "rollouts-pod-template-hash"
            out["replicasets"].append({"metadata": _meta(rs, ns, {"app": name, hash_label: h}, (group, kind, name),
                                                         uid=next(uid)),
                                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                                "template": tmpl}})
            for r in range(replicas):
                add_pod(ns, f"{rs}-{next(uid):05x}", spec, {"app": name, hash_label: h},
                        ("apps/v1", "ReplicaSet", rs), (kind, name), restarts=int(r == 0 and k % 11 == 0),
                        oom=r == 0 and k % 11 == 0)
            if k % 2 == 0:
                out["horizontalpodautoscalers"].append({"metadata": _meta(name, ns, uid=next(uid)), "spec": {
                    "scaleTargetRef": {"apiVersion": group, "kind": kind, "name": name}, "minReplicas": replicas,
                    "maxReplicas": replicas * 3, "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}})
            if k % 4 == 0:
                out["poddisruptionbudgets"].append({"metadata": _meta(f"{name}-pdb", ns, uid=next(uid)), "spec": {
                    "minAvailable": 1, "selector": {"matchLabels": {"app": name}}}})
        elif kind == "StatefulSet":
            out["statefulsets"].append({"metadata": _meta(name, ns, labels, uid=next(uid)), "spec": {
                "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                "template": tmpl}})
            for r in range(replicas):
                add_pod(ns, f"{name}-{r}", spec, {"app": name}, ("apps/v1", "StatefulSet", name), ("StatefulSet", name))
        else:
            out["cronjobs"].append({"metadata": _meta(name, ns, labels, uid=next(uid)), "spec": {
                "schedule": "0 * * * *", "jobTemplate": {"spec": {"template": tmpl}}}})
            for r in range(replicas):  # one Job (and pod) per recent run
                job = f"{name}-{29_400_000 + r * 60}"
                out["jobs"].append({"metadata": _meta(job, ns, {"app": name}, ("batch/v1", "CronJob", name),
                                                      uid=next(uid)), "spec": {"template": tmpl}})
                add_pod(ns, f"{job}-{next(uid):05x}", spec, {"app": name, "job-name": job},
                        ("batch/v1", "Job", job), ("CronJob", name))
        k += 1
    size = sum(len(json.dumps(it, separators=(",", ":"))) for it in out["pods"])
    return out, {"owners": truth, "workloads": k, "pod_bytes": size}


def simulated(workloads: int, seed: int = 1) -> tuple[dict, dict]:
    """The simulator's cluster as API lists (``kube_lists``) and the truth the check needs."""
    import polars as pl

    from analyzer.simulator import simulate
    from analyzer.simulator.kube_objects import kube_lists

    snap = simulate(workloads=workloads, days=0.25, step_seconds=300, seed=seed)
    lists = kube_lists(snap)
    listed = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in lists["pods"]["items"]}
    c = snap.containers.with_columns(pl.col("namespace", "pod", "workload_kind", "workload").cast(pl.String))
    owners = {f"{r[0]}/{r[1]}": (r[2], r[3]) for r in c.select("namespace", "pod", "workload_kind", "workload")
              .unique().iter_rows() if (r[0], r[1]) in listed}
    nodes = lists["nodes"]["items"]
    spot = sum(1 for n in nodes if n["metadata"]["labels"].get("karpenter.sh/capacity-type") == "spot")
    size = sum(len(json.dumps(it, separators=(",", ":"))) for it in lists["pods"]["items"])
    return lists, {"owners": owners, "workloads": snap.workloads.height, "pod_bytes": size, "pods": len(listed),
                   "nodes": len(nodes), "spot": spot}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-models", action="store_true", help="skip the model-class comparison")
    ap.add_argument("--source", choices=("generated", "sim"), default="generated",
                    help="generated: exactly --pods/--nodes; sim: the simulator's kube_lists of --workloads "
                         "(its packing decides the node count), checked against its ground truth")
    ap.add_argument("--workloads", type=int, default=2800)
    args = ap.parse_args()

    t = time.perf_counter()
    if args.source == "sim":
        url, proc, truth = start_process_from(simulated, args.workloads)
        args.pods, args.nodes = truth["pods"], truth["nodes"]
    else:
        url, proc, truth = start_process_from(generate, args.pods, args.nodes)  # built and served by the child
        truth["spot"] = len(range(0, args.nodes, 3))
    print(f"{args.source}: {args.pods:,} pods ({truth['pod_bytes'] / 1e6:.1f} MB JSON), {args.nodes} nodes, "
          f"{truth['workloads']:,} workloads in {time.perf_counter() - t:.1f} s (server process)")
    try:
        from analyzer.collectors import kube_api
        from analyzer.collectors.kubernetes import KubeConfig, collect_kubernetes

        kc = write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", url)
        config = KubeConfig(kubeconfig=kc, page_size=args.page)
        results = []
        for run in range(args.runs):
            phases: dict[str, float] = {"http+json": 0.0}
            original = kube_api.KubeAPI._request

            def timed(self, path, call, _orig=original, _p=phases):
                t0 = time.perf_counter()
                try:
                    return _orig(self, path, call)
                finally:
                    _p["http+json"] += time.perf_counter() - t0

            kube_api.KubeAPI._request = timed
            api = kube_api.KubeAPI(config)
            t0 = time.perf_counter()
            snap = collect_kubernetes(config, api=api)
            wall = time.perf_counter() - t0
            kube_api.KubeAPI._request = original
            results.append({"wall": wall, "http+json": phases["http+json"], "requests": api.requests})
            api.close()
            print(f"run {run + 1}: {wall:.2f} s wall ({phases['http+json']:.2f} s in HTTP + JSON parsing, "
                  f"{wall - phases['http+json']:.2f} s turning objects into frames), {api.requests} requests")
        check(snap, truth, args)
        rss = _rss_mb()  # before the model-class comparison, which needs far more
        models = None if args.no_models else compare_models(config)
        best = min(r["wall"] for r in results)
        summary = {
            "source": args.source, "pods": args.pods, "nodes": args.nodes, "page": args.page,
            "runs": [round(r["wall"], 2) for r in results],
            "best_s": round(best, 2), "requests": results[-1]["requests"], "client_peak_rss_mb": round(rss),
            "containers": snap.containers.height, "workloads": snap.workloads.height,
            "models_vs_raw": models, "target_s": TARGET_SECONDS, "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(),
            "json": "orjson" if "orjson" in sys.modules else "json",
        }
        print(json.dumps(summary, indent=2))
        if best >= TARGET_SECONDS:
            sys.exit(f"too slow: {best:.1f} s >= {TARGET_SECONDS} s")
    finally:
        proc.terminate()
        proc.join(5)


def check(snap, truth, args) -> None:
    """Every pod present once and placed in its top controller; nodes and capacity types right."""
    pods = snap.containers.unique(["namespace", "pod"])
    assert pods.height == args.pods, (pods.height, args.pods)
    got = {f"{r[0]}/{r[1]}": (r[2], r[3]) for r in pods.select(
        "namespace", "pod", "workload_kind", "workload").cast({"namespace": str, "pod": str,
                                                                "workload_kind": str, "workload": str}).iter_rows()}
    wrong = [k for k, v in truth["owners"].items() if got.get(k) != v]
    assert not wrong, f"{len(wrong)} pods resolved wrongly, e.g. {wrong[:3]}"
    assert snap.nodes.height == args.nodes
    spot = snap.nodes.filter(snap.nodes["capacity_type"].cast(str) == "spot").height
    assert spot == truth["spot"], (spot, truth["spot"])
    assert snap.events.filter(snap.events["reason"] == "OOMKilled").height > 0
    assert snap.workloads.filter(snap.workloads["hpa_name"].is_not_null()).height > 0
    print(f"check: {pods.height:,} pods, {snap.containers.height:,} containers, {snap.workloads.height:,} "
          f"workloads, {snap.nodes.height} nodes ({spot} spot): every owner chain resolved")


def compare_models(config) -> dict:
    """The pod list read through the client's model classes vs raw JSON (same pages)."""
    from kubernetes import client as k8s

    from analyzer.collectors.kube_api import connect
    from analyzer.manifests import loads

    conn = connect(config)
    core = k8s.CoreV1Api(conn.api_client)
    timings = {}
    for mode in ("raw", "models"):
        t0 = time.perf_counter()
        token, n = None, 0
        while True:
            kw = {"limit": config.page_size, **({"_continue": token} if token else {})}
            if mode == "raw":
                resp = core.list_pod_for_all_namespaces(_preload_content=False, **kw)
                page = loads(resp.data)
                items, token = page["items"], page["metadata"].get("continue")
            else:
                page = core.list_pod_for_all_namespaces(**kw)
                items, token = page.items, page.metadata._continue
            n += len(items)
            if not token:
                break
        timings[mode] = round(time.perf_counter() - t0, 2)
    conn.api_client.close()
    print(f"pods only: raw JSON {timings['raw']} s, client model classes {timings['models']} s "
          f"({timings['models'] / max(timings['raw'], 1e-9):.1f}x)")
    return timings


if __name__ == "__main__":
    main()
