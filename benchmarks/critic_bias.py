"""Where a CEM agent's critic sits against its rewards: mean Q over replayed skills and the bias that
the TD target's minimum over the twin critics adds at each backup.

Kitchen and maze rewards are never negative, so a negative mean Q is bias. A minimum that sits b
below the twins' mean at every backup adds up to about b / (1 - γ) over the bootstrapped horizon:
the kitchen skillplan run that collapsed at 160k had b = 0.05 and mean Q -3.0.

    python benchmarks/critic_bias.py runs/suite-kitchen/runs/SkillKitchen-v0/skillplan/seed0/agent
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _report import report

from skillplan.agents.cem import CEM

RESULTS = Path(__file__).parent / "results"


@torch.no_grad()
def critic_bias(agent: CEM, samples: int, seed: int = 0) -> dict[str, float]:
    """Q and TD-target statistics on `samples` replayed skills."""
    torch.manual_seed(seed)
    model, learn = agent.model, agent.config.learn
    batch = agent.replay.sample(samples)
    h, next_h = model.encode(batch.obs), model.encode(batch.next_obs)
    q = model.q_value(h, batch.action)
    twins = model.critic_target(next_h, model.policy(next_h)[0].clamp(-agent.bound, agent.bound))
    next_value = twins.min(0).values if learn.td_target == "min" else twins.mean(0)
    target = batch.reward + learn.gamma * (1 - batch.terminated) * next_value
    paid = batch.reward > 0
    bias = (twins.min(0).values - twins.mean(0)).mean().item()
    return {"env_steps": agent.env_steps, "replayed_skills": agent.replay.size,
            "paid_share": paid.float().mean().item(), "mean_q": q.mean().item(), "min_q": q.min().item(),
            "max_q": q.max().item(), "mean_q_paid": q[paid].mean().item() if paid.any() else float("nan"),
            "mean_td_target": target.mean().item(), "twin_min_bias_per_backup": bias,
            "twin_min_bias_accumulated": bias / (1 - learn.gamma)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("agent", type=Path, help="a CEM agent checkpoint dir (RUN/agent)")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=RESULTS / "critic_bias.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = critic_bias(CEM.load(args.agent), args.samples)
    report({"agent": str(args.agent), **result}, args.out)


if __name__ == "__main__":
    main()
