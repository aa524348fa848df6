"""Ctrl-C and SIGTERM end a run the same way: one line, temp files removed, exit 130 or 143.

Both signals raise ``Interrupted`` (a ``BaseException``, so no ``except Exception`` swallows it and
Typer does not turn it into its own exit), which unwinds through ``analyzer.atomic``: the temporary
directory or file is removed and nothing half-written is renamed into place.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupted(BaseException):
    """The run was stopped by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum
        self.word = "interrupted" if signum == signal.SIGINT else "terminated"


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


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


def os_error_sentence(exc: OSError) -> str:
    """One sentence naming the path an ``OSError`` is about, and what to do."""
    path = exc.filename
    text = _OS_SENTENCES.get(exc.errno or 0)
    if text is None:
        return f"{path}: {(exc.strerror or type(exc).__name__).rstrip('.').lower()}."
    return text.format(path=path) + "."
