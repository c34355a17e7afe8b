"""Comparisons for the same-seed and resume tests: bit-identical tensors and metrics rows."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

WALL_TIME_COLUMNS = ("env_steps_per_s", "windows_per_s")


def differing_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names of tensors that are missing from one side or not bit-identical."""
    assert a, "nothing to compare"
    return sorted(k for k in a.keys() | b.keys() if k not in a or k not in b or not torch.equal(a[k], b[k]))


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without the wall-time columns."""
    with open(Path(run_dir) / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in WALL_TIME_COLUMNS} for row in csv.DictReader(f)]
