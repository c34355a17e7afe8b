"""Which subtask each skill prior does next, from the states where a trained agent finished N subtasks.

A kitchen agent that stalls before its task's last subtask either plans badly, or plans in a skill
space whose prior rarely shows that subtask from there. This runs the agent's greedy episodes to
its N-th subtask in order and records the low-level actions, so that an env on any prior replays them
to the same states. From each such state it rolls out skills sampled from each prior for the
episode's remaining skills, and counts the first subtask each rollout completes that was not done
at the branch. The agent's own greedy episodes are counted alike. With `--expert-skills N`, each
prior's decoder also executes, from the same states, the posterior skills of the first N expert
episodes from their own N-th subtask on: whether the skill space can do what the expert did next,
with no prior involved.

With `--from-data expert|general` the branch states come from a dataset instead of an agent: the
episodes that did the task's first N subtasks in order, replayed from their reset seeds to that
point. From the expert's own states the expert's next skills are in distribution; from general
episodes that got there on their own path they must transfer to states the expert never visited.

    python benchmarks/diagnostics/next_subtask.py RUN/agent --priors P1 P2 --after 3 --episodes 6 \
        --expert-skills 20
    python benchmarks/diagnostics/next_subtask.py --from-data general --priors P1 --expert-skills 10
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from skillplan.agents import load_agent
from skillplan.data.catalog import resolve
from skillplan.data.loading import open_dataset
from skillplan.envs.generate import episode_seeds
from skillplan.envs.skill_env import SkillWrapper
from skillplan.envs.tasks import (
    KITCHEN_EVAL_STEPS,
    KITCHEN_SUBTASKS,
    SKILL_KITCHEN_TASKS,
    kitchen_goals,
    subtasks_in_goal,
)

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report

RESULTS = Path(__file__).parents[1] / "results"
Branch = tuple[int, list[np.ndarray], int]  # reset seed, low-level actions to the branch, skills left


def skill_wrapper(env: gym.Env) -> SkillWrapper:
    while not isinstance(env, SkillWrapper):
        env = env.env
    return env


def in_goal(flat_obs: np.ndarray) -> set[str]:
    done = subtasks_in_goal(kitchen_goals(flat_obs), KITCHEN_SUBTASKS)
    return {t for t, d in done.items() if d}


def first_new(before: set[str], after: set[str]) -> str | None:
    new = [t for t in KITCHEN_SUBTASKS if t in after - before]
    return new[0] if new else None


def agent_branches(agent, after: int, episodes: int, seed: int) -> tuple[list[Branch], Counter]:
    """Each greedy episode's actions up to its `after`-th subtask in order (episodes that never
    get there are skipped), and what the agent itself completed next."""
    wrapper = skill_wrapper(agent.env)
    actions: list[np.ndarray] = []
    inner_step = wrapper.env.step
    wrapper.env.step = lambda a: (actions.append(np.array(a)), inner_step(a))[1]
    branches, agent_next = [], Counter()
    budget = KITCHEN_EVAL_STEPS // wrapper.horizon
    try:
        for i in range(episodes):
            actions.clear()
            obs, _ = agent.env.reset(seed=seed + i)
            agent.episode_start()
            skills, branch, done_then, nxt, over = 0, None, set(), None, False
            while not over:
                obs, _, terminated, truncated, info = agent.env.step(agent.predict(obs, deterministic=True))
                skills += 1
                over = terminated or truncated
                if branch is None and info.get("subtasks_completed", 0) >= after:
                    branch, done_then = (seed + i, list(actions), budget - skills), in_goal(obs)
                elif branch is not None and nxt is None:
                    nxt = first_new(done_then, in_goal(obs))
            if branch is not None:
                branches.append(branch)
                agent_next[nxt or "nothing"] += 1
    finally:
        wrapper.env.step = inner_step
    return branches, agent_next


def completion_steps(episode) -> list[tuple[int, str]]:
    """(steps taken, subtask) for each subtask a dataset episode completed, in order."""
    flags = episode.infos["step_task_completions"]
    return sorted((int(np.argmax(v)) + 1, t) for t, v in flags.items() if np.any(v))


def data_branches(env: gym.Env, kind: str, task: tuple[str, ...], after: int,
                  episodes: int) -> tuple[list[Branch], Counter]:
    """The first `episodes` episodes of `env`'s prior's `kind` dataset that did `task`'s first `after`
    subtasks in order: their actions up to that point, replayed in `env` to check that they get
    there, and what each completed next."""
    wrapper = skill_wrapper(env)
    spec = resolve(wrapper.skill_model.metadata.dataset)
    dataset = open_dataset(spec.ids[["general", "expert"].index(kind)], spec, download=False)
    seeds = episode_seeds(0, kind, dataset.total_episodes)  # the generator's default seed
    branches, data_next = [], Counter()
    budget = KITCHEN_EVAL_STEPS // wrapper.horizon
    for seed, episode in zip(seeds, dataset.iterate_episodes(), strict=False):
        if len(branches) == episodes:
            break
        order = completion_steps(episode)
        if [t for _, t in order[:after]] != list(task[:after]):
            continue
        at = order[after - 1][0]
        if not set(task[:after]) <= in_goal(replay_to_branch(env, int(seed), episode.actions[:at])):
            raise SystemExit(f"Replaying {kind} episode {episode.id} from seed {seed} does not reach its "
                             f"state after {after} subtasks: was the dataset generated with another seed?")
        branches.append((int(seed), list(episode.actions[:at]), budget - math.ceil(at / wrapper.horizon)))
        data_next[order[after][1] if len(order) > after else "nothing"] += 1
    return branches, data_next


def expert_skills(model, after: int, episodes: int) -> list[np.ndarray]:
    """Posterior-mean skills [K, Dz] of the first expert episodes, from their `after`-th subtask on
    (windows of H steps; the last one ends with the episode)."""
    spec, horizon = resolve(model.metadata.dataset), model.config.model.horizon
    sequences = []
    source = open_dataset(spec.ids[1], spec, download=False).iterate_episodes()
    for _, episode in zip(range(episodes), source, strict=False):
        done = [t for t, _ in completion_steps(episode)]
        if len(done) <= after:
            continue
        flat, actions = model.layout.flatten(episode.observations), episode.actions
        starts = [*range(done[after - 1], len(actions) - horizon + 1, horizon), len(actions) - horizon]
        with torch.inference_mode():
            posterior = model.encode_skill(np.stack([flat[t:t + horizon] for t in starts]),
                                           np.stack([actions[t:t + horizon] for t in starts]))
        sequences.append(posterior.mean.numpy())
    return sequences


def replay_to_branch(env: gym.Env, seed: int, actions: Iterable[np.ndarray]) -> np.ndarray:
    """Reset `env` with `seed`, replay the low-level `actions`, and leave its skill wrapper decoding
    from the state they reach; returns that state, flat."""
    wrapper = skill_wrapper(env)
    env.reset(seed=seed)
    for action in actions:
        low_obs, *_ = wrapper.env.step(action)
    wrapper._obs = low_obs
    return wrapper.layout.flatten(low_obs)


def continuations(prior: str, env_id: str, branches: list[Branch], rollouts: int,
                  expert_episodes: int, after: int) -> dict[str, Counter]:
    """The first new subtask of continuations from each branch state: `rollouts` of skills sampled
    from the prior and, with `expert_episodes`, the expert's own next skills."""
    env = gym.make(env_id, prior=prior)
    model = skill_wrapper(env).skill_model
    sources: dict[str, list] = {"prior": [None] * rollouts}
    if expert_episodes:
        sources["expert_skills"] = expert_skills(model, after, expert_episodes)
    counts = {name: Counter() for name in sources}
    for seed, actions, left in branches:
        for name, plans in sources.items():
            for plan in plans:
                obs = replay_to_branch(env, seed, actions)
                before, nxt = in_goal(obs), None
                for k in range(left if plan is None else min(left, len(plan))):
                    if plan is None:
                        with torch.inference_mode():
                            z = model.prior_dist(obs[None]).sample()[0].numpy()
                    else:
                        z = plan[k]
                    obs, *_ = env.step(z)
                    nxt = first_new(before, in_goal(obs))
                    if nxt is not None:
                        break
                counts[name][nxt or "nothing"] += 1
    env.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("agent", type=Path, nargs="?",
                        help="a kitchen skill agent's checkpoint dir (RUN/agent)")
    parser.add_argument("--from-data", choices=["expert", "general"], help="branch from the first prior's "
                        "dataset episodes instead of an agent's")
    parser.add_argument("--env", default="SkillKitchen-v0", choices=sorted(SKILL_KITCHEN_TASKS),
                        help="with --from-data: whose task's subtasks count")
    parser.add_argument("--priors", nargs="+", required=True, help="prior checkpoint dirs to roll out")
    parser.add_argument("--after", type=int, default=3, help="branch once the agent has done this many "
                        "of its task's subtasks in order")
    parser.add_argument("--episodes", type=int, default=6, help="greedy agent episodes (branch states)")
    parser.add_argument("--rollouts", type=int, default=20, help="prior rollouts per branch state")
    parser.add_argument("--expert-skills", type=int, default=0, help="also execute the next skills of "
                        "this many expert episodes (0: skip)")
    parser.add_argument("--seed", type=int, default=10_000, help="the first episode's reset seed")
    parser.add_argument("--out", type=Path, default=RESULTS / "next_subtask.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if (args.agent is None) == (args.from_data is None):
        parser.error("give an agent's checkpoint dir or --from-data, not both")
    if args.from_data:
        env_id, source = args.env, f"{args.from_data} data"
        with gym.make(env_id, prior=args.priors[0]) as env:
            branches, agent_next = data_branches(env, args.from_data, SKILL_KITCHEN_TASKS[env_id],
                                                 args.after, args.episodes)
    else:
        agent = load_agent(args.agent)
        env_id, source = agent.env.spec.id, str(args.agent)
        branches, agent_next = agent_branches(agent, args.after, args.episodes, args.seed)
    if not branches:
        raise SystemExit(f"No episode of {source} did {args.after} of its task's subtasks in order.")
    report({"agent": source, "env": env_id, "after": args.after, "branch_states": len(branches),
            "skills_left": [left for _, _, left in branches], "agent_next": dict(agent_next.most_common()),
            **{p: {name: dict(c.most_common()) for name, c in continuations(
                p, env_id, branches, args.rollouts, args.expert_skills, args.after).items()}
               for p in args.priors}}, args.out)


if __name__ == "__main__":
    main()
