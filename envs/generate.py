"""Generate scripted datasets in parallel worker processes and write them with Minari."""

from __future__ import annotations

import importlib
import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from minari.data_collector import EpisodeBuffer
from rich.progress import Progress

from skillplan.data.catalog import CATALOG
from skillplan.data.writing import dataset_exists, write_dataset
from skillplan.envs.scripted.base import DataKind, ScriptedDemonstrator
from skillplan.errors import DatasetError

DEMONSTRATORS = {
    "kitchen-scripted": "skillplan.envs.scripted.kitchen",
    "pointmaze-scripted": "skillplan.envs.scripted.pointmaze",
}
KINDS: tuple[DataKind, ...] = ("general", "expert")


def demonstrator(name: str) -> ScriptedDemonstrator:
    """The scripted demonstrator behind a generated dataset name."""
    if name not in DEMONSTRATORS:
        raise DatasetError(
            f"'{name}' has no scripted generator. Generated datasets: {', '.join(DEMONSTRATORS)}."
        )
    return importlib.import_module(DEMONSTRATORS[name]).DEMONSTRATOR


def episode_seeds(seed: int, kind: DataKind, n: int) -> np.ndarray:
    """Independent per-episode seeds, fixed by (seed, kind) alone."""
    return np.random.SeedSequence([seed, KINDS.index(kind)]).generate_state(n, dtype=np.uint32)


_worker_envs: dict = {}


def _worker_episode(job: tuple[str, DataKind, int]) -> EpisodeBuffer:
    """Run one episode in a worker, reusing that worker's env for its kind."""
    name, kind, seed = job
    demo = demonstrator(name)
    if (name, kind) not in _worker_envs:
        _worker_envs[(name, kind)] = demo.make_env(kind)
    return demo.episode(_worker_envs[(name, kind)], seed, kind)


def _episodes(name: str, kind: DataKind, seeds: np.ndarray, workers: int) -> Iterator[EpisodeBuffer]:
    jobs = [(name, kind, int(s)) for s in seeds]
    if workers <= 1:
        yield from map(_worker_episode, jobs)
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would break.
    with mp.get_context("spawn").Pool(workers) as pool:
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
) -> list[Path]:
    """Generate and write the general and expert datasets of a scripted name.

    Deterministic for a given seed and episode count, whatever the number of workers.
    Each dataset is written atomically once all its episodes exist.
    """
    spec = CATALOG[name]
    demo = demonstrator(name)
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
        task = progress.add_task(f"{name} {kind}", total=len(seeds)) if progress else None
        buffers = []
        for i, episode in enumerate(_episodes(name, kind, seeds, workers)):
            buffers.append(replace(episode, id=i))
            if progress is not None:
                progress.advance(task)
        env = demo.make_env(kind)
        written.append(write_dataset(
            ids[kind], buffers, env=env.spec, overwrite=overwrite,
            description=f"skillplan scripted {kind} demonstrations ({name}, seed {seed}).",
            algorithm_name=f"skillplan-scripted-{name}",
        ))
        env.close()
    return written
