"""Where a measurement came from: the machine, the commit and the command, stored with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import skillplan

SOURCE_ROOT = Path(skillplan.__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    """The checkout's commit hash, `-dirty` when tracked code has changed; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        # Results being written (benchmarks/results/) and documentation don't change what measures.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks/results", ":!*.md"], cwd=SOURCE_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def machine() -> dict[str, Any]:
    """The CPU model and the number of cores."""
    return {"cpu": cpu_model(), "cores": os.cpu_count()}


def provenance(command: list[str] | None = None) -> dict[str, Any]:
    """Machine (CPU model, cores), commit, package version and the command line (default: `sys.argv`)."""
    argv = command if command is not None else sys.argv
    return {
        "machine": machine(),
        "commit": commit(),
        "version": skillplan.__version__,
        "command": " ".join(argv),
    }
