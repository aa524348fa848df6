"""Real ``git``, used so the user's clone is never disturbed.

The base branch is copied out with ``git archive`` into a scratch directory, edited there, and
the commit is built with plumbing (a private index, ``write-tree``, ``commit-tree``) and pushed by
its id. The user's working tree, index, HEAD and local branches are never touched, so a failure
at any step leaves the repository exactly as it was (a fetch may refresh remote-tracking refs).
Our commits carry a ``Kubetune-Branch:`` trailer: a branch holding any commit without it was
touched by someone else and is never force-pushed over.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError, KubetuneError
from analyzer.redact import redact

TRAILER = "Kubetune-Branch"


class GitError(KubetuneError):
    """A git step failed (exit 1)."""


class BranchTaken(KubetuneError):
    """Someone else pushed to the bot's branch; it is left alone (exit 1)."""


def git(repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``repo``; on failure one redacted sentence with git's first error line."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
    try:
        done = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, env=full_env,
                              timeout=300, check=False)
    except FileNotFoundError:
        raise InputError("kubetune pr needs git on PATH.") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within 300 s.") from None
    if check and done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.lower().startswith(("fatal", "error", "!", "remote:"))), lines[0] if lines
                     else "no message")
        raise GitError(redact(f"git {args[0]} failed: {first}"))
    return done


def out(repo: Path, *args: str) -> str:
    return git(repo, *args).stdout.decode().strip()


@dataclass
class Repo:
    """The user's clone, checked (a git work tree, nothing uncommitted) before anything else."""

    path: Path
    remote: str = "origin"

    @classmethod
    def open(cls, path: Path, remote: str, need_remote: bool) -> Repo:
        if not path.is_dir():
            raise InputError(f"--repo {path} is not a directory.")
        probe = git(path, "rev-parse", "--show-toplevel", check=False)
        if probe.returncode != 0:
            raise InputError(f"--repo {path} is not a git repository.")
        repo = cls(Path(probe.stdout.decode().strip()), remote)
        if need_remote and git(repo.path, "remote", "get-url", remote, check=False).returncode != 0:
            raise InputError(f"the repository has no remote named {remote} (--remote).")
        return repo

    def check_clean(self) -> None:
        status = git(self.path, "status", "--porcelain", "--untracked-files=no").stdout.decode().splitlines()
        if status:
            first = status[0][3:]
            raise InputError(f"the working tree of {self.path} has uncommitted changes (e.g. {first}); commit or "
                             "stash them first.")

    def checked_out(self) -> str:
        done = git(self.path, "symbolic-ref", "-q", "HEAD", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else out(self.path, "rev-parse", "HEAD")

    def fetch(self) -> None:
        git(self.path, "fetch", "--quiet", "--prune", self.remote)

    def resolve(self, ref: str) -> str | None:
        done = git(self.path, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def base_commit(self, base: str, local_ok: bool) -> str:
        sha = self.resolve(f"refs/remotes/{self.remote}/{base}") or (self.resolve(f"refs/heads/{base}") if local_ok
                                                                      else None)
        if sha is None:
            raise InputError(f"the base branch {base} does not exist on {self.remote} (--base-branch).")
        return sha

    def export(self, commit: str, into: Path) -> None:
        """The files of ``commit`` under ``into`` (a scratch directory), as ``git archive`` gives them."""
        data = git(self.path, "archive", "--format=tar", commit).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(into, filter="data")

    def branch_commits(self, base: str, branch: str) -> tuple[str | None, list[tuple[str, str]]]:
        """The remote branch's head and its commits not on the base: (sha, full message)."""
        head = self.resolve(f"refs/remotes/{self.remote}/{branch}")
        if head is None:
            return None, []
        log = out(self.path, "log", "--format=%H%x00%B%x01", f"{base}..{head}")
        commits = [tuple(c.strip().split("\x00", 1)) for c in log.split("\x01") if c.strip()]
        return head, [(c[0], c[1] if len(c) > 1 else "") for c in commits]

    def foreign_commits(self, base: str, branch: str) -> list[str]:
        """Short ids of commits on the branch that kubetune did not make."""
        _, commits = self.branch_commits(base, branch)
        return [sha[:10] for sha, msg in commits if f"{TRAILER}: {branch}" not in msg]

    def commit(self, parent: str, files: dict[str, str], message: str) -> str:
        """A commit of ``parent`` with ``files`` replaced, made without touching index or work tree."""
        gitdir = Path(out(self.path, "rev-parse", "--absolute-git-dir"))
        index = gitdir / f"kubetune-index-{os.getpid()}"
        env = {"GIT_INDEX_FILE": str(index), **_identity(self.path)}
        try:
            git(self.path, "read-tree", parent, env=env)
            for path, text in sorted(files.items()):
                blob = git(self.path, "hash-object", "-w", "--stdin", input=text.encode()).stdout.decode().strip()
                mode = out(self.path, "ls-tree", parent, "--", path).split(" ", 1)[0] or "100644"
                git(self.path, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
            tree = out_env(self.path, env, "write-tree")
            return git(self.path, "commit-tree", tree, "-p", parent, input=message.encode(),
                       env=env).stdout.decode().strip()
        finally:
            index.unlink(missing_ok=True)

    def same_change(self, a: str, b: str) -> bool:
        """True when commits ``a`` and ``b`` make the same change to the same parent tree, or the same patch."""
        if out(self.path, "rev-parse", f"{a}^{{tree}}") == out(self.path, "rev-parse", f"{b}^{{tree}}"):
            return True
        return _patch_id(self.path, a) == _patch_id(self.path, b)

    def push(self, commit: str, branch: str, expect: str | None) -> None:
        """Push ``commit`` to the branch only if the remote still has ``expect`` there (None: absent)."""
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        try:
            git(self.path, "push", "--quiet", lease, self.remote, f"{commit}:refs/heads/{branch}")
        except GitError as exc:
            raise GitError(f"the push of {branch} to {self.remote} was rejected ({str(exc).split(': ', 1)[-1]}); "
                           "nothing else was changed.") from None

    def delete_remote_branch(self, branch: str, expect: str) -> None:
        git(self.path, "push", "--quiet", f"--force-with-lease=refs/heads/{branch}:{expect}", self.remote,
            f":refs/heads/{branch}", check=False)


def out_env(repo: Path, env: dict[str, str], *args: str) -> str:
    return git(repo, *args, env=env).stdout.decode().strip()


def _patch_id(repo: Path, commit: str) -> str:
    diff = git(repo, "diff-tree", "-p", f"{commit}^", commit).stdout
    return git(repo, "patch-id", "--stable", input=diff).stdout.decode().split(" ", 1)[0]


def _identity(repo: Path) -> dict[str, str]:
    """The user's git identity when configured, else kubetune's (CI runners often have none)."""
    env: dict[str, str] = {}
    name = git(repo, "config", "user.name", check=False).stdout.decode().strip()
    email = git(repo, "config", "user.email", check=False).stdout.decode().strip()
    for who in ("AUTHOR", "COMMITTER"):
        if not os.environ.get(f"GIT_{who}_NAME") and not name:
            env[f"GIT_{who}_NAME"] = "kubetune"
        if not os.environ.get(f"GIT_{who}_EMAIL") and not email:
            env[f"GIT_{who}_EMAIL"] = "kubetune@users.noreply.github.com"
    return env
