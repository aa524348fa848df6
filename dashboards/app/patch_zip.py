"""The selected recommendations as a zip in the layout `kubetune recommend --patches` writes.

The files are written by ``recommenders.patches.write_patches`` itself (into a temporary
directory, then zipped under one top folder), so a download and a CLI run of the same records
are byte-for-byte the same: one patch per workload, ``kustomization.yaml`` listing them,
``cluster/`` extras and ``recommendations.json``.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from recommenders.patches import write_patches
from recommenders.record import RecommendationSet

FOLDER = "kubetune-patches"


def selected_set(result: RecommendationSet, rids: list[int]) -> RecommendationSet:
    """The records at ``rids`` (indexes into ``result.recommendations``), with the set's notes and order."""
    chosen = [result.recommendations[i] for i in sorted(set(rids)) if 0 <= i < len(result.recommendations)]
    return RecommendationSet(recommendations=chosen, notes=list(result.notes), cluster_notes=dict(result.cluster_notes),
                             container_order=dict(result.container_order))


def patch_files(result: RecommendationSet) -> dict[str, bytes]:
    """Relative path -> content of what ``write_patches`` writes for ``result``."""
    with tempfile.TemporaryDirectory(prefix="kubetune-dashboard-") as tmp:
        target = Path(tmp) / FOLDER
        write_patches(result, target)
        return {p.relative_to(target).as_posix(): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}


def patches_zip(result: RecommendationSet) -> bytes:
    """A zip of ``patch_files`` under ``kubetune-patches/`` (fixed timestamps: same records, same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in patch_files(result).items():
            info = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()
