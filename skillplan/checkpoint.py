"""The checkpoint directory format: safetensors weights plus JSON config and metadata, no pickles.

A checkpoint directory holds `weights.safetensors`, `config.json` and `metadata.json`; a run that
can be resumed also holds `training.safetensors` (optimizer and random generator states). Each save
writes a new version and points the checkpoint's link at it (`skillplan.versions`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from skillplan.errors import CheckpointError
from skillplan.versions import resolve, write_version

WEIGHTS, CONFIG, METADATA = "weights.safetensors", "config.json", "metadata.json"
TRAINING = "training.safetensors"
REQUIRED_FILES = (WEIGHTS, CONFIG, METADATA)


class SkillMetadata(BaseModel):
    """What a skill model was trained on and needs at use time, without the dataset."""

    model_config = ConfigDict(ser_json_inf_nan="constants")  # unbounded spaces keep their ±Infinity

    dataset: str
    dataset_ids: list[str]
    fingerprint: str
    env_id: str
    env_kwargs: dict[str, Any]
    observation_space: dict[str, Any]  # Minari's JSON form of the original (possibly dict) space
    action_space: dict[str, Any]
    obs_keys: list[str]
    obs_dim: int
    # Indices kept from the flattened `obs_keys` (ascending); None: all of them, as in checkpoints
    # written before dimensions could be chosen.
    obs_dims: list[int] | None = None
    act_dim: int
    horizon: int
    z_dim: int
    obs_mean: list[float]
    obs_std: list[float]
    # The data's first states (mean, std): what an env's reset states should look like. None in
    # checkpoints written before they were recorded.
    start_mean: list[float] | None = None
    start_std: list[float] | None = None
    act_center: list[float]
    act_scale: list[float]
    act_bounded: bool  # actions were normalised by finite bounds; decoded actions are clipped to them
    version: str
    step: int = 0


def write_checkpoint(
    path: Path,
    weights: dict[str, torch.Tensor],
    config: dict[str, Any],
    metadata: SkillMetadata,
    training: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a version of the checkpoint `path` at `metadata.step`; `path` then leads to it."""

    def write(staging: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in weights.items()}, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(config, indent=2))
        (staging / METADATA).write_text(metadata.model_dump_json(indent=2))
        if training is not None:
            save_file({k: v.detach().contiguous() for k, v in training.items()}, str(staging / TRAINING))

    write_version(Path(path), metadata.step, write)


def _invalid(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"'{path}' is not a usable skillplan checkpoint: {why}. A checkpoint is a directory holding "
        f"{', '.join(REQUIRED_FILES)} (and {TRAINING} to resume training), as written by "
        "`skillplan pretrain`; run it again to make one."
    )


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], SkillMetadata]:
    """(weights, config dict, metadata) of a checkpoint directory, or a `CheckpointError`."""
    path = resolve(Path(path))
    if not path.is_dir():
        raise _invalid(path, "no such directory" if not path.exists() else "it is not a directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise _invalid(path, f"{', '.join(missing)} missing")
    try:
        config = json.loads((path / CONFIG).read_text())
        metadata = SkillMetadata.model_validate_json((path / METADATA).read_text())
    except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
        raise _invalid(path, f"its JSON files are corrupt ({type(exc).__name__})") from None
    return _load_tensors(path / WEIGHTS), config, metadata


def read_training_state(path: Path) -> dict[str, torch.Tensor]:
    """The optimizer and random generator states saved beside the weights, for `--resume`."""
    file = resolve(Path(path)) / TRAINING
    if not file.is_file():
        raise _invalid(Path(path), f"{TRAINING} missing, so training can't be resumed from it")
    return _load_tensors(file)


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise _invalid(file.parent, f"{file.name} is corrupt ({exc})") from None
