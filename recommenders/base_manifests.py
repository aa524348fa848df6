"""The workloads' own manifests (``--base``): what the patches will be applied to.

Patches are checked against the base before they are written, because kustomize fails a whole
build on a patch whose target is missing, and a strategic merge that names a container the
workload does not have *adds* a container with no image. The base also gives the authoritative
pod-spec order of containers (a Prometheus-only snapshot has none). A kustomization directory is
rendered with ``kubectl kustomize`` (as ``kubectl apply -k`` would see it); a plain directory or
file is read as JSON/YAML, parsed as the kubectl collector parses its files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.manifests import parse_objects

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
Order = dict[str, list[str]]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    template = spec.get("template") if isinstance(spec, dict) else None
    return (template or {}).get("spec") if isinstance(template, dict) else None


@dataclass
class BaseManifests:
    """Pod-spec container order per workload found in the base, keyed by (namespace, kind, name);
    namespace None = the manifest sets none (kustomize's ``namespace:`` or the default applies)."""

    source: str
    workloads: dict[tuple[str | None, str, str], Order] = field(default_factory=dict)

    def order(self, namespace: str, kind: str, name: str) -> Order | None:
        """The workload's container order, or None when the base does not have it."""
        return self.workloads.get((namespace, kind, name)) or self.workloads.get((None, kind, name))

    def missing(self, namespace: str, kind: str, name: str, containers: dict[str, set[str]]) -> str | None:
        """Why a patch naming these containers (per list key) cannot apply to the base, or None."""
        order = self.order(namespace, kind, name)
        if order is None:
            return f"{kind} {namespace}/{name} is not in the base ({self.source})"
        for key, names in containers.items():
            unknown = sorted(names - set(order.get(key, [])))
            if unknown:
                return (f"{kind} {namespace}/{name} in the base has no {'init ' if key == 'initContainers' else ''}"
                        f"container {', '.join(unknown)} (it has {', '.join(order.get(key, [])) or 'none'})")
        return None


def resolve_base(directory: str | os.PathLike[str], base: str) -> Path | None:
    """Where a kustomization in ``directory`` finds ``base``; None for a remote base (a URL)."""
    if "://" in base or base.startswith(("github.com/", "git@", "gitlab.com/", "bitbucket.org/")):
        return None
    return Path(base if os.path.isabs(base) else os.path.normpath(Path(directory) / base))


def render_kustomization(path: Path) -> str:
    """``kubectl kustomize path`` as text; one sentence when kubectl is missing, slow or fails."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise InputError(f"{path} is a kustomization, and rendering it needs kubectl on PATH.")
    try:
        done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"kubectl kustomize {path} did not finish within 120 s.") from exc
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no message")
        raise InputError(f"kubectl kustomize {path} failed: {first.strip()}")
    return done.stdout


def _objects(path: Path) -> list[Any]:
    if path.is_dir() and any((path / k).is_file() for k in KUSTOMIZATION_FILES):
        return parse_objects(render_kustomization(path).encode(), f"kubectl kustomize {path}")
    files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".yaml", ".yml")
                   and p.name not in KUSTOMIZATION_FILES) if path.is_dir() else [path]
    return [o for f in files for o in parse_objects(f.read_bytes(), f, yaml_ok=f.suffix != ".json")]


def read_base(path: str | os.PathLike[str]) -> BaseManifests:
    """Index the workloads of the manifests at ``path`` (kustomization dir, plain dir or file)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"the base {path} does not exist (--base is resolved relative to the --patches directory).")
    out = BaseManifests(source=str(path))
    for d in _objects(p):
        spec = _pod_spec(d) if isinstance(d, dict) and isinstance(d.get("metadata"), dict) else None
        if not isinstance(spec, dict):
            continue
        order = {key: [c.get("name") for c in spec.get(key) or [] if isinstance(c, dict) and c.get("name")]
                 for key in ("containers", "initContainers")}
        meta = d["metadata"]
        out.workloads[(meta.get("namespace"), str(d.get("kind")), str(meta.get("name")))] = order
    return out
