"""deploy/dashboard/: the dashboard's kustomize Component builds (with `kubectl kustomize`), validates
against the Kubernetes schemas, and is locked down: read-only, non-root, reachable only through the
authenticating proxy, no API token, no Secret in the repository, not part of the CronJob's base."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
from analyzer import yamlio

ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.33"


@pytest.fixture(scope="module")
def built() -> dict[str, dict]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / "overlays" / "dashboard")],
                         capture_output=True, text=True, check=True).stdout
    docs = [d for d in yamlio.load_all(out) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return {d["kind"] if d["metadata"]["name"].startswith("kubetune-dashboard") or d["kind"] != "ConfigMap"
            else "SettingsConfigMap": d for d in docs}


def test_component_builds_on_the_cronjob_base(built):
    assert {"Deployment", "Service", "ConfigMap", "CronJob", "PersistentVolumeClaim"} <= set(built)
    assert "Secret" not in built  # the proxy's Secret is created by the user
    assert yamlio.load((ROOT / "deploy" / "dashboard" / "kustomization.yaml").read_text())["kind"] == "Component"
    assert all(built[k]["metadata"]["namespace"] == "kubetune" for k in ("Deployment", "Service", "ConfigMap"))
    # It reads what the CronJob writes: the same claim, mounted where the CronJob keeps its history.
    pod = built["Deployment"]["spec"]["template"]["spec"]
    cron = built["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if v["name"] == "reports")["persistentVolumeClaim"]["claimName"]
    assert claim == built["PersistentVolumeClaim"]["metadata"]["name"]
    cron_vol = next(v["name"] for v in cron["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim)
    cron_path = next(m["mountPath"] for c in cron["containers"] for m in c["volumeMounts"] if m["name"] == cron_vol)
    dash = next(c for c in pod["containers"] if c["name"] == "dashboard")
    assert dash["args"][dash["args"].index("--history-dir") + 1] == cron_path
    assert dash["image"] == cron["containers"][0]["image"]


def test_only_the_proxy_is_reachable(built):
    pod = built["Deployment"]["spec"]["template"]["spec"]
    dash = next(c for c in pod["containers"] if c["name"] == "dashboard")
    proxy = next(c for c in pod["containers"] if c["name"] == "oauth2-proxy")
    args = dash["args"]
    assert args[:1] == ["dashboard"] and args[args.index("--address") + 1] == "127.0.0.1"
    assert "ports" not in dash
    assert [p["targetPort"] for p in built["Service"]["spec"]["ports"]] == ["oauth2-proxy"]
    assert proxy["ports"][0]["name"] == "oauth2-proxy"
    assert built["Service"]["spec"]["type"] == "ClusterIP"
    assert built["ConfigMap"]["data"]["OAUTH2_PROXY_UPSTREAMS"] == f"http://127.0.0.1:{args[args.index('--port') + 1]}/"
    secrets = {e["valueFrom"]["secretKeyRef"]["key"] for e in proxy["env"] if "valueFrom" in e}
    assert secrets == {"client-id", "client-secret", "cookie-secret"}
    assert not any("SECRET" in k for k in built["ConfigMap"]["data"])


def test_read_only_and_non_root(built):
    pod = built["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == \
        "RuntimeDefault"
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["limits"]["memory"]
    reports = next(v for v in pod["volumes"] if v["name"] == "reports")
    assert reports["persistentVolumeClaim"]["readOnly"] is True
    mounts = next(c for c in pod["containers"] if c["name"] == "dashboard")["volumeMounts"]
    assert next(m for m in mounts if m["name"] == "reports")["readOnly"] is True


def test_not_in_the_cronjob_base():
    base = ROOT / "deploy" / "kustomization.yaml"
    if base.exists():
        assert "dashboard" not in base.read_text().split("resources:")[-1]
