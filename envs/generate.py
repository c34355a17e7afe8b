"""Generate scripted datasets in parallel worker processes and write them with Minari."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import multiprocessing as mp
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
from minari.data_collector import EpisodeBuffer
from rich.progress import Progress

from skillplan.data.catalog import CATALOG
from skillplan.data.writing import dataset_exists, write_dataset
from skillplan.envs.scripted.base import DataKind, ScriptedDemonstrator
from skillplan.envs.scripted.kitchen_plans import PlanTable, stratified_quantiles
from skillplan.errors import DatasetError

# Generated dataset name -> (module, attribute) of its demonstrator.
DEMONSTRATORS = {
    "kitchen-scripted": ("skillplan.envs.scripted.kitchen", "DEMONSTRATOR"),
    "kitchen-scripted-uniform": ("skillplan.envs.scripted.kitchen", "UNIFORM_DEMONSTRATOR"),
    "pointmaze-scripted": ("skillplan.envs.scripted.pointmaze", "DEMONSTRATOR"),
}
KINDS: tuple[DataKind, ...] = ("general", "expert")


def demonstrator(name: str) -> ScriptedDemonstrator:
    """The scripted demonstrator behind a generated dataset name."""
    if name not in DEMONSTRATORS:
        raise DatasetError(
            f"'{name}' has no scripted generator. Generated datasets: {', '.join(DEMONSTRATORS)}."
        )
    module, attribute = DEMONSTRATORS[name]
    return getattr(_import_quietly(module), attribute)


def _import_quietly(module: str) -> ModuleType:
    # gymnasium_robotics prints a notice about its Adroit envs' rewards on import: not ours.
    with contextlib.redirect_stderr(io.StringIO()):
        return importlib.import_module(module)


@contextlib.contextmanager
def _quiet_env_checker() -> Iterator[None]:
    """Silence gymnasium's passive env checker: it warns that FrankaKitchen reuses observation
    arrays between steps, which the demonstrators already copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="gymnasium.utils.passive_env_checker")
        yield


def episode_seeds(seed: int, kind: DataKind, n: int) -> np.ndarray:
    """Independent per-episode seeds, fixed by (seed, kind) alone."""
    return np.random.SeedSequence([seed, KINDS.index(kind)]).generate_state(n, dtype=np.uint32)


_worker_envs: dict = {}


def _worker_episode(job: tuple[ScriptedDemonstrator, DataKind, int, float]) -> EpisodeBuffer:
    """Run one episode in a worker, reusing that worker's env for its demonstrator and kind."""
    demo, kind, seed, quantile = job
    with _quiet_env_checker():
        if (demo.name, kind) not in _worker_envs:
            _worker_envs[(demo.name, kind)] = demo.make_env(kind)
        return demo.episode(_worker_envs[(demo.name, kind)], seed, kind, quantile)


def _episodes(
    demo: ScriptedDemonstrator, kind: DataKind, seeds: np.ndarray, quantiles: np.ndarray, workers: int
) -> Iterator[EpisodeBuffer]:
    jobs = [(demo, kind, int(s), float(q)) for s, q in zip(seeds, quantiles, strict=True)]
    if workers <= 1:
        yield from map(_worker_episode, jobs)
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would break.
    context = mp.get_context("spawn")
    with context.Pool(workers, _import_quietly, (type(demo).__module__,)) as pool:
        yield from pool.imap(_worker_episode, jobs, chunksize=2)


def generate_dataset(
    name: str,
    *,
    episodes: dict[DataKind, int] | None = None,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
    kinds: tuple[DataKind, ...] = KINDS,
    progress: Progress | None = None,
    plans: PlanTable | None = None,
) -> list[Path]:
    """Generate and write the general and expert datasets of a scripted name.

    `plans` replaces the demonstrator's own plan source (kitchen demonstrators only).
    Deterministic for a given seed and episode count, whatever the number of workers.
    Each dataset is written atomically once all its episodes exist.
    """
    spec = CATALOG[name]
    demo = demonstrator(name)
    if plans is not None:
        if not hasattr(demo, "plans"):
            raise DatasetError(f"'{name}' does not take a plan table; the kitchen-scripted "
                               "generators do.")
        demo = dataclasses.replace(demo, plans=plans)
    counts = {**demo.default_episodes, **(episodes or {})}
    ids = {"general": spec.general_id, "expert": spec.expert_id}
    if not overwrite:
        for kind in kinds:
            if dataset_exists(ids[kind]):
                raise DatasetError(
                    f"Dataset '{ids[kind]}' already exists. Pass --overwrite to regenerate it."
                )
    written = []
    for kind in kinds:
        seeds = episode_seeds(seed, kind, counts[kind])
        # The episodes' strata for plan tables, from the seed and kind too (a stream of its own).
        strata = np.random.default_rng(np.random.SeedSequence([seed, KINDS.index(kind), 1]))
        quantiles = stratified_quantiles(len(seeds), strata)
        task = progress.add_task(f"{name} {kind}", total=len(seeds)) if progress else None
        buffers = []
        for i, episode in enumerate(_episodes(demo, kind, seeds, quantiles, workers)):
            buffers.append(dataclasses.replace(episode, id=i))
            if progress is not None:
                progress.advance(task)
        env = demo.make_env(kind)
        written.append(write_dataset(
            ids[kind], buffers, env=env.spec, overwrite=overwrite,
            description=f"skillplan scripted {kind} demonstrations ({name}, seed {seed}).",
            algorithm_name=f"skillplan-scripted-{name}", metadata=demo.dataset_metadata(kind),
        ))
        env.close()
    return written
