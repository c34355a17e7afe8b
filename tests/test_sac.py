"""Soft actor-critic core: it optimises reward, and SSAC's KL term pulls toward the prior."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from skillplan.agents.networks import SquashedGaussian
from skillplan.agents.replay import Batch, ReplayBuffer
from skillplan.agents.sac import SAC, SACAgentConfig, SACConfig, SoftActorCritic
from skillplan.models.mlp import mlp


def bandit_buffer(target: float, n: int = 2048) -> ReplayBuffer:
    """One-step episodes: reward −(a − target)², every transition terminal."""
    gen = torch.Generator().manual_seed(0)
    buffer = ReplayBuffer(obs_dim=3, action_dim=1, capacity=n)
    for _ in range(n):
        obs = torch.randn(3, generator=gen)
        action = torch.rand(1, generator=gen) * 2 - 1
        buffer.add(obs, action, -float((action - target) ** 2), obs, True)
    return buffer


def train(agent: SoftActorCritic, buffer: ReplayBuffer, steps: int) -> None:
    for _ in range(steps):
        agent.update(buffer.sample(128))


def mean_action(agent: SoftActorCritic) -> float:
    return agent.act(torch.randn(64, 3), deterministic=True).mean().item()


def test_squashed_gaussian_log_prob_matches_change_of_variables():
    torch.manual_seed(0)
    policy = SquashedGaussian(mlp(2, 2, (16,), activation="relu", layer_norm=True), bound=2.0)
    obs = torch.randn(1, 2).expand(200_000, 2)
    actions, log_prob = policy(obs)
    # a histogram of the samples must match exp(log_prob) at the samples
    hist = torch.histc(actions.squeeze(-1), bins=40, min=-2, max=2) / (len(actions) * 0.1)
    centres = torch.linspace(-2 + 0.05, 2 - 0.05, 40)
    bins = ((actions.squeeze(-1) + 2) / 0.1).long().clamp(0, 39)
    density = torch.zeros(40).scatter_reduce(0, bins, log_prob.exp(), "mean", include_self=False)
    inner = slice(2, 38)  # the density is steep inside the outermost bins
    assert torch.allclose(hist[inner], density[inner], rtol=0.05), (centres, hist, density)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sac_learns_the_best_action(precision):
    torch.manual_seed(0)
    config = SACConfig(hidden=(64, 64), lr=1e-3, init_alpha=0.01, precision=precision)
    agent = SoftActorCritic(3, 1, bound=1.0, config=config)
    before = abs(mean_action(agent) - 0.5)
    train(agent, bandit_buffer(0.5), 800)
    assert abs(mean_action(agent) - 0.5) < 0.1 < before


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ssac_kl_term_pulls_the_policy_to_the_prior(precision):
    torch.manual_seed(0)

    def prior(obs: torch.Tensor) -> torch.distributions.Distribution:
        gaussian = torch.distributions.Normal(torch.full((len(obs), 1), -0.6), torch.full((len(obs), 1), 0.1))
        return torch.distributions.Independent(gaussian, 1)

    config = SACConfig(hidden=(64, 64), lr=1e-3, auto_alpha=False, precision=precision)
    weak = SoftActorCritic(3, 1, 1.0, config.model_copy(update={"init_alpha": 1e-4}), prior=prior)
    strong = SoftActorCritic(3, 1, 1.0, config.model_copy(update={"init_alpha": 3.0}), prior=prior)
    buffer = bandit_buffer(0.5)
    train(weak, buffer, 400)
    train(strong, buffer, 400)
    assert mean_action(weak) > 0.3  # reward wins
    assert mean_action(strong) < -0.3  # the prior wins


def test_alpha_tracks_the_target_divergence():
    torch.manual_seed(0)
    agent = SoftActorCritic(3, 1, 1.0, SACConfig(hidden=(32,), init_alpha=1.0, lr=3e-3))
    train(agent, bandit_buffer(0.0), 300)
    # entropy target δ = action dim: a peaked policy must have driven α down from 1
    assert agent.log_alpha.item() < math.log(0.5)


def test_replay_buffer_round_trips_and_wraps():
    buffer = ReplayBuffer(2, 1, capacity=5)
    for i in range(7):
        buffer.add([i, i], [i], i, [i + 1, i + 1], i % 2 == 0)
    assert buffer.size == 5 and buffer.cursor == 2
    assert set(buffer.reward.tolist()) == {2, 3, 4, 5, 6}
    other = ReplayBuffer(2, 1, capacity=5)
    other.load_state_dict(buffer.state_dict())
    assert torch.equal(other.obs, buffer.obs) and other.cursor == 2


def test_replay_features_are_stored_once_per_transition_and_drawn_with_their_rows():
    calls = []

    def features(obs: torch.Tensor) -> torch.Tensor:  # a fixed function of states, counting its rows
        calls.append(len(obs))
        return torch.cat([obs.sum(-1, keepdim=True), obs.square()], -1)

    buffer = ReplayBuffer(2, 1, capacity=8, features=features)
    for i in range(12):  # wraps: the features of overwritten rows go with them
        buffer.add([i, -i], [i], float(i), [i + 1, 2 * i], False)
    assert sum(calls[1:]) == 24  # after the width probe: obs and next_obs of each transition, once
    calls.clear()
    batch = buffer.sample(32)
    assert not calls, "features recomputed at draw time"
    torch.testing.assert_close(batch.obs_features, features(batch.obs))
    torch.testing.assert_close(batch.next_obs_features, features(batch.next_obs))
    runs = buffer.sample_sequences(4, 2)
    torch.testing.assert_close(runs.next_obs_features, features(runs.next_obs))
    plain = ReplayBuffer(2, 1, capacity=8)
    plain.add([0, 0], [0], 0.0, [1, 1], False)
    assert plain.sample(1).obs_features is None  # no features: none drawn

    restored = ReplayBuffer(2, 1, capacity=8, features=features)
    restored.load_state_dict(buffer.state_dict())
    assert torch.equal(restored.next_obs_features, buffer.next_obs_features)
    older = {k: v for k, v in buffer.state_dict().items() if "features" not in k}  # a checkpoint without
    restored = ReplayBuffer(2, 1, capacity=8, features=features)
    restored.load_state_dict(older)
    torch.testing.assert_close(restored.obs_features, buffer.obs_features)


def test_a_prior_read_from_cached_features_updates_as_one_read_from_states():
    """SSAC's cache: the prior computed from stored features of s and s' gives the update it gives
    computed from s and s' themselves (and a prior swapped between s and s' would not)."""
    net = mlp(3, 2, (8,), activation="relu")

    def prior(params: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Independent(
            torch.distributions.Normal(params[:, :1].tanh(), params[:, 1:].exp().clamp(0.05, 2)), 1)

    config = SACConfig(hidden=(16,), init_alpha=0.5)
    batch = hand_batch()
    with torch.no_grad():
        cached = batch._replace(obs_features=net(batch.obs), next_obs_features=net(batch.next_obs))
        swapped = batch._replace(obs_features=net(batch.next_obs), next_obs_features=net(batch.obs))
    losses = []
    for prior_fn, b in ((lambda obs: prior(net(obs)), batch), (prior, cached), (prior, swapped)):
        torch.manual_seed(0)
        agent = SoftActorCritic(3, 1, 1.0, config, prior=prior_fn)
        torch.manual_seed(1)
        losses.append([agent.update(b)[k] for k in ("critic_loss", "actor_loss", "divergence")])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert losses[2] != pytest.approx(losses[0], rel=1e-3)


def test_pinned_rows_fill_their_share_of_each_batch_and_are_never_overwritten():
    buffer = ReplayBuffer(1, 1, capacity=30)
    for i in range(10):  # offline data: two episodes of 5, rewards -1
        buffer.add([i], [i % 5], -1.0, [i + 1], False, episode_end=i % 5 == 4)
    buffer.pin(0.5)
    for i in range(40):  # the agent's own, rewards +1; the ring wraps past the pinned rows
        buffer.add([100 + i], [i % 8], 1.0, [101 + i], False, episode_end=i % 8 == 7)
    assert buffer.size == 30 and buffer.reward[:10].tolist() == [-1.0] * 10
    assert (buffer.reward[10:] == 1.0).all()
    assert (buffer.sample(64).reward == -1.0).sum().item() == 32
    runs = buffer.sample_sequences(64, 3)
    assert (runs.reward[:, 0] == -1.0).sum().item() == 32
    assert ((runs.reward == runs.reward[:, :1]).all(1)).all(), "a run crossed from offline rows into online"
    restored = ReplayBuffer(1, 1, capacity=30)
    restored.load_state_dict(buffer.state_dict())
    assert (restored.pinned, restored.pinned_share, restored.cursor) == (10, 0.5, buffer.cursor)


def test_sequences_stay_inside_episodes_and_off_the_write_head():
    buffer = ReplayBuffer(1, 1, capacity=20)
    step = 0
    for length in (3, 7, 2, 9, 6):  # episodes; the buffer wraps once
        for t in range(length):
            buffer.add([step], [t], 0.0, [step + 1], False, episode_end=t == length - 1)
            step += 1
    runs = buffer.sample_sequences(500, 3)
    assert runs.obs.shape == (500, 3, 1)
    obs = runs.obs[..., 0]
    assert (obs[:, 1:] - obs[:, :-1] == 1).all(), "a run crossed the write head"
    t = runs.action[..., 0]
    assert (t[:, 1:] - t[:, :-1] == 1).all(), "a run crossed an episode end"


def hand_batch() -> Batch:
    """Four transitions: the first two terminated, the other two not (time-limit cuts or mid-episode)."""
    gen = torch.Generator().manual_seed(3)
    return Batch(obs=torch.randn(4, 3, generator=gen), action=torch.rand(4, 1, generator=gen) * 2 - 1,
                 reward=torch.tensor([1.0, -0.5, 0.25, 2.0]), next_obs=torch.randn(4, 3, generator=gen),
                 terminated=torch.tensor([1.0, 1.0, 0.0, 0.0]))


def prior_at(mean: float, std: float):
    def prior(obs: torch.Tensor) -> torch.distributions.Distribution:
        gaussian = torch.distributions.Normal(torch.full((len(obs), 1), mean), torch.full((len(obs), 1), std))
        return torch.distributions.Independent(gaussian, 1)
    return prior


@pytest.mark.parametrize("with_prior", [False, True], ids=["sac", "ssac"])
def test_critic_target_by_hand(with_prior):
    """target = r + γ (1 − terminated) (min Q̄(s', a') − α d(s', a')), a' ~ π(s'), with d = log π(a'|s')
    for SAC and log π(a'|s') − log p(a'|s') for SSAC: the KL is paid, not earned, in the target."""
    torch.manual_seed(0)
    config = SACConfig(hidden=(16,), init_alpha=0.7, gamma=0.9, auto_alpha=False)
    agent = SoftActorCritic(3, 1, 1.0, config, prior=prior_at(0.8, 0.05) if with_prior else None)
    with torch.no_grad():
        agent.critic_target.head.bias.fill_(10.0)  # values well away from 0: a dropped term shows
    batch = hand_batch()
    torch.manual_seed(7)
    with torch.no_grad():
        next_action, log_pi = agent.actor(batch.next_obs)
        divergence = log_pi
        if with_prior:
            divergence = log_pi - torch.distributions.Normal(0.8, 0.05).log_prob(next_action).sum(-1)
        next_value = agent.critic_target(batch.next_obs, next_action).min(0).values - 0.7 * divergence
        target = batch.reward + 0.9 * (1 - batch.terminated) * next_value
        q = agent.critic(batch.obs, batch.action)
    assert target[:2].tolist() == batch.reward[:2].tolist()  # terminated: the reward alone
    assert (target[2:] - batch.reward[2:]).abs().min() > 5  # bootstrapped from values near 10
    if with_prior:
        assert divergence.mean() > 10  # far from a sharp prior, so the sign of its term matters
    torch.manual_seed(7)  # the update draws the same a' ~ π(s')
    reported = agent.update(batch)["critic_loss"]
    assert reported == pytest.approx((q - target).pow(2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("delta, direction", [(-50.0, 1), (50.0, -1)])
def test_ssac_alpha_moves_toward_delta(delta, direction):
    """α grows while the KL to the prior exceeds δ and shrinks while it is below."""
    torch.manual_seed(0)
    config = SACConfig(hidden=(16,), init_alpha=1.0, lr=0.01, target_divergence=delta)
    agent = SoftActorCritic(3, 1, 1.0, config, prior=prior_at(0.0, 0.5))
    before = agent.log_alpha.item()
    for _ in range(5):
        divergence = agent.update(hand_batch())["divergence"]
        assert abs(divergence) < 20  # so δ = ±50 lies on a known side of it
    assert direction * (agent.log_alpha.item() - before) == pytest.approx(5 * 0.01, rel=0.1)


def test_agents_store_terminated_and_not_truncated():
    """A time-limit cut keeps its value: only `terminated` stops bootstrapping (CEM's episode ends
    also mark truncations, where its sequences must not cross)."""
    agent = SAC(gym.make("Pendulum-v1"), SACAgentConfig(buffer_size=10, sac=SACConfig(hidden=(8,))))
    obs = np.zeros(3, np.float32)
    agent.observe(obs, np.zeros(1, np.float32), 0.0, obs, False, True)
    agent.observe(obs, np.zeros(1, np.float32), 0.0, obs, True, False)
    assert agent.replay.terminated[:2].tolist() == [0.0, 1.0]
