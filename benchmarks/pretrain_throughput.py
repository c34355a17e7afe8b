"""Joint pretraining throughput (skill windows per second) on synthetic kitchen-shaped data.

Run: python benchmarks/pretrain_throughput.py [--preset skillplan] [--batch-size 256] [--steps 60]
A window is one batch row: N consecutive H-step skills (N = pretrain.n_skills). Writes
benchmarks/results/pretrain_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from _report import report

from skillplan.checkpoint import SkillMetadata
from skillplan.config import resolve_config
from skillplan.data.loading import Episodes
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import BatchSource, JointTrainer

OBS_DIM, ACT_DIM = 59, 9  # FrankaKitchen-v1


def synthetic_episodes(n_episodes: int, length: int, seed: int) -> Episodes:
    rng = np.random.default_rng(seed)
    lengths = np.full(n_episodes, length, dtype=np.int64)
    obs = rng.normal(size=(n_episodes * (length + 1), OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n_episodes * length, ACT_DIM)).astype(np.float32)
    return Episodes(obs, act, lengths)


def synthetic_metadata(horizon: int, z_dim: int) -> SkillMetadata:
    return SkillMetadata(
        dataset="synthetic", dataset_ids=[], fingerprint="", env_id="", env_kwargs={},
        observation_space={}, action_space={}, obs_keys=[], obs_dim=OBS_DIM, act_dim=ACT_DIM,
        horizon=horizon, z_dim=z_dim, obs_mean=[0.0] * OBS_DIM, obs_std=[1.0] * OBS_DIM,
        act_center=[0.0] * ACT_DIM, act_scale=[1.0] * ACT_DIM, act_bounded=True, version="bench",
    )


def measure(preset: str, batch_size: int, steps: int, warmup: int, overrides: dict) -> dict:
    config = resolve_config(preset, overrides={"pretrain": {"batch_size": batch_size, **overrides}})
    torch.set_num_threads(config.pretrain.threads)
    torch.manual_seed(0)
    model = SkillModel(config, synthetic_metadata(config.model.horizon, config.model.z_dim))
    trainer = JointTrainer(model)
    n_skills = config.pretrain.n_skills if config.model.dynamics else 1
    source = BatchSource(
        synthetic_episodes(400, 280, 0), synthetic_episodes(40, 280, 1), config.model.horizon, n_skills,
        batch_size, config.data.expert_fraction, seed=0,
    )
    for _ in range(warmup):
        trainer.step(source.sample(), source.n_expert)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(source.sample(), source.n_expert)
    seconds = time.perf_counter() - start
    return {
        "preset": preset, "batch_size": batch_size, "n_skills": n_skills, "horizon": config.model.horizon,
        "precision": config.pretrain.precision, "threads": config.pretrain.threads,
        "compile": config.pretrain.compile,
        "steps_per_s": steps / seconds, "windows_per_s": steps * batch_size / seconds,
        "skills_per_s": steps * batch_size * n_skills / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="skillplan")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile the joint loss")
    parser.add_argument("--threads", type=int, default=2)
    default_out = Path(__file__).parent / "results" / "pretrain_throughput.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    overrides = {"threads": args.threads, **({"precision": args.precision} if args.precision else {})}
    if args.compile:
        overrides["compile"] = True
    load_before = os.getloadavg()[0]  # other processes on the cores skew the figure: record them
    result = measure(args.preset, args.batch_size, args.steps, args.warmup, overrides)
    report({**result, "torch": torch.__version__, "load_average_1m_before": load_before}, args.out)

if __name__ == "__main__":
    main()
