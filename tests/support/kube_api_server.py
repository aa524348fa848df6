"""A loopback stand-in for kube-apiserver that speaks the genuine list protocol, for tests.

It serves ``GET /version``, discovery (``/api``, ``/apis``), and the list paths of every kind
the collector reads, cluster-wide and namespaced (``/api/v1/pods``,
``/apis/apps/v1/namespaces/shop/deployments``, ``/apis/argoproj.io/v1alpha1/rollouts``), plus
``GET /api/v1/namespaces/NAME``. Lists are ``*List`` objects with ``metadata.resourceVersion``
and are paged as the real server pages them: ``limit`` caps the items, ``metadata.continue``
is an opaque token that carries the list's resourceVersion and the next offset, and
``remainingItemCount`` counts what is left. As on the wire, items of built-in lists carry no
``kind``/``apiVersion`` (Argo Rollouts, a custom resource, do). Items are encoded once, at load, so a page of 500
pods is a join of bytes (the benchmark serves 10,000 pods this way).

Faults are switched on per resource (``pods``, ``poddisruptionbudgets``, ...):
``forbid`` (403 with the real RBAC message), ``missing`` (404, e.g. a CRD that is not
installed), ``gone`` (410 Expired on the next N continue requests), ``fail`` (500 on the next
N requests), ``stall`` (sleep before answering), ``garbage`` (a body that is not JSON). With
``token`` set, a request without ``Authorization: Bearer <token>`` gets 401. Every request is
recorded (method, path, query) so tests can assert the client only ever read.

Use it in-process (``with KubeAPIServer(lists) as srv: srv.url``) or, for benchmarks, in a
child process (``start_process``) so it does not share the client's GIL.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# resource -> (group, version, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pods": ("", "v1", "Pod", True),
    "nodes": ("", "v1", "Node", False),
    "namespaces": ("", "v1", "Namespace", False),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "deployments": ("apps", "v1", "Deployment", True),
    "statefulsets": ("apps", "v1", "StatefulSet", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "jobs": ("batch", "v1", "Job", True),
    "cronjobs": ("batch", "v1", "CronJob", True),
    "horizontalpodautoscalers": ("autoscaling", "v2", "HorizontalPodAutoscaler", True),
    "poddisruptionbudgets": ("policy", "v1", "PodDisruptionBudget", True),
    "rollouts": ("argoproj.io", "v1alpha1", "Rollout", True),
}
VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "loopback", "gitTreeState": "clean",
           "buildDate": "2026-05-15T00:00:00Z", "goVersion": "go1.24.3", "compiler": "gc", "platform": "linux/amd64"}


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def items_by_resource(objects: Mapping[str, Any] | Iterable[dict]) -> dict[str, list[dict]]:
    """Accept ``{resource: *List or [items]}`` (e.g. ``kube_lists(snapshot)``) or a flat list of objects."""
    out: dict[str, list[dict]] = {r: [] for r in RESOURCES}
    kind_to_resource = {v[2]: r for r, v in RESOURCES.items()}
    if isinstance(objects, Mapping):
        for resource, value in objects.items():
            items = value.get("items", []) if isinstance(value, dict) else list(value)
            out.setdefault(resource, []).extend(items)
    else:
        for obj in objects:
            out[kind_to_resource[obj["kind"]]].append(obj)
    return out


@dataclass
class Faults:
    forbid: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=lambda: set())
    gone: dict[str, int] = field(default_factory=dict)  # resource -> 410s left on continue requests
    fail: dict[str, int] = field(default_factory=dict)  # resource -> 500s left
    stall: dict[str, float] = field(default_factory=dict)  # resource -> seconds
    garbage: set[str] = field(default_factory=set)
    token: str | None = None
    versions: dict[str, str] = field(default_factory=dict)  # resource -> the only version served (old clusters)
    version_status: int | None = None  # answer GET /version with this status (403, 404)


class _Store:
    def __init__(self, objects: Mapping[str, Any] | Iterable[dict]):
        self.items = items_by_resource(objects)
        self.encoded: dict[str, list[bytes]] = {}
        self.namespaces: dict[str, list[str | None]] = {}
        for r, items in self.items.items():
            builtin = RESOURCES.get(r, ("x",))[0] != "argoproj.io"
            # Built-in lists carry no kind/apiVersion per item on the wire (kubernetes#3030, #63676);
            # custom resources do. kubectl adds them when it prints a List.
            drop = ("kind", "apiVersion") if builtin else ()
            self.encoded[r] = [json.dumps({k: v for k, v in it.items() if k not in drop},
                                          separators=(",", ":")).encode() for it in items]
            self.namespaces[r] = [(it.get("metadata") or {}).get("namespace") for it in items]
        self.resource_version = 1000 + sum(len(v) for v in self.items.values())


class KubeAPIServer:
    """The loopback API server. ``lists`` maps resource to a ``*List`` (or items)."""

    def __init__(self, objects: Mapping[str, Any] | Iterable[dict], faults: Faults | None = None):
        self.store = _Store(objects)
        self.faults = faults or Faults()
        self.seen: list[tuple[str, str, dict[str, list[str]]]] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> KubeAPIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as Go's net/http does; else keep-alive pages wait 40 ms for an ACK

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def _other(self) -> None:
                server._handle(self, self.command)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _other

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw ------------------------------------------------------------------------

    def methods(self) -> set[str]:
        return {m for m, _, _ in self.seen}

    def requests_for(self, resource: str) -> list[dict[str, list[str]]]:
        return [q for _, p, q in self.seen if p.rstrip("/").endswith("/" + resource)]

    # -- answering --------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, code: int, body: bytes | dict, ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Audit-Id", "loopback")
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stall test)
            pass

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        with self.lock:
            self.seen.append((method, url.path, query))
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        if method != "GET":
            self._send(h, 405, status(405, "MethodNotAllowed", f"the loopback server is read-only ({method})"))
            return
        f = self.faults
        if f.token is not None and h.headers.get("Authorization") != f"Bearer {f.token}":
            self._send(h, 401, status(401, "Unauthorized", "Unauthorized"))
            return
        path = url.path.rstrip("/")
        if path == "/version":
            code = f.version_status
            self._send(h, code or 200, status(code, "Failure", "forbidden or not found") if code else VERSION)
            return
        if path == "/api":
            self._send(h, 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            return
        if path == "/apis":
            groups = sorted({(g, v) for g, v, _, _ in RESOURCES.values() if g})
            self._send(h, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]})
            return
        route = self._route(path)
        if route is None:
            self._send(h, 404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        resource, namespace, name = route
        group = RESOURCES[resource][0]
        if resource in f.stall:
            time.sleep(f.stall[resource])
        if resource in f.missing:
            self._send(h, 404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        if resource in f.forbid:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            verb = "get" if name else "list"
            self._send(h, 403, status(403, "Forbidden", (
                f'{resource}{"." + group if group else ""} is forbidden: '
                f'User "system:serviceaccount:kubetune:kubetune" '
                f'cannot {verb} resource "{resource}" in API group "{group}" {scope}')))
            return
        with self.lock:
            if f.fail.get(resource, 0) > 0:
                f.fail[resource] -= 1
                self._send(h, 500, status(500, "InternalError", "etcdserver: request timed out"))
                return
        if resource in f.garbage:
            self._send(h, 200, b"<html>502 Bad Gateway</html>", "text/html")
            return
        if name is not None:
            self._get_one(h, resource, name)
            return
        self._list(h, resource, namespace, query)

    def _route(self, path: str) -> tuple[str, str | None, str | None] | None:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            rest, group, version = parts[2:], "", "v1"
        elif parts and parts[0] == "apis" and len(parts) >= 3:
            rest, group, version = parts[3:], parts[1], parts[2]
        else:
            return None
        namespace = name = None
        if len(rest) == 3 and rest[0] == "namespaces":
            namespace, resource = rest[1], rest[2]
        elif len(rest) == 2 and rest[0] == "namespaces" and group == "":
            resource, name = "namespaces", rest[1]
        elif len(rest) == 1:
            resource = rest[0]
        else:
            return None
        spec = RESOURCES.get(resource)
        if spec is None or spec[0] != group or self.faults.versions.get(resource, spec[1]) != version:
            return None
        if namespace is not None and not spec[3]:
            return None
        return resource, namespace, name

    def _get_one(self, h: BaseHTTPRequestHandler, resource: str, name: str) -> None:
        for it in self.store.items[resource]:
            if it["metadata"]["name"] == name:
                g, v, kind, _ = RESOURCES[resource]
                self._send(h, 200, {"apiVersion": f"{g}/{v}" if g else v, "kind": kind, **it})
                return
        self._send(h, 404, status(404, "NotFound", f'{resource} "{name}" not found'))

    def _list(self, h: BaseHTTPRequestHandler, resource: str, namespace: str | None, query: dict) -> None:
        store, f = self.store, self.faults
        limit = int(query.get("limit", ["0"])[0] or 0)
        token = query.get("continue", [None])[0]
        start, rv = 0, store.resource_version
        if token:
            with self.lock:
                expire = f.gone.get(resource, 0) > 0
                if expire:
                    f.gone[resource] -= 1
            if expire:
                self._send(h, 410, status(410, "Expired", (
                    "The provided continue parameter is too old to display a consistent list result. You can start "
                    "a new list without the continue parameter, or use the continue token in this response to "
                    "retrieve the remainder of the results.")))
                return
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, rv = int(state["start"]), int(state["rv"])
            except (ValueError, KeyError, TypeError):
                self._send(h, 400, status(400, "BadRequest", "continue key is not valid"))
                return
        encoded = store.encoded[resource]
        if namespace is not None:
            idx = [i for i, ns in enumerate(store.namespaces[resource]) if ns == namespace]
        else:
            idx = range(len(encoded))
        end = len(idx) if limit <= 0 else min(len(idx), start + limit)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if end < len(idx):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": end, "rv": rv}).encode()).decode()
            meta["remainingItemCount"] = len(idx) - end
        g, v, kind, _ = RESOURCES[resource]
        head = json.dumps({"kind": f"{kind}List", "apiVersion": f"{g}/{v}" if g else v, "metadata": meta})
        body = head[:-1].encode() + b',"items":[' + b",".join(encoded[i] for i in idx[start:end]) + b"]}"
        self._send(h, 200, body)


# ---------------------------------------------------------------------------------------------
# Client side helpers


def write_kubeconfig(path: Path, url: str, token: str = "loopback-token", context: str = "loopback",
                     cluster: str = "loopback-cluster", extra_contexts: Iterable[str] = ()) -> Path:
    """A kubeconfig pointing at ``url`` with a bearer token (as a user's would, minus TLS)."""
    contexts = [{"name": context, "context": {"cluster": cluster, "user": "kubetune", "namespace": "default"}}]
    contexts += [{"name": c, "context": {"cluster": cluster, "user": "kubetune"}} for c in extra_contexts]
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": url}}],
        "users": [{"name": "kubetune", "user": {"token": token}}],
        "contexts": contexts,
    }
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    return path


def _serve(objects: Any, faults: Faults | None, port_queue: Any, factory: Any = None,
           args: tuple = ()) -> None:  # pragma: no cover - child process
    extra = None
    if factory is not None:
        objects, extra = factory(*args)
    srv = KubeAPIServer(objects, faults).start()
    del objects
    port_queue.put((srv.url, extra))
    threading.Event().wait()


def start_process(objects: Any, faults: Faults | None = None) -> tuple[str, multiprocessing.Process]:
    """Serve from a child process (its own GIL); returns (url, process). Stop with ``process.terminate()``."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(objects, faults, q), daemon=True)
    proc.start()
    url, _ = q.get(timeout=60)
    return url, proc


def start_process_from(factory: Any, *args: Any,
                       faults: Faults | None = None) -> tuple[str, multiprocessing.Process, Any]:
    """Like ``start_process``, but the objects are built in the child: ``factory(*args) -> (objects, extra)``.

    The caller's memory never holds the objects (a benchmark measures the client's peak RSS);
    ``extra`` (e.g. ground truth) comes back through a queue.
    """
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(None, faults, q, factory, args), daemon=True)
    proc.start()
    url, extra = q.get(timeout=600)
    return url, proc, extra
