"""Atomic outputs: write into a temp path beside the target, rename into place on success.

Every output kubetune leaves behind (snapshots, exports, reports, tables) goes through here, so
a crash or an error never leaves half a directory or half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def readable_mode(directory: bool) -> int:
    """The mode a plain ``open``/``mkdir`` would give under the current umask: temp files and
    directories start private (0600/0700), and outputs are meant to be read by others."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp directory; on success it replaces ``target`` (an old one is removed after)."""
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(tmp, readable_mode(directory=True))
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: str | os.PathLike[str], buffering: int = -1) -> Iterator[IO[bytes]]:
    """Yield a binary file handle; on success the file replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    try:
        os.fchmod(fd, readable_mode(directory=False))
        with os.fdopen(fd, "wb", buffering=buffering) as fh:
            yield fh
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_file(target) as fh:
        fh.write(data)
