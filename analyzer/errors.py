"""User-facing errors: one sentence a user can act on, mapped to an exit code by the CLI."""

from __future__ import annotations

import errno


class KubetuneError(Exception):
    """An error whose message is shown to the user as-is (no traceback).

    ``exit_code`` follows the CLI convention: 1 = the job failed, 2 = bad usage or bad input.
    """

    exit_code = 1


class InputError(KubetuneError):
    """Bad input from the user: a missing file, a malformed snapshot, a wrong flag value."""

    exit_code = 2


class SnapshotError(InputError):
    """A snapshot directory that cannot be read or does not match the schema."""


_OS_SENTENCES = {
    errno.ENOSPC: "no space left on the device holding {path}",
    errno.EDQUOT: "the disk quota is exceeded writing {path}",
    errno.EROFS: "{path} is on a read-only file system",
    errno.ENOTDIR: "{path} cannot be created: a part of the path is a file, not a directory",
    errno.EISDIR: "{path} is a directory; give a file path",
    errno.EACCES: "no permission to write {path}",
    errno.EPERM: "no permission to write {path}",
    errno.ENAMETOOLONG: "the file name {path} is too long",
    errno.ENOENT: "{path} does not exist",
    errno.EEXIST: "{path} already exists",
}


def os_error_sentence(exc: OSError, path: object = None) -> str:
    """One sentence naming the path an ``OSError`` is about (or ``path``, e.g. the output a temp file was for)."""
    path = exc.filename if path is None else path
    text = _OS_SENTENCES.get(exc.errno or 0)
    if text is None:
        return f"{path}: {(exc.strerror or type(exc).__name__).rstrip('.').lower()}."
    return text.format(path=path) + "."
