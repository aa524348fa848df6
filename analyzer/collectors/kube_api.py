"""Reading the Kubernetes API with the official client: config, paginated lists, faults.

Only ``get`` and ``list`` are ever sent (``GET /version``, ``GET`` list paths, ``GET`` a
namespace by name). Lists are paged (``limit`` + ``continue``); a continue token the server
no longer honours (410 Gone) restarts that kind's list from scratch. Answers are read raw
(``_preload_content=False``) and parsed with ``orjson`` when installed, else ``json``:
building the client's model classes for 10,000 pods costs several times more than the
whole conversion to frames (see ``benchmarks/kubernetes_collect.py``).

Faults, each one sentence and never a traceback:

- 403 on a kind: that kind is skipped, with a warning naming it and the RBAC rule to grant
  (pods are the exception: without them there is nothing to collect, so it is an error);
- 404 on a CRD (Argo Rollouts not installed): quietly off; on a built-in kind: a warning;
- 429 and 5xx, connection errors and timeouts: retried with backoff, then an error;
- 401: the credentials were refused (an expired token, most often);
- an answer that is not JSON, or not a list: an error naming the request.

Tokens, client keys and passwords from a kubeconfig never appear in a message: the file is
read once to check it, and every error text that could echo it is scrubbed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

from analyzer import yamlio
from analyzer.collectors.kube_fields import Kind
from analyzer.collectors.kube_specs import SpecBuilder
from analyzer.errors import InputError, KubetuneError
from analyzer.manifests import JSON_ERRORS, loads


log = logging.getLogger("kubetune.kubernetes")

Progress = Callable[[str], None]
_SECRET_KEYS = {"token", "password", "client-key-data", "client-certificate-data", "id-token", "refresh-token",
                "access-token", "client-secret", "token-file", "tokenFile"}


@dataclass(frozen=True, repr=False)
class KubeConfig:
    """How to reach the API server and what to read. Credentials are never shown.

    ``kubeconfig`` (default: ``$KUBECONFIG``, then ``~/.kube/config``) and ``context`` (default:
    the file's current context), or ``in_cluster=True`` for the pod's service account.
    ``namespaces`` limits the namespaced kinds to those namespaces (read namespace by
    namespace, so namespace-scoped RBAC is enough); otherwise all namespaces but
    ``kube-system`` unless ``include_kube_system``. ``cluster`` names the snapshot (default: the
    context's cluster). ``page_size`` is the list ``limit``; ``timeout`` is (connect, read)
    seconds per request; a retryable failure is tried ``retries`` more times, waiting
    ``backoff`` x 2^n seconds; a 410 Gone restarts a list at most ``relists`` times.
    """

    kubeconfig: str | os.PathLike[str] | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ()
    include_kube_system: bool = False
    cluster: str | None = None
    page_size: int = 500
    timeout: tuple[float, float] = (10.0, 60.0)
    retries: int = 3
    backoff: float = 0.5
    relists: int = 3

    def __post_init__(self) -> None:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise InputError("give either --in-cluster or --kubeconfig/--context, not both.")
        if self.page_size < 1:
            raise InputError("the page size must be at least 1.")
        object.__setattr__(self, "namespaces", tuple(dict.fromkeys(self.namespaces or ())))
        for ns in self.namespaces:
            if not ns or not isinstance(ns, str):
                raise InputError("--namespace needs a namespace name.")

    def __repr__(self) -> str:
        where = "in-cluster" if self.in_cluster else f"kubeconfig={self.kubeconfig!s} context={self.context}"
        return f"KubeConfig({where}, namespaces={list(self.namespaces)})"


@dataclass
class Connection:
    """A configured client, and what may be said about it (host without userinfo, cluster name)."""

    api_client: k8s.ApiClient
    host: str
    cluster: str
    secrets: list[str] = field(default_factory=list, repr=False)

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            if s:
                text = text.replace(s, "***")
        return text


def safe_host(url: str) -> str:
    parts = urlsplit(url or "")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")) or "(no server)"


def _collect_secrets(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _SECRET_KEYS and isinstance(v, str) and len(v) >= 4:
                out.append(v)
            elif k == "env" and isinstance(v, list):  # exec plugin environment
                out.extend(str(e.get("value")) for e in v if isinstance(e, dict) and e.get("value"))
            else:
                _collect_secrets(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_secrets(v, out)


def _kubeconfig_paths(path: str | os.PathLike[str] | None) -> list[Path]:
    if path:
        return [Path(path).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _read_kubeconfig(path: Path) -> dict:
    if not path.exists():
        raise InputError(f"kubeconfig {path} does not exist; pass --kubeconfig PATH or --in-cluster.")
    if not path.is_file():
        raise InputError(f"kubeconfig {path} is not a file.")
    try:
        data = yamlio.load(path.read_text(encoding="utf-8"))
    except yamlio.YAMLError as exc:  # its message may quote the file (a token): say only where
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"kubeconfig {path} is not valid YAML{where}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"kubeconfig {path} cannot be read ({type(exc).__name__}).") from None
    if not isinstance(data, dict):
        raise InputError(f"kubeconfig {path} is not a kubeconfig (expected a mapping with clusters, users, contexts).")
    return data


def connect(config: KubeConfig) -> Connection:
    """Build an ``ApiClient`` from a kubeconfig or the in-cluster service account."""
    cfg = k8s.Configuration()
    secrets: list[str] = []
    if config.in_cluster:
        try:
            incluster_config.InClusterConfigLoader(
                token_filename=incluster_config.SERVICE_TOKEN_FILENAME,
                cert_filename=incluster_config.SERVICE_CERT_FILENAME,
            ).load_and_set(cfg)
        except ConfigException as exc:
            raise InputError(
                f"--in-cluster needs the pod's service account, but {_in_cluster_reason(str(exc))}; "
                "run kubetune inside the cluster (deploy/base/rbac.yaml) or pass --kubeconfig."
            ) from None
        cluster = config.cluster or os.environ.get("KUBETUNE_CLUSTER") or "in-cluster"
    else:
        paths = _kubeconfig_paths(config.kubeconfig)
        docs = [_read_kubeconfig(p) for p in paths]
        for d in docs:
            _collect_secrets(d, secrets)
        contexts = {c.get("name"): c.get("context") or {} for d in docs for c in d.get("contexts") or []
                    if isinstance(c, dict)}
        current = next((d.get("current-context") for d in docs if d.get("current-context")), None)
        name = config.context or current
        where = ", ".join(str(p) for p in paths)
        if not contexts:
            raise InputError(f"kubeconfig {where} has no contexts.")
        if not name:
            raise InputError(f"kubeconfig {where} has no current-context; pass --context "
                             f"(one of {', '.join(sorted(map(str, contexts)))}).")
        if name not in contexts:
            raise InputError(f"kubeconfig {where} has no context {name!r}; "
                             f"it has {', '.join(sorted(map(str, contexts)))}.")
        try:
            kube_config.load_kube_config(
                config_file=str(paths[0]) if config.kubeconfig else None, context=name,
                client_configuration=cfg, persist_config=False)
        except (ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
            text = Connection(None, "", "", secrets).scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise InputError(f"kubeconfig {where}, context {name!r}, cannot be used: {text[:200].rstrip('. ')}.") from None
        cluster = config.cluster or str(contexts[name].get("cluster") or name)
    cfg.retries = False  # retries are ours (backoff, and never on 4xx)
    for value in (cfg.api_key or {}).values():  # "Bearer <token>" / "bearer <token>" (exec plugins, in-cluster)
        if isinstance(value, str):
            secrets.append(value.split(" ", 1)[1].strip() if value.lower().startswith("bearer ") else value)
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    return Connection(k8s.ApiClient(cfg), safe_host(cfg.host), cluster, secrets)


def _in_cluster_reason(text: str) -> str:
    if "host/port is not set" in text:
        return "KUBERNETES_SERVICE_HOST/PORT are not set (this is not a pod)"
    if "token file does not exist" in text:
        return "the service account token is not mounted"
    if "cert file does not exist" in text:
        return "the service account CA certificate is not mounted"
    return text.rstrip(".").lower() if text else "it could not be loaded"


# ---------------------------------------------------------------------------------------------
# Faults


class Forbidden(Exception):
    """403 on a list: the caller decides whether that kind can be done without."""

    def __init__(self, message: str, namespace: str | None = None):
        super().__init__(message)
        self.message = message
        self.namespace = namespace


class NotFound(Exception):
    pass


class Gone(Exception):
    """410 Gone: the continue token expired; the list starts again."""


def _status_message(body: Any) -> str:
    try:
        data = json.loads(body) if body else {}
        return str(data.get("message") or "")[:300].rstrip(". ") if isinstance(data, dict) else ""
    except (ValueError, TypeError):
        return ""


def _connection_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
        return "unknown host"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError) or "connect timeout" in text:
        return "connection timed out"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError) or "read timed out" in text:
        return "read timed out"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "the connection was dropped"
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# The reader


class KubeAPI:
    """List calls through the generated API classes, raw JSON back, with paging and retries."""

    def __init__(self, config: KubeConfig, progress: Progress | None = None, conn: Connection | None = None):
        self.config = config
        self.conn = conn or connect(config)
        self.progress = progress
        api = self.conn.api_client
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.batch = k8s.BatchV1Api(api)
        self.autoscaling = k8s.AutoscalingV2Api(api)
        self.policy = k8s.PolicyV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.requests = 0
        self.server_version: str | None = None

    def close(self) -> None:
        try:
            self.conn.api_client.close()
        except Exception:  # noqa: BLE001 - closing is best effort  # pragma: no cover
            pass

    # -- one HTTP request ------------------------------------------------------------------

    def _request(self, path: str, call: Callable[[], Any]) -> Any:
        """Run one GET with retries; return the parsed JSON body."""
        host = self.conn.host
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                self.requests += 1
                resp = call()
                body = resp.data
                resp.release_conn()  # read without preloading: hand the connection back to the pool
                break
            except ApiException as exc:
                status = exc.status or 0
                message = self.conn.scrub(_status_message(exc.body))
                if status == 401:
                    raise InputError(
                        f"the API server at {host} refused the credentials (401 Unauthorized): the token or "
                        "client certificate is expired or invalid; refresh the kubeconfig (e.g. your cloud's "
                        "get-credentials command) and try again."
                    ) from None
                if status == 403:
                    raise Forbidden(message) from None
                if status == 404:
                    raise NotFound(message) from None
                if status == 410:
                    raise Gone(message) from None
                if status == 0:
                    reason = self.conn.scrub(str(exc.reason or "").splitlines()[-1])[:200]
                    raise KubetuneError(f"cannot talk to the API server at {host}: TLS failed ({reason}).") from None
                if (status == 429 or status >= 500) and not last:
                    self._wait(attempt, f"{status} on GET {path}")
                    continue
                detail = f": {message}" if message else ""
                if status == 429 or status >= 500:
                    raise KubetuneError(
                        f"the API server at {host} answered {status} to GET {path} {attempts} times{detail}."
                    ) from None
                raise KubetuneError(f"the API server at {host} answered {status} to GET {path}{detail}.") from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                reason = _connection_reason(exc)
                if not last:
                    self._wait(attempt, f"{reason} on GET {path}")
                    continue
                if reason == "read timed out":
                    raise KubetuneError(
                        f"the API server at {host} did not answer GET {path} within {self.config.timeout[1]:g} s "
                        f"({attempts} attempts)."
                    ) from None
                raise KubetuneError(f"cannot reach the Kubernetes API server at {host} ({reason}).") from None
        try:
            return loads(body)
        except JSON_ERRORS:
            raise KubetuneError(
                f"the API server at {host} answered GET {path} with something that is not JSON.") from None

    def _wait(self, attempt: int, why: str) -> None:
        delay = self.config.backoff * (2**attempt)
        log.info("retrying in %.1fs after %s", delay, why)
        time.sleep(delay)

    # -- calls -----------------------------------------------------------------------------

    def version(self) -> str | None:
        data = self._request("/version", lambda: k8s.VersionApi(self.conn.api_client).get_code(
            _preload_content=False, _request_timeout=self.config.timeout))
        if isinstance(data, dict):
            self.server_version = str(data.get("gitVersion") or "") or None
        return self.server_version

    def _list_call(self, kind: Kind, namespace: str | None) -> tuple[str, Callable[..., Any], dict]:
        """(path, bound method, fixed kwargs) for listing ``kind`` (in ``namespace``)."""
        r = kind.resource
        prefix = f"/api/{kind.version}" if not kind.group else f"/apis/{kind.group}/{kind.version}"
        path = f"{prefix}/namespaces/{namespace}/{r}" if namespace else f"{prefix}/{r}"
        if kind.group == "argoproj.io":
            if namespace:
                return path, self.custom.list_namespaced_custom_object, {
                    "group": kind.group, "version": kind.version, "namespace": namespace, "plural": r}
            return path, self.custom.list_cluster_custom_object, {"group": kind.group, "version": kind.version,
                                                                  "plural": r}
        api = {"": self.core, "apps": self.apps, "batch": self.batch, "autoscaling": self.autoscaling,
               "policy": self.policy}[kind.group]
        snake = {"pods": "pod", "nodes": "node", "namespaces": "namespace", "replicasets": "replica_set",
                 "deployments": "deployment", "statefulsets": "stateful_set", "daemonsets": "daemon_set",
                 "jobs": "job", "cronjobs": "cron_job", "horizontalpodautoscalers": "horizontal_pod_autoscaler",
                 "poddisruptionbudgets": "pod_disruption_budget"}[r]
        if not kind.namespaced:
            return path, getattr(api, f"list_{snake}"), {}
        if namespace:
            return path, getattr(api, f"list_namespaced_{snake}"), {"namespace": namespace}
        return path, getattr(api, f"list_{snake}_for_all_namespaces"), {}

    def read_kind(self, kind: Kind, builder: SpecBuilder, namespaces: Sequence[str | None] = (None,)) -> int:
        """Read one kind (cluster-wide, or namespace by namespace) into ``builder``.

        A 410 Gone on a continue token restarts the whole kind from scratch (``builder.start``
        forgets what the expired attempt read), at most ``relists`` times.
        """
        for relist in range(self.config.relists + 1):
            builder.start(kind.resource)
            try:
                return sum(self._list_pages(kind, builder, ns) for ns in namespaces)
            except Gone:
                if relist == self.config.relists:
                    raise KubetuneError(
                        f"the API server at {self.conn.host} kept expiring the list of {kind.resource} (410 Gone) "
                        f"after {relist + 1} attempts; try a larger page size or a quieter moment."
                    ) from None
                log.info("continue token for %s expired; listing again from the start", kind.resource)
        raise AssertionError("unreachable")  # pragma: no cover

    def _list_pages(self, kind: Kind, builder: SpecBuilder, namespace: str | None) -> int:
        """Every page of one list; raises ``Gone`` when a continue token has expired."""
        path, method, fixed = self._list_call(kind, namespace)
        token: str | None = None
        pages = items = 0
        while True:
            kwargs = dict(fixed, limit=self.config.page_size, _preload_content=False,
                          _request_timeout=self.config.timeout)
            if token:
                kwargs["_continue"] = token
            try:
                page = self._request(path, lambda kwargs=kwargs: method(**kwargs))
            except Forbidden as exc:
                exc.namespace = namespace
                raise
            except Gone:
                if token is None:  # not an expired token: nothing a relist would fix
                    raise KubetuneError(
                        f"the API server at {self.conn.host} answered 410 Gone to GET {path}.") from None
                raise
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise KubetuneError(f"the API server at {self.conn.host} answered GET {path} with something that "
                                    f"is not a {kind.kind}List.")
            builder.add(kind.resource, page["items"])
            pages += 1
            items += len(page["items"])
            meta = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
            token = meta.get("continue") or None
            if self.progress and (token or pages > 1):
                self.progress(f"{kind.resource}: {items:,} read ({pages} pages)")
            if not token:
                return items

    def read_namespace(self, name: str) -> dict | None:
        try:
            data = self._request(f"/api/v1/namespaces/{name}", lambda: self.core.read_namespace(
                name, _preload_content=False, _request_timeout=self.config.timeout))
        except NotFound:
            return None
        except Forbidden as exc:
            exc.namespace = name
            raise
        if not isinstance(data, dict):
            raise KubetuneError(f"the API server at {self.conn.host} answered GET /api/v1/namespaces/{name} "
                                "with something that is not a Namespace.")
        return data
