"""Prometheus collector: a whole cluster into a Snapshot with a handful of bulk PromQL queries.

Reads cAdvisor, kube-state-metrics, NVIDIA dcgm-exporter and OpenCost metrics from Prometheus
or anything that speaks its HTTP API (Thanos, Mimir, VictoriaMetrics). The queries are in
``analyzer.collectors.promql``; each reads one metric family for the whole cluster, so a
2,000-container cluster costs 17 HTTP requests, not thousands (``benchmarks/README.md``).

Use::

    config = PrometheusConfig(url="http://prometheus:9090")   # token from KUBETUNE_PROMETHEUS_TOKEN
    snapshot = collect_prometheus(config, history="14d")
    snapshot.write("snap/")

``collect_prometheus`` builds the snapshot in memory and writes nothing, so a failure never
leaves half a snapshot; ``Snapshot.write`` is atomic. Failures are ``KubetuneError`` (server or
network trouble, exit 1) or ``InputError`` (wrong URL, credentials, options; exit 2), each one
sentence. The bearer token, the basic-auth password and header values never appear in a
message, a log line or a ``repr``.

HTTP goes through prometheus-api-client's ``PrometheusConnect`` session (auth, headers, TLS);
retries are ours (backoff on connection errors, timeouts, 429 and 5xx; never on 4xx). Range
answers are decoded by ``promjson`` straight into Polars, not into per-sample Python objects.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import polars as pl
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from analyzer.collectors import promql as q
from analyzer.collectors.promjson import Matrix, ResponseError, decode_matrix, decode_strings, decode_vector, envelope
from analyzer.errors import InputError, KubetuneError
from analyzer.schema import EVENTS, RESOURCE, TIMESTAMP, USAGE
from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import parse_duration

log = logging.getLogger("kubetune.prometheus")

ENV_TOKEN = "KUBETUNE_PROMETHEUS_TOKEN"
MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses range queries with more ("exceeded maximum resolution")
DEFAULT_POINTS = 4_032  # the automatic step aims at about this many points per series (14 d at 5 min)
DEFAULT_POINTS_PER_REQUEST = 10_000_000  # larger answers are split by time window (client memory)
MIB = 2**20

Progress = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True, repr=False)
class PrometheusConfig:
    """How to reach Prometheus. Secrets (token, password, header values) are never shown.

    ``token=None`` reads ``KUBETUNE_PROMETHEUS_TOKEN`` (then ``token_file`` if given).
    ``cluster_label="cluster=prod"`` selects one cluster in a shared (Thanos/Mimir) Prometheus.
    ``timeout`` is per HTTP request in seconds; ``retries`` is how many times a retryable failure
    (connection error, timeout, 429, 5xx) is tried again, waiting ``backoff`` x 2^n seconds.
    """

    url: str
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None
    insecure: bool = False
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    cluster_label: str | None = None
    cluster_name: str | None = None
    scrape_interval: float | None = None
    engine: str | None = None  # "prometheus" or "victoriametrics"; detected when None
    max_points_per_request: int = DEFAULT_POINTS_PER_REQUEST
    compress: bool | None = None  # gzip; default: off on loopback (it costs more than it saves), on elsewhere
    server_aggregation: bool | None = None  # max by on the server; default: only when targets duplicate series

    def __post_init__(self) -> None:
        parts = urlsplit(str(self.url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"--prometheus-url {safe_url(self.url)!r} is not an http(s) URL (e.g. http://prometheus:9090).")
        if self.ca_bundle and not os.path.isfile(self.ca_bundle):
            raise InputError(f"the CA bundle {self.ca_bundle} does not exist.")
        if self.token_file and not os.path.isfile(self.token_file):
            raise InputError(f"the token file {self.token_file} does not exist.")
        if not (self.timeout and self.timeout > 0):
            raise InputError("the Prometheus timeout must be a positive number of seconds.")
        if self.retries < 0:
            raise InputError("the number of Prometheus retries cannot be negative.")
        if (self.username is None) != (self.password is None):
            raise InputError("basic auth needs both a username and a password.")
        if self.cluster_label is not None:
            self.cluster_selector()  # validates
        if self.engine not in (None, "prometheus", "victoriametrics"):
            raise InputError(f"unknown Prometheus engine {self.engine!r} (prometheus or victoriametrics).")
        for name in self.headers:
            if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", str(name)):
                raise InputError(f"{name!r} is not a valid HTTP header name.")

    def __repr__(self) -> str:
        shown = [f"url={safe_url(self.url)!r}"]
        if self.bearer_token():
            shown.append("token=<hidden>")
        if self.username:
            shown.append(f"username={self.username!r}, password=<hidden>")
        if self.headers:
            shown.append(f"headers=<{', '.join(sorted(self.headers))}: hidden>")
        for name in ("ca_bundle", "insecure", "timeout", "retries", "cluster_label", "scrape_interval", "engine"):
            shown.append(f"{name}={getattr(self, name)!r}")
        return f"PrometheusConfig({', '.join(shown)})"

    __str__ = __repr__

    def bearer_token(self) -> str | None:
        if self.token:
            return self.token.strip()
        env = os.environ.get(ENV_TOKEN, "").strip()
        if env:
            return env
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    return fh.read().strip() or None
            except OSError as exc:
                raise InputError(f"cannot read the token file {self.token_file} ({exc.strerror}).") from None
        return None

    def cluster_selector(self) -> tuple[str, str] | None:
        if not self.cluster_label:
            return None
        name, sep, value = self.cluster_label.partition("=")
        name = name.strip()
        if not sep or not q.valid_label_name(name) or name.startswith("__"):
            raise InputError(f"--cluster-label {self.cluster_label!r} is not NAME=VALUE (e.g. cluster=prod).")
        return name, value.strip().strip('"')


def safe_url(url: Any) -> str:
    """The URL without user:password@, query string or fragment: safe to print."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


# ---------------------------------------------------------------------------------------------
# HTTP


class _Split(Exception):
    """The server refused a range query for its size (or timed out on it): split the time window."""

    def __init__(self, info: dict[str, str], timeout: bool = False):
        super().__init__(info.get("error", ""))
        self.timeout = timeout


@dataclass
class RequestLog:
    """What the client asked: one entry per HTTP request sent (retries included)."""

    entries: list[tuple[str, str, float, int, int]] = field(default_factory=list)  # what, path, seconds, status, bytes

    def __len__(self) -> int:
        return len(self.entries)


class PrometheusClient:
    """The HTTP side: requests, retries, error sentences, decoding."""

    def __init__(self, config: PrometheusConfig, progress: Progress | None = None):
        self.config = config
        self.base = str(config.url).strip().rstrip("/")
        self.where = safe_url(self.base)
        self.progress = progress
        self.log = RequestLog()
        session = requests.Session()
        headers = {str(k): str(v) for k, v in config.headers.items()}
        token = config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        host = (urlsplit(self.base).hostname or "").lower()
        compress = config.compress if config.compress is not None else not _is_loopback(host)
        headers["Accept-Encoding"] = "gzip" if compress else "identity"
        session.headers.update(headers)
        if config.ca_bundle:
            session.verify = config.ca_bundle
        auth = (config.username, config.password) if config.username is not None else None
        # Retries are done here (so a timed-out query is not silently repeated four times by urllib3).
        self.prom = PrometheusConnect(url=self.base, disable_ssl=config.insecure, retry=Retry(total=0, read=False,
                                      raise_on_status=False), auth=auth, session=session, timeout=config.timeout)
        if config.insecure:
            session.verify = False
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session = session
        self.auth = auth

    def close(self) -> None:
        self.prom.close()

    # -- one request, with retries --------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any], what: str, *, splittable: bool = False,
            split_on_timeout: bool = False) -> bytes:
        attempts = self.config.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                delay = min(self.config.backoff * 2 ** (attempt - 1), 30.0)
                log.info("retrying the %s query in %.1f s (%s)", what, delay, last)
                time.sleep(delay)
            t0 = time.perf_counter()
            try:
                if sum(len(str(v)) for v in params.values()) > 4000 and path != "/api/v1/series":  # long selectors: a form body, not the URL
                    resp = self.session.post(self.base + path, data=params, auth=self.auth, timeout=self.config.timeout)
                else:
                    resp = self.session.get(self.base + path, params=params, auth=self.auth,
                                            timeout=self.config.timeout)
                body = resp.content
            except requests.exceptions.SSLError:
                self._record(what, path, t0, 0, 0)
                raise InputError(
                    f"the TLS handshake with Prometheus at {self.where} failed; pass its CA bundle "
                    "(--prometheus-ca-file) or, for a test server only, --prometheus-insecure."
                ) from None
            except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
                self._record(what, path, t0, 0, 0)
                last = f"no answer within {self.config.timeout:g} s"
                continue
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                self._record(what, path, t0, 0, 0)
                last = _connection_reason(exc)
                continue
            except requests.exceptions.RequestException as exc:
                self._record(what, path, t0, 0, 0)
                raise KubetuneError(f"the request to Prometheus at {self.where} failed ({type(exc).__name__}).") from None
            self._record(what, path, t0, resp.status_code, len(body))
            status = resp.status_code
            if status == 200:
                return body
            info = _error_info(body)
            if status == 401:
                raise InputError(
                    f"Prometheus at {self.where} answered 401 Unauthorized: check the bearer token "
                    f"(--prometheus-token or {ENV_TOKEN}) or the basic-auth credentials."
                )
            if status == 403:
                raise InputError(
                    f"Prometheus at {self.where} answered 403 Forbidden: the credentials are valid but may not "
                    "read metrics (check the token's RBAC or the proxy's policy)."
                )
            if status == 404:
                raise InputError(
                    f"Prometheus at {self.where} has no {path} (HTTP 404): check --prometheus-url; Thanos, "
                    "Mimir and proxies may need a path prefix such as /prometheus or /api/prom."
                )
            if status in (400, 422) and splittable and _too_big(info):
                raise _Split(info)
            if status == 503 and split_on_timeout and info.get("errorType") == "timeout":
                raise _Split(info, timeout=True)
            if status in (400, 422):
                raise KubetuneError(
                    f"Prometheus at {self.where} rejected the {what} query (HTTP {status}"
                    f"{' ' + info['errorType'] if info.get('errorType') else ''}: {info.get('error', 'no reason given')})."
                )
            if status == 503 and info.get("errorType") == "timeout":
                raise KubetuneError(
                    f"Prometheus at {self.where} timed out running the {what} query (its --query.timeout); "
                    "shorten --history or raise the server's query timeout."
                )
            if status == 429 or status >= 500:
                last = f"HTTP {status}" + (f" {info['error']}" if info.get("error") else "")
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit() and attempt + 1 < attempts:
                    time.sleep(min(float(retry_after), 30.0))
                continue
            raise KubetuneError(f"Prometheus at {self.where} answered HTTP {status} to the {what} query.")
        if last.startswith("no answer"):
            raise KubetuneError(
                f"Prometheus at {self.where} gave no answer to the {what} query within {self.config.timeout:g} s "
                f"({attempts} tries); raise --prometheus-timeout or shorten --history."
            )
        if last.startswith("HTTP"):
            raise KubetuneError(
                f"Prometheus at {self.where} kept failing on the {what} query ({_clip(last)}, {attempts} tries)."
            )
        raise KubetuneError(f"cannot reach Prometheus at {self.where} ({last}, {attempts} tries); is it running and is "
                            "the URL right?")

    def _record(self, what: str, path: str, t0: float, status: int, size: int) -> None:
        seconds = time.perf_counter() - t0
        self.log.entries.append((what, path, seconds, status, size))
        log.debug("%s %s -> %s, %d bytes in %.2f s", what, path, status or "no answer", size, seconds)

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def _bad(self, what: str, exc: ResponseError) -> KubetuneError:
        return KubetuneError(f"Prometheus at {self.where} sent an unreadable answer to the {what} query: {exc}.")

    # -- API calls --------------------------------------------------------------------------------

    def metric_names(self, start: float, end: float, match: str | None) -> set[str]:
        params: dict[str, Any] = {"start": _ts(start), "end": _ts(end)}
        if match:
            params["match[]"] = match
        body = self.get("/api/v1/label/__name__/values", params, "metric-name listing")
        try:
            return set(decode_strings(body))
        except ResponseError as exc:
            raise self._bad("metric-name listing", exc) from None

    def series(self, matches: list[str], start: float, end: float, what: str) -> list[dict[str, str]]:
        """``/api/v1/series``: the label sets of every series matching, from the index (cheap)."""
        body = self.get("/api/v1/series", {"match[]": matches, "start": _ts(start), "end": _ts(end)}, what)
        try:
            data = envelope(body).get("data")
        except ResponseError as exc:
            raise self._bad(what, exc) from None
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise self._bad(what, ResponseError("expected a list of label sets in 'data'"))
        return data

    def engine(self) -> str:
        """``victoriametrics`` when the server says so in its build info, else ``prometheus``."""
        t0 = time.perf_counter()
        try:
            resp = self.session.get(self.base + "/api/v1/status/buildinfo", auth=self.auth,
                                    timeout=self.config.timeout)
            self._record("build info", "/api/v1/status/buildinfo", t0, resp.status_code, len(resp.content))
            if resp.status_code in (401, 403):
                return "prometheus"  # the real query will say it clearly
            data = envelope(resp.content).get("data") if resp.status_code == 200 else None
        except (requests.exceptions.RequestException, ResponseError):
            return "prometheus"
        if isinstance(data, dict) and not data.get("version"):
            return "victoriametrics"  # VictoriaMetrics answers buildinfo with an empty object
        return "prometheus"

    def instant(self, query: str, at: float, what: str) -> tuple[list[dict[str, str]], np.ndarray]:
        self._say(f"querying {what}")
        body = self.get("/api/v1/query", {"query": query, "time": _ts(at)}, what)
        try:
            return decode_vector(body)
        except ResponseError as exc:
            raise self._bad(what, exc) from None

    def range(self, query: str, start: float, end: float, step: float, what: str, *,
              series_hint: int = 0) -> list[Matrix]:
        """A range query, split by time window when it would be too large; one Matrix per shard."""
        points = int(round((end - start) / step)) + 1
        shards = max(math.ceil(points / MAX_POINTS_PER_SERIES),
                     math.ceil(max(series_hint, 1) * points / self.config.max_points_per_request))
        out: list[Matrix] = []
        for a, b in _windows(start, end, step, shards):
            out.extend(self._range_window(query, a, b, step, what, depth=0))
        return out

    def _range_window(self, query: str, start: float, end: float, step: float, what: str, depth: int) -> list[Matrix]:
        self._say(f"querying {what} ({_iso_short(start)} to {_iso_short(end)}, step {step:g} s)")
        params = {"query": query, "start": _ts(start), "end": _ts(end), "step": f"{step:g}"}
        try:
            body = self.get("/api/v1/query_range", params, what, splittable=depth < 5 and end > start,
                            split_on_timeout=depth < 2 and end > start)
        except _Split as exc:
            log.info("the %s query was %s; splitting its time window", what,
                     "too slow for the server" if exc.timeout else "too large for the server")
            out: list[Matrix] = []
            for a, b in _windows(start, end, step, 2):
                out.extend(self._range_window(query, a, b, step, what, depth + 1))
            return out
        try:
            matrix = decode_matrix(body)
        except ResponseError as exc:
            raise self._bad(what, exc) from None
        del body
        for warning in matrix.warnings:
            log.warning("Prometheus warned on the %s query: %s", what, warning)
        return [matrix]


def _windows(start: float, end: float, step: float, n: int) -> list[tuple[float, float]]:
    """Split [start, end] (aligned to step) into n contiguous, non-overlapping windows of points."""
    points = int(round((end - start) / step)) + 1
    n = max(1, min(n, points))
    bounds = [round(points * i / n) for i in range(n + 1)]
    return [(start + bounds[i] * step, start + (bounds[i + 1] - 1) * step) for i in range(n) if bounds[i + 1] > bounds[i]]


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "::1") or host.startswith("127."):
        return True
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                           ("nodename nor servname", "unknown host"), ("Temporary failure in name", "unknown host"),
                           ("RemoteDisconnected", "the connection was closed without an answer"),
                           ("Connection reset", "the connection was reset"),
                           ("IncompleteRead", "the answer was cut short"),
                           ("Connection broken", "the answer was cut short"),
                           ("No route to host", "no route to host"), ("Network is unreachable", "network unreachable")):
        if needle in text:
            return reason
    return type(exc).__name__


def _error_info(body: bytes) -> dict[str, str]:
    """``errorType`` and ``error`` of an error answer (Prometheus JSON or plain text), clipped."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        return {"errorType": _clip(str(data.get("errorType") or "")), "error": _clip(str(data.get("error") or ""))}
    text = body[:300].decode("utf-8", "replace").strip()
    return {"errorType": "", "error": _clip(text)} if text else {}


def _too_big(info: dict[str, str]) -> bool:
    text = info.get("error", "").lower()
    return any(s in text for s in ("exceeded maximum resolution", "too many samples", "would load too many samples",
                                   "cannot select more than", "too many points", "exceeds -search.max"))


def _clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _ts(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _iso_short(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------------
# Collection


@dataclass
class _Notes:
    absent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def missing(self, part: str, warning: str | None) -> None:
        if part not in self.absent:
            self.absent.append(part)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
            log.warning(warning)


def collect_prometheus(
    config: PrometheusConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    history: str | float | timedelta | None = None,
    step: str | float | timedelta | None = None,
    namespaces: list[str] | tuple[str, ...] | None = None,
    progress: Progress | None = None,
    client: PrometheusClient | None = None,
) -> Snapshot:
    """Read one cluster's window from Prometheus into a Snapshot (in memory; nothing is written).

    The window is ``[start, end]``, or the ``history`` (``"14d"``, seconds or a timedelta)
    before ``end`` (default: now). ``step`` (default: automatic) is the ``usage`` resolution:
    at least the scrape interval, at most ``MAX_POINTS_PER_SERIES`` points per series per
    request (longer windows are split), by default about ``DEFAULT_POINTS`` points per series.
    ``namespaces`` limits pod-level data to those namespaces (nodes are always read).
    ``progress`` gets one short line per query. ``client`` lets a caller pass its own
    ``PrometheusClient`` (to read its request log); by default one is made and closed here.
    """
    t_end = _epoch(end) if end is not None else time.time()
    if start is not None:
        if history is not None:
            raise InputError("give either a start time or a history length, not both.")
        t_start = _epoch(start)
    else:
        t_start = t_end - _seconds(history if history is not None else "14d", "history")
    if t_end <= t_start:
        raise InputError("the collection window is empty: end is not after start.")
    own = client is None
    client = client or PrometheusClient(config, progress)
    try:
        return _Collection(config, client, t_start, t_end, step, tuple(namespaces or ())).run()
    finally:
        if own:
            client.close()


def collect_from_options(
    url: str,
    history: str = "14d",
    kubeconfig: Any = None,
    in_cluster: bool = False,
    **options: Any,
) -> Snapshot:
    """The CLI's shortcut: ``collect_prometheus(PrometheusConfig(url, **options), history=...)``.

    ``kubeconfig``/``in_cluster`` belong to the Kubernetes API collector and are not used here.
    Options named ``start``, ``end``, ``step``, ``namespaces`` and ``progress`` go to
    ``collect_prometheus``; the rest to ``PrometheusConfig``.
    """
    call = {k: options.pop(k) for k in ("start", "end", "step", "namespaces", "progress") if k in options}
    config = PrometheusConfig(url=url, **options)
    if call.get("start") is not None:
        return collect_prometheus(config, **call)
    return collect_prometheus(config, history=history, **call)


class _Collection:
    def __init__(self, config: PrometheusConfig, client: PrometheusClient, t_start: float, t_end: float,
                 step: Any, namespaces: tuple[str, ...]):
        self.config = config
        self.client = client
        self.scope = q.Scope(config.cluster_selector(), namespaces)
        self.t_start_req, self.t_end_req = t_start, t_end
        self.step_req = _seconds(step, "step") if step is not None else None
        self.notes = _Notes()

    # -- orchestration ----------------------------------------------------------------------------

    def run(self) -> Snapshot:
        c = self.client
        names = c.metric_names(self.t_start_req, self.t_end_req, self.scope.match())
        self.present = names
        self._check_required(names)
        self.engine = self.config.engine or c.engine()
        self.scrape = self.config.scrape_interval or self._scrape_interval()
        self.step = _choose_step(self.t_end_req - self.t_start_req, self.scrape, self.step_req, self.notes)
        # Evaluation times are multiples of the step, so they line up with aligned scrapes.
        self.t_end = math.floor(self.t_end_req / self.step) * self.step
        self.t_start = math.ceil(self.t_start_req / self.step) * self.step
        if self.t_end < self.t_start:
            raise InputError(f"the window is shorter than one step ({self.step:g} s); widen --history.")
        self.window = self.t_end - self.t_start + self.step  # instant queries at t_end look this far back
        log.info("window %s..%s, step %g s, scrape interval %g s, engine %s", _iso_short(self.t_start),
                 _iso_short(self.t_end), self.step, self.scrape, self.engine)

        pods = self._owners()
        self.pod_workloads = pods.select("namespace", "pod", "workload_kind", "workload")
        inventory = self._inventory()
        plan = self._usage_plan()
        cpu, cpu_spans = self._range_usage(
            q.cpu_usage(self.scope, self.step, self.scrape, self.engine, aggregate=plan["cpu"][0]), "cpu",
            "CPU usage", plan["cpu"][1])
        memory, memory_spans = self._range_usage(q.memory_usage(self.scope, self.step, aggregate=plan["memory"][0]),
                                                 "memory", "memory usage", plan["memory"][1])
        if cpu.height == 0 and memory.height == 0:
            raise InputError(
                f"Prometheus at {c.where} has no container CPU or memory samples between "
                f"{_iso_short(self.t_start)} and {_iso_short(self.t_end)} UTC"
                + (f" for namespaces {', '.join(self.scope.namespaces)}" if self.scope.namespaces else "")
                + (f" with {self.config.cluster_label}" if self.config.cluster_label else "") + "."
            )
        gpu, gpu_memory, devices = self._gpu(inventory)
        usage = pl.concat([cpu, memory, gpu, gpu_memory], how="vertical")
        del cpu, memory
        spans = pl.concat([cpu_spans, memory_spans], how="vertical")
        throttling = self._throttling()
        containers = self._containers(inventory, pods, spans, throttling)
        workloads = self._workloads(containers)
        nodes = self._nodes(containers, devices)
        events = self._events(containers)
        gpus = self._gpus(devices, gpu)
        namespaces_frame = self._namespaces_frame
        manifest = Manifest(
            cluster=self._cluster_name(),
            start=_dt(self.t_start),
            end=_dt(self.t_end),
            step_seconds=int(round(self.step)),
            source=f"prometheus {c.where}" + (f" ({self.config.cluster_label})" if self.config.cluster_label else ""),
            absent=self.notes.absent,
            warnings=self.notes.warnings,
        )
        log.info("collected %d usage rows, %d containers in %d HTTP requests", usage.height, containers.height,
                 len(c.log))
        return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes,
                              events=events, gpus=gpus, namespaces=namespaces_frame)

    def _cluster_name(self) -> str:
        if self.config.cluster_name:
            return self.config.cluster_name
        sel = self.config.cluster_selector()
        if sel:
            return sel[1]
        return urlsplit(self.client.base).hostname or "prometheus"

    def _has(self, family: str) -> bool:
        return any(m in self.present for m in q.FAMILY[family].any_of)

    def _check_required(self, names: set[str]) -> None:
        missing = [f for f in q.FAMILIES if f.required and not any(m in names for m in f.any_of)]
        if not missing:
            return
        where = f"Prometheus at {self.client.where}"
        scope = f" (with {self.config.cluster_label})" if self.config.cluster_label else ""
        if not names:
            raise InputError(
                f"{where} has no metrics at all between {_iso_short(self.t_start_req)} and "
                f"{_iso_short(self.t_end_req)} UTC{scope}; check the URL, --history and --cluster-label."
            )
        metrics = ", ".join(m for f in missing for m in f.any_of)
        sources = []
        for f in missing:
            if f.source not in sources:
                sources.append(f.source)
        raise InputError(f"{where} lacks required metrics{scope}: {metrics}; install and scrape "
                         f"{' and '.join(sources)}.")

    def _scrape_interval(self) -> float:
        span = self.t_end_req - self.t_start_req
        for window in (min(span, 6 * 3600.0), span):
            labels, values = self.client.instant(q.scrape_interval(self.scope, window), self.t_end_req,
                                                 "scrape interval")
            finite = values[np.isfinite(values)]
            if finite.size and finite.max() >= 2:
                return _nice_interval(window / (float(finite.max()) - 1))
            if window == span:
                break
        self.notes.warnings.append("could not measure the scrape interval (too few samples); assumed 60 s.")
        return 60.0

    # -- pods, owners, requests ------------------------------------------------------------------

    def _owners(self) -> pl.DataFrame:
        """One row per pod: workload_kind, workload, owner_kind, owner_name, node, started/ended."""
        labels, values = self.client.instant(q.owners(self.scope, self.window, self.present), self.t_end,
                                             "pod owners")
        rows = _tagged(labels, values)
        pod_owner = rows.get("pod_owner", _empty(["namespace", "pod", "owner_kind", "owner_name", "owner_is_controller"]))
        pod_owner = (
            pod_owner.with_columns(pl.col("owner_is_controller").fill_null("").eq("true").alias("_ctl"))
            .sort(["namespace", "pod", "_ctl"], descending=[False, False, True])
            .unique(["namespace", "pod"], keep="first")
            .select("namespace", "pod", "owner_kind", "owner_name")
        )
        if not self._has("ksm_replicaset_owner"):
            self.notes.missing("replicaset_owners", "kube_replicaset_owner is missing: Deployments are guessed from "
                               "ReplicaSet names (kube-state-metrics exports it by default; check its --resources).")
        if not self._has("ksm_job_owner"):
            self.notes.missing("job_owners", "kube_job_owner is missing: CronJobs are guessed from Job names.")
        rs = rows.get("rs_owner", _empty(["namespace", "replicaset", "owner_kind", "owner_name"])).select(
            "namespace", pl.col("replicaset").alias("owner_name"), pl.col("owner_kind").alias("_rs_kind"),
            pl.col("owner_name").alias("_rs_name")).unique(["namespace", "owner_name"])
        jobs = rows.get("job_owner", _empty(["namespace", "job_name", "owner_kind", "owner_name"])).select(
            "namespace", pl.col("job_name").alias("owner_name"), pl.col("owner_kind").alias("_job_kind"),
            pl.col("owner_name").alias("_job_name")).unique(["namespace", "owner_name"])
        none = pl.col("owner_kind").is_null() | pl.col("owner_kind").is_in(["<none>", "", "Node"])
        rs_owned = pl.col("_rs_kind").is_not_null() & ~pl.col("_rs_kind").is_in(["<none>", ""])
        job_owned = pl.col("_job_kind").is_not_null() & ~pl.col("_job_kind").is_in(["<none>", ""])
        guess_rs = not self._has("ksm_replicaset_owner")
        guess_job = not self._has("ksm_job_owner")
        pods = pod_owner.join(rs, on=["namespace", "owner_name"], how="left").join(
            jobs, on=["namespace", "owner_name"], how="left")
        rs_guess = pl.col("owner_name").str.replace(r"-[a-z0-9]{5,10}$", "")
        job_guess = pl.col("owner_name").str.replace(r"-\d{6,}$", "")
        kind = (
            pl.when(none).then(pl.lit("Pod"))
            .when((pl.col("owner_kind") == "ReplicaSet") & rs_owned).then(pl.col("_rs_kind"))
            .when((pl.col("owner_kind") == "ReplicaSet") & pl.lit(guess_rs)).then(pl.lit("Deployment"))
            .when((pl.col("owner_kind") == "Job") & job_owned).then(pl.col("_job_kind"))
            .when((pl.col("owner_kind") == "Job") & pl.lit(guess_job) & pl.col("owner_name").str.contains(r"-\d{6,}$"))
            .then(pl.lit("CronJob"))
            .otherwise(pl.col("owner_kind"))
        )
        name = (
            pl.when(none).then(pl.col("pod"))
            .when((pl.col("owner_kind") == "ReplicaSet") & rs_owned).then(pl.col("_rs_name"))
            .when((pl.col("owner_kind") == "ReplicaSet") & pl.lit(guess_rs)).then(rs_guess)
            .when((pl.col("owner_kind") == "Job") & job_owned).then(pl.col("_job_name"))
            .when((pl.col("owner_kind") == "Job") & pl.lit(guess_job) & pl.col("owner_name").str.contains(r"-\d{6,}$"))
            .then(job_guess)
            .otherwise(pl.col("owner_name"))
        )
        pods = pods.select(
            "namespace", "pod", kind.alias("workload_kind"), name.alias("workload"),
            pl.when(none).then(None).otherwise(pl.col("owner_kind")).alias("owner_kind"),
            pl.when(none).then(None).otherwise(pl.col("owner_name")).alias("owner_name"),
        )
        info = rows.get("pod_info")
        if info is not None and "node" in info.columns:
            pods = pods.join(info.select("namespace", "pod", "node").unique(["namespace", "pod"]), on=["namespace", "pod"],
                             how="full", coalesce=True)
        else:
            pods = pods.with_columns(pl.lit(None, pl.String).alias("node"))
        for tag_, col in (("pod_start", "started_at"), ("pod_completion", "ended_at")):
            frame = rows.get(tag_)
            if frame is not None:
                pods = pods.join(frame.select("namespace", "pod", _epoch_expr("value").alias(col))
                                 .unique(["namespace", "pod"]), on=["namespace", "pod"], how="left")
            else:
                pods = pods.with_columns(pl.lit(None, TIMESTAMP).alias(col))
        return pods.with_columns(
            pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"))

    def _inventory(self) -> pl.DataFrame:
        """Long rows: namespace, pod, container, kt, resource, unit, node, restart_policy, value."""
        if not self._has("ksm_limits"):
            self.notes.missing("limits", None)
        labels, values = self.client.instant(q.inventory(self.scope, self.window, self.present), self.t_end,
                                             "requests and limits")
        cols = ["namespace", "pod", "container", "kt", "resource", "unit", "node", "restart_policy"]
        frame = _labels_frame(labels, cols).with_columns(pl.Series("value", values, dtype=pl.Float64))
        return frame.filter(pl.col("pod").is_not_null() & pl.col("container").is_not_null())

    # -- usage -----------------------------------------------------------------------------------

    def _usage_plan(self) -> dict[str, tuple[bool, int]]:
        """Per usage family: aggregate on the server (``max by``)? and how many series to expect.

        The series index says whether any container is reported by more than one scrape target
        (two jobs, two cAdvisors): then ``max by (namespace, pod, container)`` removes the
        duplicates on the server. Otherwise the raw series are fetched (the same points) and the
        rare duplicate key (a restarted container's new cgroup) is merged here, sparing the
        server the per-step aggregation, which costs it more than the query itself.
        """
        series = self.client.series(q.usage_series(self.scope), self.t_start - self.step, self.t_end, "series index")
        plan = {}
        for resource, metric in (("cpu", q.CPU), ("memory", q.MEMORY)):
            key_targets: dict[tuple, set] = {}
            n = 0
            for lab in series:
                if lab.get("__name__") != metric:
                    continue
                n += 1
                key = (lab.get("namespace"), lab.get("pod"), lab.get("container"))
                target = tuple(lab.get(k) for k in ("job", "instance", "service", "endpoint", "metrics_path",
                                                    "prometheus", "prometheus_replica", "replica"))
                key_targets.setdefault(key, set()).add(target)
            duplicated = sum(1 for targets in key_targets.values() if len(targets) > 1)
            aggregate = self.config.server_aggregation if self.config.server_aggregation is not None else (
                duplicated > 0.02 * max(len(key_targets), 1))
            plan[resource] = (aggregate, max(len(key_targets) if aggregate else n, 1))
            log.info("%s: %d series for %d containers, %d reported by several targets: %s", resource, n,
                     len(key_targets), duplicated, "max by on the server" if aggregate else "raw series")
        return plan

    def _range_usage(self, query: str | None, resource: str, what: str, hint: int, *, dcgm: bool = False,
                     scale: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A range query straight into ``usage`` rows, plus each container's first and last sample time.

        Samples stay in NumPy/Polars columns: the per-series labels (a small frame, categorical)
        are gathered by series index, never turned into per-sample Python objects.
        """
        parts, spans = [], []
        shards = self.client.range(query, self.t_start, self.t_end, self.step, what, series_hint=hint) if query else []
        dropped = 0
        for m in shards:
            if not m.labels:
                continue
            lab = _dcgm_labels(m.labels) if dcgm else _labels_frame(m.labels, ["namespace", "pod", "container"])
            lab = lab.with_row_index("series").join(self.pod_workloads, on=["namespace", "pod"], how="left",
                                                    maintain_order="left")
            lab = lab.with_columns(pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"))
            valid = lab.select(pl.col("pod").is_not_null() & pl.col("namespace").is_not_null()
                               & pl.col("container").is_not_null()).to_series()
            samples = m.samples
            keep = samples.get_column("v").is_finite() & valid.gather(samples.get_column("series"))
            if not keep.all():
                dropped += samples.height - int(keep.sum())
                samples = samples.filter(keep)
            idx = samples.get_column("series")
            cat = lab.select(pl.col("namespace", "workload_kind", "workload", "pod", "container").cast(pl.Categorical),
                             (pl.col("device") if dcgm else pl.lit(None, pl.String)).cast(pl.Categorical).alias("device"))
            part = pl.DataFrame({
                "timestamp": _epoch_series(samples.get_column("t")),
                **{c: cat.get_column(c).gather(idx) for c in ("namespace", "workload_kind", "workload", "pod",
                                                              "container")},
                "resource": pl.Series("resource", [resource], dtype=RESOURCE).gather(np.zeros(samples.height, np.uint32)),
                "device": cat.get_column("device").gather(idx),
                "value": samples.get_column("v") * scale if scale != 1.0 else samples.get_column("v"),
            })
            twins = None if dcgm else lab.select(pl.struct("namespace", "pod", "container").is_duplicated()).to_series()
            if twins is not None and twins.any():
                # Raw series with the same container (a restarted container's old and new cgroup, a
                # stray duplicate target): one value per time, the highest. Only their rows are grouped.
                mask = twins.gather(idx)
                key = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "device"]
                part = pl.concat([part.filter(~mask), part.filter(mask).group_by(key).agg(pl.col("value").max())
                                  .select(_USAGE_COLUMNS)], how="vertical")
            parts.append(part)
            spans.append(samples.group_by("series").agg(pl.col("t").min().alias("first"), pl.col("t").max().alias("last"))
                         .join(lab.select(pl.col("series").cast(pl.UInt32), "namespace", "pod", "container",
                                          *(["device", "node"] if dcgm else [])), on="series").drop("series"))
            del m, samples, idx
        if dropped:
            self.notes.warnings.append(f"dropped {dropped} {what} samples that were NaN/Inf or had no pod label.")
        usage = pl.concat(parts, how="vertical") if parts else _usage_empty()
        span = pl.concat(spans, how="vertical_relaxed") if spans else pl.DataFrame(
            schema={"namespace": pl.String, "pod": pl.String, "container": pl.String, "first": pl.Float64,
                    "last": pl.Float64})
        if dcgm and usage.height:
            # Hostname/hostname renames or GPU_UTIL and GR_ENGINE for one device: one value per time.
            usage = usage.group_by(["timestamp", "namespace", "workload_kind", "workload", "pod", "container",
                                    "resource", "device"]).agg(pl.col("value").max()).select(_USAGE_COLUMNS)
        return usage, span

    def _gpu(self, inventory: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        gpu_requested = inventory.filter(pl.col("resource").fill_null("").str.contains(r"^(nvidia_com|amd_com)_")).height > 0
        wants = gpu_requested or any(m.startswith("DCGM_") for m in self.present)
        empty = _usage_empty()
        devices = pl.DataFrame(schema=_DEVICE_SCHEMA)
        if not self._has("dcgm"):
            self.notes.missing("gpu", "no DCGM metrics (DCGM_FI_DEV_GPU_UTIL / DCGM_FI_PROF_GR_ENGINE_ACTIVE): GPU "
                               "utilization is absent; install NVIDIA dcgm-exporter with pod mapping (--kubernetes)."
                               if wants else None)
            if not self._has("dcgm_memory"):
                self.notes.missing("gpu_memory", None)
            return empty, empty, devices
        hint = max(inventory.filter(pl.col("resource").fill_null("").str.starts_with("nvidia")).height, 1)
        gpu, _ = self._range_usage(q.gpu_usage(self.scope, self.step, self.present), "gpu", "GPU utilization", hint,
                                   dcgm=True)
        if self._has("dcgm_memory"):
            gpu_memory, _ = self._range_usage(q.gpu_memory_usage(self.scope, self.step), "gpu_memory", "GPU memory",
                                              hint, dcgm=True, scale=float(MIB))
        else:
            self.notes.missing("gpu_memory", "DCGM_FI_DEV_FB_USED is missing: GPU memory usage is absent.")
            gpu_memory = empty
        query = q.gpu_devices(self.scope, self.window, self.present)
        if query:
            labels, values = self.client.instant(query, self.t_end, "GPU devices")
            devices = _devices(labels, values)
        return gpu, gpu_memory, devices

    def _throttling(self) -> pl.DataFrame | None:
        if q.THROTTLED not in self.present or q.PERIODS not in self.present:
            self.notes.missing("throttling", None)
            return None
        labels, values = self.client.instant(q.throttling(self.scope, self.window), self.t_end, "CPU throttling")
        frame = _labels_frame(labels, ["namespace", "pod", "container"]).with_columns(
            pl.Series("cpu_throttled_fraction", values, dtype=pl.Float64))
        return frame.filter(pl.col("cpu_throttled_fraction").is_finite()).unique(["namespace", "pod", "container"])

    # -- frames ----------------------------------------------------------------------------------

    def _containers(self, inv: pl.DataFrame, pods: pl.DataFrame, spans: pl.DataFrame,
                    throttling: pl.DataFrame | None) -> pl.DataFrame:
        key = ["namespace", "pod", "container"]
        res = pl.col("resource").fill_null("")
        is_gpu = res.str.contains(r"^(nvidia_com|amd_com)_")
        req = inv.filter(pl.col("kt").is_in(["request", "init_request"]))
        lim = inv.filter(pl.col("kt").is_in(["limit", "init_limit"]))

        def pick(frame: pl.DataFrame, cond: pl.Expr, name: str) -> pl.DataFrame:
            return frame.filter(cond).group_by(key).agg(pl.col("value").max().alias(name))

        parts = [
            pick(req, res == "cpu", "cpu_request"), pick(lim, res == "cpu", "cpu_limit"),
            pick(req, res == "memory", "memory_request"), pick(lim, res == "memory", "memory_limit"),
            pick(req, is_gpu, "gpu_request"), pick(lim, is_gpu, "gpu_limit"),
            inv.filter(is_gpu).group_by(key).agg(pl.col("resource").max().alias("_gpu_res")),
        ]
        seen = pl.concat([inv.select(key), spans.select(key)], how="vertical").unique()
        out = seen
        for part in parts:
            out = out.join(part, on=key, how="left")
        node_inv = inv.filter(pl.col("node").is_not_null() & (pl.col("node") != "")).group_by(key).agg(
            pl.col("node").first().alias("_node_inv"))
        init = inv.filter(pl.col("kt").is_in(["init_request", "init_limit", "init_info"])).group_by(key).agg(
            (pl.col("restart_policy").fill_null("") == "Always").any().alias("_sidecar"))
        out = out.join(node_inv, on=key, how="left").join(init.with_columns(pl.lit(True).alias("_init")), on=key,
                                                           how="left")
        # A pod's life: from its first to its last sample of any container (an init container's
        # end is not the pod's); kube_pod_start_time/_completion_time win where present.
        life = spans.group_by(["namespace", "pod"]).agg(pl.col("first").min().alias("_first"),
                                                        pl.col("last").max().alias("_last"))
        out = out.join(life, on=["namespace", "pod"], how="left").join(pods, on=["namespace", "pod"], how="left")
        still_running = pl.col("_last") >= self.t_end - 2 * self.step
        out = out.with_columns(
            pl.col("workload_kind").fill_null("Pod"),
            pl.coalesce("workload", "pod").alias("workload"),
            pl.when(pl.col("_init").fill_null(False) & pl.col("_sidecar").fill_null(False)).then(pl.lit("sidecar"))
            .when(pl.col("_init").fill_null(False)).then(pl.lit("init")).otherwise(pl.lit("app")).alias("container_type"),
            pl.coalesce("_node_inv", "node").alias("node"),
            pl.col("memory_request").round(0).cast(pl.Int64),
            pl.col("memory_limit").round(0).cast(pl.Int64),
            pl.col("gpu_request").round(0).cast(pl.Int64),
            pl.col("gpu_limit").round(0).cast(pl.Int64),
            pl.col("_gpu_res").map_elements(_resource_name, return_dtype=pl.String).alias("gpu_resource"),
            pl.coalesce("started_at", _epoch_expr("_first")).alias("started_at"),
            pl.coalesce("ended_at", pl.when(still_running).then(None).otherwise(_epoch_expr("_last"))).alias("ended_at"),
        )
        if throttling is not None:
            out = out.join(throttling, on=key, how="left")
        return out.drop([c for c in out.columns if c.startswith("_")]).sort(key)

    def _workloads(self, containers: pl.DataFrame) -> pl.DataFrame:
        wl = containers.group_by(["namespace", "workload_kind", "workload"]).agg(
            pl.col("pod").n_unique().alias("_pods"))
        labels, values = [], np.array([])
        query = q.workload_meta(self.scope, self.window, self.present)
        if query:
            labels, values = self.client.instant(query, self.t_end, "replicas and autoscalers")
        rows = _tagged(labels, values)
        replicas = []
        for metric, (kind, label) in q.REPLICA_METRICS.items():
            frame = rows.get(metric)
            if frame is not None and label in frame.columns:
                replicas.append(frame.select("namespace", pl.lit(kind).alias("workload_kind"),
                                             pl.col(label).alias("workload"), pl.col("value").alias("replicas")))
        if replicas:
            rep = pl.concat(replicas).unique(["namespace", "workload_kind", "workload"])
            wl = wl.join(rep, on=["namespace", "workload_kind", "workload"], how="left")
        else:
            wl = wl.with_columns(pl.lit(None, pl.Float64).alias("replicas"))
        jobs = rows.get("kube_job_spec_parallelism")
        if jobs is not None and "job_name" in jobs.columns:
            # A CronJob runs its Jobs' parallelism: the largest seen among its Jobs in the window.
            cron = containers.filter(pl.col("workload_kind") == "CronJob").select(
                "namespace", "workload", pl.col("owner_name").cast(pl.String).alias("job_name")).unique()
            cron = cron.join(jobs.select("namespace", "job_name", "value"), on=["namespace", "job_name"]).group_by(
                "namespace", "workload").agg(pl.col("value").max().alias("_cron"))
            wl = wl.join(cron.with_columns(pl.lit("CronJob").alias("workload_kind")),
                         on=["namespace", "workload_kind", "workload"], how="left")
            wl = wl.with_columns(pl.coalesce("replicas", "_cron").alias("replicas")).drop("_cron")
        wl = wl.with_columns(
            pl.when(pl.col("workload_kind") == "Pod").then(1).otherwise(pl.col("replicas")).round(0).cast(pl.Int64)
            .alias("replicas"))
        wl = self._hpa(wl, rows)
        self._namespaces_frame = _namespaces(rows.get("ns_labels"))
        if not self._has("namespace_labels"):
            self.notes.missing("namespace_labels", None)
        return wl.drop("_pods").sort(["namespace", "workload_kind", "workload"])

    def _hpa(self, wl: pl.DataFrame, rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
        if not self._has("hpa"):
            self.notes.missing("hpa", "no HorizontalPodAutoscaler metrics (kube_horizontalpodautoscaler_*): "
                               "autoscaled workloads cannot be recognised; enable them in kube-state-metrics.")
            return wl
        key = ["namespace", "horizontalpodautoscaler"]
        info = rows.get("hpa_info")
        if info is not None:
            hpas = info.select(*key, pl.col("scaletargetref_kind").alias("workload_kind"),
                               pl.col("scaletargetref_name").alias("workload")).unique(key)
        else:
            # Without kube_horizontalpodautoscaler_info, assume the HPA is named after its target.
            names = [f.select(key) for t, f in rows.items() if t.startswith("hpa_") and "horizontalpodautoscaler" in f.columns]
            if not names:
                return wl
            hpas = pl.concat(names).unique().with_columns(pl.col("horizontalpodautoscaler").alias("workload"))
            hpas = hpas.join(wl.select("namespace", "workload", "workload_kind").filter(
                pl.col("workload_kind").is_in(["Deployment", "StatefulSet"])), on=["namespace", "workload"], how="inner")
        for tag_, col in (("hpa_min", "hpa_min_replicas"), ("hpa_max", "hpa_max_replicas")):
            frame = rows.get(tag_)
            if frame is not None:
                hpas = hpas.join(frame.select(*key, pl.col("value").round(0).cast(pl.Int64).alias(col)).unique(key),
                                 on=key, how="left")
        target = rows.get("hpa_target")
        if target is not None and "metric_name" in target.columns:
            kinds = {"utilization": "Utilization", "average": "AverageValue", "averagevalue": "AverageValue",
                     "value": "Value"}
            metrics = target.select(*key, pl.struct(
                pl.col("metric_name").alias("metric"),
                pl.col("metric_target_type").fill_null("").str.to_lowercase().replace_strict(
                    kinds, default=pl.col("metric_target_type")).alias("target_type"),
                pl.col("value").alias("target"),
            ).alias("m")).group_by(key).agg(pl.col("m").sort_by(pl.col("m").struct.field("metric")).alias("hpa_metrics"))
            hpas = hpas.join(metrics, on=key, how="left")
        hpas = hpas.rename({"horizontalpodautoscaler": "hpa_name"}).unique(["namespace", "workload_kind", "workload"])
        return wl.join(hpas, on=["namespace", "workload_kind", "workload"], how="left")

    def _nodes(self, containers: pl.DataFrame, devices: pl.DataFrame) -> pl.DataFrame:
        query = q.nodes(self.scope, self.window, self.step, self.present)
        rows = _tagged(*self.client.instant(query, self.t_end, "nodes")) if query else {}
        names = [containers.select(pl.col("node").cast(pl.String))]
        names += [f.select(pl.col("node")) for f in rows.values() if "node" in f.columns]
        if devices.height and not rows:
            # DCGM's Hostname is the node name only when the exporter is told so; trust it only
            # when kube-state-metrics says nothing about nodes.
            names.append(devices.select("node"))
        nodes = pl.concat(names).filter(pl.col("node").is_not_null() & (pl.col("node") != "")).unique()
        if not self._has("ksm_node_capacity"):
            self.notes.missing("node_capacity", "kube_node_status_capacity is missing: node sizes are absent.")
        for tag_, prefix in (("capacity", "cap"), ("allocatable", "alloc")):
            frame = rows.get(tag_)
            if frame is None:
                continue
            wide = frame.filter(pl.col("resource").is_in(["cpu", "memory", "nvidia_com_gpu"])).pivot(
                on="resource", index="node", values="value", aggregate_function="max")
            wide = wide.rename({c: f"_{prefix}_{c}" for c in wide.columns if c != "node"})
            nodes = nodes.join(wide, on="node", how="left")
        labels = _node_labels(rows.get("labels"))
        if labels is None:
            self.notes.missing("node_labels", "kube_node_labels is missing: instance type, zone and spot/on-demand "
                               "are unknown; run kube-state-metrics with --metric-labels-allowlist=nodes=[...].")
        else:
            nodes = nodes.join(labels, on="node", how="left")
        info = rows.get("info")
        if info is not None and "provider_id" in info.columns:
            nodes = nodes.join(info.select("node", pl.col("provider_id").alias("_provider_id")).unique("node"),
                               on="node", how="left")
        price = rows.get("price")
        if price is not None:
            cols = [c for c in ("instance_type", "region", "provider_id") if c in price.columns]
            nodes = nodes.join(price.select("node", pl.col("value").alias("hourly_price"),
                                            *[pl.col(c).alias(f"_oc_{c}") for c in cols]).unique("node"),
                               on="node", how="left")
        elif not self._has("opencost"):
            self.notes.missing("prices", "no OpenCost metrics (node_total_hourly_cost): node prices come from the "
                               "built-in catalog, not from your bill.")
        spot = rows.get("spot")
        if spot is not None:
            nodes = nodes.join(spot.select("node", pl.col("value").alias("_kc_spot")).unique("node"), on="node",
                               how="left")
        taints = rows.get("taint")
        if taints is not None and {"key", "effect"} <= set(taints.columns):
            nodes = nodes.join(taints.group_by("node").agg(pl.struct(
                pl.col("key"), (pl.col("label_value") if "label_value" in taints.columns else pl.lit(None, pl.String))
                .replace("", None).alias("value"), pl.col("effect")).alias("taints")), on="node", how="left")
            nodes = nodes.with_columns(pl.col("taints").fill_null([]))
        for tag_, col in (("first_seen", "first_seen"), ("last_seen", "last_seen")):
            frame = rows.get(tag_)
            if frame is not None:
                nodes = nodes.join(frame.select("node", _epoch_expr("value").alias(col)).unique("node"), on="node",
                                   how="left")
        if devices.height:
            per_node = devices.filter(pl.col("mig_profile").is_null()).group_by("node").agg(
                pl.col("device").n_unique().alias("_dcgm_count"), pl.col("model").drop_nulls().first().alias("_dcgm_model"),
                pl.col("memory_total").max().alias("_dcgm_mem"))
            any_model = devices.group_by("node").agg(pl.col("model").drop_nulls().first().alias("_dcgm_any_model"),
                                                     pl.col("mig_profile").is_not_null().any().alias("_dcgm_mig"))
            nodes = nodes.join(per_node, on="node", how="left").join(any_model, on="node", how="left")
        return _finish_nodes(nodes).sort("node")

    def _events(self, containers: pl.DataFrame) -> pl.DataFrame:
        """OOM kills and restarts: find the few containers whose counters grew, then when.

        One instant query over the window names the containers whose restart or OOM counter
        grew; only those are read as range queries (reading every container's counters at every
        step would cost the server as much as the CPU query).
        """
        key = ["namespace", "pod", "container"]
        frames = []
        query = q.event_candidates(self.scope, self.window, self.present)
        rows = _tagged(*self.client.instant(query, self.t_end, "restarted containers")) if query else {}

        def scoped(tag_: str) -> q.Scope | None:
            frame = rows.get(tag_)
            if frame is None or frame.height == 0 or "pod" not in frame.columns:
                return None
            frame = frame.filter(pl.col("pod").is_not_null() & pl.col("namespace").is_not_null())
            if frame.height > 2000:  # too many for a selector: read them all
                return self.scope
            return self.scope.only(frame["namespace"].to_list(), frame["pod"].to_list())

        def read(query: str, what: str, labels: list[str]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
            out = []
            for m in self.client.range(query, self.t_start, self.t_end, self.step, what):
                if m.labels:
                    lab = _labels_frame(m.labels, labels).with_row_index("series")
                    out.append((m.samples, lab.with_columns(pl.col("series").cast(pl.UInt32))))
            return out

        scope = scoped("restarts")
        if scope is not None:
            for samples, lab in read(q.restarts_with_reason(scope, self.step, self.scrape, self.engine),
                                     "container restarts", [*key, "reason"]):
                frames.append(samples.join(lab, on="series").select(
                    *key, pl.col("reason").fill_null("Restart"), "t", pl.lit("ksm").alias("_src")))
        scope = scoped("last_oom")
        if scope is not None:
            # No restart counter: an OOM is the first step of each run where the last termination is OOMKilled.
            for samples, lab in read(q.oom_kills_ksm(scope), "OOM kills", key):
                runs = samples.sort(["series", "t"]).filter(
                    pl.col("t").diff().over("series").fill_null(float("inf")) > 1.5 * self.step)
                frames.append(runs.join(lab, on="series").select(
                    *key, pl.lit("OOMKilled").alias("reason"), "t", pl.lit("ksm").alias("_src")))
        scope = scoped("oom")
        if scope is not None:
            for samples, lab in read(q.counter_increase(q.OOM_EVENTS, scope, self.step, self.scrape, self.engine),
                                     "OOM events", key):
                frames.append(samples.join(lab, on="series").select(
                    *key, pl.lit("OOMKilled").alias("reason"), "t", pl.lit("cadvisor").alias("_src")))
        if not self._has("oom"):
            self.notes.missing("events", "no OOM metrics (container_oom_events_total or "
                               "kube_pod_container_status_last_terminated_reason): OOM kills are not recorded.")
        if not frames:
            return EVENTS.empty()
        ev = pl.concat(frames, how="vertical").filter(pl.col("pod").is_not_null())
        wanted = pl.concat([f.select(key) for t, f in rows.items() if set(key) <= set(f.columns)]).unique()
        ev = ev.join(wanted, on=key, how="semi")
        # cAdvisor and kube-state-metrics both see most OOM kills: keep one per container within two steps.
        ev = ev.sort([*key, "reason", "t", "_src"], descending=[False, False, False, False, False, True])
        close = (pl.col("t").diff().over([*key, "reason"]).fill_null(float("inf")) <= 2 * self.step) & (
            pl.col("reason") == "OOMKilled") & (pl.col("_src") != pl.col("_src").shift().over([*key, "reason"]))
        ev = ev.filter(~close)
        limits = containers.select(*key, "workload_kind", "workload", "memory_limit").unique(key)
        return ev.join(limits, on=key, how="left").select(
            _epoch_expr("t").alias("timestamp"), "namespace", pl.col("workload_kind").fill_null("Pod"),
            pl.coalesce("workload", "pod").alias("workload"), "pod", "container", "reason",
            pl.when(pl.col("reason") == "OOMKilled").then(137).otherwise(None).cast(pl.Int64).alias("exit_code"),
            "memory_limit").sort(["timestamp", *key])

    def _gpus(self, devices: pl.DataFrame, gpu_usage: pl.DataFrame) -> pl.DataFrame:
        if devices.height == 0:
            return devices
        # The container a device is assigned to at the end of the window (none if its pod ended).
        end = _dt(self.t_end - self.step)
        assigned = (gpu_usage.filter(pl.col("timestamp") >= end).sort("timestamp")
                    .group_by("device").agg(pl.col("namespace", "pod", "container").last())
                    .with_columns(pl.col("device").cast(pl.String), pl.col("namespace", "pod", "container").cast(pl.String)))
        return devices.join(assigned, on="device", how="left").unique(["node", "device"]).sort(["node", "device"])

    _namespaces_frame: pl.DataFrame | None = None


_USAGE_COLUMNS = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "device",
                  "value"]
_DEVICE_SCHEMA = {"node": pl.String, "device": pl.String, "gpu_index": pl.Int64, "model": pl.String,
                  "mig_profile": pl.String, "memory_total": pl.Int64}


# ---------------------------------------------------------------------------------------------
# Helpers: label sets -> frames


def _labels_frame(labels: list[dict[str, str]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame({c: pl.Series(c, [lab.get(c) for lab in labels], dtype=pl.String) for c in columns})


def _tagged(labels: list[dict[str, str]], values: np.ndarray) -> dict[str, pl.DataFrame]:
    """Split a ``kt``-tagged union answer into one frame per tag (all labels as columns + value)."""
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab.get("kt", ""), []).append(i)
    out = {}
    for tag_, idx in groups.items():
        cols = sorted({k for i in idx for k in labels[i] if k != "kt"})
        # A label called "value" (kube_node_spec_taint has one) becomes "label_value".
        data = {("label_value" if c == "value" else c): pl.Series(c, [labels[i].get(c) for i in idx], dtype=pl.String)
                for c in cols}
        data["value"] = pl.Series("value", values[idx], dtype=pl.Float64)
        out[tag_] = pl.DataFrame(data)
    return out


def _empty(columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in columns})


def _usage_empty() -> pl.DataFrame:
    return USAGE.empty()


def _device_expr() -> pl.Expr:
    mig = pl.col("GPU_I_ID").is_not_null() & (pl.col("GPU_I_ID") != "")
    return pl.when(mig).then(pl.concat_str(pl.col("UUID"), pl.lit("/"), pl.col("GPU_I_ID"))).otherwise(pl.col("UUID"))


def _dcgm_labels(labels: list[dict[str, str]]) -> pl.DataFrame:
    frame = _labels_frame(labels, list(q.DCGM_LABELS))
    return frame.select("namespace", "pod", "container", _device_expr().alias("device"),
                        pl.coalesce(pl.col("Hostname").replace("", None), pl.col("hostname").replace("", None))
                        .alias("node"))


def _devices(labels: list[dict[str, str]], values: np.ndarray) -> pl.DataFrame:
    rows = _tagged(labels, values)
    frames = []
    for tag_, frame in rows.items():
        for c in ("UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE", "Hostname", "hostname"):
            if c not in frame.columns:
                frame = frame.with_columns(pl.lit(None, pl.String).alias(c))
        frames.append(frame.with_columns(pl.lit(tag_).alias("kt")))
    if not frames:
        return pl.DataFrame(schema=_DEVICE_SCHEMA)
    all_ = pl.concat([f.select("kt", "UUID", "GPU_I_ID", "gpu", "modelName", "GPU_I_PROFILE", "Hostname", "hostname",
                               "value") for f in frames])
    all_ = all_.with_columns(
        _device_expr().alias("device"),
        pl.coalesce(pl.col("Hostname").replace("", None), pl.col("hostname").replace("", None)).alias("node"))
    per = all_.group_by(["node", "device"]).agg(
        pl.col("gpu").drop_nulls().first().cast(pl.Int64, strict=False).alias("gpu_index"),
        pl.col("modelName").drop_nulls().first().alias("model"),
        pl.col("GPU_I_PROFILE").drop_nulls().first().replace("", None).alias("mig_profile"),
        pl.when(pl.col("kt") == "total").then(pl.col("value")).max().alias("_mib"))
    out = per.with_columns((pl.col("_mib") * MIB).round(0).cast(pl.Int64).alias("memory_total"))
    return out.filter(pl.col("device").is_not_null() & pl.col("node").is_not_null()).select(list(_DEVICE_SCHEMA))


# Well-known label keys, so kube_node_labels' / kube_namespace_labels' sanitized names
# (label_<key with every non-alphanumeric as _>) can be read back. Other keys stay sanitized
# (e.g. cost-center -> cost_center): the original cannot be recovered from the metric.
KNOWN_NODE_LABELS = (
    "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type", "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
    "karpenter.sh/capacity-type", "karpenter.sh/nodepool", "karpenter.k8s.aws/instance-gpu-name",
    "eks.amazonaws.com/capacityType", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-spot",
    "cloud.google.com/gke-preemptible", "cloud.google.com/gke-nodepool", "cloud.google.com/gke-provisioning",
    "kubernetes.azure.com/scalesetpriority", "kubernetes.azure.com/agentpool", "lifecycle",
    "node.kubernetes.io/lifecycle", "kops.k8s.io/instancegroup", "node-role.kubernetes.io/control-plane",
    "nvidia.com/gpu.count", "nvidia.com/gpu.product", "nvidia.com/gpu.memory", "nvidia.com/gpu.present",
    "nvidia.com/mig.strategy", "nvidia.com/mig.config", "nvidia.com/gpu.sharing-strategy", "nvidia.com/gpu.replicas",
    "nvidia.com/mps.capable", "nvidia.com/device-plugin.config", "nvidia.com/gpu.deploy.device-plugin",
    "kubernetes.io/metadata.name", "app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
)
_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")
_KNOWN = {("label_" + _SANITIZE.sub("_", k)).lower(): k for k in KNOWN_NODE_LABELS}


def _label_key(column: str) -> str:
    return _KNOWN.get(column.lower(), column.removeprefix("label_"))


def _node_labels(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    if frame is None or "node" not in frame.columns:
        return None
    cols = [c for c in frame.columns if c.startswith("label_")]
    frame = frame.unique("node", keep="last")
    if not cols:
        return frame.select("node", pl.lit([], dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String})))
                            .alias("labels"))
    long = frame.select("node", *cols).unpivot(index="node", on=cols, variable_name="_col", value_name="value").filter(
        pl.col("value").is_not_null() & (pl.col("value") != ""))
    keys = {c: _label_key(c) for c in cols}
    long = long.with_columns(pl.col("_col").replace_strict(keys, return_dtype=pl.String).alias("key"))
    return frame.select("node").join(
        long.sort(["node", "key"]).group_by("node").agg(pl.struct("key", "value").alias("labels")), on="node",
        how="left")


def _namespaces(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    if frame is None or "namespace" not in frame.columns:
        return None
    cols = [c for c in frame.columns if c.startswith("label_")]
    frame = frame.unique("namespace", keep="last")
    if not cols:
        return frame.select("namespace")
    long = frame.select("namespace", *cols).unpivot(index="namespace", on=cols, variable_name="_col",
                                                     value_name="value").filter(
        pl.col("value").is_not_null() & (pl.col("value") != ""))
    keys = {c: _label_key(c) for c in cols}
    long = long.with_columns(pl.col("_col").replace_strict(keys, return_dtype=pl.String).alias("key"))
    return frame.select("namespace").join(
        long.sort(["namespace", "key"]).group_by("namespace").agg(pl.struct("key", "value").alias("labels")),
        on="namespace", how="left")


def _label(name: str) -> pl.Expr:
    """The value of node label ``name`` from the ``labels`` list column (null if absent)."""
    return (pl.col("labels").list.eval(pl.element().filter(pl.element().struct.field("key") == name)
                                       .struct.field("value")).list.first())


def _finish_nodes(nodes: pl.DataFrame) -> pl.DataFrame:
    for col, dtype in (("labels", pl.List(pl.Struct({"key": pl.String, "value": pl.String}))),
                       ("_cap_cpu", pl.Float64), ("_cap_memory", pl.Float64), ("_cap_nvidia_com_gpu", pl.Float64),
                       ("_alloc_cpu", pl.Float64), ("_alloc_memory", pl.Float64), ("_provider_id", pl.String),
                       ("_oc_instance_type", pl.String), ("_oc_region", pl.String), ("_oc_provider_id", pl.String),
                       ("hourly_price", pl.Float64), ("_kc_spot", pl.Float64), ("_dcgm_count", pl.UInt32),
                       ("_dcgm_model", pl.String), ("_dcgm_mem", pl.Int64), ("_dcgm_any_model", pl.String),
                       ("_dcgm_mig", pl.Boolean)):
        if col not in nodes.columns:
            nodes = nodes.with_columns(pl.lit(None, dtype).alias(col))
    low = lambda e: e.str.to_lowercase()
    cap_type = (
        pl.when(low(_label("karpenter.sh/capacity-type")).is_in(["spot", "on-demand", "reserved"]))
        .then(low(_label("karpenter.sh/capacity-type")))
        .when(low(_label("eks.amazonaws.com/capacityType")) == "spot").then(pl.lit("spot"))
        .when(low(_label("eks.amazonaws.com/capacityType")) == "on_demand").then(pl.lit("on-demand"))
        .when((low(_label("cloud.google.com/gke-spot")) == "true")
              | (low(_label("cloud.google.com/gke-preemptible")) == "true")).then(pl.lit("spot"))
        .when(low(_label("kubernetes.azure.com/scalesetpriority")) == "spot").then(pl.lit("spot"))
        .when(low(_label("lifecycle")) == "ec2spot").then(pl.lit("spot"))
        .when(low(_label("node.kubernetes.io/lifecycle")) == "spot").then(pl.lit("spot"))
        .when(pl.col("_kc_spot") == 1).then(pl.lit("spot"))
        .when(pl.col("_kc_spot") == 0).then(pl.lit("on-demand"))
        .otherwise(pl.lit("unknown"))
    )
    provider_id = pl.coalesce("_provider_id", "_oc_provider_id").fill_null("")
    provider = (
        pl.when(provider_id.str.starts_with("aws")).then(pl.lit("aws"))
        .when(provider_id.str.starts_with("gce")).then(pl.lit("gcp"))
        .when(provider_id.str.starts_with("azure")).then(pl.lit("azure"))
        .when(_label("eks.amazonaws.com/capacityType").is_not_null()
              | _label("karpenter.k8s.aws/instance-gpu-name").is_not_null()).then(pl.lit("aws"))
        .when(_label("cloud.google.com/gke-nodepool").is_not_null()).then(pl.lit("gcp"))
        .when(_label("kubernetes.azure.com/agentpool").is_not_null()).then(pl.lit("azure"))
        .otherwise(pl.lit("unknown"))
    )
    gpu_label = _label("nvidia.com/gpu.count").cast(pl.Int64, strict=False)
    replicas = _label("nvidia.com/gpu.replicas").cast(pl.Int64, strict=False)
    cap_gpu = pl.col("_cap_nvidia_com_gpu").round(0).cast(pl.Int64)
    out = nodes.with_columns(
        pl.coalesce(_label("node.kubernetes.io/instance-type"), _label("beta.kubernetes.io/instance-type"),
                    "_oc_instance_type").alias("instance_type"),
        provider.alias("provider"),
        pl.coalesce(_label("topology.kubernetes.io/region"), _label("failure-domain.beta.kubernetes.io/region"),
                    "_oc_region").alias("region"),
        pl.coalesce(_label("topology.kubernetes.io/zone"), _label("failure-domain.beta.kubernetes.io/zone"))
        .alias("zone"),
        cap_type.alias("capacity_type"),
        pl.col("_cap_cpu").alias("cpu_capacity"),
        pl.col("_alloc_cpu").alias("cpu_allocatable"),
        pl.col("_cap_memory").round(0).cast(pl.Int64).alias("memory_capacity"),
        pl.col("_alloc_memory").round(0).cast(pl.Int64).alias("memory_allocatable"),
        pl.coalesce(gpu_label, pl.col("_dcgm_count").cast(pl.Int64),
                    pl.when(replicas.is_null()).then(cap_gpu),
                    # Known capacity or labels without any GPU: none.
                    pl.when(pl.col("_cap_cpu").is_not_null() | pl.col("labels").is_not_null()).then(pl.lit(0)))
        .alias("gpu_count"),
        pl.coalesce(_label("nvidia.com/gpu.product"), "_dcgm_model", "_dcgm_any_model").alias("gpu_model"),
        pl.coalesce((_label("nvidia.com/gpu.memory").cast(pl.Int64, strict=False) * MIB), "_dcgm_mem")
        .alias("gpu_memory"),
        pl.coalesce(_label("nvidia.com/mig.strategy"),
                    pl.when(pl.col("_dcgm_mig")).then(pl.lit("mixed")),
                    pl.when(pl.coalesce(gpu_label, pl.col("_dcgm_count").cast(pl.Int64), cap_gpu) > 0)
                    .then(pl.lit("none"))).alias("mig_strategy"),
        _label("nvidia.com/mig.config").alias("mig_config"),
        _label("nvidia.com/gpu.sharing-strategy").alias("gpu_sharing"),
        replicas.alias("gpu_replicas"),
        pl.when(pl.col("hourly_price").is_not_null()).then(pl.lit("opencost node_total_hourly_cost"))
        .alias("price_source"),
    )
    return out.drop([c for c in out.columns if c.startswith("_")])


_GPU_RESOURCE = re.compile(r"^(nvidia|amd)_com_(.+)$")
_MIG = re.compile(r"^mig_(\d+)g_(\d+)gb(_me)?$")


def _resource_name(sanitized: str | None) -> str | None:
    """kube-state-metrics' sanitized extended-resource name back to the Kubernetes one."""
    if sanitized is None:
        return None
    m = _GPU_RESOURCE.match(sanitized)
    if not m:
        return sanitized
    vendor, rest = m.groups()
    mig = _MIG.match(rest)
    if mig:
        return f"{vendor}.com/mig-{mig[1]}g.{mig[2]}gb" + ("+me" if mig[3] else "")
    return f"{vendor}.com/" + rest.replace("_", ".")


# ---------------------------------------------------------------------------------------------
# Helpers: time


def _choose_step(span: float, scrape: float, requested: float | None, notes: _Notes) -> float:
    """The usage resolution: a multiple of the scrape interval; see ``collect_prometheus``."""
    if requested is not None:
        if requested < scrape:
            notes.warnings.append(f"--step {requested:g}s is finer than the scrape interval ({scrape:g} s); "
                                  f"using {scrape:g} s.")
        return float(max(math.ceil(requested / scrape - 1e-9), 1) * scrape)
    target = max(scrape, span / DEFAULT_POINTS, span / MAX_POINTS_PER_SERIES)
    k = max(math.ceil(target / scrape - 1e-9), 1)
    while True:
        step = k * scrape
        if (step < 60 and 60 % step == 0) or step % 60 == 0 or k > 1000:
            return float(step)
        k += 1


_NICE = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 300, 600, 900, 1800, 3600)


def _nice_interval(seconds: float) -> float:
    return float(min(_NICE, key=lambda n: abs(math.log(n) - math.log(max(seconds, 0.5)))))


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise InputError(f"the {what} {value!r} is not a duration (e.g. 5m, 14d).")
    if not seconds > 0:
        raise InputError(f"the {what} must be positive.")
    return seconds


def _epoch(value: datetime) -> float:
    if not isinstance(value, datetime):
        raise InputError(f"{value!r} is not a date and time.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _epoch_series(seconds: pl.Series) -> pl.Series:
    return (seconds * 1_000_000).round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _epoch_expr(column: str) -> pl.Expr:
    return (pl.col(column) * 1_000_000).round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
