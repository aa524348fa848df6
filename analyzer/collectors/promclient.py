"""Prometheus HTTP: how to reach it (``PrometheusConfig``) and a client with retries, splitting and a request log.

HTTP is a ``requests`` session set up here (auth, headers, TLS; docs/prometheus-http.md says why
not prometheus-api-client); retries are ours (backoff on connection errors, timeouts, 429 and
5xx; never on 4xx). Range answers are decoded by ``promjson`` straight into Polars, not into
per-sample Python objects. Secrets (token, password, header values) never appear in a message,
a log line or a ``repr``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analyzer import redact
from analyzer.collectors import promql as q
from analyzer.collectors.promjson import Matrix, ResponseError, decode_matrix, decode_strings, decode_vector, envelope
from analyzer.collectors.promrefusals import TooLarge, TooSlow, _clip, _error_info, _Split, _too_big
from analyzer.errors import InputError, KubetuneError

log = logging.getLogger("kubetune.prometheus")

ENV_TOKEN = "KUBETUNE_PROMETHEUS_TOKEN"
MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses range queries with more ("exceeded maximum resolution")
DEFAULT_POINTS = 4_032  # the automatic step aims at about this many points per series (14 d at 5 min)
DEFAULT_POINTS_PER_REQUEST = 5_000_000  # larger answers are split by time window: with `parallel` answers
# decoded at once, this bounds the client's peak memory (an answer is ~25 bytes a point, decoding copies it twice)

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
    compress: bool | None = None  # gzip; default: off on loopback and private networks (see _near), on elsewhere
    server_aggregation: bool | None = None  # max by on the server; default: only when targets duplicate series
    parallel: int = 3  # queries in flight: the client decodes one answer while Prometheus computes the next
    spec_grid: float = 6 * 3600.0  # seconds between the points kube-state-metrics specs are read at (promlast); 0: exact

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
        if not self.spec_grid >= 0:
            raise InputError("the grid step for kube-state-metrics specs cannot be negative.")
        if not 1 <= self.parallel <= 16:
            raise InputError("the number of parallel Prometheus queries must be between 1 and 16.")
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


@contextmanager
def query_pool(workers: int, client: PrometheusClient | None = None) -> Iterator[ThreadPoolExecutor]:
    """Threads for overlapping queries. On an error or Ctrl-C the queries not yet started are
    cancelled and answers in flight are not waited for (``with ThreadPoolExecutor`` would wait for
    every submitted query, each up to the HTTP timeout, before the error or the interrupt got out);
    ``client`` then sends nothing more, so a task already running (one that sends several requests
    in turn) stops at its next request instead of querying on for an answer nobody reads."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubetune-prom")
    try:
        yield pool
    except BaseException:
        if client is not None:
            client.abandon()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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
        for value in (*config.headers.values(), token):
            redact.register(str(value) if value else None)
        redact.register(config.password, basic_user=config.username)
        redact.register(urlsplit(self.base).password)
        host = (urlsplit(self.base).hostname or "").lower()
        compress = config.compress if config.compress is not None else not _near(host)
        headers["Accept-Encoding"] = "gzip" if compress else "identity"
        session.headers.update(headers)
        if config.ca_bundle:
            session.verify = config.ca_bundle
        auth = (config.username, config.password) if config.username is not None else None
        # Retries are done here (so a timed-out query is not silently repeated by urllib3).
        session.mount(self.base, HTTPAdapter(max_retries=Retry(total=0, read=False, raise_on_status=False)))
        if config.insecure:
            session.verify = False
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session = session
        self.auth = auth
        self._slots = threading.BoundedSemaphore(config.parallel)  # bounds the requests in flight across threads
        self._abandoned = threading.Event()

    def close(self) -> None:
        self.session.close()

    def abandon(self) -> None:
        """The collection failed or was interrupted: every later request raises at once (a client
        serves one collection; ``collect_prometheus`` makes one per call unless given one)."""
        self._abandoned.set()

    # -- one request, with retries --------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any], what: str, *, splittable: bool = False,
            split_on_timeout: bool = False) -> bytes:
        """One HTTP request with our retries; the body on 200, else one sentence saying what to change.

        Length: the retry loop reads top to bottom, one branch per outcome (TLS, timeout, connection,
        status code), each with its own message.
        """
        attempts = self.config.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                delay = min(self.config.backoff * 2 ** (attempt - 1), 30.0)
                log.info("retrying the %s query in %.1f s (%s)", what, delay, last)
                time.sleep(delay)
            t0 = time.perf_counter()
            try:
                with self._slots:
                    if self._abandoned.is_set():  # checked once a slot is free: the wait may have been long
                        raise KubetuneError(f"the collection from {self.where} was abandoned before the {what} query.")
                    t0 = time.perf_counter()
                    if sum(len(str(v)) for v in params.values()) > 4000 and path != "/api/v1/series":  # long selectors: a form body, not the URL
                        resp = self.session.post(self.base + path, data=params, auth=self.auth,
                                                 timeout=self.config.timeout)
                    else:
                        resp = self.session.get(self.base + path, params=params, auth=self.auth,
                                                timeout=self.config.timeout)
                    body = resp.content
            except requests.exceptions.SSLError:
                self._record(what, path, t0, 0, 0)
                raise InputError(
                    f"the TLS handshake with Prometheus at {self.where} failed; pass its CA bundle "
                    "(--ca-bundle) or, for a test server only, --insecure-skip-verify."
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
                    f"(--token or {ENV_TOKEN}) or the basic-auth credentials."
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
                f"({attempts} tries); raise --timeout or shorten --history."
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
        try:
            body = self.get("/api/v1/query", {"query": query, "time": _ts(at)}, what, splittable=True)
        except _Split as exc:
            raise TooLarge(self.where, what, str(exc), 1) from None
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
            body = self.get("/api/v1/query_range", params, what, splittable=True, split_on_timeout=True)
        except _Split as exc:
            if exc.timeout and (depth >= 2 or end <= start):  # still too slow in quarters: fewer namespaces
                raise TooSlow(self.where, what, str(exc), 2 ** depth) from None
            if exc.series or (exc.timeout is False and (depth >= 5 or end <= start)):
                raise TooLarge(self.where, what, str(exc), 2 ** depth) from None
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


_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".local", ".internal", ".localdomain")


def _near(host: str) -> bool:
    """Whether Prometheus is on this machine or a private network (an in-cluster Service, a VPC):
    there its answers go uncompressed. Gzip makes Prometheus spend 3-4x the CPU of the query itself
    on a bulk answer (a 56 MB CPU-usage answer: 3.8 s with gzip, 0.9 s without; docs/prometheus-http.md),
    while a private network moves those bytes in a fraction of a second. Public endpoints keep gzip."""
    import ipaddress

    host = host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host or host.endswith(_CLUSTER_SUFFIXES):
            return True  # a short Service name or cluster DNS
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return False
    return address.is_private or address.is_loopback or address.is_link_local


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


def _ts(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _iso_short(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


