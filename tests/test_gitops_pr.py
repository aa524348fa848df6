"""`kubetune pr` end to end: a real git repository with a bare remote, real `kubectl kustomize`, and a
loopback server playing GitHub and GitLab. Diffs are asserted line by line; the user's clone must be
exactly as it was after every run, successful or not; the token must appear nowhere."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.forge_server import Fault, ForgeServer
from tests.support.gitops_fixtures import _rec, git, make_repo, recommendations, write_recommendations

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None or shutil.which("git") is None,
                                reason="needs git and kubectl")

TOKEN = "ghp_S3cr3tT0kenValue4Tests9876"
BRANCH = "kubetune/rightsizing"


def state(work: Path) -> dict:
    """Everything a user would notice in their clone: checked-out branch, local branches, index and
    working tree, stash, and the bytes of every file outside .git."""
    files = {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(work.rglob("*")) if p.is_file() and ".git" not in p.relative_to(work).parts}
    return {"head": git(work, "symbolic-ref", "HEAD"), "branches": git(work, "for-each-ref", "refs/heads"),
            "status": git(work, "status", "--porcelain", "--untracked-files=all"), "files": files,
            "worktrees": git(work, "worktree", "list"), "stash": git(work, "stash", "list")}


def pr(tmp: Path, srv: ForgeServer | None, *extra: str, recs: Path | None = None, token: str = TOKEN,
       forge: tuple[str, ...] = ("--github", "acme/gitops")):
    env = {"GITHUB_TOKEN": token, "GITLAB_TOKEN": token, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    args = ["pr", "-r", recs or tmp / "recs.json", "--repo", tmp / "work", "--cluster", "prod", *extra]
    if srv is not None:
        if "--github" in extra or "--gitlab" in extra:
            forge = ()
        args += [*forge, "--api-url", srv.url + ("/api/v4" if "--gitlab" in forge else "")]
    return run_cli(*args, env=env)


@pytest.fixture
def gitops(tmp_path):
    work, bare = make_repo(tmp_path)
    write_recommendations(tmp_path / "recs.json")
    return tmp_path, work, bare


def changed_lines(bare: Path, ref: str = BRANCH) -> list[str]:
    diff = git(bare, "diff", "main", ref)
    return [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


EXPECTED = [
    # apps/cache/redis.yaml: only the values; quoting, comments and styles kept
    '-              cpu: "500m"      # sized for the 2024 sale',
    "-              memory: 2Gi",
    '+              cpu: "250m"      # sized for the 2024 sale',
    "+              memory: 1280Mi",
    "-              memory: 2Gi",
    "+              memory: 1280Mi",
    "-              cpu: 0.1",
    "+              cpu: 0.05",
    # charts/payments/values-prod.yaml
    "-      cpu: 750m      # tuned 2025-11",
    "+      cpu: 500m      # tuned 2025-11",
    # shop/overlays/prod/kubetune-deployment-api.yaml (new; the shared base is not touched)
    "+# kubetune: resource/placement changes for Deployment shop/prod-api in this overlay only;",
    "+# the base shop/base/deployment.yaml is shared and stays as it is. Delete this file to roll back.",
    "+apiVersion: apps/v1", "+kind: Deployment", "+metadata:", "+  name: api", "+spec:", "+  template:",
    "+    spec:", "+      containers:", "+      - name: api", "+        resources:", "+          requests:",
    "+            cpu: 600m", "+            memory: 768Mi", "+          limits:", "+            memory: 768Mi",
    # shop/overlays/prod/kustomization.yaml
    "+  - path: kubetune-deployment-api.yaml",
]


def test_dry_run_prints_the_diff_and_body_and_touches_nothing(gitops):
    tmp, work, bare = gitops
    before, remote_before = state(work), git(bare, "for-each-ref")
    res = pr(tmp, None, "--dry-run")
    assert res.code == 0, res.err
    lines = [ln for ln in res.out.split("\n# kubetune:")[0].splitlines()
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert lines == EXPECTED
    assert "## Summary" in res.out and "$80.45/month" in res.out
    assert "Deployment shop/checkout ($40.00/month): not found in the repository" in res.out
    assert state(work) == before and git(bare, "for-each-ref") == remote_before


def test_github_pull_request_created_idempotent_updated_and_token_never_leaks(gitops):
    tmp, work, bare = gitops
    before = state(work)
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        first = pr(tmp, srv, "--min-saving", "1")
        assert first.code == 0, first.err
        assert state(work) == before
        assert changed_lines(bare) == EXPECTED
        assert git(bare, "rev-list", "--count", f"main..{BRANCH}") == "1"
        message = git(bare, "log", "-1", "--format=%B", BRANCH)
        assert message.startswith("kubetune: right-size 3 workloads, saving $80.45/month")
        assert f"Kubetune-Branch: {BRANCH}" in message
        posts = [r for r in srv.calls("POST") if r.path.endswith("/pulls")]
        assert len(posts) == 1 and posts[0].body["head"] == BRANCH and posts[0].body["base"] == "main"
        pull = srv.pulls["acme/gitops"][0]
        body = pull["body"]
        assert body.startswith("<!-- kubetune:pr -->") and "**$80.45/month** net" in body
        assert "| redis | memory | 2Gi | 1280Mi | 2Gi | 1280Mi | $9.75 | 2.0% | high (0.80) |" in body
        assert "the shared base shop/base/deployment.yaml is unchanged" in body
        assert "behaviour changed (level shift) at 2026-11-28 00:00 UTC" in body
        assert "CronJob tools/backup" not in body.split("## Not changed")[1]  # $0.40 < --min-saving 1
        assert "1 workload(s) below the --min-saving threshold ($0.40/month together)" in body
        assert "## Rolling back" in body
        assert [lb["name"] for lb in pull["labels"]] == ["kubetune", "cost"]
        assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in srv.requests)

        # the branch renders as the cluster would see it: prod changed, staging (same base) not
        checkout = tmp / "check"
        git(tmp, "clone", "-q", "-b", BRANCH, str(bare), str(checkout))
        prod = subprocess.run(["kubectl", "kustomize", str(checkout / "shop/overlays/prod")], capture_output=True,
                              text=True, check=True).stdout
        staging = subprocess.run(["kubectl", "kustomize", str(checkout / "shop/overlays/staging")],
                                 capture_output=True, text=True, check=True).stdout
        assert "cpu: 600m" in prod and "replicas: 6" in prod and "name: prod-api" in prod
        assert "cpu: 600m" not in staging and "cpu: 1\n" in staging

        # the same recommendations again: no commit, no push, no second pull request, no edit
        head = git(bare, "rev-parse", BRANCH)
        n = len(srv.requests)
        second = pr(tmp, srv, "--min-saving", "1")
        assert second.code == 0, second.err
        assert "already has these changes" in second.err
        assert git(bare, "rev-parse", BRANCH) == head
        assert [r.method for r in srv.requests[n:]] == ["GET", "GET"]  # the repository, the open pull request
        assert len(srv.pulls["acme/gitops"]) == 1

        # a changed recommendation updates the same branch (still one commit) and the same pull request
        changed = recommendations()
        changed.recommendations[3] = _rec("shop", "Deployment", "prod-api", "api", "cpu", 1.0, 0.7, None, None, 25.0)
        write_recommendations(tmp / "recs2.json", changed)
        third = pr(tmp, srv, "--min-saving", "1", recs=tmp / "recs2.json")
        assert third.code == 0, third.err
        assert git(bare, "rev-list", "--count", f"main..{BRANCH}") == "1"
        assert "+            cpu: 700m" in changed_lines(bare)
        assert len(srv.pulls["acme/gitops"]) == 1
        assert [r.method for r in srv.requests if "/pulls/1" in r.path] == ["PATCH"]
        assert "| api | cpu | 1 | 700m |" in srv.pulls["acme/gitops"][0]["body"]
        assert state(work) == before

    outputs = first.out + first.err + second.out + second.err + third.out + third.err
    assert TOKEN not in outputs
    for root in (work, bare, tmp):
        for p in root.rglob("*"):
            if p.is_file():
                assert TOKEN.encode() not in p.read_bytes(), p
    assert TOKEN not in git(bare, "log", "-p", "--all")


def test_gitlab_merge_request_and_the_409_race(gitops):
    tmp, _work, bare = gitops
    with ForgeServer(TOKEN, {"platform/gitops"}, bare=bare) as srv:
        srv.pulls["platform/gitops"].append({
            "iid": 1, "state": "opened", "title": "old", "description": "old", "source_branch": BRANCH,
            "target_branch": "main", "labels": [], "web_url": "https://gitlab.example/platform/gitops/-/merge_requests/1"})
        # the first lookup misses it (another run opened it meanwhile): the create gets 409 and turns into an update
        srv.faults.append(Fault("GET", r"/merge_requests$", 200, []))
        res = pr(tmp, srv, forge=("--gitlab", "platform/gitops"))
        assert res.code == 0, res.err
        assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in srv.requests] == [
            ("GET", "platform%2Fgitops"), ("GET", "merge_requests"), ("POST", "merge_requests"),
            ("GET", "merge_requests"), ("PUT", "1"), ("PUT", "1")]
        assert all(r.headers.get("Private-Token") == TOKEN for r in srv.requests)
        mr = srv.pulls["platform/gitops"][0]
        assert len(srv.pulls["platform/gitops"]) == 1 and mr["description"].startswith("<!-- kubetune:pr -->")
        assert mr["labels"] == ["kubetune", "cost"]
        assert changed_lines(bare) == EXPECTED
    assert TOKEN not in res.out + res.err


def test_a_branch_someone_else_pushed_to_is_left_alone(gitops):
    tmp, work, bare = gitops
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        assert pr(tmp, srv).code == 0
        other = tmp / "other"
        git(tmp, "clone", "-q", "-b", BRANCH, str(bare), str(other))
        (other / "NOTES.md").write_text("reviewer: keep api at 700m\n")
        git(other, "add", "NOTES.md")
        git(other, "-c", "user.name=Rita", "-c", "user.email=rita@example.com", "commit", "-qm", "review note")
        git(other, "push", "-q", "origin", BRANCH)
        theirs = git(bare, "rev-parse", BRANCH)
        before = state(work)
        changed = recommendations()
        changed.recommendations[3] = _rec("shop", "Deployment", "prod-api", "api", "cpu", 1.0, 0.7, None, None, 25.0)
        write_recommendations(tmp / "recs2.json", changed)
        res = pr(tmp, srv, recs=tmp / "recs2.json")
        assert_clean_error(res, 1, f"someone else pushed to {BRANCH}")
        assert git(bare, "rev-parse", BRANCH) == theirs
        assert state(work) == before
        assert len(srv.comments) == 1 and "did not update" in srv.comments[0][2]
        again = pr(tmp, srv, recs=tmp / "recs2.json")  # says so again, but comments only once
        assert_clean_error(again, 1, "someone else pushed")
        assert len(srv.comments) == 1 and git(bare, "rev-parse", BRANCH) == theirs


def _dirty(tmp, work, bare):
    (work / "apps/cache/redis.yaml").write_text((work / "apps/cache/redis.yaml").read_text() + "# wip\n")


def _bad_yaml(tmp, work, bare):
    (work / "apps/cache/broken.yaml").write_text("kind: Deployment\nmetadata:\n  name: x\n   bad: [\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "broken")
    git(work, "push", "-q", "origin", "main")


def _templated(tmp, work, bare):
    (work / "apps/cache/tpl.yaml").write_text("kind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "templated")
    git(work, "push", "-q", "origin", "main")


def _reject(tmp, work, bare):
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes need a review' >&2\nexit 1\n")
    hook.chmod(0o755)


@pytest.mark.parametrize(("setup", "extra", "code", "says"), [
    (_dirty, (), 2, "has uncommitted changes (e.g. apps/cache/redis.yaml)"),
    (None, ("--base-branch", "release"), 2, "the base branch release does not exist on origin"),
    (_bad_yaml, (), 2, "apps/cache/broken.yaml is not valid YAML at line 4"),
    (_templated, (), 2, "apps/cache/tpl.yaml is templated"),
    (_reject, (), 1, f"the push of {BRANCH} to origin was rejected"),
    (None, ("--github", "acme/missing"), 1, "answered 404"),
])
def test_bad_input_leaves_the_repository_as_it_was(gitops, setup, extra, code, says):
    tmp, work, bare = gitops
    if setup:
        setup(tmp, work, bare)
    before, remote = state(work), git(bare, "for-each-ref")
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        res = pr(tmp, srv, *extra)
    assert_clean_error(res, code, says)
    assert len(res.err.strip().splitlines()) <= 3 and TOKEN not in res.err + res.out
    assert state(work) == before
    assert git(bare, "for-each-ref") == remote  # no stray branch on the remote either
    assert not [r for r in srv.requests if r.method != "GET"]


def test_wrong_token_is_401_and_never_echoed(gitops):
    tmp, work, bare = gitops
    before = state(work)
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        res = pr(tmp, srv, token="ghp_wrongWrongWrong123")
    assert_clean_error(res, 1, "rejected the token in GITHUB_TOKEN (401 Bad credentials)")
    assert "ghp_wrong" not in res.err + res.out and state(work) == before


def test_api_error_after_the_push_removes_the_new_branch(gitops):
    tmp, work, bare = gitops
    before, remote = state(work), git(bare, "for-each-ref")
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        srv.faults.append(Fault("POST", r"/pulls$", 500, {"message": "Server Error"}))
        res = pr(tmp, srv)
    assert_clean_error(res, 1, "failed opening a pull request on acme/gitops (500 Server Error)")
    assert state(work) == before and git(bare, "for-each-ref") == remote


def test_rate_limit_is_waited_out_with_retry_after(gitops):
    tmp, _work, bare = gitops
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        srv.faults.append(Fault("POST", r"/pulls$", 403, {"message": "You have exceeded a secondary rate limit."},
                                {"Retry-After": "1"}))
        t0 = time.monotonic()
        res = pr(tmp, srv)
        assert res.code == 0, res.err
        assert time.monotonic() - t0 >= 1.0
        assert len([r for r in srv.calls("POST") if r.path.endswith("/pulls")]) == 2
        assert len(srv.pulls["acme/gitops"]) == 1
        # a wait longer than kubetune accepts is an error, not a hang (the branch is then removed again)
        srv.faults.append(Fault("GET", r"/acme/gitops$", 429, {"message": "API rate limit exceeded"},
                                {"Retry-After": "3600"}))
        res = pr(tmp, srv)
    assert_clean_error(res, 1, "rate limiting kubetune (asked to wait 3600 s")


def test_kind_filter_and_json_summary(gitops):
    tmp, _work, _bare = gitops
    res = pr(tmp, None, "--dry-run", "--kind", "spot", "--format", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["changed"] == [] and doc["status"] == "dry-run"
    res = pr(tmp, None, "--dry-run", "--kind", "rightsize", "--min-saving", "20", "--format", "json")
    doc = json.loads(res.out)
    assert [c["workload"] for c in doc["changed"]] == ["cache/StatefulSet/redis", "shop/Deployment/prod-api"]
    assert "tools/CronJob/backup" in doc["below_min_saving"]


def test_unknown_kind_and_bad_recommendations_file(gitops):
    tmp, _work, _bare = gitops
    assert_clean_error(pr(tmp, None, "--dry-run", "--kind", "vpa"), 2, "--kind vpa is not one of")
    (tmp / "bad.json").write_text("{not json")
    assert_clean_error(pr(tmp, None, "--dry-run", recs=tmp / "bad.json"), 2, "is not a kubetune recommendations.json")


def test_whole_repository_scan_without_cluster_finds_both_overlays(gitops):
    tmp, work, _bare = gitops
    res = run_cli("pr", "-r", tmp / "recs.json", "--repo", work, "--dry-run", "--format", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    # prod-api renders only from the prod overlay (staging's is api-stg), so it is not ambiguous
    assert "shop/Deployment/prod-api" in [c["workload"] for c in doc["changed"]]


def test_deploy_jobs_are_valid_and_use_real_flags():
    import re as _re

    import typer
    from analyzer import yamlio

    from kubetune.cli import app

    flags = {o for p in typer.main.get_command(app).commands["pr"].params for o in getattr(p, "opts", [])}
    root = Path(__file__).resolve().parents[1] / "deploy" / "gitops"
    for name in ("github-actions-kubetune-pr.yaml", "gitlab-ci-kubetune-pr.yaml"):
        text = (root / name).read_text()
        doc = yamlio.load(text)
        assert isinstance(doc, dict) and doc
        commands = [c for c in _re.findall(r"kubetune pr [^\n]*(?:\n\s+--[^\n]*)*", text)]
        used = {f for c in commands for f in _re.findall(r"(?<![\w-])--[a-z][a-z-]+", c)}
        assert used and used <= flags, used - flags
        assert "TOKEN" in text and not _re.search(r"(ghp_|glpat-)\w+", text)


def test_after_the_merge_a_new_recommendation_keeps_the_earlier_overlay_change(gitops):
    tmp, work, bare = gitops
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        assert pr(tmp, srv).code == 0
        merger = tmp / "merger"
        git(tmp, "clone", "-q", str(bare), str(merger))
        git(merger, "-c", "user.name=M", "-c", "user.email=m@example.com", "merge", "-q", "--no-ff", "-m", "merge",
            f"origin/{BRANCH}")
        git(merger, "push", "-q", "origin", "main")
        srv.pulls["acme/gitops"][0].update(state="closed", merged_at="2026-12-06T10:00:00Z")
        git(work, "pull", "-q", "origin", "main")
        before = state(work)
        later = recommendations()
        later.recommendations = [_rec("shop", "Deployment", "prod-api", "api", "cpu", 0.6, 0.5, None, None, 8.0),
                                 later.recommendations[0]]  # redis cpu: merged already
        write_recommendations(tmp / "later.json", later)
        res = pr(tmp, srv, recs=tmp / "later.json")
        assert res.code == 0, res.err
        assert changed_lines(bare) == ["-            cpu: 600m", "+            cpu: 500m"]
        body = srv.pulls["acme/gitops"][1]["body"]
        assert "- StatefulSet cache/redis ($21.50/month): already as proposed in the repository" in body
        assert len(srv.pulls["acme/gitops"]) == 2 and state(work) == before


def test_recommending_from_a_snapshot_lists_what_the_repository_does_not_have(gitops):
    _tmp, work, _bare = gitops
    res = run_cli("pr", "--repo", work, "--cluster", "prod", "--dry-run", "--format", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["changed"] == [] and doc["not_changed"]  # the sample's workloads are not in this repository
    assert all("not found in the repository" in c["reason"] for c in doc["not_changed"])


def test_github_422_already_exists_becomes_an_update(gitops):
    tmp, _work, bare = gitops
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        srv.pulls["acme/gitops"].append({
            "number": 7, "state": "open", "title": "old", "body": "old", "_head": f"acme:{BRANCH}",
            "head": {"ref": BRANCH}, "base": {"ref": "main"}, "labels": [{"name": "cost"}],
            "html_url": "https://github.example/acme/gitops/pull/7"})
        srv.faults.append(Fault("GET", r"/pulls$", 200, []))  # opened by a concurrent run after our lookup
        res = pr(tmp, srv)
        assert res.code == 0, res.err
        posts = [r for r in srv.calls("POST") if r.path.endswith("/pulls")]
        assert len(posts) == 1 and [r.method for r in srv.requests if r.path.endswith("/pulls/7")] == ["PATCH"]
        assert len(srv.pulls["acme/gitops"]) == 1 and srv.pulls["acme/gitops"][0]["body"].startswith("<!-- kubetune:pr")
        labels = [r.body for r in srv.requests if r.path.endswith("/issues/7/labels")]
        assert labels == [{"labels": ["kubetune"]}]  # only the missing one
        assert "Pull request updated: https://github.example/acme/gitops/pull/7" in " ".join(res.err.split())


def test_spot_placement_goes_into_the_overlay_patch_and_helm_is_not_guessed(gitops):
    from recommenders.record import Evidence, Recommendation, RecommendationSet, Target

    tmp, _work, _bare = gitops
    frag = {"tolerations": [{"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
                             "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "cloud.google.com/gke-spot", "operator": "In", "values": ["true"]}]}}]}}}
    recs = [Recommendation(target=Target(ns, kind, name), kind="spot", resource="placement", current_request=None,
                           proposed_request=None, current_limit=None, proposed_limit=None, monthly_saving_usd=50.0,
                           risk=0.05, confidence=0.6, evidence=Evidence(reason="spot-ready"), pod_spec_patch=frag)
            for ns, kind, name in (("shop", "Deployment", "prod-api"), ("payments", "Deployment", "payments"))]
    write_recommendations(tmp / "spot.json", RecommendationSet(recs))
    res = pr(tmp, None, "--dry-run", recs=tmp / "spot.json")
    assert res.code == 0, res.err
    assert "# kubetune: move to spot 1 workload, saving $50.00/month" in res.out
    assert "+      tolerations:\n+      - key: cloud.google.com/gke-spot" in res.out
    assert "shop/base/deployment.yaml\n" not in res.out.split("\n# kubetune:")[0]  # the shared base is not edited
    assert "payments/Deployment/payments: charts/payments/values-prod.yaml is a Helm values file" in " ".join(
        res.err.split())


def test_a_declined_pull_request_is_not_reopened_until_the_recommendation_changes(gitops):
    tmp, _work, bare = gitops
    with ForgeServer(TOKEN, {"acme/gitops"}, bare=bare) as srv:
        assert pr(tmp, srv).code == 0
        srv.pulls["acme/gitops"][0]["state"] = "closed"  # a reviewer closed it without merging
        again = pr(tmp, srv)
        assert again.code == 0, again.err
        assert "closed without merging" in " ".join(again.err.split())
        assert len(srv.pulls["acme/gitops"]) == 1 and not [r for r in srv.requests[-3:] if r.method != "GET"]
        changed = recommendations()
        changed.recommendations[3] = _rec("shop", "Deployment", "prod-api", "api", "cpu", 1.0, 0.7, None, None, 25.0)
        write_recommendations(tmp / "recs2.json", changed)
        assert pr(tmp, srv, recs=tmp / "recs2.json").code == 0
        assert [p["state"] for p in srv.pulls["acme/gitops"]] == ["closed", "open"]
