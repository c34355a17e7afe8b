"""Shared by the benchmark scripts: print a result and write it, with the machine and the command."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(result: dict[str, Any], out: Path) -> None:
    """Add machine and command to `result`, print it, and write it to `out` as JSON."""
    result = {**result, "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
              "command": "python " + " ".join(sys.argv)}
    width = max(len(k) for k in result) + 2
    for key, value in result.items():
        print(f"{key:>{width}}: {value:.4g}" if isinstance(value, float) else f"{key:>{width}}: {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
