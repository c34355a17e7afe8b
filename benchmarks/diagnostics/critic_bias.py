"""Where a CEM agent's critic sits against its rewards, and whether its planner still follows the data.

Kitchen and maze rewards are never negative, so a negative mean Q is bias. A minimum over the twin
critics that sits b below their mean at every backup adds up to about b / (1 - γ) over the
bootstrapped horizon: the kitchen skillplan run that collapsed at 160k had b = 0.05 and mean Q -3.0.

With --episodes, greedy episodes are played three times: by the planner, by the planner pricing the
executed skill by the prior (`plan_prior`), and by the task policy's mean alone. Along the policy's
episodes each decision's plan is scored against the policy's own rollout in the model: terminal
value, and how far the final latent lies from replayed latents. A planner that trades predicted
reward for the value of latents off the data scores below its policy. At the env's reset states it
also compares the task policy's mean with the prior's mean.

    python benchmarks/diagnostics/critic_bias.py runs/suite-kitchen/runs/SkillKitchen-v0/skillplan/seed0/agent
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from skillplan.agents.cem import CEM, twin_value

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report

RESULTS = Path(__file__).parents[1] / "results"


@torch.no_grad()
def critic_bias(agent: CEM, samples: int, seed: int = 0) -> dict[str, float]:
    """Q and TD-target statistics on `samples` replayed skills."""
    torch.manual_seed(seed)
    model, learn = agent.model, agent.config.learn
    batch = agent.replay.sample(samples)
    h, next_h = model.encode(batch.obs), model.encode(batch.next_obs)
    q = model.q_value(h, batch.action)
    twins = model.critic_target(next_h, model.policy(next_h)[0].clamp(-agent.bound, agent.bound))
    target = batch.reward + learn.gamma * (1 - batch.terminated) * twin_value(twins, learn.td_target)
    paid = batch.reward > 0
    bias = (twins.min(0).values - twins.mean(0)).mean().item()
    return {"env_steps": agent.env_steps, "replayed_skills": agent.replay.size,
            "paid_share": paid.float().mean().item(), "mean_q": q.mean().item(), "min_q": q.min().item(),
            "max_q": q.max().item(), "mean_q_paid": q[paid].mean().item() if paid.any() else float("nan"),
            "mean_td_target": target.mean().item(), "twin_min_bias_per_backup": bias,
            "twin_min_bias_accumulated": bias / (1 - learn.gamma)}


@torch.no_grad()
def policy_at_reset(agent: CEM, resets: int = 10, seed: int = 10_000) -> dict[str, float]:
    """At the env's reset states: how far the task policy's mean has moved from the prior's, and the
    critic's value of each (a policy that left the prior for a lower value has not followed its critic)."""
    model = agent.model
    obs = torch.as_tensor(np.stack([agent.env.reset(seed=seed + i)[0] for i in range(resets)]),
                          dtype=torch.float32)
    h = model.encode(obs)
    policy = model.policy(h)[0].clamp(-agent.bound, agent.bound)
    prior = agent.skill_model.prior_dist(obs).mean.clamp(-agent.bound, agent.bound)
    return {"reset_policy_to_prior_distance": (policy - prior).norm(dim=-1).mean().item(),
            "reset_policy_norm": policy.norm(dim=-1).mean().item(),
            "reset_q_policy": model.q_value(h, policy).mean().item(),
            "reset_q_prior": model.q_value(h, prior).mean().item()}


@torch.no_grad()
def plan_vs_policy(agent: CEM, episodes: int, seed: int = 10_000) -> dict[str, float]:
    """Greedy subtasks by the planner and by the policy mean; plan against policy rollout in the model."""
    model, env = agent.model, agent.env
    data_latents = model.encode(agent.replay.sample(4096).next_obs)

    def policy_skill(h: torch.Tensor) -> torch.Tensor:
        return model.policy(h)[0].clamp(-agent.bound, agent.bound)

    def terminal(h: torch.Tensor, skills: torch.Tensor) -> tuple[float, float]:
        for z in skills:
            h = model.next_latent(h, z[None])
        return model.q_value(h, policy_skill(h)).item(), torch.cdist(h, data_latents).min().item()

    subtasks, gaps = {"plan": [], "plan_prior": [], "policy": []}, {"plan": [], "policy": []}
    for mode in subtasks:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            agent.episode_start()
            done, info = False, {}
            while not done:
                obs_t = torch.as_tensor(obs, dtype=torch.float32)[None]
                h = model.encode(obs_t)
                score = agent.prior_score(obs_t) if mode == "plan_prior" else None  # as `plan_prior: true`
                skill = agent.planner.plan(h, step=agent.env_steps, eval_mode=True, first_skill_score=score)
                if mode == "policy":  # play the policy; score the plan it passed over against its rollout
                    rollout, hz = [], h
                    for _ in range(len(agent.planner.last_plan)):
                        rollout.append(policy_skill(hz)[0])
                        hz = model.next_latent(hz, rollout[-1][None])
                    gaps["plan"].append(terminal(h, agent.planner.last_plan))
                    gaps["policy"].append(terminal(h, torch.stack(rollout)))
                    skill = rollout[0]
                obs, _, terminated, truncated, info = env.step(skill.numpy())
                done = terminated or truncated
            subtasks[mode].append(float(info.get("subtasks_completed", 0)))
    result = {f"greedy_subtasks_{mode}": float(np.mean(values)) for mode, values in subtasks.items()}
    for name, pairs in gaps.items():
        result[f"{name}_terminal_q"], result[f"{name}_terminal_latent_distance"] = np.mean(pairs, 0).tolist()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("agent", type=Path, help="a CEM agent checkpoint dir (RUN/agent)")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--episodes", type=int, default=0, help="greedy episodes by planner and by policy")
    parser.add_argument("--out", type=Path, default=RESULTS / "critic_bias.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = CEM.load(args.agent)
    result = critic_bias(agent, args.samples) | policy_at_reset(agent)
    if args.episodes:
        result |= plan_vs_policy(agent, args.episodes)
    report({"agent": str(args.agent), **result}, args.out)


if __name__ == "__main__":
    main()
