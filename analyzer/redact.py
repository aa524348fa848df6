"""One place that keeps secrets out of what kubetune prints, logs or writes.

A token is registered as soon as it is read (``register``); every message built from something
a server or a subprocess said passes through ``redact`` before it reaches the user. URL
credentials (``https://user:token@host``) and ``Authorization``-style headers are masked even
when nobody registered them.
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|private-token|x-api-key)(\s*[:=]\s*)(bearer\s+|token\s+)?\S+")

MASK = "***"


def register(secret: str | None) -> str | None:
    """Remember ``secret`` so ``redact`` masks it; returns it unchanged for chaining."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)
    return secret


def redact(text: object) -> str:
    """``text`` with every registered secret, URL credential and auth header value masked."""
    out = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", out)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + MASK, out)
