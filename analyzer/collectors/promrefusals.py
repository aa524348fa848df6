"""How a Prometheus-compatible server says no, read so the client can split the query or explain.

Prometheus, VictoriaMetrics, Thanos and Cortex/Mimir refuse a query for its size (samples, points,
chunks, the query's length: a shorter time window helps), for the series it selects (only fewer
namespaces help) or time out on it; ``_Split`` carries which, ``TooLarge``/``TooSlow`` are the one
sentence the user gets when no split is small enough. Split from ``promclient`` (the HTTP client).
"""

from __future__ import annotations

import json

from analyzer.errors import KubetuneError


class _Split(Exception):
    """The server refused a range query for its size (or timed out on it): split the time window,
    or, when it counts series (``series``: a shorter window selects the same series), the namespaces."""

    def __init__(self, info: dict[str, str], timeout: bool = False):
        super().__init__(info.get("error", ""))
        self.timeout = timeout
        self.series = _series_limit(info)


class TooLarge(KubetuneError):
    """The server refused a range query for its size even on the smallest time window we send.

    The message names the query and how to narrow it; the collector may still split it by
    namespace before giving up (``what``, ``reason`` let it rebuild the sentence)."""

    problem = "refused the {what} query as too large ({reason})"
    server_flag = "--query.max-samples"

    def __init__(self, where: str, what: str, reason: str, windows: int):
        self.what, self.reason = what, reason
        split = f" even split into {windows} time windows" if windows > 1 else ""
        super().__init__(
            f"Prometheus at {where} {self.problem.format(what=what, reason=_clip(reason, 120))}{split}; narrow it "
            "with `kubetune collect --namespace NS`, a shorter --history or a coarser --step (or raise the server's "
            f"{self.server_flag}).")


class TooSlow(TooLarge):
    """The server timed out on a range query even on quarters of its window; like ``TooLarge``, the
    collector splits it by namespace before the sentence reaches the user."""

    problem = "timed out running the {what} query (its --query.timeout)"
    server_flag = "--query.timeout"


def _error_info(body: bytes) -> dict[str, str]:
    """``errorType`` and ``error`` of an error answer (Prometheus JSON or plain text), clipped."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        return {"errorType": _clip(str(data.get("errorType") or "")), "error": _clip(str(data.get("error") or ""))}
    text = body[:300].decode("utf-8", "replace").strip()
    return {"errorType": "", "error": _clip(text)} if text else {}


# Refusals for size, as Prometheus, VictoriaMetrics, Thanos and Cortex/Mimir word them: samples and
# points (a shorter window helps), the query's length (Thanos/Cortex/Mimir query frontends' max query
# length), series counts (only fewer namespaces help).
_TOO_BIG = ("exceeded maximum resolution", "too many samples", "would load too many samples", "cannot select more than",
            "too many points", "exceeds -search.max", "exceeded samples limit", "maximum number of chunks",
            "exceeded chunks limit", "aggregated chunks size limit", "query time range exceeds the limit")
_SERIES_LIMIT = ("maximum number of series", "exceeded series limit", "-search.maxuniquetimeseries",
                 "too many series")


def _too_big(info: dict[str, str]) -> bool:
    text = info.get("error", "").lower()
    return any(s in text for s in (*_TOO_BIG, *_SERIES_LIMIT))


def _series_limit(info: dict[str, str]) -> bool:
    text = info.get("error", "").lower()
    return any(s in text for s in _SERIES_LIMIT)


def _clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
