"""One redaction registry: every secret the process holds, replaced by ``***`` in every message.

Whoever reads a secret (the Prometheus token, basic-auth password, header values, kubeconfig
credentials, the Slack webhook, S3 keys, Git tokens) calls ``register(secret)`` once, as soon as
it is read; the CLI's error handler, the console's notes and warnings, every log record, the
manifest's warnings and every message built from what a server or subprocess said pass through
``redact``. A server that echoes our headers back in an error body therefore never puts them on
stderr. URL credentials (``https://user:token@host``) and ``Authorization``-style headers are
masked even when nobody registered them.
"""

from __future__ import annotations

import base64
import logging
import re
import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|private-token|x-api-key)(\s*[:=]\s*)(bearer\s+|token\s+)?\S+")
MASK = "***"
MIN_LENGTH = 4  # shorter strings would mask ordinary words; such "secrets" are not secret anyway


def register(secret: str | None, *, basic_user: str | None = None) -> str | None:
    """Remember ``secret`` (with ``basic_user``, also the ``user:secret`` Basic string, plain and
    base64) so ``redact`` masks it; returns it unchanged for chaining."""
    if not secret or not isinstance(secret, str):
        return secret
    found = {secret, secret.strip()}
    if basic_user is not None:
        pair = f"{basic_user}:{secret}"
        found |= {pair, base64.b64encode(pair.encode()).decode()}
    with _LOCK:
        _SECRETS.update(s for s in found if len(s) >= MIN_LENGTH)
    return secret


def redact(text: object) -> str:
    """``text`` with every registered secret (longest first, so no part leaks), URL credential and
    auth header value masked."""
    out = str(text)
    if _SECRETS:
        with _LOCK:
            secrets = sorted(_SECRETS, key=len, reverse=True)
        for secret in secrets:
            if secret in out:
                out = out.replace(secret, MASK)
    out = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", out)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + MASK, out)


def clear() -> None:
    """Forget every secret (tests)."""
    with _LOCK:
        _SECRETS.clear()


_installed = False


def install_log_filter() -> None:
    """Redact every log record of the process, whichever logger or handler it reaches.

    A record factory rather than a handler filter: libraries (the Kubernetes client's exec plugin
    loader) log through the root logger before any handler exists, and ``logging`` then adds one."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
