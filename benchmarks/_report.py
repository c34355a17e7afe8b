"""Shared by the benchmark scripts: print a result and write it, with the machine, commit and command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from skillplan.provenance import provenance


def report(result: dict[str, Any], out: Path) -> None:
    """Add machine, commit and command to `result`, print it, and write it to `out` as JSON."""
    result = {**result, **provenance(["python", *sys.argv])}
    width = max(len(k) for k in result) + 2
    for key, value in result.items():
        print(f"{key:>{width}}: {value:.4g}" if isinstance(value, float) else f"{key:>{width}}: {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
