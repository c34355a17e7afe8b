"""The suite on a Ray cluster: each pretraining job and each training run is one Ray task.

A run's task takes its prior's task as an argument (an object ref), so Ray starts it as soon as the
prior exists. A task whose worker dies is retried and resumes from its run's last checkpoint. The
tasks report progress to a small actor that the driver polls for the same display as the local backend.
Every node writes under the suite directory, so it must be on storage all nodes share; a marker file
written by a task on each node checks that before any work starts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from skillplan.benchmarking import suite
from skillplan.benchmarking.suite import PretrainJob, TrainJob
from skillplan.benchmarking.suite_config import SuiteConfig
from skillplan.errors import ConfigError
from skillplan.progress import progress_bar

RETRIES = 3  # times a task whose worker died runs again, each from its run's last checkpoint
CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.5


def import_ray() -> Any:
    """Ray, or one clear paragraph on how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray, which is not installed. Install the optional extra "
                          "with `pip install 'skillplan[ray]'` (or `pip install ray`), or use "
                          "--backend local.") from None
    return ray


def run_suite_on_ray(config: SuiteConfig, out: Path, *, ray_address: str | None = None, workers: int = 2,
                     **options: Any) -> dict[str, str]:
    """`suite.run_suite` with each job a Ray task: on a local Ray instance with `workers` CPUs, or on
    the cluster at `ray_address` ("auto" or HOST:PORT). Connects and checks the nodes' storage first."""
    backend = RayBackend(out, ray_address, workers)
    return suite.run_suite(config, out, workers=workers, schedule=backend.schedule, **options)


class RayBackend:
    """Connects to Ray (`address`: None starts a local instance with `workers` CPUs; "auto" or
    HOST:PORT joins a running cluster) and checks that its nodes share the suite directory `out`."""

    def __init__(self, out: Path, address: str | None, workers: int) -> None:
        self.ray = import_ray()
        self.out, self.workers = Path(out), workers
        if address not in (None, "auto"):
            _probe(address)
        self.owns_connection = not self.ray.is_initialized()
        if self.owns_connection:
            self._connect(address)
        try:
            self._check_storage()
        except BaseException:
            self.close()
            raise

    def _connect(self, address: str | None) -> None:
        ray = self.ray
        options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
        if address is None:
            ray.init(num_cpus=self.workers, **options)
            return
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(f"No Ray cluster answers at --ray-address '{address}' ({exc}). Start one "
                              "with `ray start --head` (see docs/ray.md), or leave --ray-address out to "
                              "start a local Ray instance.") from None

    def _check_storage(self) -> None:
        """A task on every alive node writes a marker under `out` that this process must then see."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        markers = {node: self.out / f".ray-storage-check-{uuid.uuid4().hex}" for node in nodes}
        write = ray.remote(num_cpus=0, max_retries=0)(_write_marker)
        refs = [write.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            str(marker)) for node, marker in markers.items()]
        existed = self.out.is_dir()
        errors = [e for e in ray.get(refs) if e]
        unseen = [node for node, marker in markers.items() if not marker.is_file()]
        for marker in markers.values():
            if marker.is_file():
                marker.unlink()
        if errors or unseen:
            if not existed and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()  # leave nothing behind
            why = "; ".join(errors) or f"{len(unseen)} node(s) wrote a marker file there that this machine " \
                                        "does not see"
            raise ConfigError(f"The Ray workers cannot share the suite directory '{self.out}' ({why}). "
                              "Every node must write the suite on storage they all mount at the same "
                              "path (an NFS or similar share); see docs/ray.md.")

    def close(self) -> None:
        if self.owns_connection and self.ray.is_initialized():
            self.ray.shutdown()

    def schedule(self, pretrains: list[PretrainJob], trains: list[TrainJob], workers: int,
                 console: Console, on_tick: Callable[[], None], device: str = "cpu") -> dict[str, str]:
        """Run the unfinished jobs as Ray tasks, in the local backend's order of urgency; returns
        failures by job."""
        try:
            return self._schedule(pretrains, trains, console, on_tick, device)
        finally:
            self.close()

    def _schedule(self, pretrains: list[PretrainJob], trains: list[TrainJob], console: Console,
                  on_tick: Callable[[], None], device: str) -> dict[str, str]:
        ray = self.ray
        todo_pre, todo_train = suite.unfinished(pretrains, trains, console, " (on Ray)")
        failures: dict[str, str] = {}
        if not todo_pre and not todo_train:
            return failures
        gpus = 1 / self.workers if device.startswith("cuda") else 0
        device = "cuda" if gpus else device  # Ray hands each task its GPU as the only visible one
        # the datasets this process generated or found: on a cluster, on the shared storage too
        env = {k: os.environ[k] for k in ("MINARI_DATASETS_PATH",) if k in os.environ}
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=RETRIES,
                          runtime_env={"env_vars": env})(_ray_job)
        board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        prior_refs: dict[Path, Any] = {}
        jobs: dict[Any, PretrainJob | TrainJob] = {}
        for job in sorted([*todo_pre, *todo_train], key=suite._urgency):
            after = [prior_refs[job.prior]] if isinstance(job, TrainJob) and job.prior in prior_refs else []
            ref = task.remote(job, device, board, *after)
            jobs[ref] = job
            if isinstance(job, PretrainJob):
                prior_refs[job.out / "prior"] = ref
        failed_priors: dict[Path, str] = {}
        with progress_bar(console) as progress:
            overall = progress.add_task("suite", total=len(jobs))
            bars: dict[str, int] = {}
            pending = list(jobs)
            while pending:
                finished, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
                on_tick()
                running = {jobs[ref].key for ref in pending}
                for key, (done, total) in ray.get(board.snapshot.remote()).items():
                    if key in running:
                        if key not in bars:
                            bars[key] = progress.add_task(key, total=total)
                        progress.update(bars[key], completed=done)
                for ref in sorted(finished, key=lambda r: isinstance(jobs[r], TrainJob)):
                    job = jobs[ref]
                    progress.advance(overall)
                    if job.key in bars:
                        progress.remove_task(bars.pop(job.key))
                    error = _error(ray, ref)
                    if error is None:
                        continue
                    if isinstance(job, TrainJob) and job.prior in failed_priors:
                        failures[job.key] = f"its prior ({failed_priors[job.prior]}) failed"
                        continue
                    failures[job.key] = error
                    if isinstance(job, PretrainJob):
                        failed_priors[job.out / "prior"] = job.key
        return failures


def _error(ray: Any, ref: Any) -> str | None:
    """What ended a finished task, in one line, or None if it succeeded."""
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        return str(cause) or type(cause).__name__
    except ray.exceptions.RayError as exc:  # the worker or its node died, retries exhausted
        return f"not finished: its Ray worker died {RETRIES + 1} times ({type(exc).__name__})"
    return None


def _probe(address: str) -> None:
    """Fail within seconds, naming `address`, when nothing listens there (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address '{address}' is neither 'auto' nor HOST:PORT (e.g. 10.0.0.5:6379).")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"No Ray cluster answers at --ray-address '{address}' ({exc}). Start one with "
                          "`ray start --head` there (see docs/ray.md), check the host and port, or leave "
                          "--ray-address out to start a local Ray instance.") from None


def _write_marker(path: str) -> str | None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(socket.gethostname())
    except OSError as exc:
        return f"{socket.gethostname()}: {exc}"
    return None


class ProgressBoard:
    """The latest (step, total) of every running job, as the tasks report it."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, int]] = {}

    def report(self, key: str, step: int, total: int) -> None:
        self.latest[key] = (step, total)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return self.latest


class _BoardQueue:
    """What `suite._run_job` puts progress into, forwarded to the board actor."""

    def __init__(self, board: Any) -> None:
        self.board = board

    def put(self, report: tuple[str, int, int]) -> None:
        self.board.report.remote(*report)


def _ray_job(job: PretrainJob | TrainJob, device: str, board: Any, *priors: Any) -> None:
    """One job in a Ray worker; `priors` (the prior's task, already finished) only orders the tasks."""
    suite._start_worker(_BoardQueue(board))
    suite._run_job(job, device)
