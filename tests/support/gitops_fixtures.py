"""A realistic GitOps repository (with a bare remote) and recommendations for it, for `kubetune pr` tests.

Layout, as teams write them: ``apps/cache/redis.yaml`` (plain, multi-document, comments, quoted
and unquoted quantities), ``shop/base`` (a kustomize base shared by two clusters) with overlays
``shop/overlays/prod`` (namePrefix, namespace, its own patch) and ``shop/overlays/staging``
(nameSuffix, another namespace), a Helm chart whose values file is mapped in
``kubetune-gitops.yaml``, and a CI workflow with ``${{ }}`` that must be ignored. The
recommendations are built by the genuine rightsizing patch builder.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC
from pathlib import Path

from analyzer.units import GIB, MIB
from recommenders.record import Evidence, Recommendation, RecommendationSet, Target
from recommenders.rightsizing import _resources_patch

FILES = {
    "apps/cache/redis.yaml": """\
# Redis cache for the shop. Owned by team-data.
apiVersion: v1
kind: Service
metadata:
  name: redis
  namespace: cache
spec:
  ports:
    - port: 6379
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
  namespace: cache
  labels: {app: redis}
spec:
  serviceName: redis
  replicas: 3
  template:
    spec:
      containers:
        - name: redis
          image: "redis:7.2"   # pinned, see ADR-12
          resources:
            requests:
              cpu: "500m"      # sized for the 2024 sale
              memory: 2Gi
            limits:
              memory: 2Gi
        - name: exporter
          image: oliver006/redis_exporter:v1.62.0
          resources:
            requests:
              cpu: 0.1
              memory: 64Mi
""",
    "shop/base/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
labels:
  - pairs: {app.kubernetes.io/part-of: shop}
""",
    "shop/base/deployment.yaml": """\
# The storefront API. Shared by every cluster: change it in an overlay.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: api
        image: ghcr.io/acme/api:1.4.2
        resources:
          requests:
            cpu: 1
            memory: 1Gi
          limits:
            memory: 1Gi
      - name: envoy
        image: envoyproxy/envoy:v1.31.0
        resources:
          requests:
            cpu: 200m
            memory: 128Mi
""",
    "shop/overlays/prod/kustomization.yaml": """\
# prod cluster (eu-west-1)
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
namePrefix: prod-
resources:
  - ../../base
patches:
  - path: replicas.yaml   # prod runs more replicas
""",
    "shop/overlays/prod/replicas.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 6
""",
    "shop/overlays/staging/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop-staging
nameSuffix: -stg
resources:
  - ../../base
""",
    "charts/payments/Chart.yaml": "apiVersion: v2\nname: payments\nversion: 0.3.0\n",
    "charts/payments/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: payments
          resources: {{- toYaml .Values.payments.resources | nindent 12 }}
""",
    "charts/payments/values-prod.yaml": """\
# Production values for the payments chart.
replicaCount: 3
payments:
  image: ghcr.io/acme/payments:2.0.1
  resources:
    requests:
      cpu: 750m      # tuned 2025-11
      memory: 1536Mi
    limits:
      memory: 1536Mi
""",
    "kubetune-gitops.yaml": """\
clusters:
  prod: [shop/overlays/prod, apps, charts]
helm:
  - workload: payments/Deployment/payments
    values: charts/payments/values-prod.yaml
    containers: {payments: payments.resources}
""",
    ".github/workflows/ci.yaml": """\
name: ci
on: push
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.sha }}
""",
}

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def make_repo(tmp: Path, files: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A clone at ``tmp/work`` (branch main, pushed) and its bare remote ``tmp/remote.git``."""
    bare, work = tmp / "remote.git", tmp / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    for k, v in (("user.name", "Dana Dev"), ("user.email", "dana@example.com"), ("commit.gpgsign", "false")):
        git(work, "config", k, v)
    for path, text in (files or FILES).items():
        p = work / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "initial manifests")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return work, bare


def _rec(ns: str, kind: str, name: str, container: str, resource: str, cur: float, prop: float,
         cur_lim: float | None, prop_lim: float | None, saving: float, change_limit: bool = False,
         drift: bool = False) -> Recommendation:
    from datetime import datetime

    start, end = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC)
    ev = Evidence(reason=f"p99 {resource} demand is well below the request", history_start=start, history_end=end,
                  history_hours=336, observed={"p95": prop * 0.7, "peak": prop * 0.9}, quantile_used="p99",
                  margin=0.1, post_drift_start=datetime(2026, 11, 28, tzinfo=UTC) if drift else None,
                  drift_kind="level shift" if drift else None)
    return Recommendation(
        target=Target(ns, kind, name, container), kind="rightsize", resource=resource, current_request=cur,
        proposed_request=prop, current_limit=cur_lim, proposed_limit=prop_lim, monthly_saving_usd=saving, risk=0.02,
        confidence=0.8, evidence=ev, replicas=3,
        pod_spec_patch=_resources_patch({"container": container, "container_type": "app"}, resource, prop, prop_lim,
                                        change_limit))


def recommendations() -> RecommendationSet:
    """Changes for the plain StatefulSet, the prod overlay's Deployment, the Helm release, and two the
    repository does not have (a workload, and a staging one when only prod is in scope)."""
    return RecommendationSet(recommendations=[
        _rec("cache", "StatefulSet", "redis", "redis", "cpu", 0.5, 0.25, None, None, 21.5, drift=True),
        _rec("cache", "StatefulSet", "redis", "redis", "memory", 2 * GIB, 1280 * MIB, 2 * GIB, 1280 * MIB, 9.75,
             change_limit=True),
        _rec("cache", "StatefulSet", "redis", "exporter", "cpu", 0.1, 0.05, None, None, 1.2),
        _rec("shop", "Deployment", "prod-api", "api", "cpu", 1.0, 0.6, None, None, 30.0),
        _rec("shop", "Deployment", "prod-api", "api", "memory", GIB, 768 * MIB, GIB, 768 * MIB, 6.0, change_limit=True),
        _rec("payments", "Deployment", "payments", "payments", "cpu", 0.75, 0.5, None, None, 12.0),
        _rec("shop", "Deployment", "checkout", "checkout", "cpu", 2.0, 1.0, None, None, 40.0),
        _rec("tools", "CronJob", "backup", "backup", "cpu", 1.0, 0.9, None, None, 0.4),
    ])


def write_recommendations(path: Path, result: RecommendationSet | None = None) -> Path:
    """recommendations.json as `kubetune recommend --patches` writes it."""
    result = result or recommendations()
    path.write_text(json.dumps({"recommendations": [r.to_dict() for r in result.recommendations], "skipped": [],
                                "notes": [], "cluster_notes": {}, "unmatched": []}, indent=2, default=str))
    return path
