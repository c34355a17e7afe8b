"""SkillModel's parts learn what they are for: reconstruction, prior, PU separation, adversarial alignment."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from skillplan.config import RunConfig
from skillplan.data.loading import OfflineData, load_offline_data
from skillplan.data.writing import write_dataset
from skillplan.models.distributions import DiagGaussian
from skillplan.models.pu import nnpu_loss, nnpu_risk, reverse_gradient
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import BatchSource, JointTrainer, joint_loss, metadata_for, normalize_episodes
from skillplan.validation import HeldOutWindows, auc, validate
from tests.conftest import tiny_episodes
from tests.pretrain_fixtures import tiny_config, write_pu_datasets


def train(data: OfflineData, config: RunConfig, steps: int) -> tuple[dict[str, float], dict[str, float]]:
    """Held-out metrics (before, after) `steps` joint updates on `data`."""
    torch.manual_seed(0)
    torch.set_num_threads(config.pretrain.threads)  # as `pretrain` does
    meta = metadata_for(data, config)
    model = SkillModel(config, meta)
    general_train, general_held = data.general.split(0.25, seed=0)
    expert_train, expert_held = data.expert.split(0.25, seed=0)
    horizon, n_skills = config.model.horizon, config.pretrain.n_skills
    batches = BatchSource(
        normalize_episodes(general_train, meta), normalize_episodes(expert_train, meta),
        horizon, n_skills, config.pretrain.batch_size, 0.25, seed=0,
    )
    held = HeldOutWindows.sample(
        normalize_episodes(general_held, meta), normalize_episodes(expert_held, meta),
        horizon, n_skills, 256, seed=0,
    )
    before = validate(model, held)
    trainer = JointTrainer(model)
    for _ in range(steps):
        trainer.step(batches.sample(), batches.n_expert)
    return before, validate(model, held)


@pytest.fixture
def pu_data() -> OfflineData:
    return write_pu_datasets()


def test_reconstruction_and_prior_improve(pu_data):
    before, after = train(pu_data, tiny_config(), steps=400)
    assert after["val_action_mse"] < 0.4 * before["val_action_mse"]
    assert after["val_prior_nll"] < before["val_prior_nll"] - 0.5
    assert after["val_obs_err_k1"] < 0.2 * before["val_obs_err_k1"]


def test_pu_classifier_separates_expert_windows(pu_data):
    _, after = train(pu_data, tiny_config(), steps=400)
    # A quarter of the general data is expert-like, so a perfect PU classifier scores ~0.875.
    assert after["val_pu_cls_auc"] > 0.7


@pytest.mark.parametrize("network", ["classifier", "discriminator"])
@pytest.mark.parametrize("penalty", [0.0, 1e-3])
def test_saturated_pu_network_is_pulled_back_only_by_the_logit_penalty(pu_data, network, penalty):
    """At logits of ±500 (the kitchen classifier reached ±1000, the discriminator −83) the sigmoid
    nnPU loss has no gradient left, so a confident call would stay; the L2 penalty on the logits
    still pulls them back, and in the discriminator's case without pushing on the encoder."""
    config = tiny_config(pretrain={"pu_logit_penalty": penalty})
    meta = metadata_for(pu_data, config)
    model = SkillModel(config, meta)
    with torch.no_grad():
        getattr(model, network).net[-1].bias.fill_(500.0 if network == "classifier" else -500.0)
    batches = BatchSource(normalize_episodes(pu_data.general, meta), normalize_episodes(pu_data.expert, meta),
                          config.model.horizon, config.pretrain.n_skills, 64, 0.25, seed=0)
    batch = batches.sample()
    loss, _ = joint_loss(model, batch.observations, batch.actions, batches.n_expert)
    loss.backward()
    bias_grad = getattr(model, network).net[-1].bias.grad.item()
    if penalty == 0:
        assert abs(bias_grad) < 1e-6
    elif network == "classifier":
        assert bias_grad > 0.5  # descent lowers every logit: 2 · 1e-3 · 500 = 1 at the bias
    else:
        assert bias_grad < -0.5  # descent raises every logit


def test_the_decoder_reconstructs_skills_at_every_position_of_a_window():
    """With N-skill windows the decoded skill starts anywhere a skill can, the episodes' last N·H − H
    steps included (no window starts there), and is decoded against its own actions."""
    length, n_skills, horizon = 40, 3, 4
    for name, seed in (("test/general-v0", 0), ("test/expert-v0", 1)):
        episodes, obs_space, act_space = tiny_episodes(4, length, seed=seed)
        for ep in episodes:  # the first state dimension is the time step, the first action's is t/100
            ep.observations[:, 0] = np.arange(length + 1)
            ep.actions[:] = 0.0
            ep.actions[:, 0] = np.arange(length) / 100
        write_dataset(name, episodes, observation_space=obs_space, action_space=act_space)
    data = load_offline_data("test/general-v0", expert_id="test/expert-v0")
    config = tiny_config(pretrain={"n_skills": n_skills})
    model = SkillModel(config, metadata_for(data, config))
    starts = []

    def decode_from_time(obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """A decoder that reads the action off the state: exact where states and actions align."""
        starts.append(obs[:, 0, 0].long())
        return torch.nn.functional.pad(obs[..., :1] / 100, (0, 2))

    model.decoder.skill = decode_from_time
    batches = BatchSource(data.general, data.expert, horizon, n_skills, 64, 0.25, seed=0)
    torch.manual_seed(0)
    for _ in range(50):
        batch = batches.sample()
        _, terms = joint_loss(model, batch.observations, batch.actions, batches.n_expert)
        assert terms["bc"].item() < 1e-10
    counts = torch.bincount(torch.cat(starts), minlength=length - horizon + 1)
    tail = counts[length - n_skills * horizon + 1:]
    assert len(counts) == length - horizon + 1 and len(tail) == (n_skills - 1) * horizon
    assert counts.min() > 0
    # The window's last skill is drawn a third of the time: the tail gets its share, not nothing.
    assert tail.sum() > 0.1 * counts.sum()


def encoder_gradient(data, **pretrain) -> torch.Tensor:
    """The skill encoder's gradient of the joint loss on one seeded batch."""
    config = tiny_config(pretrain=pretrain)
    meta = metadata_for(data, config)
    torch.manual_seed(0)
    model = SkillModel(config, meta)
    general, expert = (normalize_episodes(e, meta) for e in (data.general, data.expert))
    horizon, n_skills = config.model.horizon, config.pretrain.n_skills
    batch_source = BatchSource(general, expert, horizon, n_skills, 64, 0.25, seed=0)
    batch = batch_source.sample()
    torch.manual_seed(1)
    loss, _ = joint_loss(model, batch.observations, batch.actions, batch_source.n_expert)
    loss.backward()
    return torch.cat([q.grad.flatten() for q in model.skill_encoder.parameters()])


def test_discriminator_penalty_leaves_the_encoder_alone(pu_data):
    """The discriminator's logit penalty is computed on detached embeddings: the encoder's gradient
    (reversed adversarial term included) is the same with and without it."""
    without = encoder_gradient(pu_data, pu_logit_penalty=0.0, pu_weight=1.0)
    assert without.abs().max() > 0
    torch.testing.assert_close(encoder_gradient(pu_data, pu_logit_penalty=1.0, pu_weight=1.0), without)


def test_free_nats_stop_the_kl_pressing_below_the_floor(pu_data):
    """With the skills' KL under the floor, β exerts no pull on the encoder (the gradient is the one
    at β = 0); with no floor the same β does."""
    unpressed = encoder_gradient(pu_data, beta=0.0)
    torch.testing.assert_close(encoder_gradient(pu_data, beta=1.0, free_nats=1e4), unpressed)
    pressed = encoder_gradient(pu_data, beta=1.0, free_nats=0.0)
    assert (pressed - unpressed).abs().max() > 1e-3 * unpressed.abs().max()


@pytest.mark.xfail(strict=True, reason="known defect: the reversed gradient flips the discriminator's "
                   "call instead of removing the shift (docs/results.md, 'The adversarial PU term')")
def test_adversarial_term_aligns_embeddings():
    """Expert episodes differ from general ones only in where they are (states shifted), which the
    decoder doesn't need from z: the adversary should wash that out of the embeddings, as a fresh
    probe sees them (the discriminator's own AUC also falls when it merely loses or collapses)."""
    general, obs_space, act_space = tiny_episodes(24, 60, seed=0)
    write_dataset("test/general-v0", general, observation_space=obs_space, action_space=act_space)
    shifted = [dataclasses.replace(ep, observations=ep.observations + 1.5) for ep in general[:8]]
    write_dataset("test/expert-v0", shifted, observation_space=obs_space, action_space=act_space)
    data = load_offline_data("test/general-v0", expert_id="test/expert-v0")
    # At SPiRL's β the KL leaves z room to carry the shift, so there is something to wash out.
    _, plain = train(data, tiny_config(pretrain={"pu_weight": 0.0, "beta": 5e-4}), steps=600)
    _, adversarial = train(data, tiny_config(pretrain={"pu_weight": 0.3, "beta": 5e-4}), steps=600)
    assert plain["val_z_probe_auc"] > 0.9  # the shift is in the plain embeddings (seeded run: 1.0)
    # ... and mostly washed out of the adversarial ones (seeded run: 1.0, while the discriminator's
    # own AUC fell from 0.86 to 0.04: it calls the expert's embeddings general, and can still tell)
    assert adversarial["val_z_probe_auc"] < 0.7


def sigmoid(x: list[float]) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


@pytest.mark.parametrize("class_prior", [0.2, 0.5])
def test_nnpu_risk_by_hand(class_prior):
    """π·mean σ(−g_P) + max(0, mean σ(g_U) − π·mean σ(g_P)), with the sigmoid loss (Kiryo et al.)."""
    positive, unlabeled = [2.0, 0.5, -1.0], [-2.0, -0.5, 1.0, 3.0]
    p = class_prior
    negative = sigmoid(unlabeled).mean() - p * sigmoid(positive).mean()
    expected = p * sigmoid([-g for g in positive]).mean() + max(0.0, negative)
    got = nnpu_risk(torch.tensor(positive), torch.tensor(unlabeled), p).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert negative > 0  # the ordinary branch; the clamp is the test below's


def test_nnpu_clamps_and_kiryo_steps_back_when_the_negative_risk_goes_below_zero():
    """All unlabeled samples called negative though a share π of them is positive: R_U⁻ − π R_P⁻ < 0.
    The risk clamps it at 0; the objective descends on −(R_U⁻ − π R_P⁻) alone, which raises the
    unlabeled scores and lowers the positive ones, with gradients σ'(g)/n scaled as computed here."""
    p, positive, unlabeled = 0.4, [4.0, 3.0], [-4.0, -3.0, -5.0]
    negative = sigmoid(unlabeled).mean() - p * sigmoid(positive).mean()
    assert negative < 0
    positive_t = torch.tensor(positive, requires_grad=True)
    unlabeled_t = torch.tensor(unlabeled, requires_grad=True)
    risk = nnpu_risk(positive_t.detach(), unlabeled_t.detach(), p).item()
    assert risk == pytest.approx(p * sigmoid([-g for g in positive]).mean(), rel=1e-6)
    loss = nnpu_loss(positive_t, unlabeled_t, p)
    assert loss.item() == pytest.approx(-negative, rel=1e-6)
    loss.backward()
    slope = lambda g: sigmoid(g) * (1 - sigmoid(g))  # noqa: E731
    np.testing.assert_allclose(unlabeled_t.grad.numpy(), -slope(unlabeled) / 3, rtol=1e-5)
    np.testing.assert_allclose(positive_t.grad.numpy(), p * slope(positive) / 2, rtol=1e-5)


def test_gradient_reversal_flips_and_scales():
    x = torch.ones(3, requires_grad=True)
    reverse_gradient(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_auc_counts_ties_as_half():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5


def test_gaussian_kl_matches_torch():
    q = DiagGaussian(torch.randn(5, 4), torch.randn(5, 4) * 0.3)
    p = DiagGaussian(torch.randn(5, 4), torch.randn(5, 4) * 0.3)
    expected = torch.distributions.kl_divergence(q.to_torch(), p.to_torch())
    torch.testing.assert_close(q.kl(p), expected)
    standard = DiagGaussian(torch.zeros(5, 4), torch.zeros(5, 4))
    torch.testing.assert_close(q.kl_standard(), q.kl(standard))
    torch.testing.assert_close(q.nll(p.mean), -q.to_torch().log_prob(p.mean).sum(-1))
