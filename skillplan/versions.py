"""Versioned checkpoint directories that survive a kill at any instant.

A checkpoint named `prior` (or `agent`) is a symbolic link to its newest complete version:

    prior -> prior-checkpoints/step-002000
    prior-checkpoints/step-001000/    the previous version, kept as a fallback
    prior-checkpoints/step-002000/

A version is written into a staging directory, flushed to disk and renamed into place, so a
`step-*` directory is complete from the moment it exists. The link is then replaced by one
rename, and only after that are older versions (beyond the previous one) deleted. Whatever
instant the process dies at, the link names a complete version, or (if it died in the middle of
moving an older plain directory aside) the newest version is found by its step. Readers open
`prior/...` as before; plain checkpoint directories of earlier releases still load.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from skillplan.errors import CheckpointError
from skillplan.io import fsync_path, fsync_tree, replace_directory

KEEP = 2  # the newest version and the one before it
_VERSION = re.compile(r"step-(\d+)")
T = TypeVar("T")


def versions_dir(link: Path) -> Path:
    """Where the versions of the checkpoint `link` live: `NAME-checkpoints/` beside it."""
    link = Path(link)
    return link.with_name(f"{link.name}-checkpoints")


def version_name(step: int) -> str:
    return f"step-{step:06d}"


def versions(link: Path) -> list[tuple[int, Path]]:
    """The (step, directory) of every version of `link`, newest first."""
    folder = versions_dir(link)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir()
             if (m := _VERSION.fullmatch(path.name)) and path.is_dir()]
    return sorted(found, reverse=True)


def write_version(link: Path, step: int, write: Callable[[Path], None]) -> Path:
    """Write a version of the checkpoint `link` at `step` with `write(directory)`, then point `link` at it.

    A version of the same step is replaced (in one atomic swap where the OS offers it). Versions of
    later steps belong to a run that was resumed from before them, and are deleted.
    """
    link = Path(link)
    folder = versions_dir(link)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".staging-*"):  # left by a process killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    for stale in link.parent.glob(f".{link.name}.link-*"):  # killed between making a link and moving it
        stale.unlink(missing_ok=True)
    final = folder / version_name(step)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        write(staging)
        fsync_tree(staging)
        replace_directory(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_path(folder)
    _point(link, final)
    for old_step, old in versions(link):
        if old_step > step:
            shutil.rmtree(old, ignore_errors=True)
    for _, old in [v for v in versions(link) if v[0] <= step][KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _point(link: Path, version: Path) -> None:
    """Make `link` a relative symbolic link to `version` by one rename."""
    target = os.path.relpath(version, link.parent)
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    if link.is_symlink() or not os.path.lexists(link):
        os.replace(tmp, link)
    else:  # a plain directory of an earlier release, swapped for the link and deleted
        replace_directory(tmp, link)


def resolve(link: Path) -> Path:
    """The directory to read the checkpoint `link` from: the link itself when it leads to a directory,
    else the newest version (the link is missing only if a process died while replacing it)."""
    link = Path(link)
    if link.is_dir() or not versions(link):
        return link
    return versions(link)[0][1]


def candidates(link: Path, required: Sequence[str]) -> list[Path]:
    """Complete versions of `link` to resume from, newest first; a plain directory counts as one.

    Raises a `CheckpointError` naming what is missing when there are versions but none is complete.
    """
    link = Path(link)
    found = versions(link)
    if not found:
        return [link] if link.is_dir() and not link.is_symlink() else []
    complete = [path for _, path in found if not missing(path, required)]
    if complete:
        return complete
    what = "; ".join(f"{path.name} lacks {', '.join(missing(path, required))}" for _, path in found)
    raise CheckpointError(
        f"No complete checkpoint in '{versions_dir(link)}': {what}. These were not written by skillplan "
        "as they are (it writes each version whole); restore the missing files, or start a new run in "
        "another --out."
    )


def missing(path: Path, required: Sequence[str]) -> list[str]:
    return [name for name in required if not (Path(path) / name).is_file()]


def newest_readable(
    link: Path, found: Sequence[Path], read: Callable[[Path], T]
) -> tuple[Path, T, list[str]]:
    """The first of `found` (newest first) that `read` accepts, what it returned, and why each newer one
    was refused; a `CheckpointError` naming every refusal when none can be read."""
    failures = []
    for path in found:
        try:
            return path, read(path), failures
        except CheckpointError as exc:
            failures.append(f"{path.name}: {exc}")
    raise CheckpointError(f"No version of the checkpoint '{link}' can be read: {'; '.join(failures)}")
