"""The sample-efficiency suite: methods × envs × seeds on shared pretrained priors, resumable.

Layout of a suite directory:

    suite.json                       the resolved suite (a rerun must match it, and then resumes)
    timing.json                      the wall time of every invocation
    pretrain/<dataset>-<preset>-seed<k>/   one `skillplan pretrain` run per (dataset, preset, seed)
                                     (`priors: shared`: pretrain/<dataset>-<preset>/, one for all seeds)
    runs/<env>/<method>/seed<k>/     one `skillplan train` run each; `done.json` once finished
    evaluations.csv, summary.md, summary.json, <env>.png   the report (see `report.py`)

Jobs run in spawned worker processes, one torch thread each, so seeds use both cores.
By default seed k of every method trains on a prior pretrained with seed k, so the pretraining draw
shows in the confidence intervals; methods that share a preset share that prior, and so do envs that
share a dataset.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import multiprocessing as mp
import os
import queue
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from skillplan.benchmarking.methods import METHODS, check_names
from skillplan.benchmarking.report import EVAL_METRICS, EVALUATIONS, write_report
from skillplan.benchmarking.suite_config import (
    DONE_FILE,
    PRIOR_FILE,
    SUITE_FILE,
    TIMING_FILE,
    SuiteConfig,
    load_suite_config,
)
from skillplan.checkpoint import REQUIRED_FILES
from skillplan.device import resolve_device
from skillplan.errors import ConfigError, SkillplanError
from skillplan.interrupt import SharedStopRequest, StopRequest, leave_signals_to_parent
from skillplan.io import atomic_directory, atomic_write_text, read_json
from skillplan.progress import progress_bar
from skillplan.provenance import commit, machine, provenance


@dataclass(frozen=True)
class PretrainJob:
    dataset: str
    preset: str
    seed: int
    config: dict[str, Any]  # a resolved RunConfig, as JSON-ready data
    out: Path
    loggers: tuple[str, ...] = ("csv",)

    @property
    def key(self) -> str:
        return f"pretrain {self.out.name}"

    def check_unchanged(self) -> None:
        """Refuse to reuse a prior trained with other settings (e.g. a preset's defaults changed since)."""
        from skillplan.config import RunConfig
        from skillplan.pretrain import config_changes

        if not (self.out / "prior").exists():
            return
        differences = config_changes(self.out / "prior", RunConfig.model_validate(self.config))
        if differences:
            raise ConfigError(f"The prior in '{self.out}' was pretrained with other settings than this suite "
                              f"now resolves ({'; '.join(differences)}). Delete it to pretrain it again, or "
                              "use another --out.")

    def done(self) -> bool:
        summary = self.out / "summary.json"
        return ((self.out / "prior").is_dir() and summary.is_file()
                and read_json(summary).get("step", 0) >= self.config["pretrain"]["steps"])


@dataclass(frozen=True)
class TrainJob:
    env: str
    method: str
    seed: int
    steps: int
    settings: dict[str, Any]  # the agent config
    prior: Path | None
    out: Path
    loggers: tuple[str, ...] = ("csv",)

    @property
    def key(self) -> str:
        return f"{self.method} {self.env} seed {self.seed}"

    def done(self) -> bool:
        return read_json(self.out / DONE_FILE).get("env_steps", 0) >= self.steps

    def check_prior(self) -> None:
        """Refuse a run begun on another prior than the one its preset's directory holds now."""
        trained_on = read_json(self.out / PRIOR_FILE).get("fingerprint")
        if self.prior is None or trained_on is None or not (self.prior / "weights.safetensors").is_file():
            return
        if trained_on != prior_fingerprint(self.prior):
            raise ConfigError(f"The run in '{self.out}' was trained on an earlier version of the prior "
                              f"'{self.prior}' (it was pretrained again since). Delete '{self.out}' to "
                              "train it anew on the current prior.")


def prior_fingerprint(prior: Path) -> str:
    """SHA-256 of a prior's weights: which pretrained model a run was trained on."""
    return hashlib.sha256((Path(prior) / "weights.safetensors").read_bytes()).hexdigest()


def plan(config: SuiteConfig, out: Path, loggers: tuple[str, ...] = ("csv",)
         ) -> tuple[list[PretrainJob], list[TrainJob]]:
    """Every pretraining run (one per dataset, preset and prior seed in use) and every training run,
    each logging to `loggers`."""
    check_names(config.all_methods(), config.envs)
    _check_agent_overrides(config)
    pretrains: dict[tuple[str, str, int], PretrainJob] = {}
    trains = []
    for env in config.envs:
        dataset = config.dataset(env)
        for name in config.methods_on(env):
            method = METHODS[name]
            for seed in range(config.seeds):
                prior = None
                if method.preset is not None:
                    key = (dataset, method.preset, config.prior_seed(seed))
                    if key not in pretrains:
                        pretrains[key] = _pretrain_job(config, out, *key, loggers)
                    prior = pretrains[key].out / "prior"
                settings = {**dict(method.settings), **config.agent_overrides, "seed": seed, "threads": 1,
                            "eval_every": config.eval_every, "eval_episodes": config.eval_episodes}
                if method.agent == "cem":
                    speed = {"precision": "auto", "compile": True} if config.compile_planner else {}
                    settings["planner"] = {**settings.get("planner", {}), **config.planner_overrides, **speed}
                trains.append(TrainJob(env, name, seed, config.steps, settings, prior,
                                       out / "runs" / env / name / f"seed{seed}", loggers))
    return list(pretrains.values()), trains


def _pretrain_job(config: SuiteConfig, out: Path, dataset: str, preset: str, seed: int,
                  loggers: tuple[str, ...]) -> PretrainJob:
    """The pretraining run of `preset` on `dataset` with `seed`, in the suite's settings."""
    from skillplan.config import resolve_config

    overrides = copy.deepcopy(config.pretrain_overrides)
    overrides.setdefault("data", {})["dataset"] = dataset
    section = overrides.setdefault("pretrain", {})
    section["threads"], section["seed"] = 1, seed
    if config.pretrain_steps is not None:
        section["steps"] = config.pretrain_steps
    name = f"{dataset.replace('/', '_')}-{preset}" + (f"-seed{seed}" if config.priors == "per-seed" else "")
    resolved = resolve_config(preset, overrides=overrides)
    return PretrainJob(dataset, preset, seed, resolved.model_dump(mode="json"), out / "pretrain" / name,
                       loggers)


def _check_agent_overrides(config: SuiteConfig) -> None:
    """Every method's agent settings with the suite's overrides, validated before any work starts."""
    from skillplan.agents import agent_config

    for name in config.all_methods():
        method = METHODS[name]
        settings = {**dict(method.settings), **config.agent_overrides}
        if method.agent == "cem":
            settings["planner"] = {**settings.get("planner", {}), **config.planner_overrides}
        agent_config(method.agent, settings)


def run_suite(config: SuiteConfig, out: Path, *, workers: int = 2, only: list[str] | None = None,
              console: Console | None = None, loggers: tuple[str, ...] = ("csv",),
              device: str = "cpu", schedule: Callable[..., dict[str, str]] | None = None,
              stop: StopRequest | None = None) -> dict[str, str]:
    """Run (or resume) the suite in `out`, then write its report; failed runs are named at the end.

    Every job runs on `device`: with a GPU, `workers` runs share it. The jobs run in a process pool
    here, or through another `schedule` with `_schedule`'s arguments (`ray_backend.run_suite_on_ray`).

    Once `stop` is requested, no job starts and each running one finishes its step, checkpoints and
    returns; the report is left for the rerun that resumes them. Returns the stopped jobs, each with
    the step it reached (empty when the suite was not stopped).

    `only` limits this invocation to some runs ("METHOD" or "METHOD:SEED"), e.g. those that fit
    the time at hand; the report still covers every run so far. Every run logs to `loggers`
    (not part of the suite's config: a rerun may log differently).
    """
    console = console or Console()
    device = str(resolve_device(device))  # a bad name fails here, before any worker starts
    out = Path(out)
    pretrains, trains = plan(config, out, loggers)
    if only:
        trains = select_runs(trains, only, config)
    _claim(out, config)
    clock = WallClock(out / TIMING_FILE, workers)
    _ensure_datasets({job.dataset for job in pretrains}, console)
    stopped: dict[str, str] = {}
    if schedule is not None:  # another backend's jobs are not stopped at a checkpoint; a rerun resumes them
        failures = schedule(pretrains, trains, workers, console, on_tick=clock.record, device=device)
    else:
        failures = _schedule(pretrains, trains, workers, console, on_tick=clock.record, device=device,
                             stop=stop, stopped=stopped)
    clock.record(final=True)
    lines = "; ".join(f"{key}: {message}" for key, message in failures.items())
    if stop is not None and stop.requested:
        if failures:
            console.print(f"[red]{len(failures)} job(s) failed[/red] ({lines}).")
        return stopped
    write_report(out, console)
    if failures:
        raise SkillplanError(
            f"{len(failures)} job(s) of the suite in '{out}' failed ({lines}). The report covers the "
            "runs that finished; rerun the same command to retry the rest."
        )
    return stopped


def stopped_suite_message(request: StopRequest, stopped: dict[str, str], argv: list[str]) -> str:
    """What a suite stopped by a signal tells its user: where each run stopped and how to go on."""
    runs = "".join(f"\n  {key}: {step}" for key, step in stopped.items()) or " none was running."
    return (f"Stopped by {request.name}. Each run stopped checkpointed the step it reached:{runs}\n"
            f"Rerun the same command to resume every run:\n  {shlex.join(['skillplan', *argv])}")


def select_runs(trains: list[TrainJob], only: list[str], config: SuiteConfig) -> list[TrainJob]:
    """The runs that `only` names, each "METHOD" (every seed) or "METHOD:SEED"."""
    wanted = set()
    for name in only:
        method, _, seed = name.partition(":")
        if method not in config.all_methods() or (seed and not (seed.isdigit() and int(seed) < config.seeds)):
            raise ConfigError(f"--only '{name}' names no run of this suite. Its runs: METHOD or "
                              f"METHOD:SEED with METHOD one of {', '.join(config.all_methods())} and SEED "
                              f"0-{config.seeds - 1}.")
        wanted |= {(method, int(seed))} if seed else {(method, k) for k in range(config.seeds)}
    return [t for t in trains if (t.method, t.seed) in wanted]


class WallClock:
    """Each invocation's wall time, machine and commit in timing.json, kept current while it runs, so
    an interrupted suite still accounts for the time it spent; the report adds the invocations up."""

    def __init__(self, path: Path, workers: int) -> None:
        self.path, self.started, self.written = path, time.time(), 0.0
        self.sessions = read_json(path).get("sessions", [])
        self.sessions.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
                              "workers": workers, "seconds": 0.0, "machine": machine(),
                              "commit": commit()})
        self.record(final=True)

    def record(self, final: bool = False) -> None:
        now = time.time()
        if final or now - self.written >= 30:
            self.sessions[-1]["seconds"] = round(now - self.started, 1)
            atomic_write_text(self.path, json.dumps({"sessions": self.sessions}, indent=2))
            self.written = now


def _claim(out: Path, config: SuiteConfig) -> None:
    """Write suite.json, or check that an existing one describes the same suite (then it resumes)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; a suite needs a directory.")
    if (out / SUITE_FILE).exists():
        saved = load_suite_config(out)
        if saved != config:
            old, new = saved.model_dump(), config.model_dump()
            diffs = [f"{k}: {old[k]!r} → {new[k]!r}" for k in old if old[k] != new[k]]
            raise ConfigError(f"'{out}' holds a different suite ({'; '.join(diffs)}). Rerun with its "
                              "options to resume it, or choose another --out.")
        return
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": config.model_dump(mode="json"), **provenance(["skillplan", *sys.argv[1:]])}
    atomic_write_text(out / SUITE_FILE, json.dumps(record, indent=2))


def restore_suite(results: Path, out: Path) -> list[str]:
    """Rebuild a suite directory from its committed report, so the suite command runs only what is missing.

    `results` holds a copy of the report (suite.json, timing.json, evaluations.csv). A run whose
    evaluations reach the suite's step budget comes back finished (its metrics.csv and done.json);
    a partial one has no checkpoint to continue from, so it is left to run again from the start.
    Priors come back where the copy holds them (pretrain/<dataset>-<preset>/: summary.json and the
    prior's weights, config and metadata, not its optimizer state); the suite pretrains the others
    again. Returns the keys of the restored priors and runs.
    """

    results, out = Path(results), Path(out)
    if (out / SUITE_FILE).exists():
        raise ConfigError(f"'{out}' already holds a suite; restore into a new directory.")
    needed = (SUITE_FILE, TIMING_FILE, EVALUATIONS)
    missing = [name for name in needed if not (results / name).is_file()]
    if missing:
        raise ConfigError(f"'{results}' is not a suite report: it lacks {', '.join(missing)}.")
    config = load_suite_config(results)
    runs: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    with (results / EVALUATIONS).open() as f:
        for row in csv.DictReader(f):
            try:
                runs.setdefault((row["env"], row["method"], int(row["seed"])), []).append(row)
            except (KeyError, ValueError):
                raise ConfigError(f"'{results / EVALUATIONS}' is corrupt (row {row}).") from None
    restored = []
    for (env, method, seed), rows in sorted(runs.items()):
        reached = max(int(r["env_steps"]) for r in rows)
        ours = env in config.envs and method in config.methods_on(env) and seed < config.seeds
        if not ours or reached < config.steps:
            continue
        run = out / "runs" / env / method / f"seed{seed}"
        metrics = io.StringIO()
        writer = csv.writer(metrics)
        writer.writerow(["step", *(f"eval/{k}" for k in EVAL_METRICS)])
        writer.writerows([r["env_steps"], *(r.get(k, "") for k in EVAL_METRICS)] for r in rows)
        atomic_write_text(run / "metrics.csv", metrics.getvalue())
        atomic_write_text(run / DONE_FILE, json.dumps({"env_steps": reached, "steps": config.steps,
                                                       "restored_from": str(results)}))
        restored.append(f"{method} {env} seed {seed}")
    for summary in sorted(results.glob("pretrain/*/summary.json")):
        pretrained = summary.parent
        target = out / pretrained.relative_to(results)
        with atomic_directory(target / "prior") as staging:
            for name in REQUIRED_FILES:
                shutil.copy(pretrained / "prior" / name, staging / name)
        atomic_write_text(target / "summary.json", summary.read_text())
        restored.append(f"pretrain {pretrained.name}")
    for name in (TIMING_FILE, SUITE_FILE):  # suite.json last: it marks the directory a suite
        atomic_write_text(out / name, (results / name).read_text())
    return restored


def _ensure_datasets(datasets: set[str], console: Console) -> None:
    """Load (and so generate, if scripted and missing) each dataset here, before workers race to do it."""
    from skillplan.data.loading import load_offline_data

    for name in sorted(datasets):
        load_offline_data(name, on_generate=console.print)


def unfinished(pretrains: list[PretrainJob], trains: list[TrainJob], console: Console, where: str = ""
               ) -> tuple[list[PretrainJob], list[TrainJob]]:
    """The jobs still to run, after checking that finished work fits this suite's priors; says how
    many there are (`where` names the backend in that line)."""
    for job in pretrains:
        job.check_unchanged()
    for job in trains:
        job.check_prior()
    todo_train = [j for j in trains if not j.done()]
    needed = {t.prior for t in todo_train}  # a restored suite may not need every prior again
    todo_pre = [j for j in pretrains if not j.done() and j.out / "prior" in needed]
    if not todo_pre and not todo_train:
        console.print("every run asked for has finished; rewriting the report")
    else:
        console.print(f"{len(trains) - len(todo_train)}/{len(trains)} training runs already done; "
                      f"{len(todo_pre)} prior(s) to pretrain first{where}")
    return todo_pre, todo_train


def _schedule(pretrains: list[PretrainJob], trains: list[TrainJob], workers: int,
              console: Console, on_tick: Callable[[], None], device: str = "cpu",
              stop: StopRequest | None = None, stopped: dict[str, str] | None = None) -> dict[str, str]:
    """Run the unfinished jobs; a training run starts once its prior exists. Returns failures by job.

    Once `stop` is requested the workers are told to stop (each job checkpoints and returns) and no
    job starts; each stopped job goes into `stopped` with the step it reached. A second signal
    (KeyboardInterrupt) kills the workers at once: each run keeps its last complete checkpoint.

    At most `workers` jobs are in flight; the next one is the most urgent ready job: lower seeds
    first (a partial suite already compares every method), a seed's pretraining before its runs,
    then the slowest methods first (so the cheap ones fill the gaps at the end).
    """
    todo_pre, todo_train = unfinished(pretrains, trains, console)
    failures: dict[str, str] = {}
    if not todo_pre and not todo_train:
        return failures
    waiting = {j.out: [t for t in todo_train if t.prior == j.out / "prior"] for j in todo_pre}
    blocked = {t.out for ts in waiting.values() for t in ts}
    ready: list[PretrainJob | TrainJob] = [*todo_pre, *(t for t in todo_train if t.out not in blocked)]
    context = mp.get_context("spawn")
    updates = context.Queue()  # handed to the workers at their start, as multiprocessing requires
    stopping = context.Event()
    stopped = {} if stopped is None else stopped
    with progress_bar(console) as progress, ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(updates, stopping)) as pool, \
            _killing_workers_on_abort(context):
        overall = progress.add_task("suite", total=len(todo_pre) + len(todo_train))
        bars: dict[str, int] = {}
        futures: dict[Future, PretrainJob | TrainJob] = {}
        while futures or (ready and not stopping.is_set()):
            if stop is not None and stop.requested and not stopping.is_set():
                stopping.set()
                console.print(f"{stop.name}: each running job finishes its step and checkpoints; a second "
                              "signal aborts at once.")
            while ready and len(futures) < workers and not stopping.is_set():
                ready.sort(key=_urgency)
                job = ready.pop(0)
                futures[pool.submit(_run_job, job, device)] = job
            finished, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
            on_tick()
            running = {job.key for job in futures.values()}
            for key, done, total in _drain(updates):
                if key in running:  # a report can arrive after its job has been collected
                    if key not in bars:
                        bars[key] = progress.add_task(key, total=total)
                    progress.update(bars[key], completed=done)
            for future in finished:
                job = futures.pop(future)
                progress.advance(overall)
                if job.key in bars:
                    progress.remove_task(bars.pop(job.key))
                error = future.exception()
                followers = waiting.pop(job.out, []) if isinstance(job, PretrainJob) else []
                if error is None and future.result() is not None:  # stopped: its followers wait
                    stopped[job.key] = future.result()
                    continue
                if error is None:
                    ready += followers
                    continue
                if isinstance(error, BrokenProcessPool):  # a worker died (out of memory, a crash)
                    lost = [job, *futures.values(), *ready, *followers,
                            *(t for ts in waiting.values() for t in ts)]
                    failures |= {j.key: "not finished: a worker process died (out of memory?)" for j in lost}
                    return failures
                failures[job.key] = str(error) or type(error).__name__
                for follower in followers:
                    failures[follower.key] = f"its prior ({job.key}) failed"
                    progress.advance(overall)
    return failures


@contextmanager
def _killing_workers_on_abort(context: Any) -> Iterator[None]:
    """On KeyboardInterrupt (a second signal) kill the workers rather than wait for their jobs."""
    try:
        yield
    except KeyboardInterrupt:
        for process in context.active_children():
            process.kill()
        raise


def _urgency(job: PretrainJob | TrainJob) -> tuple[int, int, int]:
    if isinstance(job, PretrainJob):
        return (job.seed, 0, 0)
    return (job.seed, 1, METHODS[job.method].cost)


def _drain(updates: Any) -> list[tuple[str, int, int]]:
    """Every progress report waiting in the queue, without blocking."""
    reports = []
    while True:
        try:
            reports.append(updates.get_nowait())
        except queue.Empty:
            return reports


_progress: Any = None  # in a worker: the queue its progress reports go to
_stop: StopRequest | None = None  # in a worker: set once the suite process is asked to stop


def _start_worker(updates: Any, stopping: Any = None) -> None:
    """In a worker: where progress goes and, with the local backend, the suite's shared stop event."""
    global _progress, _stop
    _progress = updates
    if stopping is not None:
        _stop = SharedStopRequest(stopping)
        leave_signals_to_parent()


def _run_job(job: PretrainJob | TrainJob, device: str = "cpu") -> str | None:
    """Worker entry point: one job, on one torch thread, reporting progress at most twice a second.

    Returns None once the job has finished, or the step it reached when the suite stopped it (it
    checkpointed that step).
    A worker whose suite process has gone (killed rather than interrupted) stops at its next report
    instead of training on unseen; its run resumes from its last checkpoint next time.
    """
    import torch

    torch.set_num_threads(1)
    total = job.config["pretrain"]["steps"] if isinstance(job, PretrainJob) else job.steps
    suite_pid = os.getppid()

    def put(step: int) -> None:
        if os.getppid() != suite_pid:
            os._exit(1)  # every checkpoint is written atomically: nothing is left half-written
        _progress.put((job.key, step, total))

    report = _throttled(put)
    try:
        if isinstance(job, PretrainJob):
            return _pretrain(job, report, device, _stop)
        return _train(job, report, device, _stop)
    except SkillplanError:
        raise
    except Exception as exc:  # a bug, not bad input: keep the traceback where the run lives
        path = job.out / "error.txt"
        atomic_write_text(path, traceback.format_exc())
        raise SkillplanError(f"{type(exc).__name__}: {exc} (traceback in {path})") from None


def _pretrain(job: PretrainJob, report: Callable[[int], None], device: str = "cpu",
              stop: StopRequest | None = None) -> str | None:
    """Pretrain (or resume) the job's prior; the step reached if `stop` ended it early, else None."""
    from skillplan.config import RunConfig
    from skillplan.pretrain import pretrain

    resume = (job.out / "prior").exists()
    result = pretrain(RunConfig.model_validate(job.config), job.out, resume=resume,
                      console=Console(quiet=True), on_step=report, loggers=job.loggers, device=device,
                      stop=stop)
    return f"step {result.step:,}" if result.stopped else None


def _train(job: TrainJob, report: Callable[[int], None], device: str = "cpu",
           stop: StopRequest | None = None) -> str | None:
    """Train (or resume) the job's run and mark it done; the env step reached if `stop` ended it early."""
    from skillplan.agents import agent_class, agent_config, make_agent_env, write_run_file
    from skillplan.agents.base import AGENT_DIR

    method = METHODS[job.method]
    cls = agent_class(method.agent)
    settings = agent_config(method.agent, job.settings)
    job.check_prior()
    env = make_agent_env(method.agent, job.env, str(job.prior) if job.prior else None)
    agent = cls(env, settings, device)
    write_run_file(job.out, env=job.env, prior=job.prior, agent=method.agent, steps=job.steps,
                   config=settings)
    resume = (job.out / AGENT_DIR).exists()
    if job.prior is not None and not (job.out / PRIOR_FILE).is_file():
        atomic_write_text(job.out / PRIOR_FILE, json.dumps({"prior": str(job.prior),
                                                            "fingerprint": prior_fingerprint(job.prior)}))
    try:
        agent.learn(job.steps, job.out, resume=resume, show_progress=False, on_step=report,
                    loggers=job.loggers, stop=stop)
    except SkillplanError as exc:
        raise type(exc)(f"{exc} (run directory {job.out}; delete it to restart this run alone)") from None
    if agent.stopped:
        return f"env step {agent.env_steps:,}"
    atomic_write_text(job.out / DONE_FILE, json.dumps({"env_steps": agent.env_steps, "steps": job.steps}))
    return None


def _throttled(call: Callable[[int], None], every_s: float = 0.5) -> Callable[[int], None]:
    last = [0.0]

    def throttled(step: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            call(step)

    return throttled
