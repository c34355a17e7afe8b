"""How close each decoder brings the expert's next subtask, executing the expert's own next skills.

`next_subtask.py --expert-skills` counts whether a decoder completes the subtask; this tells a near
miss from no attempt. For the first `--episodes` expert episodes that did the task's first N
subtasks in order, it replays each to that point, decodes that same episode's posterior-mean skills
from there (closed loop, no prior), and records the (N+1)-th subtask's goal distance at the branch
and the closest it came (FrankaKitchen completes a subtask below 0.3).

    python benchmarks/diagnostics/next_subtask_distance.py PRIOR... --after 3 --episodes 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from skillplan.envs.tasks import SKILL_KITCHEN_TASKS, kitchen_goals

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report
from diagnostics.next_subtask import data_branches, expert_skills, replay_to_branch, skill_wrapper

RESULTS = Path(__file__).parents[1] / "results"


def distance(flat_obs: np.ndarray, subtask: str) -> float:
    goals = kitchen_goals(flat_obs)
    return float(np.linalg.norm(goals["achieved_goal"][subtask] - goals["desired_goal"][subtask]))


def closest_approach(prior: Path, env_id: str, after: int, episodes: int) -> list[dict[str, float]]:
    """Per expert episode: the next subtask's goal distance at the branch and its minimum while
    that episode's own next skills are decoded."""
    task = SKILL_KITCHEN_TASKS[env_id]
    with gym.make(env_id, prior=str(prior)) as env:
        wrapper = skill_wrapper(env)
        branches, _ = data_branches(env, "expert", task, after, episodes)
        # Both walk the expert episodes in order and keep those past `after` subtasks: the expert data
        # does the task in order, so the i-th branch and the i-th skill sequence are the same episode.
        plans = expert_skills(wrapper.skill_model, after, episodes)
        rows = []
        for (seed, actions, _), plan in zip(branches, plans, strict=False):
            start = closest = distance(replay_to_branch(env, seed, actions), task[after])
            for z in plan:
                obs, *_ = env.step(z)
                closest = min(closest, distance(obs, task[after]))
            rows.append({"at_branch": round(start, 4), "closest": round(closest, 4)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("priors", nargs="+", type=Path, help="prior checkpoint dirs")
    parser.add_argument("--env", default="SkillKitchen-v0", choices=sorted(SKILL_KITCHEN_TASKS))
    parser.add_argument("--after", type=int, default=3, help="branch once this many subtasks are done")
    parser.add_argument("--episodes", type=int, default=6, help="expert episodes (branch states)")
    parser.add_argument("--out", type=Path, default=RESULTS / "next_subtask_distance.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    subtask = SKILL_KITCHEN_TASKS[args.env][args.after]
    report({"env": args.env, "after": args.after, "subtask": subtask, "completed_below": 0.3,
            **{str(p): closest_approach(p, args.env, args.after, args.episodes) for p in args.priors}},
           args.out)


if __name__ == "__main__":
    main()
