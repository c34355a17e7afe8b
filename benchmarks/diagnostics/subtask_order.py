"""Which kitchen subtasks a trained skill agent completes, and in which order, in greedy episodes.

The ordered kitchen tasks pay only for subtasks done in the task's order, so an agent that opens
with the wrong subtask scores 0 however much it does. This counts every subtask in any order, to
tell an agent that does nothing from one locked onto another sequence.

    python benchmarks/diagnostics/subtask_order.py RUN/agent --episodes 10
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

from skillplan.agents import load_agent
from skillplan.envs.tasks import KITCHEN_SUBTASKS, kitchen_goals, subtasks_in_goal

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report

RESULTS = Path(__file__).parents[1] / "results"


def completion_order(agent, episodes: int, seed: int = 10_000) -> list[list[str]]:
    """Per greedy episode on the agent's env, the subtasks in the order they first reach their goal
    (checked after each skill)."""
    orders = []
    for i in range(episodes):
        obs, _ = agent.env.reset(seed=seed + i)
        agent.episode_start()
        order: list[str] = []
        done = False
        while not done:
            obs, _, terminated, truncated, _ = agent.env.step(agent.predict(obs, deterministic=True))
            in_goal = subtasks_in_goal(kitchen_goals(obs), KITCHEN_SUBTASKS)
            order += [t for t in KITCHEN_SUBTASKS if in_goal[t] and t not in order]
            done = terminated or truncated
        orders.append(order)
    return orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("agent", type=Path, help="a skill agent's checkpoint dir (RUN/agent)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "subtask_order.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = load_agent(args.agent)
    orders = completion_order(agent, args.episodes)
    counts = Counter(" > ".join(order) or "nothing" for order in orders)
    first = Counter(order[0] if order else "nothing" for order in orders)
    report({"agent": str(args.agent), "episodes": orders, "sequences": dict(counts.most_common()),
            "first_subtask": dict(first.most_common())}, args.out)


if __name__ == "__main__":
    main()
