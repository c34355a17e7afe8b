"""Gradient updates per second of SSAC (on a kitchen skill env) and flat SAC, batch 256, one run.

Target (issue 5): SSAC ≥ 150 updates/s at batch 256 on 2 CPU cores (naive torch: ~117).
Each agent is timed at `precision` fp32 (the default) and bf16 (matrix products under bfloat16
autocast), in interleaved blocks so that a busy neighbour slows every variant alike; the figures
are medians over the blocks and the bf16/fp32 ratio is the robust number.
Needs a pretrained prior (default: runs/kitchen-scripted/prior, what `make setup` writes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from _report import report

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import SAC, SSAC, SACAgentConfig, SSACConfig
from skillplan.agents.sac import SACConfig
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
    parser.add_argument("--updates", type=int, default=300, help="updates per variant and block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_updates.json")
    args = parser.parse_args()
    agents = {}
    for precision in ("fp32", "bf16"):
        ssac = SSACConfig(threads=args.threads)
        ssac.sac = ssac.sac.model_copy(update={"precision": precision})
        agents[f"ssac_{precision}"] = SSAC(gym.make("SkillKitchen-v0", prior=args.prior), ssac)
        sac = SACAgentConfig(threads=args.threads, sac=SACConfig(precision=precision))
        agents[f"sac_{precision}"] = SAC(make_flat_task("SkillKitchen-v0"), sac)
    rates: dict[str, list[float]] = {name: [] for name in agents}
    for _ in range(args.blocks):
        for name, agent in agents.items():
            rates[name].append(updates_per_s(agent, args.updates))
    median = {name: statistics.median(r) for name, r in rates.items()}
    result = {
        "ssac_updates_per_s": median["ssac_fp32"],
        "sac_updates_per_s": median["sac_fp32"],
        "ssac_updates_per_s_bf16": median["ssac_bf16"],
        "sac_updates_per_s_bf16": median["sac_bf16"],
        "bf16_speedup": {a: median[f"{a}_bf16"] / median[f"{a}_fp32"] for a in ("ssac", "sac")},
        "per_block": rates,
        "batch_size": agents["ssac_fp32"].config.sac.batch_size,
        "target_ssac_updates_per_s": 150,
        "threads": args.threads,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
