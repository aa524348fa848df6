"""A loopback HTTP proxy in front of a real Prometheus that injects faults, for tests.

It forwards every request unchanged (headers included) and answers unchanged, except where a
``Fault`` rule matches the request: then it drops the connection, stalls, answers an HTTP
error, sends garbage or a truncated body, or rewrites the real answer (NaN/Inf samples,
gaps). Rules match on a substring of the decoded path+query and apply ``times`` times
(``None`` = always). The proxy records what it saw, so tests can count requests and check the
Authorization header arrived without anything printing it.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    match: str | tuple[str, ...]  # substring(s) of the unquoted path + query, all required
    action: str  # drop | stall | status | garbage | truncate | rewrite
    times: int | None = 1
    status: int = 500
    body: bytes = b""
    seconds: float = 0.0
    rewrite: Callable[[bytes], bytes] | None = None
    hits: int = 0

    def wants(self, target: str) -> bool:
        needles = (self.match,) if isinstance(self.match, str) else self.match
        return all(n in target for n in needles) and (self.times is None or self.hits < self.times)


@dataclass
class Seen:
    method: str
    target: str
    authorization: str | None
    fault: str | None


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    down: bool = False  # when True every request is dropped (server gone)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.upstream)
        self._host, self._port = parts.hostname, parts.port
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # never print request lines (or anything) to stderr
                return

            def do_GET(self):
                try:
                    proxy._handle(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
                    self.close_connection = True

            do_POST = do_GET

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # quiet: faults are the point
                return

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, *faults: Fault) -> FaultProxy:
        with self._lock:
            self.faults = list(faults)
            self.seen = []
            self.down = False
        return self

    def count(self, substring: str = "") -> int:
        return sum(1 for s in self.seen if substring in s.target)

    # -- internals ---------------------------------------------------------------------------------

    def _pick(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.wants(target):
                    fault.hits += 1
                    return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        payload = h.rfile.read(length) if length else b""
        target = urllib.parse.unquote_plus(h.path)
        if payload:
            target += "?" + urllib.parse.unquote_plus(payload.decode("latin-1"))
        fault = None if self.down else self._pick(target)
        with self._lock:
            self.seen.append(Seen(h.command, target, h.headers.get("Authorization"),
                                  "down" if self.down else fault.action if fault else None))
        if self.down or (fault and fault.action == "drop"):
            _drop(h)
            return
        if fault and fault.action == "stall":
            time.sleep(fault.seconds)
        if fault and fault.action == "status":
            _send(h, fault.status, fault.body or b'{"status":"error","errorType":"server_error","error":"injected"}')
            return
        if fault and fault.action == "garbage":
            _send(h, 200, fault.body or b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{')
            return
        status, headers, body = self._forward(h, payload)
        if fault and fault.action == "rewrite" and fault.rewrite and status == 200:
            body = fault.rewrite(body)
        if fault and fault.action == "truncate":
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        _send(h, status, body, headers.get("Content-Type", "application/json"))

    def _forward(self, h: BaseHTTPRequestHandler, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=600)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection", "accept-encoding")}
        headers["Accept-Encoding"] = "identity"
        try:
            conn.request(h.command, h.path, body=payload or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json") -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _drop(h: BaseHTTPRequestHandler) -> None:
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
