"""Write Minari datasets atomically, without jax: a dataset appears whole under its id or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import minari
from minari.data_collector import EpisodeBuffer
from minari.storage.datasets_root_dir import get_dataset_path

from skillplan.errors import DatasetError
from skillplan.io import replace_directory


def datasets_root() -> Path:
    """The local Minari root: `MINARI_DATASETS_PATH`, else `~/.minari/datasets`."""
    return get_dataset_path()


def dataset_dir(dataset_id: str) -> Path:
    """Where a dataset id lives locally (it exists when its `data/` folder does)."""
    return get_dataset_path(dataset_id)


def dataset_exists(dataset_id: str) -> bool:
    return (dataset_dir(dataset_id) / "data").is_dir()


@contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def write_dataset(
    dataset_id: str,
    episodes: Sequence[EpisodeBuffer],
    *,
    env: str | gym.Env | gym.envs.registration.EnvSpec | None = None,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    overwrite: bool = False,
    description: str | None = None,
    algorithm_name: str = "skillplan",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write `episodes` as the local Minari dataset `dataset_id` and return its directory.

    `metadata` adds fields to the dataset's Minari metadata (`dataset.storage.metadata`).

    The dataset is built in a staging root beside the real one and moved into place with one
    rename, so an interrupted write leaves nothing under the id.
    """
    root = datasets_root()
    target = dataset_dir(dataset_id)
    if target.exists() and not overwrite:
        raise DatasetError(
            f"Dataset '{dataset_id}' already exists at {target}. Pass --overwrite to replace it, "
            "or choose another name."
        )
    if not episodes:
        raise DatasetError(f"No episodes to write for dataset '{dataset_id}'.")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # Minari nags about optional metadata (author, permalink, eval env); not actionable here.
            warnings.filterwarnings("ignore", category=UserWarning, module="minari")
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                list(episodes),
                env=env,
                observation_space=observation_space,
                action_space=action_space,
                algorithm_name=algorithm_name,
                description=description,
            )
            if metadata:
                dataset.storage.update_metadata(metadata)
        _install(staging, root, dataset_id, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _install(staging: Path, root: Path, dataset_id: str, target: Path) -> None:
    """Move the staged dataset (and any namespace metadata Minari made) into the real root."""
    built = staging / dataset_id
    target.parent.mkdir(parents=True, exist_ok=True)
    # Namespace metadata files that Minari wrote next to the dataset, kept if the root lacks them.
    for meta in staging.rglob("namespace_metadata.json"):
        dest = root / meta.relative_to(staging)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(meta, dest)
    replace_directory(built, target)
