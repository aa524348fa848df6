"""One redaction registry: every secret the process holds, replaced by ``***`` in every message.

Whoever reads a secret (the Prometheus token, basic-auth password, header values, kubeconfig
tokens; later Slack webhooks, Git tokens, S3 keys) calls ``register(secret)`` once; the CLI's error
handler, the console's notes and warnings, every log record and the manifest's warnings pass through ``redact``.
A server that echoes our headers back in an error body therefore never puts them on stderr.
"""

from __future__ import annotations

import base64
import logging
import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
MASK = "***"
MIN_LENGTH = 4  # shorter strings would mask ordinary words; such "secrets" are not secret anyway


def register(secret: str | None, *, basic_user: str | None = None) -> None:
    """Remember ``secret`` (and, with ``basic_user``, the ``user:secret`` Basic string) for redaction."""
    if not secret or not isinstance(secret, str):
        return
    found = {secret, secret.strip()}
    if basic_user is not None:
        pair = f"{basic_user}:{secret}"
        found |= {pair, base64.b64encode(pair.encode()).decode()}
    with _LOCK:
        _SECRETS.update(s for s in found if len(s) >= MIN_LENGTH)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (longest first, so no part leaks)."""
    if not _SECRETS or not text:
        return text
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


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
