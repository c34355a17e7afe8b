"""The one rich progress-bar style used for long work (generation, pretraining, training)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None, *extra: TextColumn, disable: bool = False) -> Progress:
    """A progress bar with count, elapsed and remaining time, plus any `extra` columns."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), *extra, console=console, disable=disable,
    )
