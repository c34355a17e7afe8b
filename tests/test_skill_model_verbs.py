"""The operations `SkillModel` offers agents and the skill wrapper return what those built by hand before."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from skillplan.agents.cem import TaskModel
from skillplan.checkpoint import SkillMetadata
from skillplan.config import resolve_config
from skillplan.errors import CheckpointError
from skillplan.models.prior import dominant_head
from skillplan.models.skill_model import SkillModel
from skillplan.models.standardize import standardize_obs

OBS, ACT, Z, H = 7, 3, 4, 5


def make_model(**model: object) -> SkillModel:
    config = resolve_config("skillplan", overrides={"model": {"hidden": 32, "depth": 2, "z_dim": Z,
                                                              "horizon": H, **model}})
    rng = np.random.default_rng(0)
    metadata = SkillMetadata(
        dataset="d", dataset_ids=["d"], fingerprint="f", env_id="", env_kwargs={}, observation_space={},
        action_space={}, obs_keys=[], obs_dim=OBS, act_dim=ACT, horizon=H, z_dim=Z,
        obs_mean=rng.normal(size=OBS).tolist(), obs_std=rng.uniform(0.5, 2, OBS).tolist(),
        act_center=[0.1] * ACT, act_scale=[2.0] * ACT, act_bounded=True, version="0")
    torch.manual_seed(0)
    return SkillModel(config, metadata).eval()


def test_finetunable_dynamics_is_a_trainable_copy():
    model = make_model()
    copied = model.finetunable_dynamics()
    h, z, obs = torch.randn(16, model.dynamics.latent_dim), torch.randn(16, Z), torch.randn(16, OBS)
    torch.testing.assert_close(copied.predict(h, z), model.dynamics.predict(h, z), rtol=0, atol=0)
    torch.testing.assert_close(copied.encoder(obs), model.dynamics.encoder(obs), rtol=0, atol=0)
    torch.testing.assert_close(copied.obs_decoder(h), model.dynamics.obs_decoder(h), rtol=0, atol=0)
    assert all(p.requires_grad for p in copied.parameters())
    with torch.no_grad():
        next(copied.step.parameters()).add_(1.0)
    assert not torch.equal(copied.predict(h, z), model.dynamics.predict(h, z))  # the model is untouched


def test_finetunable_dynamics_needs_dynamics():
    assert make_model().has_dynamics and not make_model(dynamics=False).has_dynamics
    with pytest.raises(CheckpointError, match="without skill dynamics"):
        make_model(dynamics=False).finetunable_dynamics()


@pytest.mark.parametrize("family", ["gaussian", "mixture"])
def test_prior_policy_starts_as_the_prior(family):
    model = make_model(prior=family)
    policy = model.prior_policy()
    obs = standardize_obs(torch.randn(32, OBS) * 3, model.obs_mean, model.obs_std)
    by_hand = nn.Sequential(copy.deepcopy(model.prior.net), dominant_head(model.prior))
    torch.testing.assert_close(policy(obs), by_hand(obs), rtol=0, atol=0)
    mean, log_std = policy(obs).chunk(2, -1)
    prior = model.prior(obs).to_torch()
    if family == "gaussian":
        torch.testing.assert_close(mean, prior.base_dist.mean if hasattr(prior, "base_dist") else prior.mean)
    else:  # the component the mixture weights most at each state
        best = prior.mixture_distribution.probs.argmax(-1)
        components = prior.component_distribution.base_dist
        torch.testing.assert_close(mean, components.mean[torch.arange(32), best])
        torch.testing.assert_close(log_std.exp(), components.stddev[torch.arange(32), best])
    assert all(p.requires_grad for p in policy.parameters())
    assert all(not p.requires_grad or p.data_ptr() not in {q.data_ptr() for q in model.prior.parameters()}
               for p in policy.parameters())


def test_cem_task_model_is_built_from_the_verbs_as_before():
    model = make_model(prior="mixture")
    task = TaskModel(model, (16, 16))
    h = torch.randn(8, model.dynamics.latent_dim)
    old_actor = nn.Sequential(copy.deepcopy(model.dynamics.obs_decoder), copy.deepcopy(model.prior.net),
                              dominant_head(model.prior))
    torch.testing.assert_close(task.actor(h), old_actor(h), rtol=0, atol=0)
    assert list(dict(task.actor.named_parameters())) == list(dict(old_actor.named_parameters()))
    z = torch.randn(8, Z)
    torch.testing.assert_close(task.next_latent(h, z), model.dynamics.predict(h, z), rtol=0, atol=0)


def test_numpy_decoder_decodes_a_batch_of_states_as_the_torch_decoder():
    model = make_model()
    rng = np.random.default_rng(1)
    states = rng.normal(size=(64, OBS)).astype(np.float32) * 3
    z = rng.normal(size=(64, Z)).astype(np.float32)
    fast = model.numpy_decoder()
    batch = fast(states, z)
    assert batch.shape == (64, ACT)
    np.testing.assert_allclose(batch, model.decode_action(states, z).detach().numpy(), rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(batch[5], fast(states[5], z[5]), rtol=1e-5, atol=1e-6)  # BLAS order
    assert np.ptp(batch, axis=0).min() > 1e-3  # the states and skills do matter


def test_decode_plan_is_the_open_loop_decoders_actions_step_by_step():
    model = make_model(decoder="open")
    assert not model.decodes_closed_loop
    z = torch.randn(6, Z)
    plan = model.decode_plan(z.numpy())
    assert plan.shape == (6, H, ACT)
    for step in range(H):
        torch.testing.assert_close(plan[:, step], model.decode_action(torch.zeros(6, OBS), z, step))
    with pytest.raises(CheckpointError, match="decode_plan"):
        model.numpy_decoder()
    closed = make_model()
    assert closed.decodes_closed_loop
    with pytest.raises(CheckpointError, match="closed-loop"):
        closed.decode_plan(z)
