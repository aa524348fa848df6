"""``kubetune pr`` end to end: select, locate, edit, commit, push, open or update the PR.

Order matters for "leave the repository as it was": everything that can be refused is checked
before anything is written (clean tree, token and project via the API, base branch), edits happen
in a scratch copy, the commit is made with plumbing, and the push is the one step that changes
anything outside this process. A run with the same recommendations finds the same change already
on the branch and neither commits nor pushes; a branch someone else pushed to is left alone.
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.units import human_value
from recommenders.gitops.body import render_body, title
from recommenders.gitops.forge import ForgeError, Proposal, client
from recommenders.gitops.git import TRAILER, BranchTaken, Repo
from recommenders.gitops.locate import index_repository, read_config, scope
from recommenders.gitops.plan import Plan, apply_plan, select
from recommenders.record import RecommendationSet


@dataclass
class PrOptions:
    repo: Path
    base: str = "main"
    branch: str = "kubetune/rightsizing"
    remote: str = "origin"
    paths: list[str] = field(default_factory=list)
    cluster: str | None = None
    kinds: tuple[str, ...] = ()
    min_saving: float = 0.0
    github: str | None = None
    gitlab: str | None = None
    api_url: str | None = None
    labels: list[str] = field(default_factory=lambda: ["kubetune", "cost"])
    dry_run: bool = False
    source: str = "the recommendations"
    max_wait: float = 60.0


@dataclass
class PrResult:
    plan: Plan
    title: str = ""
    body: str = ""
    diff: str = ""
    status: str = "nothing"  # nothing, dry-run, created, updated, unchanged, declined
    commit: str | None = None
    proposal: Proposal | None = None


def unified_diff(plan: Plan) -> str:
    """The edits as ``git diff`` would show them (a/ and b/ paths, 3 lines of context)."""
    out = []
    for path in sorted(plan.edited):
        old = plan.original.get(path)
        out += difflib.unified_diff((old or "").splitlines(keepends=True), plan.edited[path].splitlines(keepends=True),
                                    "/dev/null" if old is None else f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def commit_message(plan: Plan, branch: str, headline: str) -> str:
    lines = [headline, ""]
    for c in plan.applied:
        ns, kind, name = c.key
        parts = []
        for r in c.recs:
            if r.kind == "spot":
                parts.append("spot placement")
            else:
                parts.append(f"{r.target.container} {r.resource} {human_value(r.resource, r.current_request)} -> "
                             f"{human_value(r.resource, r.proposed_request)}")
        lines.append(f"- {kind} {ns}/{name}: {', '.join(parts)}")
    lines += ["", "Evidence, risk and rollback are in the pull request description.", "", f"{TRAILER}: {branch}"]
    return "\n".join(lines) + "\n"


def run_pr(result: RecommendationSet, opts: PrOptions, say: Callable[[str], None] = print) -> PrResult:
    """Do it (or, with ``dry_run``, show it). Raises a KubetuneError with one sentence on failure."""
    repo = Repo.open(opts.repo, opts.remote, need_remote=not opts.dry_run)
    forge = None
    if not opts.dry_run:
        repo.check_clean()
        forge = client(opts.github, opts.gitlab, opts.api_url, opts.max_wait)
        forge.check()
        repo.fetch()
    base_sha = repo.base_commit(opts.base, local_ok=opts.dry_run)
    plan = select(result, opts.kinds, opts.min_saving)
    with tempfile.TemporaryDirectory(prefix="kubetune-pr-") as tmp:
        tree = Path(tmp)
        repo.export(base_sha, tree)
        config = read_config(tree)
        index = index_repository(tree, scope(tree, opts.paths, opts.cluster, config), config)
        apply_plan(plan, tree, index)
    out = PrResult(plan, title=title(plan), diff=unified_diff(plan))
    out.body = render_body(plan, source=opts.source, branch=opts.branch, base=opts.base)
    if opts.dry_run:
        out.status = "dry-run"
        return out
    assert forge is not None
    if not plan.edited:
        say("Nothing to change: no recommended workload needs an edit in this repository.")
        return out
    foreign = repo.foreign_commits(base_sha, opts.branch)
    if foreign:
        existing = forge.find(opts.branch, opts.base)
        note = (f"kubetune did not update `{opts.branch}`: it holds commit(s) kubetune did not make "
                f"({', '.join(foreign[:5])}). Merge or close this, or delete the branch, and kubetune will propose "
                "again on its next run.")
        if existing is not None and not forge.has_comment(existing, note):  # once, not on every run
            forge.comment(existing, note)
        raise BranchTaken(f"someone else pushed to {opts.branch} ({', '.join(foreign[:3])}); kubetune left it as it is"
                          + (f" and commented on {existing.url or '#' + str(existing.number)}" if existing else "")
                          + ".")
    head, _ = repo.branch_commits(base_sha, opts.branch)
    commit = repo.commit(base_sha, plan.edited, commit_message(plan, opts.branch, out.title))
    existing = forge.find(opts.branch, opts.base)
    unchanged = head is not None and repo.same_change(head, commit)
    if unchanged and existing is None:
        declined = forge.find(opts.branch, opts.base, declined=True)
        if declined is not None:  # a reviewer said no to exactly this: do not reopen it every run
            say(f"The pull request for these changes was closed without merging ({declined.url or declined.number}); "
                f"not reopening it. New recommendations, or deleting the branch {opts.branch}, propose again.")
            out.status, out.proposal, out.commit = "declined", declined, head
            return out
    if unchanged:
        out.commit = head
        say(f"{opts.branch} already has these changes: no new commit.")
    else:
        repo.push(commit, opts.branch, expect=head)
        out.commit = commit
        say(f"Pushed {commit[:10]} to {opts.branch}.")
    try:
        if existing is None:
            out.proposal = forge.create(opts.branch, opts.base, out.title, out.body)
            out.status = "created" if out.proposal.created else "updated"
        else:
            updated = forge.update(existing, out.title, out.body)
            out.status = "unchanged" if (updated is existing and out.commit == head) else "updated"
            out.proposal = updated
        forge.label(out.proposal, opts.labels)
    except ForgeError:
        if head is None and out.commit == commit:  # do not leave a branch without its pull request
            repo.delete_remote_branch(opts.branch, commit)
        raise
    return out

