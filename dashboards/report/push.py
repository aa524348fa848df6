"""Sending a finished report elsewhere: a Slack incoming webhook, or an S3-compatible bucket.

A push runs after the report is written locally, so a refused push never loses the report. Secrets
(the webhook URL, S3 credentials) are never printed: messages name the target without them
(``redact_url``) and quote only the service's own error code.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from analyzer.errors import InputError, KubetuneError
from dashboards.report.fmt import pct, slack, usd, workload

SLACK_ENV = "KUBETUNE_SLACK_WEBHOOK_URL"
SLACK_TOP = 5


class PushError(KubetuneError):
    """A push target refused or could not be reached (exit 1; the local report is kept)."""


def redact_url(url: str) -> str:
    """scheme://host[:port]/… with user info, path secrets and query removed: safe to print."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or "?"
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{host}{port}" + ("/…" if p.path not in ("", "/") else "")


def slack_webhook(webhook_file: Path | None) -> str:
    """The webhook URL from a mounted Secret file, else from $KUBETUNE_SLACK_WEBHOOK_URL."""
    if webhook_file is not None:
        try:
            url = webhook_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read the Slack webhook file {webhook_file} ({exc.strerror}).") from None
    else:
        url = os.environ.get(SLACK_ENV, "").strip()
    if not url:
        raise InputError(f"--push slack needs the webhook URL in ${SLACK_ENV} or --slack-webhook-file (a mounted Secret).")
    if not re.match(r"(?i)https?://", url):
        raise InputError("the Slack webhook is not an http(s) URL.")
    return url


def slack_message(doc: dict[str, Any], link: str | None = None) -> dict[str, Any]:
    h = doc["headline"]
    lines = [f"*{slack(doc['title'])}*",
             f"Monthly cost {usd(h['monthly_cost_usd'])}, idle {usd(h['idle_monthly_usd'])} ({pct(h['idle_fraction'])}), "
             f"requested but unused {usd(h['waste_monthly_usd'])}.",
             f"Potential saving {usd(h['potential_saving_monthly_usd'])}/month from {h['recommendations']} recommendations."]
    hist = doc.get("history") or {}
    if hist.get("taken"):
        lines.append(f"Taken since earlier reports: {len(hist['taken'])}, {usd(hist['taken_saving_monthly_usd'])}/month.")
    for r in doc["recommendations"][:SLACK_TOP]:
        lines.append(f"• {slack(workload(r))} {slack(r['container'])}: {slack(r['kind'])} {slack(r['resource'])}, "
                     f"{usd(r['monthly_saving_usd'])}/month, risk {pct(r['risk'])}")
    if link:
        lines.append(f"Full report: {slack(link)}")
    return {"text": "\n".join(lines)}


def push_slack(doc: dict[str, Any], url: str, link: str | None = None, timeout: float = 30.0) -> None:
    body = json.dumps(slack_message(doc, link)).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's webhook
            answer = resp.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        code = exc.read(80).decode("utf-8", "replace").strip() or exc.reason
        raise PushError(f"Slack refused the report (HTTP {exc.code}: {code}); the local report is kept.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushError(f"could not reach the Slack webhook at {redact_url(url)} ({reason}); "
                        "the local report is kept.") from None
    if answer != "ok":
        raise PushError(f"Slack answered {answer[:60]!r} instead of ok; the local report is kept.")


def parse_s3(target: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", target)
    if not m:
        raise InputError(f"--push {target!r} is not s3://BUCKET[/PREFIX] (or slack).")
    return m.group(1), (m.group(2) or "").strip("/")


def push_s3(directory: Path, target: str, run_id: str, endpoint: str | None = None) -> str:
    """Upload the report under ``PREFIX/<run_id>/`` and its three pages under ``PREFIX/latest/``;
    return the URI of the run's report.html."""
    import boto3
    from botocore.config import Config
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, prefix = parse_s3(target)
    base = f"{prefix}/{run_id}" if prefix else run_id
    latest = f"{prefix}/latest" if prefix else "latest"
    where = f"s3://{bucket}/{prefix}" + (f" at {redact_url(endpoint)}" if endpoint else "")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    uploads = [(p, f"{base}/{p.relative_to(directory).as_posix()}") for p in files]
    uploads += [(directory / n, f"{latest}/{n}") for n in ("report.html", "report.md", "report.json")]
    try:
        client = boto3.client("s3", endpoint_url=endpoint,
                              config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10))
        for path, key in uploads:
            ctype = mimetypes.guess_type(path.name)[0] or ("text/yaml" if path.suffix == ".yaml" else "text/plain")
            client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": ctype})
    except NoCredentialsError:
        raise PushError(f"no S3 credentials for {where} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, e.g. from a "
                        "Secret); the local report is kept.") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise PushError(f"{where} refused the upload ({err.get('Code', '?')}); the local report is kept.") from None
    except S3UploadFailedError as exc:
        code = re.search(r"\(([A-Za-z]+)\)", str(exc))
        raise PushError(f"{where} refused the upload ({code.group(1) if code else 'upload failed'}); "
                        "the local report is kept.") from None
    except (BotoCoreError, OSError) as exc:
        raise PushError(f"could not upload to {where} ({type(exc).__name__}); the local report is kept.") from None
    return f"s3://{bucket}/{base}/report.html"
