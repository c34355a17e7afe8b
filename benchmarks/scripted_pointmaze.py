"""How well and how fast the scripted PointMaze demonstrator reaches its goals.

Runs the episodes the dataset generator would write with seed 0 (general: random start/goal
pairs with action noise; expert: the fixed downstream task) and reports the fraction that
reach the goal, episode lengths, the fraction of steps touching a wall, and env steps/s
(simulation plus controller). A full run writes benchmarks/results/scripted_pointmaze.{json,md}.

    python benchmarks/scripted_pointmaze.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

from skillplan.envs.generate import episode_seeds
from skillplan.envs.scripted.base import DataKind
from skillplan.envs.scripted.pointmaze import (
    DEMONSTRATOR,
    EXPERT_GOAL_CELL,
    EXPERT_START_CELL,
    MAX_EPISODE_STEPS,
)

RESULTS = Path(__file__).parent / "results"
TARGET = 0.98


class WallContacts(gym.Wrapper):
    """Counts steps on which the point touches a maze block."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        model = env.unwrapped.model
        names = (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(model.ngeom))
        self.blocks = np.array([i for i, name in enumerate(names) if name.startswith("block_")])
        self.touching = 0

    def step(self, action):
        out = self.env.step(action)
        data = self.env.unwrapped.data
        self.touching += bool(np.isin(data.contact.geom[: data.ncon], self.blocks).any())
        return out


def run(kind: DataKind, n: int) -> dict:
    """Roll out the first `n` seed-0 episodes of `kind` and summarise them."""
    env = WallContacts(DEMONSTRATOR.make_env(kind))
    lengths, reached = [], []
    start = time.perf_counter()
    for seed in episode_seeds(0, kind, n):
        ep = DEMONSTRATOR.episode(env, int(seed), kind)
        lengths.append(len(ep.actions))
        reached.append(bool(ep.terminations[-1]))
    seconds = time.perf_counter() - start
    env.close()
    steps = int(np.sum(lengths))
    return {
        "episodes": n,
        "success_rate": float(np.mean(reached)),
        "failed_seeds": [int(s) for s, ok in zip(episode_seeds(0, kind, n), reached, strict=True) if not ok],
        "mean_length": float(np.mean(lengths)),
        "max_length": int(np.max(lengths)),
        "wall_contact_step_fraction": env.touching / steps,
        "steps_per_s": steps / seconds,
    }


def markdown(results: dict, command: str) -> str:
    rows = [
        f"| {kind} | {r['episodes']} | {r['success_rate']:.1%} | {r['mean_length']:.1f} | "
        f"{r['max_length']} | {r['wall_contact_step_fraction']:.2%} | {r['steps_per_s']:,.0f} |"
        for kind, r in results["kinds"].items()
    ]
    return "\n".join([
        "# Scripted PointMaze_Large-v3 demonstrator",
        "",
        f"Command: `{command}`",
        "",
        f"Episodes are the dataset generator's seed-0 episodes. Expert task: cell "
        f"{EXPERT_START_CELL} -> {EXPERT_GOAL_CELL}; time limit {MAX_EPISODE_STEPS} steps. "
        f"Success = goal reached (episode terminated) before the limit; target ≥ {TARGET:.0%}. "
        "Steps/s include the controller, single process.",
        "",
        "| kind | episodes | reached goal | mean length | max length | wall-contact steps "
        "| env steps/s |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Machine: {results['machine']}.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: 20 general + 5 expert episodes, printed only (results files untouched)",
    )
    args = parser.parse_args()
    counts = {"general": 20, "expert": 5} if args.quick else DEMONSTRATOR.default_episodes
    results = {
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
        "quick": args.quick,
        "kinds": {kind: run(kind, n) for kind, n in counts.items()},
    }
    command = "python benchmarks/scripted_pointmaze.py" + (" --quick" if args.quick else "")
    text = markdown(results, command)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "scripted_pointmaze.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "scripted_pointmaze.md").write_text(text)
    if min(r["success_rate"] for r in results["kinds"].values()) < TARGET:
        sys.exit(f"below the {TARGET:.0%} success target")


if __name__ == "__main__":
    main()
