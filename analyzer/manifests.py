"""Kubernetes objects from JSON or YAML text: ``kubectl get -o json`` output, manifests, kustomize output.

Shared by the kubectl collector and the recommenders' ``--base`` reader, so both read files
the same way. JSON goes through ``orjson`` when installed (measurably faster on 50 MB of pods),
else ``json``; YAML keeps times as strings, as the API's JSON has them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from analyzer import yamlio
from analyzer.errors import InputError


try:  # orjson is optional: measurably faster on 50 MB of pods, same result
    import orjson

    def loads(data: bytes) -> Any:
        return orjson.loads(data)

    JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - depends on the environment
    def loads(data: bytes) -> Any:
        return json.loads(data)

    JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)


def parse_objects(raw: bytes, path: str | os.PathLike[str], *, yaml_ok: bool = True) -> list[Any]:
    """The Kubernetes objects in JSON (or, with ``yaml_ok``, multi-document YAML) text: lists are
    unwrapped (each item given the list's kind where the API omits it). ``path`` names the source
    in errors."""
    try:
        data = loads(raw)
    except JSON_ERRORS as exc:
        if yaml_ok:
            data = _yaml(path, raw)
        else:
            raise InputError(f"{path} is not valid JSON ({_json_where(exc)}); expected the output of "
                             "`kubectl get pods,deploy,sts,ds,rs,job,cronjob,hpa,pdb,nodes,ns -A -o json`.") from None
    docs = data if isinstance(data, list) and yaml_ok else [data]
    items: list[Any] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(f"{path} does not hold Kubernetes objects (expected a kind: List from kubectl -o json).")
        if isinstance(doc.get("items"), list):
            list_kind = str(doc.get("kind") or "")
            item_kind = list_kind[:-4] if list_kind.endswith("List") and list_kind != "List" else None
            for it in doc["items"]:
                if item_kind and isinstance(it, dict) and "kind" not in it:
                    it = {**it, "kind": item_kind}  # API lists omit each item's kind
                items.append(it)
        elif isinstance(doc.get("kind"), str):
            items.append(doc)
        else:
            raise InputError(f"{path} is neither a Kubernetes list nor an object (no kind/items).")
    return items


def _yaml(path: str | os.PathLike[str], raw: bytes) -> Any:
    try:
        docs = yamlio.load_all(raw.decode("utf-8"), times_as_strings=True)
    except (yamlio.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path} is neither valid JSON nor valid YAML{where}.") from None
    return docs


def _json_where(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    if line is not None:
        return f"line {line}, column {col}"
    return str(exc).split(":")[0][:80]
