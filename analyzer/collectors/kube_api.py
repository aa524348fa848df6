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
import time
from collections.abc import Callable, Sequence
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from analyzer.collectors.kube_fields import Kind
from analyzer.collectors.kube_connect import (  # noqa: F401  (KubeConfig, connect: importable from here too)
    Connection, KubeConfig, Progress, connect, safe_host,
)
from analyzer.collectors.kube_specs import SpecBuilder
from analyzer.errors import InputError, KubetuneError
from analyzer.manifests import JSON_ERRORS, loads


log = logging.getLogger("kubetune.kubernetes")


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
        self.autoscaling_v1 = k8s.AutoscalingV1Api(api)  # clusters without autoscaling/v2 (before 1.23)
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
        try:
            data = self._request("/version", lambda: k8s.VersionApi(self.conn.api_client).get_code(
                _preload_content=False, _request_timeout=self.config.timeout))
        except NotFound:
            raise InputError(f"the server at {self.conn.host} answered 404 to GET /version, so it is not a Kubernetes "
                             "API server; check the server URL in the kubeconfig.") from None
        except Forbidden:
            raise InputError(f"the API server at {self.conn.host} refused GET /version (403 Forbidden): these "
                             "credentials may not even read public cluster information; check the kubeconfig's "
                             "user.") from None
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
        if kind.group == "autoscaling" and kind.version == "v1":
            api = self.autoscaling_v1
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
