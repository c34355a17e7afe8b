"""SkiMo's central claim on our data: skill dynamics predict k skills ahead better than a flat model.

A flat one-step model f(s_t, a_t) -> s_{t+1} is trained on the same training episodes as a
pretrained checkpoint, then rolled out k·H steps with the true actions; the skill dynamics roll
out k skills (the posterior means of the true skills). Both errors are squared errors of the
predicted state in normalised units, on the same held-out windows.

Run: python benchmarks/diagnostics/dynamics_vs_flat.py --checkpoint runs/kitchen-scripted/prior [--steps 5000]
Writes benchmarks/results/pretrain_dynamics_vs_flat.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from skillplan.data.loading import load_offline_data
from skillplan.data.sampler import WindowSampler
from skillplan.models.mlp import mlp
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import normalize_episodes


def train_flat_model(
    sampler: WindowSampler, obs_dim: int, act_dim: int, steps: int, batch: int
) -> torch.nn.Module:
    """A residual one-step model s_{t+1} = s_t + f(s_t, a_t), MSE-trained on single transitions."""
    model = mlp(obs_dim + act_dim, obs_dim, hidden=256, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        windows = sampler.sample(batch)
        obs, act, nxt = windows.observations[:, 0], windows.actions[:, 0], windows.observations[:, 1]
        loss = F.mse_loss(obs + model(torch.cat([obs, act], -1)), nxt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def flat_rollout_errors(
    flat: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor, horizon: int
) -> list[float]:
    """Squared state error after each multiple of `horizon` steps of an open-loop flat rollout."""
    state, errors = obs[:, 0], []
    for t in range(act.shape[1]):
        state = state + flat(torch.cat([state, act[:, t]], -1))
        if (t + 1) % horizon == 0:
            errors.append((state - obs[:, t + 1]).square().mean().item())
    return errors


@torch.no_grad()
def skill_rollout_errors(model: SkillModel, obs: torch.Tensor, act: torch.Tensor) -> list[float]:
    """Squared state error of the decoded skill-dynamics rollout after each skill."""
    horizon = model.config.model.horizon
    skill_obs = rearrange(obs[:, :-1], "b (n h) s -> b n h s", h=horizon)
    skill_act = rearrange(act, "b (n h) a -> b n h a", h=horizon)
    z = model.skill_encoder(skill_obs, skill_act).mean
    dyn = model.dynamics
    predicted = dyn.obs_decoder(dyn.rollout(dyn.encoder(obs[:, 0]), z))
    return (predicted - obs[:, horizon::horizon]).square().mean(dim=(0, 2)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--skills", type=int, default=5, help="k: skills ahead (k·H flat steps)")
    parser.add_argument("--steps", type=int, default=5000, help="flat model training steps")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--windows", type=int, default=2048, help="held-out windows evaluated")
    default_out = Path(__file__).parents[1] / "results" / "pretrain_dynamics_vs_flat.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    model = SkillModel.load(args.checkpoint)
    config = model.config
    data = load_offline_data(
        config.data.dataset, expert_id=config.data.expert_dataset, obs_dims=config.data.obs_dims
    )
    if data.fingerprint != model.metadata.fingerprint:
        raise SystemExit("The dataset changed since the checkpoint was trained; retrain it first.")
    train_eps, held_eps = data.general.split(config.data.holdout_fraction, config.pretrain.seed)
    horizon = config.model.horizon
    train = normalize_episodes(train_eps, model.metadata)
    held = WindowSampler(normalize_episodes(held_eps, model.metadata), horizon, args.skills, seed=1)
    windows = held.sample(args.windows)

    started = time.perf_counter()
    flat = train_flat_model(WindowSampler(train, 1, 1, seed=0), model.metadata.obs_dim,
                            model.metadata.act_dim, args.steps, args.batch_size)
    flat_seconds = time.perf_counter() - started
    flat_err = flat_rollout_errors(flat, windows.observations, windows.actions, horizon)
    skill_err = skill_rollout_errors(model, windows.observations, windows.actions)
    result = {
        "checkpoint": str(args.checkpoint), "dataset": config.data.dataset, "horizon": horizon,
        "skills_ahead": list(range(1, args.skills + 1)),
        "skill_dynamics_state_mse": skill_err, "flat_state_mse": flat_err,
        "flat_over_skill": [f / s for f, s in zip(flat_err, skill_err, strict=True)],
        "flat_training_steps": args.steps, "flat_training_seconds": flat_seconds,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
