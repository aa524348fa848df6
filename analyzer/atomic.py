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

from analyzer.errors import InputError, os_error_sentence


MARKER = ".kubetune"
_MARKER_TEXT = "Written by kubetune: `--overwrite` may replace this directory (and only such directories).\n"


def written_by_kubetune(path: str | os.PathLike[str]) -> bool:
    """A directory kubetune wrote: it holds the ``.kubetune`` marker or a kubetune snapshot manifest."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / MARKER).is_file():
        return True
    manifest = path / "manifest.json"
    try:
        return manifest.is_file() and '"kubetune-snapshot"' in manifest.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False


def check_replaceable(target: str | os.PathLike[str]) -> None:
    """Refuse to replace anything but an empty directory or one kubetune wrote (never a user's files)."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_dir() and not target.is_symlink() and (not any(target.iterdir()) or written_by_kubetune(target)):
        return
    what = "a file" if target.is_file() else "a directory kubetune did not write"
    raise InputError(f"{target} is {what}; --overwrite only replaces kubetune's own output directories, "
                     "so choose another --out (or remove it yourself).")


def check_file_target(target: str | os.PathLike[str]) -> None:
    """Refuse a file output that cannot be written, before any work: a directory, a device or pipe,
    or a path under a file."""
    target = Path(target)
    if target.is_dir():
        raise InputError(f"{target} is a directory; give a file path to write to.")
    if target.exists() and not target.is_file():
        raise InputError(f"{target} is not a regular file (a device or pipe); give a file path, or no --out for stdout.")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{target} cannot be created: {parent} is a file, not a directory.")


def make_parent(target: Path) -> None:
    """Create ``target``'s parent directories, or say which part of the path is a file."""
    for parent in reversed(target.parents):
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{target} cannot be created: {parent} is a file, not a directory.")
    target.parent.mkdir(parents=True, exist_ok=True)


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
    """Yield a temp directory; on success it replaces ``target`` (an old one is removed after).

    The directory gets the ``.kubetune`` marker, and an existing ``target`` is replaced only if
    it is empty or kubetune wrote it (``check_replaceable``)."""
    target = Path(target).resolve()
    check_replaceable(target)
    make_parent(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise InputError(os_error_sentence(exc, target)) from None
    try:
        os.chmod(tmp, readable_mode(directory=True))
        (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            _remove(old)
        else:
            tmp.rename(target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _explain(exc, target)
        raise


def _explain(exc: BaseException, target: Path) -> None:
    """Turn a failed write into one sentence about ``target`` (not the temp path): an ``OSError``
    by its errno, any other failure (Parquet writers hide ENOSPC) by the free space left."""
    if not isinstance(exc, Exception) or isinstance(exc, InputError):
        return
    if isinstance(exc, OSError) and exc.errno is not None:
        raise InputError(os_error_sentence(exc, target)) from exc
    try:
        full = shutil.disk_usage(target.parent).free < 1 << 20
    except OSError:
        full = False
    if full:
        raise InputError(f"no space left on the device holding {target}.") from exc


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_file(target: str | os.PathLike[str], buffering: int = -1) -> Iterator[IO[bytes]]:
    """Yield a binary file handle; on success the file replaces ``target``."""
    target = Path(target)
    check_file_target(target)
    make_parent(target)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    except OSError as exc:
        raise InputError(os_error_sentence(exc, target)) from None
    try:
        os.fchmod(fd, readable_mode(directory=False))
        with os.fdopen(fd, "wb", buffering=buffering) as fh:
            yield fh
        os.replace(name, target)
    except BaseException as exc:
        Path(name).unlink(missing_ok=True)
        _explain(exc, target)
        raise


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_file(target) as fh:
        fh.write(data)
