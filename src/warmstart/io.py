"""Atomic writes: a reader sees the old file or the new one, never half of one.

A write that the file system refuses (a read-only folder, a parent that is a file, a path under /proc, a full disk)
is the user's to fix, so it ends in a :class:`WarmstartError` naming the path, never an ``OSError`` traceback.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import WarmstartError


def unwritable(path: Path, exc: OSError) -> WarmstartError:
    """The error for a write to ``path`` that failed with ``exc``, with the fix its cause calls for."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space on that disk, or write somewhere else (--out)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a part of the path is an existing file, not a folder: choose another --out"
    elif exc.errno == errno.EISDIR:
        hint = "the path is a folder: name a file in it"
    else:
        hint = "choose a folder you can write to (--out)"
    return WarmstartError(f"{path}: cannot be written ({reason})", hint=hint)


def make_folder(path: str | Path) -> Path:
    """Create the folder ``path`` (and its parents) and check that files can be written in it, before any work is
    spent on what goes there; a WarmstartError naming it otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except FileExistsError as exc:  # mkdir says so when ``path`` itself is an existing file
        raise WarmstartError(f"{path}: is an existing file, not a folder ({exc.strerror})",
                             hint="choose another --out, or move the file away") from None
    except OSError as exc:
        raise unwritable(path, exc) from None
    return path


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise unwritable(path, exc) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give them the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise unwritable(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass  # already gone, or the folder went away: nothing half-written is left to clean


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8, atomically. A path read from a file name that is not UTF-8 holds lone surrogates
    (Python's surrogateescape); they are written as ``\udcff`` escapes, not a UnicodeEncodeError after training."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)

    return atomic_write(path, write)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes: what a run records of the checkpoint it started from, so that a resume
    notices when the file at that path was replaced. Computed once per file version (path, size and modification
    time): a search or a comparison starts every trial from the same checkpoint."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
