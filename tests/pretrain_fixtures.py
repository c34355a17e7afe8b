"""Tiny configs and PU-shaped datasets shared by the model, pretraining and checkpoint tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from skillplan.config import RunConfig, resolve_config
from skillplan.data.loading import OfflineData, load_offline_data
from skillplan.data.writing import write_dataset
from tests.conftest import tiny_episodes

TINY: dict[str, dict[str, Any]] = {
    "model": {"horizon": 4, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
    "pretrain": {
        "batch_size": 64, "n_skills": 3, "precision": "fp32", "threads": 1, "eval_windows": 128,
        "log_every": 10, "eval_every": 50, "checkpoint_every": 50,
    },
}
GENERAL_ID, EXPERT_ID = "test/general-v0", "test/expert-v0"


def tiny_config(preset: str = "skillplan", **sections: dict[str, Any]) -> RunConfig:
    """A small, fast config of `preset`; `sections` override it (e.g. pretrain={"steps": 10})."""
    overrides = {name: {**values, **sections.get(name, {})} for name, values in TINY.items()}
    overrides["data"] = {"dataset": GENERAL_ID, "expert_dataset": EXPERT_ID, **sections.get("data", {})}
    if preset in ("spirl", "serla"):
        overrides["pretrain"].pop("n_skills")  # those presets train one skill per window
    if preset == "skimo":
        overrides["pretrain"]["n_skills"] = 10
    return resolve_config(preset, overrides=overrides)


def expert_policy(state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A distinctive demonstrator: pushes every action dimension toward +0.7."""
    return 0.7 + 0.1 * rng.normal(size=3)


def write_pu_datasets(n_general: int = 24, n_expert: int = 8, length: int = 60) -> OfflineData:
    """General data = random episodes plus some expert-like ones (PU's unlabeled mix); expert data apart."""
    random_eps, obs_space, act_space = tiny_episodes(n_general - n_general // 4, length, seed=0)
    expert_like, _, _ = tiny_episodes(n_general // 4, length, seed=1, policy=expert_policy)
    general = [dataclasses.replace(ep, id=i) for i, ep in enumerate(random_eps + expert_like)]
    write_dataset(GENERAL_ID, general, observation_space=obs_space, action_space=act_space)
    expert, _, _ = tiny_episodes(n_expert, length, seed=2, policy=expert_policy)
    write_dataset(EXPERT_ID, expert, observation_space=obs_space, action_space=act_space)
    return load_offline_data(GENERAL_ID, expert_id=EXPERT_ID)
