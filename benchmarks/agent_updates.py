"""Gradient updates per second of SSAC (on a kitchen skill env) and flat SAC, batch 256, one run.

Target (issue 5): SSAC ≥ 150 updates/s at batch 256 on 2 CPU cores (naive torch: ~117).
Needs a pretrained prior (default: runs/kitchen-scripted/prior, what `make setup` writes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from _report import report

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import SAC, SSAC, SACAgentConfig, SSACConfig
from skillplan.envs.tasks import make_flat_task

RESULTS = Path(__file__).parent / "results"


def updates_per_s(agent, updates: int) -> float:
    """Fill the replay with random transitions of the right shapes, then time `update()`."""
    obs_dim, act_dim = agent.obs_dim, agent.action_dim
    rng = np.random.default_rng(0)
    for _ in range(5_000):
        obs, next_obs = rng.normal(size=obs_dim), rng.normal(size=obs_dim)
        agent.replay.add(obs, rng.uniform(-1, 1, act_dim), 0.0, next_obs, False)
    for _ in range(10):
        agent.update()
    start = time.perf_counter()
    for _ in range(updates):
        agent.update()
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prior", default="runs/kitchen-scripted/prior")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_updates.json")
    args = parser.parse_args()
    ssac = SSAC(gym.make("SkillKitchen-v0", prior=args.prior), SSACConfig(threads=args.threads))
    sac = SAC(make_flat_task("SkillKitchen-v0"), SACAgentConfig(threads=args.threads))
    result = {
        "ssac_updates_per_s": updates_per_s(ssac, args.updates),
        "sac_updates_per_s": updates_per_s(sac, args.updates),
        "batch_size": ssac.config.sac.batch_size,
        "target_ssac_updates_per_s": 150,
        "threads": args.threads,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
