"""One redaction registry: every secret the process holds, replaced by ``***`` in every message.

Whoever reads a secret (the Prometheus token, basic-auth password, header values, kubeconfig
tokens; later Slack webhooks, Git tokens, S3 keys) calls ``register(secret)`` once; the CLI's error
handler, the console's notes and warnings, and the log handler pass their text through ``redact``.
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


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Redact every record that reaches the handlers of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
