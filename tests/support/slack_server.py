"""A loopback Slack incoming-webhook server speaking Slack's protocol, for tests.

Slack answers ``POST /services/T…/B…/SECRET`` with a JSON body holding ``text`` (or ``blocks``) by
``200 ok`` (text/plain); a bad or revoked URL by ``403 invalid_token`` or ``404 no_service``; a body
without text by ``400 invalid_payload`` (api.slack.com/messaging/webhooks#handling_errors).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlackWebhookServer:
    def __init__(self, path: str = "/services/T000/B000/s3cr3tw3bh00k", refuse: str | None = None):
        self.path, self.refuse = path, refuse
        self.messages: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != owner.path:
                    return self._answer(404, "no_service")
                if owner.refuse == "invalid_token":
                    return self._answer(403, "invalid_token")
                try:
                    payload = json.loads(raw)
                except ValueError:
                    return self._answer(400, "invalid_payload")
                if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
                    return self._answer(400, "invalid_payload")
                if "application/json" not in (self.headers.get("Content-Type") or ""):
                    return self._answer(400, "invalid_payload")
                owner.messages.append(payload)
                return self._answer(200, "ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def __enter__(self) -> SlackWebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
