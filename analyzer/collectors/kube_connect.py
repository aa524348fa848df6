"""Kubernetes API access from a kubeconfig or the in-cluster service account: reading and checking
the config (exec plugin, client certificate, token file) and connecting, with every secret it holds
registered for redaction. Split from ``kube_api.py``, which lists objects over the connection."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kubernetes import client as k8s
from kubernetes.config import incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

from analyzer import redact, yamlio
from analyzer.errors import InputError


log = logging.getLogger("kubetune.kubernetes")

Progress = Callable[[str], None]
_SECRET_KEYS = {"token", "password", "client-key-data", "client-certificate-data", "id-token", "refresh-token",
                "access-token", "client-secret"}


@dataclass(frozen=True, repr=False)
class KubeConfig:
    """How to reach the API server and what to read. Credentials are never shown.

    ``kubeconfig`` (default: ``$KUBECONFIG``, then ``~/.kube/config``) and ``context`` (default:
    the file's current context), or ``in_cluster=True`` for the pod's service account.
    ``namespaces`` limits the namespaced kinds to those namespaces (read namespace by
    namespace, so namespace-scoped RBAC is enough); otherwise all namespaces but
    ``kube-system`` unless ``include_kube_system``. ``cluster`` names the snapshot (default: the
    context's cluster). ``page_size`` is the list ``limit``; ``timeout`` is (connect, read)
    seconds per request; a retryable failure is tried ``retries`` more times, waiting
    ``backoff`` x 2^n seconds; a 410 Gone restarts a list at most ``relists`` times.
    """

    kubeconfig: str | os.PathLike[str] | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ()
    include_kube_system: bool = False
    cluster: str | None = None
    page_size: int = 500
    timeout: tuple[float, float] = (10.0, 60.0)
    retries: int = 3
    backoff: float = 0.5
    relists: int = 3

    def __post_init__(self) -> None:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise InputError("give either --in-cluster or --kubeconfig/--context, not both.")
        if self.page_size < 1:
            raise InputError("the page size must be at least 1.")
        object.__setattr__(self, "namespaces", tuple(dict.fromkeys(self.namespaces or ())))
        for ns in self.namespaces:
            if not ns or not isinstance(ns, str):
                raise InputError("--namespace needs a namespace name.")

    def __repr__(self) -> str:
        where = "in-cluster" if self.in_cluster else f"kubeconfig={self.kubeconfig!s} context={self.context}"
        return f"KubeConfig({where}, namespaces={list(self.namespaces)})"


@dataclass
class Connection:
    """A configured client, and what may be said about it (host without userinfo, cluster name)."""

    api_client: k8s.ApiClient
    host: str
    cluster: str
    secrets: list[str] = field(default_factory=list, repr=False)

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            if s:
                text = text.replace(s, "***")
        return text


def safe_host(url: str) -> str:
    parts = urlsplit(url or "")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")) or "(no server)"


def _collect_secrets(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _SECRET_KEYS and isinstance(v, str) and len(v) >= 4:
                out.append(v)
            elif k == "env" and isinstance(v, list):  # exec plugin environment
                out.extend(str(e.get("value")) for e in v if isinstance(e, dict) and e.get("value"))
            else:
                _collect_secrets(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_secrets(v, out)


def _kubeconfig_paths(path: str | os.PathLike[str] | None) -> list[Path]:
    if path:
        return [Path(path).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _read_kubeconfig(path: Path) -> dict:
    if not path.exists():
        raise InputError(f"kubeconfig {path} does not exist; pass --kubeconfig PATH or --in-cluster.")
    if not path.is_file():
        raise InputError(f"kubeconfig {path} is not a file.")
    try:
        data = yamlio.load(path.read_text(encoding="utf-8"))
    except yamlio.YAMLError as exc:  # its message may quote the file (a token): say only where
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"kubeconfig {path} is not valid YAML{where}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"kubeconfig {path} cannot be read ({type(exc).__name__}).") from None
    if not isinstance(data, dict):
        raise InputError(f"kubeconfig {path} is not a kubeconfig (expected a mapping with clusters, users, contexts).")
    return data


def connect(config: KubeConfig) -> Connection:
    """Build an ``ApiClient`` from a kubeconfig or the in-cluster service account."""
    cfg = k8s.Configuration()
    secrets: list[str] = []
    if config.in_cluster:
        try:
            incluster_config.InClusterConfigLoader(
                token_filename=incluster_config.SERVICE_TOKEN_FILENAME,
                cert_filename=incluster_config.SERVICE_CERT_FILENAME,
            ).load_and_set(cfg)
        except ConfigException as exc:
            raise InputError(
                f"--in-cluster needs the pod's service account, but {_in_cluster_reason(str(exc))}; "
                "run kubetune inside the cluster (deploy/base/rbac.yaml) or pass --kubeconfig."
            ) from None
        cluster = config.cluster or os.environ.get("KUBETUNE_CLUSTER") or "in-cluster"
    else:
        paths = _kubeconfig_paths(config.kubeconfig)
        docs = [_read_kubeconfig(p) for p in paths]
        for d in docs:
            _collect_secrets(d, secrets)
        contexts = {c.get("name"): c.get("context") or {} for d in docs for c in d.get("contexts") or []
                    if isinstance(c, dict)}
        current = next((d.get("current-context") for d in docs if d.get("current-context")), None)
        name = config.context or current
        where = ", ".join(str(p) for p in paths)
        if not contexts:
            raise InputError(f"kubeconfig {where} has no contexts.")
        if not name:
            raise InputError(f"kubeconfig {where} has no current-context; pass --context "
                             f"(one of {', '.join(sorted(map(str, contexts)))}).")
        if name not in contexts:
            raise InputError(f"kubeconfig {where} has no context {name!r}; "
                             f"it has {', '.join(sorted(map(str, contexts)))}.")
        _check_user(docs, paths, contexts[name], where)
        failed = _Collect()  # the client logs a failed exec plugin on the root logger and goes on without a token
        logging.getLogger().addHandler(failed)
        try:
            kube_config.load_kube_config(
                config_file=str(paths[0]) if config.kubeconfig else None, context=name,
                client_configuration=cfg, persist_config=False)
        except (ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
            text = Connection(None, "", "", secrets).scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise InputError(f"kubeconfig {where}, context {name!r}, cannot be used: {text[:200].rstrip('. ')}.") from None
        finally:
            logging.getLogger().removeHandler(failed)
        if failed.messages:
            text = Connection(None, "", "", secrets).scrub(failed.messages[0].splitlines()[0])
            raise InputError(f"kubeconfig {where}, context {name!r}: its credential plugin failed "
                             f"({text[:200].rstrip('. ')}).")
        cluster = config.cluster or str(contexts[name].get("cluster") or name)
    cfg.retries = False  # retries are ours (backoff, and never on 4xx)
    for value in (cfg.api_key or {}).values():  # "Bearer <token>" / "bearer <token>" (exec plugins, in-cluster)
        if isinstance(value, str):
            secrets.append(value.split(" ", 1)[1].strip() if value.lower().startswith("bearer ") else value)
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    for s in secrets:
        redact.register(s)
    return Connection(k8s.ApiClient(cfg), safe_host(cfg.host), cluster, secrets)


class _Collect(logging.Handler):
    """Error records logged while the kubeconfig loads (instead of a raw ``ERROR:root:`` line)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check_user(docs: list[dict], paths: list[Path], context: dict, where: str) -> None:
    """Name what the context's user needs but lacks (the client would log a raw error, then 401)."""
    wanted = context.get("user")
    for doc, path in zip(docs, paths, strict=True):
        for entry in doc.get("users") or []:
            if not isinstance(entry, dict) or entry.get("name") != wanted or not isinstance(entry.get("user"), dict):
                continue
            user, base = entry["user"], path.parent
            for key in ("tokenFile", "client-certificate", "client-key"):
                file = user.get(key)
                if isinstance(file, str) and file and not (base / Path(file).expanduser()).is_file():
                    raise InputError(f"kubeconfig {where}, user {wanted!r}: its {key} {file} does not exist.")
            command = (user.get("exec") or {}).get("command") if isinstance(user.get("exec"), dict) else None
            if isinstance(command, str) and command:
                found = shutil.which(command) if os.sep not in command else (base / command).is_file() and command
                if not found:
                    raise InputError(f"kubeconfig {where}, user {wanted!r}: its credential plugin {command!r} is not "
                                     "installed (not on PATH); install it or refresh the kubeconfig.")
            return


def _in_cluster_reason(text: str) -> str:
    if "host/port is not set" in text:
        return "KUBERNETES_SERVICE_HOST/PORT are not set (this is not a pod)"
    if "token file does not exist" in text:
        return "the service account token is not mounted"
    if "cert file does not exist" in text:
        return "the service account CA certificate is not mounted"
    return text.rstrip(".").lower() if text else "it could not be loaded"


# ---------------------------------------------------------------------------------------------
# Faults
