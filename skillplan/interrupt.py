"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption).

The first signal only asks the loop to stop: it finishes the current update, writes a checkpoint
and returns. A second signal aborts at once (as `KeyboardInterrupt`); the last complete checkpoint
is still there, since checkpoints are written as versions (`skillplan.versions`).
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether (and by which signal) the run was asked to stop; the training loops poll it."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 128 + its number."""
        return 128 + (self.signum or 0)


class SharedStopRequest(StopRequest):
    """A stop request another process makes: requested once `event`, a multiprocessing Event, is set.

    The benchmark suite's workers poll one; the suite's own process takes the signals and sets it.
    """

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def leave_signals_to_parent() -> None:
    """Ignore SIGINT and SIGTERM in a worker process: its parent takes them and tells it to stop.

    Ctrl-C and a scheduler's SIGTERM reach every process of the group, the workers included.
    """
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, the first SIGINT/SIGTERM sets the yielded request; the second aborts.

    Signal handlers can only be installed from the main thread; elsewhere the request never fires.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: object) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.signum = signum

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def resume_command(argv: list[str]) -> str:
    """The shell command that resumes the run `skillplan ARGV...` started: the same, with --resume."""
    args = list(argv) if "--resume" in argv else [*argv, "--resume"]
    return shlex.join(["skillplan", *args])


def stopped_message(request: StopRequest, step: str, checkpoint: Path, argv: list[str]) -> str:
    """What a run stopped by a signal tells its user: where it stopped and how to go on."""
    return (f"Stopped by {request.name} at {step}; the checkpoint {checkpoint} holds it. "
            f"Resume with:\n  {resume_command(argv)}")
