"""Pretraining speed of model shapes relative to one another (depth × activation), in one process.

Run: python benchmarks/pretrain_architectures.py [--preset skillplan] [--threads 1] [--rounds 5]
Each variant gets its own trainer; rounds of 8 steps go to each in turn, so a busy neighbour
slows them alike and the ratios hold where absolute figures on a shared machine don't. Writes
benchmarks/results/pretrain_architectures.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from _report import report
from pretrain_throughput import synthetic_episodes, synthetic_metadata

from skillplan.config import resolve_config
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import BatchSource, JointTrainer

VARIANTS = {  # name: model overrides; the first is the reference
    "depth 2, ELU": {"depth": 2, "activation": "elu"},
    "depth 2, ReLU": {"depth": 2, "activation": "relu"},
    "depth 5, ELU": {"depth": 5, "activation": "elu"},
    "depth 5, ReLU": {"depth": 5, "activation": "relu"},
}
STEPS_PER_ROUND = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="skillplan")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    default_out = Path(__file__).parent / "results" / "pretrain_architectures.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    trainers, source = {}, None
    for name, model in VARIANTS.items():
        config = resolve_config(args.preset, overrides={
            "model": model, "pretrain": {"batch_size": args.batch_size, "threads": args.threads}})
        torch.manual_seed(0)
        metadata = synthetic_metadata(config.model.horizon, config.model.z_dim)
        trainers[name] = JointTrainer(SkillModel(config, metadata))
        if source is None:
            n_skills = config.pretrain.n_skills if config.model.dynamics else 1
            source = BatchSource(synthetic_episodes(400, 280, 0), synthetic_episodes(40, 280, 1),
                                 config.model.horizon, n_skills, args.batch_size, config.data.expert_fraction,
                                 seed=0)
    batches = [source.sample() for _ in range(STEPS_PER_ROUND)]
    for trainer in trainers.values():  # warm-up: first-call allocations
        for batch in batches[:3]:
            trainer.step(batch, source.n_expert)

    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for batch in batches:
                trainer.step(batch, source.n_expert)
            rates[name].append(STEPS_PER_ROUND * args.batch_size / (time.perf_counter() - start))
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    reference = next(iter(medians.values()))
    report({
        "preset": args.preset, "batch_size": args.batch_size, "threads": args.threads, "rounds": args.rounds,
        "windows_per_s": medians, "speed_vs_first": {n: v / reference for n, v in medians.items()},
        "torch": torch.__version__, "load_average_1m_before": load_before,
    }, args.out)


if __name__ == "__main__":
    main()
