"""Flat SAC gradient updates per second: skillplan's against Stable-Baselines3's, in one run, interleaved.

Run: python benchmarks/sac_vs_sb3.py [--updates 200] [--blocks 5] [--threads 1]
Both learn on the flat kitchen task's spaces (observations 59, actions 9) with batch 256, [256, 256]
MLPs for actor and critics, twin critics, a tuned entropy coefficient and fp32. Each replay buffer
holds the same 5,000 random transitions. One timed update is a replay sample plus the critic, actor and
temperature steps and the target update: skillplan's `SAC.update()`, SB3's `SAC.train(gradient_steps=1)`
(timed in calls of `--updates` steps). The two take turns block by block, so a busy neighbour slows both
alike: the per-block ratio is the robust number. Needs the `bench` extra (stable-baselines3).
The networks differ in one way: skillplan's hidden layers carry a LayerNorm (TD-MPC2's block), SB3's
don't, so skillplan does a little more work per update.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _report import report

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import SAC, SACAgentConfig
from skillplan.agents.sac import SACConfig
from skillplan.envs.tasks import make_flat_task

RESULTS = Path(__file__).parent / "results"
ENV = "SkillKitchen-v0"
BATCH, HIDDEN, FILL = 256, (256, 256), 5_000


def transitions(obs_dim: int, act_dim: int) -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(rng.normal(size=obs_dim).astype(np.float32), rng.uniform(-1, 1, act_dim).astype(np.float32),
             float(rng.normal()), rng.normal(size=obs_dim).astype(np.float32)) for _ in range(FILL)]


def skillplan_sac(env, data) -> SAC:
    config = SACAgentConfig(threads=torch.get_num_threads(), sac=SACConfig(hidden=HIDDEN, batch_size=BATCH))
    agent = SAC(env, config)
    for obs, action, reward, next_obs in data:
        agent.replay.add(obs, action, reward, next_obs, False)
    return agent


def sb3_sac(env, data):
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import configure

    model = SB3SAC("MlpPolicy", env, batch_size=BATCH, policy_kwargs={"net_arch": list(HIDDEN)},
                   buffer_size=FILL, learning_starts=0, device="cpu", seed=0)
    model.set_logger(configure(None, []))  # train() logs; nowhere, here
    for obs, action, reward, next_obs in data:
        model.replay_buffer.add(obs[None], next_obs[None], action[None], np.array([reward]),
                                np.array([False]), [{}])
    return model


def rate(run_updates, updates: int) -> float:
    start = time.perf_counter()
    run_updates(updates)
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=200, help="updates per library and block")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "sac_vs_sb3.json")
    args = parser.parse_args()
    try:
        import stable_baselines3
    except ImportError:
        raise SystemExit("stable-baselines3 is not installed: pip install -e '.[bench]'") from None
    torch.set_num_threads(args.threads)
    env = make_flat_task(ENV)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    data = transitions(obs_dim, act_dim)
    ours, sb3 = skillplan_sac(env, data), sb3_sac(env, data)
    torch.set_num_threads(args.threads)  # SB3's constructor may reset it

    def ours_updates(n: int) -> None:
        for _ in range(n):
            ours.update()

    def sb3_updates(n: int) -> None:
        sb3.train(gradient_steps=n, batch_size=BATCH)

    runs = {"skillplan": ours_updates, "sb3": sb3_updates}
    for run in runs.values():  # warm-up
        run(10)
    per_block: dict[str, list[float]] = {name: [] for name in runs}
    for block in range(args.blocks):
        order = list(runs) if block % 2 == 0 else list(reversed(runs))
        for name in order:
            per_block[name].append(rate(runs[name], args.updates))
    ratios = [a / b for a, b in zip(per_block["skillplan"], per_block["sb3"], strict=True)]
    result = {
        "skillplan_updates_per_s": statistics.median(per_block["skillplan"]),
        "sb3_updates_per_s": statistics.median(per_block["sb3"]),
        "ratio_skillplan_over_sb3": statistics.median(ratios),
        "ratio_per_block": ratios,
        "per_block": per_block,
        "obs_dim": obs_dim, "act_dim": act_dim, "batch_size": BATCH, "hidden": list(HIDDEN),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__, "target_ratio": 1.0,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
