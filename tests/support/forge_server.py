"""A loopback stand-in for the GitHub REST API and the GitLab REST v4 API, for `kubetune pr` tests.

It keeps pull requests (GitHub) and merge requests (GitLab) in memory and answers the calls
kubetune makes as the real services do, with their status codes and error bodies: 401 for a
missing or wrong token (``Bad credentials`` / ``401 Unauthorized``), 404 for an unknown
repository or project, 422 ``A pull request already exists for owner:branch`` (GitHub) and 409
``Another open merge request already exists`` (GitLab), 422 ``head`` invalid when the branch is
not in the bare remote. ``faults`` queues canned answers for the next matching requests (e.g. a
403 secondary rate limit with ``Retry-After: 1``). Every request is recorded (method, path,
query, headers, JSON body) so tests can assert what was sent, and that nothing leaked.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    path_pattern: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class ForgeServer:
    """``with ForgeServer(token="t", repos={"acme/gitops"}, bare=path) as srv: srv.url``."""

    def __init__(self, token: str, repos: set[str], bare: Path | None = None):
        self.token = token
        self.repos = set(repos)
        self.bare = bare
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.pulls: dict[str, list[dict[str, Any]]] = {r: [] for r in repos}
        self.comments: list[tuple[str, int, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                rec = Recorded(self.command, parsed.path, dict(urllib.parse.parse_qsl(parsed.query)),
                               dict(self.headers.items()), body)
                with server.lock:
                    server.requests.append(rec)
                    status, payload, headers = server.answer(rec)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- helpers for tests
    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]

    def _branch_exists(self, branch: str) -> bool:
        if self.bare is None:
            return True
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=self.bare,
                              capture_output=True, check=False)
        return done.returncode == 0

    # -- the protocol
    def answer(self, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        for f in self.faults:
            if f.times > 0 and f.method == r.method and re.search(f.path_pattern, r.path):
                f.times -= 1
                return f.status, f.body, f.headers
        if r.path.startswith("/api/v4/"):
            return self._gitlab(r)
        return self._github(r)

    def _github(self, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        if r.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                         "status": "401"}, {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", r.path)
        if not m or m.group(1) not in self.repos:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}, {}
        repo, rest = m.group(1), m.group(2) or ""
        owner = repo.split("/")[0]
        pulls = self.pulls[repo]
        if rest == "" and r.method == "GET":
            return 200, {"full_name": repo, "default_branch": "main"}, {}
        if rest == "/pulls" and r.method == "GET":
            head, base = r.query.get("head"), r.query.get("base")
            state = r.query.get("state", "open")
            return 200, [p for p in reversed(pulls) if state in ("all", p["state"]) and (head is None or p["_head"] == head)
                         and (base is None or p["base"]["ref"] == base)], {}
        if rest == "/pulls" and r.method == "POST":
            b = r.body or {}
            head = f"{owner}:{b.get('head')}"
            if any(p["_head"] == head and p["state"] == "open" for p in pulls):
                return 422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for {head}."}],
                    "status": "422"}, {}
            if not self._branch_exists(str(b.get("head"))):
                return 422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "field": "head", "code": "invalid"}], "status": "422"}, {}
            n = len(pulls) + 1
            pr = {"number": n, "state": "open", "title": b.get("title"), "body": b.get("body"), "_head": head,
                  "head": {"ref": b.get("head")}, "base": {"ref": b.get("base")}, "labels": [], "merged_at": None,
                  "html_url": f"https://github.example/{repo}/pull/{n}"}
            pulls.append(pr)
            return 201, pr, {}
        m2 = re.fullmatch(r"/(pulls|issues)/(\d+)(/labels|/comments)?", rest)
        if m2:
            n = int(m2.group(2))
            pr = next((p for p in pulls if p["number"] == n), None)
            if pr is None:
                return 404, {"message": "Not Found", "status": "404"}, {}
            if m2.group(1) == "pulls" and not m2.group(3) and r.method == "PATCH":
                pr.update({k: v for k, v in (r.body or {}).items() if k in ("title", "body", "state")})
                return 200, pr, {}
            if m2.group(3) == "/labels" and r.method == "POST":
                for name in (r.body or {}).get("labels", []):
                    if name not in [lb["name"] for lb in pr["labels"]]:
                        pr["labels"].append({"name": name})
                return 200, pr["labels"], {}
            if m2.group(3) == "/comments" and r.method == "GET":
                return 200, [{"id": i, "body": b} for i, (rp, k, b) in enumerate(self.comments) if (rp, k) == (repo, n)], {}
            if m2.group(3) == "/comments" and r.method == "POST":
                self.comments.append((repo, n, (r.body or {}).get("body", "")))
                return 201, {"id": len(self.comments), "body": (r.body or {}).get("body")}, {}
        return 404, {"message": "Not Found", "status": "404"}, {}

    def _gitlab(self, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        if r.headers.get("Private-Token", r.headers.get("PRIVATE-TOKEN")) != self.token:
            return 401, {"message": "401 Unauthorized"}, {}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)(/.*)?", r.path)
        project = urllib.parse.unquote(m.group(1)) if m else None
        if project not in self.repos:
            return 404, {"message": "404 Project Not Found"}, {}
        rest = m.group(2) or ""
        mrs = self.pulls[project]
        if rest == "" and r.method == "GET":
            return 200, {"id": 42, "path_with_namespace": project}, {}
        if rest == "/merge_requests" and r.method == "GET":
            q = r.query
            return 200, [x for x in reversed(mrs) if q.get("state", "all") in ("all", x["state"])
                         and x["source_branch"] == q.get("source_branch")
                         and q.get("target_branch") in (None, x["target_branch"])], {}
        if rest == "/merge_requests" and r.method == "POST":
            b = r.body or {}
            clash = next((x for x in mrs if x["state"] == "opened" and x["source_branch"] == b.get("source_branch")), None)
            if clash:
                return 409, {"message": [("Another open merge request already exists for this source branch: "
                                          f"!{clash['iid']}")]}, {}
            iid = len(mrs) + 1
            mr = {"iid": iid, "state": "opened", "title": b.get("title"), "description": b.get("description"),
                  "source_branch": b.get("source_branch"), "target_branch": b.get("target_branch"), "labels": [],
                  "web_url": f"https://gitlab.example/{project}/-/merge_requests/{iid}"}
            mrs.append(mr)
            return 201, mr, {}
        m2 = re.fullmatch(r"/merge_requests/(\d+)(/notes)?", rest)
        if m2:
            mr = next((x for x in mrs if x["iid"] == int(m2.group(1))), None)
            if mr is None:
                return 404, {"message": "404 Not found"}, {}
            if m2.group(2) and r.method == "GET":
                return 200, [{"id": i, "body": b} for i, (p, k, b) in enumerate(self.comments)
                             if (p, k) == (project, mr["iid"])], {}
            if m2.group(2) and r.method == "POST":
                self.comments.append((project, mr["iid"], (r.body or {}).get("body", "")))
                return 201, {"id": len(self.comments)}, {}
            if r.method == "PUT":
                b = r.body or {}
                mr.update({k: v for k, v in b.items() if k in ("title", "description")})
                for name in filter(None, str(b.get("add_labels") or "").split(",")):
                    if name not in mr["labels"]:
                        mr["labels"].append(name)
                return 200, mr, {}
        return 404, {"message": "404 Not found"}, {}
