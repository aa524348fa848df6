"""Decode Prometheus HTTP API answers without one Python object per sample.

A range query for a whole cluster returns millions of ``[timestamp, "value"]`` pairs.
``json.loads`` turns each into a list, a float and a str: ~10 s and several GB for 8 M points.
Here the answer is scanned once: each series' ``metric`` object (small) goes through ``json``;
the ``values`` arrays of all series are cut out as bytes, joined, turned into two-column CSV
by byte substitutions and parsed by Polars' native CSV reader into float64 columns. 8 M points
decode in about 1.5 s (measured numbers in ``benchmarks/README.md``).

The fast path accepts exactly the compact layout Prometheus (and VictoriaMetrics, Thanos,
Mimir) write. Anything else falls back to ``json.loads``, so an unusual but valid answer is
still read correctly; an invalid one is a ``ResponseError``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


class ResponseError(Exception):
    """The answer is not a valid Prometheus API response; the message says what is wrong."""


@dataclass
class Matrix:
    """A decoded range-query answer.

    ``labels[i]`` is series i's label set; ``samples`` has columns ``series`` (u32), ``t``
    (epoch seconds, float64) and ``v`` (float64, NaN/Inf kept as they came).
    """

    labels: list[dict[str, str]]
    samples: pl.DataFrame
    warnings: list[str]

    @property
    def points(self) -> int:
        return self.samples.height


_SCHEMA = {"t": pl.Float64, "v": pl.Float64}
_SERIES_OPEN = b'{"metric":'
_VALUES_OPEN = b'},"values":[['
_VALUES_CLOSE = b"]]}"
DECODE_BATCH_BYTES = 8 << 20  # the values text parsed at a time


def envelope(body: bytes) -> dict[str, Any]:
    """Parse a (small) API answer and check ``status``; returns the whole object."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseError(f"the answer is not valid JSON ({_short(exc)})") from None
    _check_status(data)
    return data


def _check_status(data: Any) -> None:
    if not isinstance(data, dict) or "status" not in data:
        raise ResponseError("the answer is JSON but not a Prometheus API response (no 'status')")
    if data["status"] != "success":
        raise ResponseError(f"the answer has status {data.get('status')!r}: {data.get('error', 'no error text')}")


def decode_vector(body: bytes) -> tuple[list[dict[str, str]], np.ndarray]:
    """An instant-query answer -> (label sets, values). A scalar answer is one empty label set."""
    data = envelope(body)
    payload = data.get("data")
    if not isinstance(payload, dict):
        raise ResponseError("the answer has no 'data' object")
    kind, result = payload.get("resultType"), payload.get("result")
    try:
        if kind == "scalar":
            return [{}], np.array([_num(result[1])])
        if kind != "vector" or not isinstance(result, list):
            raise ResponseError(f"expected an instant vector, got resultType {kind!r}")
        labels = [dict(item["metric"]) for item in result]
        values = np.array([_num(item["value"][1]) for item in result], dtype=np.float64)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ResponseError(f"an instant-vector sample is malformed ({_short(exc)})") from None
    return labels, values


def decode_strings(body: bytes) -> list[str]:
    """A label-values answer (``/api/v1/label/__name__/values``) -> the values."""
    data = envelope(body).get("data")
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise ResponseError("expected a list of strings in 'data'")
    return data


def decode_matrix(body: bytes) -> Matrix:
    """A range-query answer -> ``Matrix``; fast path first, ``json`` if the layout is unusual."""
    try:
        fast = _decode_matrix_fast(body)
    except _NotFast:
        fast = None
    return fast if fast is not None else _decode_matrix_json(body)


class _NotFast(Exception):
    pass


def _decode_matrix_fast(body: bytes) -> Matrix:
    head = body.find(b'"result":[')
    if head < 0:
        raise _NotFast
    i = head + len(b'"result":[')
    labels: list[dict[str, str]] = []
    counts: list[int] = []
    chunks: list[memoryview] = []
    view = memoryview(body)
    n = len(body)
    while i < n and body[i] == 0x7B:  # '{'
        if not body.startswith(_SERIES_OPEN, i):
            raise _NotFast
        j = body.find(_VALUES_OPEN, i)
        if j < 0:
            raise _NotFast
        try:
            metric = json.loads(view[i + len(_SERIES_OPEN) : j + 1].tobytes())
        except ValueError:
            raise _NotFast from None
        if not isinstance(metric, dict):
            raise _NotFast
        k = body.find(_VALUES_CLOSE, j)
        if k < 0:
            raise _NotFast
        chunk = view[j + len(_VALUES_OPEN) : k]
        labels.append(metric)
        counts.append(body.count(b"],[", j + len(_VALUES_OPEN), k) + 1)
        chunks.append(chunk)
        i = k + len(_VALUES_CLOSE)
        if i < n and body[i] == 0x2C:  # ','
            i += 1
            if i >= n or body[i] != 0x7B:
                raise _NotFast
    if i >= n or body[i] != 0x5D:  # ']'
        raise _NotFast
    # The envelope without the (already cut out) series must be valid JSON with status success.
    try:
        rest = json.loads(body[:head] + b'"result":[]' + body[i + 1 :])
    except (ValueError, UnicodeDecodeError):
        raise ResponseError("the answer is not valid JSON (it is cut short or corrupted)") from None
    _check_status(rest)
    data = rest.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise ResponseError(f"expected a range-query matrix, got resultType {_kind(data)!r}")
    warnings = [str(w) for w in rest.get("warnings") or []]
    if not chunks:
        return Matrix([], _empty_samples(), warnings)
    # parsed in batches of series: each batch's copies (join, unquote, CSV) are small and freed
    # before the next, so decoding adds little beyond the answer itself and the float columns
    frames, batch, size = [], [], 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= DECODE_BATCH_BYTES:
            frames.append(_values_frame(batch))
            batch, size = [], 0
    if batch:
        frames.append(_values_frame(batch))
    del chunks, batch, view
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    total = sum(counts)
    if frame.height != total:
        raise ResponseError(f"the samples do not add up ({frame.height} parsed, {total} expected)")
    if frame.get_column("t").null_count() or frame.get_column("v").null_count():
        raise ResponseError("a sample has an empty timestamp or value")
    series = np.repeat(np.arange(len(counts), dtype=np.uint32), np.asarray(counts, dtype=np.int64))
    return Matrix(labels, frame.with_columns(pl.Series("series", series)).select("series", "t", "v"), warnings)


def _values_frame(chunks: list[memoryview]) -> pl.DataFrame:
    """The ``values`` arrays of some series (cut out of the answer) as columns t, v."""
    joined = b"],[".join(chunks)
    # `1700000000,"0.5"],[1700000060,"NaN"` -> `1700000000,0.5\n1700000060,NaN`, one copy at a time
    unquoted = joined.translate(None, b'"')
    del joined
    csv = unquoted.replace(b"],[", b"\n")
    del unquoted
    try:
        return pl.read_csv(csv, has_header=False, new_columns=["t", "v"], schema=_SCHEMA)
    except pl.exceptions.PolarsError as exc:
        raise ResponseError(f"a sample is not a [timestamp, \"number\"] pair ({_short(exc)})") from None


def _decode_matrix_json(body: bytes) -> Matrix:
    data = envelope(body)
    payload = data.get("data")
    if not isinstance(payload, dict) or payload.get("resultType") != "matrix":
        raise ResponseError(f"expected a range-query matrix, got resultType {_kind(payload)!r}")
    result = payload.get("result")
    if not isinstance(result, list):
        raise ResponseError("the matrix has no 'result' list")
    labels, ids, ts, vs = [], [], [], []
    try:
        for idx, item in enumerate(result):
            labels.append(dict(item["metric"]))
            values = item.get("values") or []
            for t, v in values:
                ids.append(idx)
                ts.append(float(t))
                vs.append(_num(v))
    except (KeyError, TypeError, ValueError) as exc:
        raise ResponseError(f"a range-query sample is malformed ({_short(exc)})") from None
    samples = pl.DataFrame(
        {"series": pl.Series(ids, dtype=pl.UInt32), "t": pl.Series(ts, dtype=pl.Float64),
         "v": pl.Series(vs, dtype=pl.Float64)}
    )
    return Matrix(labels, samples, [str(w) for w in data.get("warnings") or []])


def _empty_samples() -> pl.DataFrame:
    return pl.DataFrame(schema={"series": pl.UInt32, "t": pl.Float64, "v": pl.Float64})


def _num(text: Any) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a sample value")
    value = float(text)  # accepts NaN, +Inf, -Inf as Prometheus writes them
    if math.isnan(value) and text.strip().lower() not in ("nan", "+nan", "-nan"):  # pragma: no cover
        raise ValueError(f"{text!r} is not a sample value")
    return value


def _kind(data: Any) -> Any:
    return data.get("resultType") if isinstance(data, dict) else None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
