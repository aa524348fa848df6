"""One versioned JSON shape for every machine-readable result (CLI json/yaml, recommendations.json).

``{"schema_version", "kubetune_version", "generated_at", "source", "window", "items", "notes"}``
(+ an optional ``summary`` object with the command's totals). Scripts read ``items`` the same way
from every command; ``schema_version`` changes only when a field changes meaning or goes away.
The JSON Schemas live beside this module (``analyzer/schemas/``), one per command.
Lives in ``analyzer`` so every layer (``recommenders.patches`` writes recommendations.json) can use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def kubetune_version() -> str:
    try:
        return metadata.version("kubetune")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def iso(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_of(manifest: Any, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """The time span a result covers: the snapshot's, or the part of it the command used."""
    return {"start": iso(start or manifest.start), "end": iso(end or manifest.end),
            "step_seconds": int(manifest.step_seconds), "cluster": manifest.cluster}


def envelope(*, source: str, window: dict[str, Any] | None, items: list[Any] | dict[str, Any],
             notes: list[str] | None = None, summary: dict[str, Any] | None = None,
             generated_at: datetime | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kubetune_version": kubetune_version(),
        "generated_at": iso(generated_at or datetime.now(UTC)),
        "source": source,
        "window": window,
        "items": items,
        "notes": list(notes or []),
    }
    if summary is not None:
        doc["summary"] = summary
    return doc
