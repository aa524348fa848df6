"""deploy/ builds with the real `kubectl kustomize`, validates against the Kubernetes schemas, and is
hardened as the report issue asks; the Dockerfile (which cannot be built here) has the basics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from analyzer import yamlio
from analyzer.collectors.kube_fields import KINDS
from tests.support.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.33"
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


def build(path: str) -> list[dict]:
    proc = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yamlio.load_all(proc.stdout) if d]


@pytest.fixture(scope="module")
def base() -> dict[str, dict]:
    return {d["kind"]: d for d in build("deploy")}


def test_base_builds_and_validates(base):
    for doc in base.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert set(base) == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                         "PersistentVolumeClaim", "CronJob"}
    assert all(d["metadata"].get("namespace") == "kubetune" for k, d in base.items()
               if k not in ("Namespace", "ClusterRole", "ClusterRoleBinding"))


def test_cluster_role_reads_only_what_the_collectors_use(base):
    rules = base["ClusterRole"]["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert {v for _, _, v in granted} <= {"get", "list", "watch"}
    assert granted == {(k.group, k.resource, "list") for k in KINDS} | {("", "namespaces", "get")}
    binding = base["ClusterRoleBinding"]
    assert binding["subjects"][0]["name"] == base["ServiceAccount"]["metadata"]["name"]


def test_cronjob_is_hardened(base):
    cron = base["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid" and cron["schedule"].split()[-1] in ("1", "MON", "0")
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    history = c["args"][c["args"].index("--history-dir") + 1]
    assert mounts[history]["persistentVolumeClaim"]["claimName"] == base["PersistentVolumeClaim"]["metadata"]["name"]
    assert c["image"] == "registry.example.com/platform/kubetune:0.1.0"  # set through kustomize images:
    # secrets come from Secrets, never from the ConfigMap
    secret_env = {e["name"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"KUBETUNE_SLACK_WEBHOOK_URL", "AWS_SECRET_ACCESS_KEY"} <= secret_env
    settings = base["ConfigMap"]["data"]
    assert not [k for k in settings if re.search(r"TOKEN|WEBHOOK_URL|SECRET|PASSWORD", k)]


def test_cronjob_flags_and_settings_are_the_clis(base):
    """Every flag the CronJob passes, and every setting the ConfigMap holds, is one `kubetune report` knows."""
    help_text = run_cli("report", "--help", env={"COLUMNS": "250"}).out
    c = base["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][0] == "report"
    for flag in (a for a in c["args"] if a.startswith("--")):
        assert flag in help_text, flag
    known_env = set(re.findall(r"env var: (KUBETUNE_[A-Z0-9_]+)", help_text)) | {"KUBETUNE_HISTORY", "AWS_DEFAULT_REGION"}
    assert set(base["ConfigMap"]["data"]) <= known_env | {"KUBETUNE_PROMETHEUS_URL"}, known_env


def test_auth_overlay_adds_the_token_from_a_secret():
    docs = {d["kind"]: d for d in build("deploy/overlays/prometheus-auth")}
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    env = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in env if e["name"] == "KUBETUNE_PROMETHEUS_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == "kubetune-prometheus"
    assert docs["ConfigMap"]["data"]["KUBETUNE_PROMETHEUS_URL"].startswith("https://")


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)
            if not m.group(0).lstrip().startswith("#")]


def test_dockerfile_basics(base):
    steps = _instructions((ROOT / "Dockerfile").read_text())
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM"):]
    assert re.match(r"python:3\.\d+-slim", final[0][1])
    users = [v for k, v in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    uid = int(users[-1].split(":")[0])
    pod = base["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid
    assert ("ENTRYPOINT", '["kubetune"]') in final
    runs = " ".join(v for k, v in steps if k == "RUN")
    assert "[test]" not in runs and not re.search(r"pytest|moto|hypothesis|kubernetes-validate", runs)
    assert " -e " not in f" {runs} "  # an installed package, not an editable checkout
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "tests", ".git"} <= set(ignored)
