"""Where a closed-loop skill decoder leaves the data: one episode's own skills, re-decoded from reset.

The posterior means of an episode's H-step windows are decoded closed loop in the env, from its reset;
each step prints the state dimensions farthest from the episode's recorded state, in the data's
standard deviations. Teacher-forced action error (decoding on the recorded states) is printed first,
so drift from closed-loop feedback can be told from a poor fit.

    python benchmarks/diagnostics/decoder_drift.py runs/kitchen-scripted/prior --kind expert --steps 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from skillplan.data.loading import load_offline_data
from skillplan.evaluation import make_vector_env
from skillplan.models.skill_model import SkillModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--kind", choices=["general", "expert"], default="expert")
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=4, help="dimensions printed per step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model = SkillModel.load(args.checkpoint).eval()
    horizon = model.config.model.horizon
    data = load_offline_data(model.metadata.dataset, obs_dims=model.metadata.obs_dims)
    episodes = data.expert if args.kind == "expert" else data.general
    first_obs, first_act = episodes.obs_offsets[args.episode], episodes.act_offsets[args.episode]
    length = int(episodes.lengths[args.episode]) // horizon * horizon
    states = episodes.observations[first_obs:first_obs + length + 1]
    actions = episodes.actions[first_act:first_act + length]
    z = model.encode_skill(states[:length].reshape(-1, horizon, states.shape[-1]),
                           actions.reshape(-1, horizon, actions.shape[-1])).mean
    forced = np.stack([model.decode_action(states[t], z[t // horizon], t % horizon).numpy()
                       for t in range(length)])
    print(f"teacher-forced action MSE {np.mean((forced - actions) ** 2):.4f} "
          f"(action variance {actions.var(0).mean():.4f})")
    env = make_vector_env(model, 1, None)
    obs, _ = env.reset(seed=[args.episode])
    std = model.obs_std.numpy()
    for t in range(min(args.steps, length)):
        state = model.layout.flatten(obs)[0]
        gaps = np.abs(state - states[t]) / std
        top = np.argsort(gaps)[::-1][:args.top]
        print(f"step {t:3d}: " + ", ".join(f"dim {i} {gaps[i]:.2f}σ" for i in top))
        obs, *_ = env.step(model.decode_action(obs, z[t // horizon][None], t % horizon).numpy())
    env.close()


if __name__ == "__main__":
    main()
