"""Find where each workload lives in a GitOps repository, as the cluster sees it.

Kustomize roots (kustomizations no other one includes, or the ``--path`` directories) are
rendered with ``kubectl kustomize`` with kustomize's ``originAnnotations`` switched on in a
scratch copy of the root's kustomization file, so each rendered workload (after namePrefix,
nameSuffix and namespace) names the source file it came from. Plain YAML files (multi-document
too) are read directly; a workload without a namespace is taken to be in ``default``. Helm
releases are found only through the mapping in ``kubetune-gitops.yaml`` (a values file and, per
container, the dotted path of its ``resources`` block). A workload found in two places is
ambiguous and reported, never guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import yamlio

from analyzer.errors import InputError
from recommenders.base_manifests import KUSTOMIZATION_FILES, render_kustomization
from recommenders.gitops.edit import EditError, load_documents

CONFIG_FILE = "kubetune-gitops.yaml"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "Rollout")
Key = tuple[str, str, str]  # namespace, kind, name as in the cluster


@dataclass
class Location:
    """Where one workload's manifest is, and how to change it."""

    file: str  # repo-relative source file (a Helm values file for helm)
    doc_index: int = 0
    source_name: str = ""
    source_namespace: str | None = None
    overlay: str | None = None  # the kustomize root that renders it (repo-relative dir)
    shared: bool = False  # the file is outside the overlay: add a patch there, do not edit the file
    helm: dict[str, str] = field(default_factory=dict)  # container -> dotted values path

    @property
    def how(self) -> str:
        if self.helm:
            return f"Helm values {self.file}"
        if self.shared:
            return f"patch in {self.overlay} (base {self.file} is shared)"
        return f"{self.file}" + (f" (via {self.overlay})" if self.overlay else "")


@dataclass
class RepoIndex:
    """Every workload found, by (namespace, kind, name) as rendered; ambiguous ones with why."""

    found: dict[Key, Location] = field(default_factory=dict)
    ambiguous: dict[Key, str] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)

    def add(self, key: Key, loc: Location) -> None:
        if key in self.ambiguous:
            return
        old = self.found.get(key)
        if old is not None and (old.file, old.overlay) != (loc.file, loc.overlay):
            del self.found[key]
            self.ambiguous[key] = (f"found in {old.how} and in {loc.how}: pass --path (or a --cluster mapping) "
                                   "to say which is this cluster's")
            return
        self.found[key] = loc


def read_config(root: Path) -> dict[str, Any]:
    path = root / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yamlio.load(path.read_text(encoding="utf-8")) or {}
    except yamlio.YAMLError as exc:
        raise InputError(f"{CONFIG_FILE} is not valid YAML: {str(exc).splitlines()[0]}.") from None
    if not isinstance(data, dict):
        raise InputError(f"{CONFIG_FILE} must be a mapping (clusters:, helm:).")
    return data


def scope(root: Path, paths: list[str], cluster: str | None, config: dict[str, Any]) -> list[Path]:
    """The directories/files this cluster's manifests are in (``--path`` globs, or the config's
    ``clusters:`` entry for ``--cluster``); the whole repository by default."""
    if cluster:
        clusters = config.get("clusters") or {}
        if cluster not in clusters:
            raise InputError(f"--cluster {cluster} is not in {CONFIG_FILE}'s clusters: "
                             f"({', '.join(map(str, clusters)) or 'none'}).")
        entry = clusters[cluster]
        paths = [*paths, *([entry] if isinstance(entry, str) else entry)]
    if not paths:
        return [root]
    out: list[Path] = []
    for pattern in paths:
        hits = sorted(root.glob(pattern)) if any(c in pattern for c in "*?[") else [root / pattern]
        hits = [h for h in hits if h.exists()]
        if not hits:
            raise InputError(f"--path {pattern} matches nothing in the repository.")
        for h in hits:
            if not h.resolve().is_relative_to(root.resolve()):
                raise InputError(f"--path {pattern} is outside the repository.")
        out += hits
    return out


def _kustomization(d: Path) -> Path | None:
    return next((d / k for k in KUSTOMIZATION_FILES if (d / k).is_file()), None)


def _skip_dir(d: Path) -> bool:
    return d.name.startswith(".") or (d / "Chart.yaml").is_file()


def _walk(top: Path) -> list[Path]:
    if top.is_file():
        return [top]
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(n for n in dirnames if not _skip_dir(Path(dirpath) / n))
        if _skip_dir(Path(dirpath)) and Path(dirpath) != top:
            continue
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]  # .gitlab-ci.yml etc.
    return out


def _referenced(kdir: Path) -> list[Path]:
    """Local directories and files a kustomization includes (resources, components, bases, patches)."""
    kfile = _kustomization(kdir)
    try:
        data = yamlio.load(kfile.read_text(encoding="utf-8")) if kfile else {}
    except yamlio.YAMLError as exc:
        raise InputError(f"{kfile} is not valid YAML: {str(exc).splitlines()[0]}.") from None
    refs: list[str] = []
    for key in ("resources", "components", "bases", "patchesStrategicMerge"):
        refs += [r for r in (data or {}).get(key) or [] if isinstance(r, str)]
    for key in ("patches", "patchesJson6902"):
        refs += [p["path"] for p in (data or {}).get(key) or [] if isinstance(p, dict) and isinstance(p.get("path"), str)]
    return [(kdir / r).resolve() for r in refs if "://" not in r and not r.startswith(("github.com/", "git@"))]


def render(kdir: Path, origins: bool = False) -> list[dict[str, Any]]:
    """``kubectl kustomize kdir`` as objects; with ``origins`` each carries its source path
    (kustomize's originAnnotations, switched on in the kustomization file for the call only)."""
    kfile = _kustomization(kdir)
    original = kfile.read_bytes() if kfile else b""
    try:
        if origins and kfile:
            data = yamlio.load(original.decode('utf-8')) or {}
            meta = list(data.get("buildMetadata") or [])
            if "originAnnotations" not in meta:
                data["buildMetadata"] = [*meta, "originAnnotations"]
                kfile.write_text(yamlio.dump(data))
        text = render_kustomization(kdir)
    finally:
        if kfile and kfile.read_bytes() != original:
            kfile.write_bytes(original)
    return [d for d in yamlio.load_all(text) if isinstance(d, dict)]


def _meta(doc: Any) -> tuple[str | None, str, str] | None:
    if not isinstance(doc, dict) or doc.get("kind") not in WORKLOAD_KINDS or not isinstance(doc.get("metadata"), dict):
        return None
    m = doc["metadata"]
    return (m.get("namespace"), str(doc["kind"]), str(m.get("name", "")))


def _source_doc(root: Path, file: Path, kind: str, rendered_name: str) -> tuple[int, str, str | None]:
    """The document in ``file`` that rendered as ``kind``/``rendered_name`` (longest name inside it)."""
    docs = load_documents(file.read_text(encoding="utf-8"), str(file.relative_to(root)))
    best = None
    for i, d in enumerate(docs):
        m = _meta(d)
        if m and m[1] == kind and m[2] and m[2] in rendered_name and (best is None or len(m[2]) > len(best[1])):
            best = (i, m[2], m[0])
    if best is None:
        raise EditError(f"{file.relative_to(root)} has no {kind} that renders as {rendered_name}")
    return best


def index_repository(root: Path, tops: list[Path], config: dict[str, Any]) -> RepoIndex:
    """Find every workload under ``tops`` (plain YAML and kustomize roots) plus the Helm mapping."""
    root = root.resolve()
    files: list[Path] = []
    for top in tops:
        files += _walk(top.resolve())
    helm_files = {(root / h["values"]).resolve() for h in config.get("helm") or [] if isinstance(h, dict) and h.get("values")}
    kdirs = sorted({f.parent for f in files if f.name in KUSTOMIZATION_FILES})
    referenced: set[Path] = set()
    for k in kdirs:
        referenced |= set(_referenced(k))
    explicit = {t.resolve() for t in tops if t.is_dir() and _kustomization(t)}
    roots = [k for k in kdirs if k in explicit or k not in referenced]
    out = RepoIndex(roots=[str(r.relative_to(root)) for r in roots])
    in_kustomize = set(kdirs)
    for k in roots:
        for obj in render(k, origins=True):
            meta = _meta(obj)
            origin = ((obj.get("metadata") or {}).get("annotations") or {}).get("config.kubernetes.io/origin")
            if meta is None:
                continue
            ns, kind, name = meta
            path = (yamlio.load(origin) or {}).get("path") if origin else None
            if not path:
                continue  # a generator or a remote base: nothing in this repository to edit
            src = (k / path).resolve()
            if not src.is_relative_to(root) or not src.is_file():
                continue
            idx, src_name, src_ns = _source_doc(root, src, kind, name)
            out.add((ns or "default", kind, name), Location(
                file=str(src.relative_to(root)), doc_index=idx, source_name=src_name, source_namespace=src_ns,
                overlay=str(k.relative_to(root)), shared=not src.is_relative_to(k)))
    for f in files:
        if (f.suffix not in (".yaml", ".yml") or f.name in KUSTOMIZATION_FILES or f.name == CONFIG_FILE
                or f.parent in in_kustomize or f.resolve() in referenced or f.resolve() in helm_files):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        if "kind:" not in text:
            continue
        for i, d in enumerate(load_documents(text, str(f.relative_to(root)))):
            m = _meta(d)
            if m:
                out.add((m[0] or "default", m[1], m[2]), Location(file=str(f.relative_to(root)), doc_index=i,
                                                                  source_name=m[2], source_namespace=m[0]))
    for h in config.get("helm") or []:
        if not (isinstance(h, dict) and isinstance(h.get("workload"), str) and h.get("values")):
            raise InputError(f"{CONFIG_FILE}: each helm: entry needs workload: NAMESPACE/KIND/NAME and values: FILE.")
        parts = h["workload"].split("/")
        if len(parts) != 3 or not (root / h["values"]).is_file():
            raise InputError(f"{CONFIG_FILE}: helm entry {h['workload']!r} needs workload NAMESPACE/KIND/NAME and an "
                             f"existing values file (got {h['values']!r}).")
        containers = {str(c): str(p) for c, p in (h.get("containers") or {}).items()}
        out.add((parts[0], parts[1], parts[2]), Location(file=h["values"], helm=containers or {"*": "resources"}))
    return out

