"""Held-out validation of a skill model: reconstruction, prior, multi-skill prediction, PU AUCs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from scipy.stats import rankdata

from skillplan.data.loading import Episodes
from skillplan.data.sampler import WindowSampler
from skillplan.models.skill_model import SkillModel


def auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting half."""
    ranks = rankdata(np.concatenate([positive_scores, negative_scores]))
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class HeldOutWindows:
    """A fixed set of normalised windows from held-out episodes; expert windows come last."""

    observations: torch.Tensor  # (B, N·H+1, obs_dim)
    actions: torch.Tensor  # (B, N·H, act_dim)
    n_expert: int

    @classmethod
    def sample(
        cls, general: Episodes, expert: Episodes | None, horizon: int, n_skills: int, n_windows: int,
        seed: int,
    ) -> HeldOutWindows:
        parts = [WindowSampler(general, horizon, n_skills, seed=seed).sample(n_windows)]
        if expert is not None:
            parts.append(WindowSampler(expert, horizon, n_skills, seed=seed + 1).sample(n_windows // 2))
        n_expert = len(parts[1].observations) if expert is not None else 0
        return cls(
            torch.cat([w.observations for w in parts]), torch.cat([w.actions for w in parts]), n_expert
        )


@torch.no_grad()
def validate(model: SkillModel, held: HeldOutWindows) -> dict[str, float]:
    """Metrics on held-out windows, all in normalised units.

    `val_action_mse`: decoded posterior-mean skills vs the true actions; `val_prior_nll`: −log p(μ_q | s_0)
    in nats; `val_latent_err_k{k}` / `val_obs_err_k{k}`: squared error of the skill dynamics' k-skill
    rollout in latent space (vs the target encoder) and in state space (decoded); `val_pu_*_auc`:
    expert vs general AUC of the adversarial discriminator and of the PU classifier;
    `val_z_probe_auc`: that of a fresh probe on z (`probe_auc`), which a collapsed discriminator
    cannot fake.
    """
    model.eval()
    horizon = model.config.model.horizon
    obs, act = held.observations, held.actions
    skill_obs = rearrange(obs[:, :-1], "b (n h) s -> b n h s", h=horizon)
    skill_act = rearrange(act, "b (n h) a -> b n h a", h=horizon)
    z = model.skill_encoder(skill_obs, skill_act).mean
    start_obs = skill_obs[:, :, 0]
    action_error = (model.decoder.skill(skill_obs, z) - skill_act).square().mean(dim=(1, 2, 3))
    split = len(obs) - held.n_expert  # rows before `split` are general windows, the rest expert ones
    metrics = {
        "val_action_mse": action_error.mean().item(),
        "val_prior_nll": model.prior(start_obs).nll(z).mean().item(),
    }
    if held.n_expert:  # the datasets' action noise differs, so their errors do too
        metrics["val_action_mse_general"] = action_error[:split].mean().item()
        metrics["val_action_mse_expert"] = action_error[split:].mean().item()
    if model.dynamics is not None:
        dyn = model.dynamics
        boundary_obs = obs[:, ::horizon]
        predicted = dyn.rollout(dyn.encoder(boundary_obs[:, 0]), z)
        latent_err = (predicted - dyn.target_encoder(boundary_obs[:, 1:])).square().mean(dim=(0, 2))
        obs_err = (dyn.obs_decoder(predicted) - boundary_obs[:, 1:]).square().mean(dim=(0, 2))
        for k in range(len(latent_err)):
            metrics[f"val_latent_err_k{k + 1}"] = latent_err[k].item()
            metrics[f"val_obs_err_k{k + 1}"] = obs_err[k].item()
    if held.n_expert:
        metrics["val_z_probe_auc"] = probe_auc(z[:split].flatten(0, 1), z[split:].flatten(0, 1))
        if model.discriminator is not None:
            metrics["val_pu_adv_auc"] = _expert_auc(model.discriminator(z), split)
        if model.classifier is not None:
            metrics["val_pu_cls_auc"] = _expert_auc(model.classifier(start_obs, skill_act), split)
    return metrics


def _expert_auc(scores: torch.Tensor, split: int) -> float:
    scores = scores.float().cpu().numpy()
    return auc(scores[split:].ravel(), scores[:split].ravel())


@torch.enable_grad()
def probe_auc(general: torch.Tensor, expert: torch.Tensor, steps: int = 100) -> float:
    """How well expert skills can be told from general ones: a logistic regression on (z, z²),
    class-balanced, fitted on every other row and scored (AUC) on the rest."""
    features = torch.cat([torch.cat([general, expert]), torch.cat([general, expert]).square()], -1).float()
    features = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    labels = torch.cat([torch.zeros(len(general)), torch.ones(len(expert))])
    weights = torch.where(labels == 1, len(labels) / (2 * len(expert)), len(labels) / (2 * len(general)))
    fit = torch.arange(len(labels)) % 2 == 0
    w = torch.zeros(features.shape[1] + 1, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = features[fit] @ w[:-1] + w[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[fit], weights[fit])
        loss = loss + 1e-4 * w[:-1].square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        scores = (features[~fit] @ w[:-1] + w[-1]).numpy()
    held = labels[~fit].numpy() == 1
    return auc(scores[held], scores[~held])
