"""Open or update the pull request (GitHub REST) or merge request (GitLab REST v4).

Both speak plain HTTPS JSON through urllib. The token comes from the environment
(``GITHUB_TOKEN``/``GITLAB_TOKEN``), is registered with ``analyzer.redact`` as soon as it is read,
and only ever travels in a request header; every error message is redacted. Rate limits (429, or
403 with ``Retry-After`` / no remaining quota) are waited out up to ``max_wait`` seconds, then
reported. A create that races another ("already exists": GitHub 422, GitLab 409) turns into an
update of the existing one, so a run never opens a second pull request for the branch.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Any

from analyzer.errors import InputError, KubetuneError
from analyzer.redact import redact, register


class ForgeError(KubetuneError):
    """The GitHub/GitLab API refused or failed (exit 1)."""


@dataclass
class Proposal:
    """A pull/merge request as the forge reports it."""

    number: int
    url: str
    title: str = ""
    body: str = ""
    labels: list[str] = field(default_factory=list)
    created: bool = False  # opened by this call (not found, or found after an "already exists")


class _Client:
    name = "forge"

    def __init__(self, api_url: str, token: str, max_wait: float = 60.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.max_wait = max_wait
        self.requests = 0

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> tuple[int, Any]:
        url = self.api_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        waited = 0.0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers={
                **self.headers(), "User-Agent": "kubetune", **({"Content-Type": "application/json"} if data else {})})
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, raw, hdrs = resp.status, resp.read(), resp.headers
            except urllib.error.HTTPError as exc:
                status, raw, hdrs = exc.code, exc.read(), exc.headers
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ForgeError(redact(f"cannot reach the {self.name} API at {self.api_url}: {reason}.")) from None
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            wait = _rate_limit_wait(status, hdrs)
            if wait is not None:
                if waited + wait > self.max_wait:
                    raise ForgeError(f"the {self.name} API is rate limiting kubetune (asked to wait {wait:.0f} s, "
                                     f"more than {self.max_wait:.0f} s in all); run again later.")
                time.sleep(wait)
                waited += wait
                continue
            return status, payload

    def fail(self, status: int, payload: Any, what: str) -> ForgeError:
        message = _message(payload)
        if status == 401:
            return ForgeError(f"the {self.name} API rejected the token in {self.token_env} (401 {message}).")
        if status == 403:
            return ForgeError(redact(f"the {self.name} API refused {what} (403 {message}): the token lacks a "
                                     "permission it needs."))
        if status == 404:
            return ForgeError(redact(f"the {self.name} API answered 404 for {what}: the project does not exist or the "
                                     f"token in {self.token_env} cannot see it."))
        return ForgeError(redact(f"the {self.name} API failed {what} ({status} {message})."))

    token_env = "TOKEN"


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        msg = payload.get("message") or payload.get("error") or ""
        errors = payload.get("errors")
        if isinstance(errors, list) and errors:
            extra = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            msg = f"{msg}: {extra}" if msg else extra
        return redact(str(msg if not isinstance(msg, list) else "; ".join(map(str, msg)))[:300])
    return ""


def _rate_limit_wait(status: int, headers: Any) -> float | None:
    if status not in (403, 429):
        return None
    retry = headers.get("Retry-After") if headers else None
    if retry is not None:
        try:
            return max(0.0, float(retry))
        except ValueError:
            return 60.0
    if status == 429:
        return 60.0
    if headers and headers.get("X-RateLimit-Remaining") == "0" and headers.get("X-RateLimit-Reset"):
        try:
            return max(0.0, float(headers["X-RateLimit-Reset"]) - time.time())
        except ValueError:
            return None
    return None


def _already_exists(payload: Any) -> bool:
    return "already exists" in json.dumps(payload).lower()


class GitHub(_Client):
    name = "GitHub"
    token_env = "GITHUB_TOKEN"

    def __init__(self, repo: str, api_url: str, token: str, max_wait: float = 60.0):
        super().__init__(api_url, token, max_wait)
        if repo.count("/") != 1:
            raise InputError(f"--github {repo} must be OWNER/REPO.")
        self.repo = repo
        self.owner = repo.split("/")[0]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28"}

    def _p(self, data: dict[str, Any]) -> Proposal:
        return Proposal(int(data["number"]), str(data.get("html_url", "")), data.get("title") or "", data.get("body") or "",
                        [lb["name"] if isinstance(lb, dict) else str(lb) for lb in data.get("labels") or []])

    def check(self) -> None:
        status, payload = self.call("GET", f"/repos/{self.repo}")
        if status != 200:
            raise self.fail(status, payload, f"repository {self.repo}")

    def find(self, branch: str, base: str, declined: bool = False) -> Proposal | None:
        """The open pull request for the branch; with ``declined``, the last one closed unmerged."""
        status, payload = self.call("GET", f"/repos/{self.repo}/pulls", query={
            "head": f"{self.owner}:{branch}", "base": base, "state": "closed" if declined else "open"})
        if status != 200:
            raise self.fail(status, payload, f"listing pull requests of {self.repo}")
        found = [p for p in payload or [] if not (declined and p.get("merged_at"))]
        return self._p(found[0]) if found else None

    def create(self, branch: str, base: str, title: str, body: str) -> Proposal:
        status, payload = self.call("POST", f"/repos/{self.repo}/pulls",
                                    {"title": title, "head": branch, "base": base, "body": body})
        if status == 422 and _already_exists(payload):
            found = self.find(branch, base)
            if found is not None:
                return self.update(found, title, body)
        if status != 201:
            raise self.fail(status, payload, f"opening a pull request on {self.repo}")
        return replace(self._p(payload), created=True)

    def update(self, pr: Proposal, title: str, body: str) -> Proposal:
        if (pr.title, pr.body) == (title, body):
            return pr
        status, payload = self.call("PATCH", f"/repos/{self.repo}/pulls/{pr.number}", {"title": title, "body": body})
        if status != 200:
            raise self.fail(status, payload, f"updating pull request #{pr.number}")
        return self._p(payload)

    def label(self, pr: Proposal, labels: list[str]) -> None:
        missing = [lb for lb in labels if lb not in pr.labels]
        if missing:
            status, payload = self.call("POST", f"/repos/{self.repo}/issues/{pr.number}/labels", {"labels": missing})
            if status != 200:
                raise self.fail(status, payload, f"labelling pull request #{pr.number}")

    def has_comment(self, pr: Proposal, text: str) -> bool:
        status, payload = self.call("GET", f"/repos/{self.repo}/issues/{pr.number}/comments", query={"per_page": "100"})
        if status != 200:
            raise self.fail(status, payload, f"reading the comments of pull request #{pr.number}")
        return any(isinstance(c, dict) and c.get("body") == text for c in payload or [])

    def comment(self, pr: Proposal, text: str) -> None:
        status, payload = self.call("POST", f"/repos/{self.repo}/issues/{pr.number}/comments", {"body": text})
        if status != 201:
            raise self.fail(status, payload, f"commenting on pull request #{pr.number}")


class GitLab(_Client):
    name = "GitLab"
    token_env = "GITLAB_TOKEN"

    def __init__(self, project: str, api_url: str, token: str, max_wait: float = 60.0):
        super().__init__(api_url, token, max_wait)
        self.project = project
        self.pid = urllib.parse.quote(project, safe="")

    def headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token}

    def _p(self, data: dict[str, Any]) -> Proposal:
        return Proposal(int(data["iid"]), str(data.get("web_url", "")), data.get("title") or "",
                        data.get("description") or "", [str(lb) for lb in data.get("labels") or []])

    def check(self) -> None:
        status, payload = self.call("GET", f"/projects/{self.pid}")
        if status != 200:
            raise self.fail(status, payload, f"project {self.project}")

    def find(self, branch: str, base: str, declined: bool = False) -> Proposal | None:
        """The open merge request for the branch; with ``declined``, the last one closed unmerged."""
        status, payload = self.call("GET", f"/projects/{self.pid}/merge_requests", query={
            "source_branch": branch, "target_branch": base, "state": "closed" if declined else "opened"})
        if status != 200:
            raise self.fail(status, payload, f"listing merge requests of {self.project}")
        return self._p(payload[0]) if payload else None

    def create(self, branch: str, base: str, title: str, body: str) -> Proposal:
        status, payload = self.call("POST", f"/projects/{self.pid}/merge_requests",
                                    {"source_branch": branch, "target_branch": base, "title": title,
                                     "description": body, "remove_source_branch": True})
        if status == 409 and _already_exists(payload):
            found = self.find(branch, base)
            if found is not None:
                return self.update(found, title, body)
        if status != 201:
            raise self.fail(status, payload, f"opening a merge request on {self.project}")
        return replace(self._p(payload), created=True)

    def update(self, mr: Proposal, title: str, body: str) -> Proposal:
        if (mr.title, mr.body) == (title, body):
            return mr
        status, payload = self.call("PUT", f"/projects/{self.pid}/merge_requests/{mr.number}",
                                    {"title": title, "description": body})
        if status != 200:
            raise self.fail(status, payload, f"updating merge request !{mr.number}")
        return self._p(payload)

    def label(self, mr: Proposal, labels: list[str]) -> None:
        missing = [lb for lb in labels if lb not in mr.labels]
        if missing:
            status, payload = self.call("PUT", f"/projects/{self.pid}/merge_requests/{mr.number}",
                                        {"add_labels": ",".join(missing)})
            if status != 200:
                raise self.fail(status, payload, f"labelling merge request !{mr.number}")

    def has_comment(self, mr: Proposal, text: str) -> bool:
        status, payload = self.call("GET", f"/projects/{self.pid}/merge_requests/{mr.number}/notes",
                                    query={"per_page": "100"})
        if status != 200:
            raise self.fail(status, payload, f"reading the notes of merge request !{mr.number}")
        return any(isinstance(c, dict) and c.get("body") == text for c in payload or [])

    def comment(self, mr: Proposal, text: str) -> None:
        status, payload = self.call("POST", f"/projects/{self.pid}/merge_requests/{mr.number}/notes", {"body": text})
        if status != 201:
            raise self.fail(status, payload, f"commenting on merge request !{mr.number}")


def client(github: str | None, gitlab: str | None, api_url: str | None, max_wait: float = 60.0) -> GitHub | GitLab:
    """The forge the options name, its token read from the environment (never from a flag)."""
    if github and gitlab:
        raise InputError("give --github or --gitlab, not both.")
    if github:
        token = register(os.environ.get("GITHUB_TOKEN"))
        if not token:
            raise InputError("--github needs a token in the GITHUB_TOKEN environment variable.")
        return GitHub(github, api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com", token, max_wait)
    if gitlab:
        token = register(os.environ.get("GITLAB_TOKEN"))
        if not token:
            raise InputError("--gitlab needs a token in the GITLAB_TOKEN environment variable.")
        return GitLab(gitlab, api_url or os.environ.get("CI_API_V4_URL") or "https://gitlab.com/api/v4", token, max_wait)
    raise InputError("say where to open the pull request: --github OWNER/REPO or --gitlab PROJECT (or --dry-run).")
