"""Atomic file and directory writes: readers see the old version or the new one, never half of one."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh staging directory beside `target`; on success it replaces `target` by rename.

    On an exception the staging directory is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_directory(source: Path, target: Path) -> None:
    """Move `source` to `target` (same filesystem), replacing whatever `target` holds.

    Where the OS can swap two paths in one step (Linux's renameat2 with RENAME_EXCHANGE), a reader
    finds the old or the new `target` at every instant, a killed process included; the old one is
    deleted after. Elsewhere the old `target` is first moved aside: two renames, with a short window
    in which `target` is absent.
    """
    source, target = Path(source), Path(target)
    if not os.path.lexists(target):
        os.replace(source, target)
        return
    if exchange_paths(source, target):
        _remove(source)  # it now holds the old target
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, trash / "old")
    os.replace(source, target)
    shutil.rmtree(trash, ignore_errors=True)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (files, directories or links); False where unsupported."""
    rename = _renameat2()
    if rename is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if rename(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # this filesystem or kernel can't
        return False
    raise OSError(code, os.strerror(code), str(b))


def _renameat2():
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def fsync_tree(path: Path) -> None:
    """Flush every file under `path`, and the directories, to disk (durable before a rename)."""
    path = Path(path)
    for item in [path, *path.rglob("*")]:
        if not item.is_symlink():
            fsync_path(item)


def fsync_path(path: Path) -> None:
    """Flush one file or directory entry list to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; empty when the file is missing, unreadable or not a JSON object."""
    try:
        loaded = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def save_figure(fig: Any, path: Path) -> None:
    """Lay out a matplotlib figure and write it as a PNG, atomically; the figure is closed after."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
