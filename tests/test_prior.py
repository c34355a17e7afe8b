"""The mixture skill prior: it keeps distinct skills apart, and SSAC, CEM and checkpoints work with it."""

from __future__ import annotations

import io
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer
from rich.console import Console

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import CEM, SSAC, CEMAgentConfig, SSACConfig
from skillplan.agents.cem import prior_kl
from skillplan.config import resolve_config
from skillplan.data.loading import OfflineData, load_offline_data
from skillplan.data.writing import write_dataset
from skillplan.envs.base import make_base_env
from skillplan.errors import ConfigError
from skillplan.evaluation import evaluate_prior
from skillplan.models.distributions import DominantComponent, GaussianMixture, floor_std, mixture, sample
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import BatchSource, JointTrainer, metadata_for, normalize_episodes, pretrain
from tests.pretrain_fixtures import tiny_config, write_pu_datasets
from tests.test_evaluate_prior import untrained_model
from tests.test_skill_envs import FAST, TINY, random_rollouts

SKILL_ACTION = 0.8  # the two skills: every action dimension at +0.8, or at -0.8


def two_skills_from_one_state(n_episodes: int = 12, length: int = 24) -> OfflineData:
    """Episodes that never leave one state; half act +0.8 throughout, half -0.8 (plus a little noise)."""
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(n_episodes):
        sign = 1 if i % 2 == 0 else -1
        actions = sign * SKILL_ACTION + 0.05 * rng.normal(size=(length, 3))
        truncations = np.zeros(length, bool)
        truncations[-1] = True
        episodes.append(EpisodeBuffer(
            id=i, seed=i, observations=np.zeros((length + 1, 6), np.float32),
            actions=actions.astype(np.float32), rewards=np.zeros(length),
            terminations=np.zeros(length, bool), truncations=truncations,
        ))
    write_dataset("test/two-skills-v0", episodes, observation_space=spaces.Box(-np.inf, np.inf, (6,)),
                  action_space=spaces.Box(-1, 1, (3,)))
    return load_offline_data("test/two-skills-v0", with_expert=False)


def trained(data: OfflineData, family: str, steps: int = 300) -> SkillModel:
    config = tiny_config("spirl", model={"prior": family}, data={"expert_dataset": None})
    torch.manual_seed(0)
    meta = metadata_for(data, config)
    model = SkillModel(config, meta)
    batches = BatchSource(normalize_episodes(data.general, meta), None, config.model.horizon, 1,
                          config.pretrain.batch_size, 0.0, seed=0)
    trainer = JointTrainer(model)
    for _ in range(steps):
        trainer.step(batches.sample(), 0)
    return model.eval().requires_grad_(False)


def test_mixture_prior_covers_both_skills_where_a_gaussian_averages_them():
    state = np.zeros((4000, 6), np.float32)
    horizon = 4

    def skill_means(model: SkillModel) -> tuple[torch.Tensor, torch.Tensor]:
        actions = [np.full((horizon, 3), sign * SKILL_ACTION) for sign in (1, -1)]
        return tuple(model.encode_skill(np.zeros((horizon, 6)), act).mean for act in actions)

    data = two_skills_from_one_state()
    mix = trained(data, "mixture")
    prior = mix.prior_dist(state)
    assert isinstance(prior, torch.distributions.MixtureSameFamily)
    decoded = mix.decode_action(state, sample(prior, torch.Generator().manual_seed(0))).mean(-1)
    plus_share = (decoded > 0).float().mean().item()
    assert 0.3 <= plus_share <= 0.7, plus_share  # both skills, each in at least 30% of samples
    assert (decoded.abs() > 0.5).float().mean() > 0.9  # and the samples decode to one of them

    gauss = trained(data, "gaussian")
    prior = gauss.prior_dist(state[:1])
    plus, minus = skill_means(gauss)
    along = ((prior.mean[0] - minus) @ (plus - minus) / (plus - minus).square().sum()).item()
    assert 0.3 <= along <= 0.7, along  # its mean sits between the two skills' posteriors ...
    assert abs(gauss.decode_action(state[:1], prior.mean).mean().item()) < 0.4  # ... and decodes to neither
    samples = gauss.decode_action(state, sample(prior.expand((len(state), 4)),
                                                torch.Generator().manual_seed(0))).mean(-1)
    assert (samples.abs() > 0.5).float().mean() < 0.6  # many of its samples fall between the skills


def test_mixture_reads_its_parameters_and_dominant_component_picks_the_heaviest():
    # two components in 2-D: weights (0.2, 0.8) in the first row, (0.9, 0.1) in the second
    logits = torch.tensor([[0.0, math.log(4)], [math.log(9), 0.0]])
    means = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    log_stds = torch.full((2, 2, 2), -1.0)
    params = torch.cat([logits, means.flatten(1), log_stds.flatten(1)], -1)
    parsed = GaussianMixture.from_params(params, 2)
    assert torch.equal(parsed.mean, means) and torch.equal(parsed.log_std, log_stds)
    weights = parsed.to_torch().mixture_distribution.probs
    torch.testing.assert_close(weights, torch.tensor([[0.2, 0.8], [0.9, 0.1]]))
    dominant = torch.tensor([[3.0, 4.0, -1.0, -1.0], [5.0, 6.0, -1.0, -1.0]])
    assert torch.equal(DominantComponent(2)(params), dominant)
    draws = sample(parsed.to_torch().expand((2000, 2)), torch.Generator().manual_seed(0))  # (2000, 2, 2)
    first_row_on_second = ((draws[:, 0] - torch.tensor([3.0, 4.0])).norm(dim=-1) < 1.5).float().mean()
    second_row_on_first = ((draws[:, 1] - torch.tensor([5.0, 6.0])).norm(dim=-1) < 1.5).float().mean()
    assert 0.76 < first_row_on_second < 0.84 and 0.87 < second_row_on_first < 0.93


def test_sampled_kl_against_a_mixture_matches_its_known_values():
    mean, std = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5, 0.3]])
    torch.manual_seed(0)

    def against(logits: list[float], means: list[list[float]], samples: int = 4000) -> float:
        components = torch.tensor([means])
        stds = torch.tensor([[[0.5, 0.3]] * len(means)])
        prior = floor_std(mixture(torch.tensor([logits]), components, stds), 0.05)
        return prior_kl(mean, std, prior, samples).item()

    # the prior against itself (all components equal π): ~0, within Monte-Carlo error
    assert abs(against([0.0, 0.3], [[1.0, -1.0], [1.0, -1.0]])) < 0.05
    # π on one of two far-apart modes of weight w: KL ≈ −log w, lower for the heavier mode
    w = 0.7
    logits = [math.log(w), math.log(1 - w)]
    on_heavy = against(logits, [[1.0, -1.0], [-9.0, 9.0]])
    on_light = against(logits, [[-9.0, 9.0], [1.0, -1.0]])
    assert on_heavy == pytest.approx(-math.log(w), abs=0.05)
    assert on_light == pytest.approx(-math.log(1 - w), abs=0.05)
    # a Gaussian prior keeps the analytic KL, exactly as before the mixture existed
    gaussian = torch.distributions.Normal(torch.tensor([[0.0, 0.5]]), torch.tensor([[1.0, 0.02]]))
    floored = torch.distributions.Normal(gaussian.mean, gaussian.stddev.clamp_min(0.05))
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mean, std), floored).sum(-1)
    assert torch.equal(prior_kl(mean, std, floor_std(gaussian, 0.05), 8), expected)


def test_mixture_checkpoint_round_trips_and_old_checkpoints_load_as_gaussian(tmp_path):
    data = write_pu_datasets(n_general=8, n_expert=4)
    obs = np.random.default_rng(0).normal(size=(5, data.layout.dim)).astype(np.float32)
    config = tiny_config(model={"prior": "mixture", "prior_components": 3})
    model = SkillModel(config, metadata_for(data, config)).eval()
    model.save(tmp_path / "mixture")
    loaded = SkillModel.load(tmp_path / "mixture")
    assert loaded.config.model.prior == "mixture" and loaded.prior.components == 3
    with torch.no_grad():
        assert torch.equal(loaded.prior_dist(obs).log_prob(torch.zeros(5, 4)),
                           model.prior_dist(obs).log_prob(torch.zeros(5, 4)))

    gaussian_config = tiny_config(model={"prior": "gaussian"})  # every checkpoint before the option
    gaussian = SkillModel(gaussian_config, metadata_for(data, gaussian_config)).eval()
    gaussian.save(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["model"]["prior"], saved["model"]["prior_components"]  # as written before the mixture
    config_file.write_text(json.dumps(saved))
    old = SkillModel.load(tmp_path / "old")
    assert old.config.model.prior == "gaussian"
    with torch.no_grad():
        assert torch.equal(old.prior_dist(obs).mean, gaussian.prior_dist(obs).mean)


@pytest.mark.parametrize("values", [{"prior": "flow"}, {"prior_components": 1}])
def test_bad_prior_settings_are_config_errors(values):
    with pytest.raises(ConfigError, match=r"model\.prior"):
        resolve_config("skillplan", overrides={"model": values})


@pytest.fixture(scope="module")
def mixture_prior(tmp_path_factory) -> str:
    """A tiny skimo-preset prior (with dynamics) for the point maze, its p(z|s) a 3-component mixture."""
    root = tmp_path_factory.mktemp("mixture")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
        random_rollouts(make_base_env("PointMaze_Large-v3", max_episode_steps=40), "test/maze-v0", 3)
        model = {**TINY["model"], "prior": "mixture", "prior_components": 3}
        overrides = {**TINY, "model": model, "data": {"dataset": "test/maze-v0"}}
        config = resolve_config("skimo", overrides=overrides)
        pretrain(config, root / "run", console=Console(file=io.StringIO()))
    return str(root / "run" / "prior")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ssac_starts_at_the_dominant_component_and_updates_with_a_mixture_prior(mixture_prior, precision):
    sac = SSACConfig().sac.model_copy(update={"precision": precision})
    env = gym.make("SkillPointMaze-v0", prior=mixture_prior, low_level_steps=80)
    agent = SSAC(env, SSACConfig(**FAST, sac=sac))
    obs = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
    model = agent.skill_model
    with torch.no_grad():
        dominant = DominantComponent(3)(model.prior.net(model.normalize_obs(obs)))[:, :4]
    bound = agent.bound
    start = agent.learner.act(torch.as_tensor(obs), deterministic=True)
    torch.testing.assert_close(start, dominant.clamp(-0.999 * bound, 0.999 * bound), atol=1e-4, rtol=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        agent.replay.add(rng.normal(size=6), rng.uniform(-1, 1, 4), 1.0, rng.normal(size=6), False)
    calls = []
    hook = model.prior.net.register_forward_hook(lambda *_: calls.append(1))
    metrics = [agent.update() for _ in range(5)]
    hook.remove()
    assert not calls, "the frozen prior ran in an update: its output is stored with each transition"
    assert all(np.isfinite(list(m.values())).all() for m in metrics), metrics
    # the one-sample divergence log π − log p: finite, and larger for a skill far off every component
    z, log_prob = agent.learner.actor(torch.as_tensor(obs))
    params = agent.replay.features(torch.as_tensor(obs))  # what the replay stores for the prior
    near = agent.learner.divergence(params, z, log_prob)
    far = agent.learner.divergence(params, (z + 3 * bound).clamp(-50, 50), log_prob)
    assert torch.isfinite(near).all() and (far > near).all()


def test_cem_starts_at_the_dominant_component_and_updates_with_a_mixture_prior(mixture_prior):
    env = gym.make("SkillPointMaze-v0", prior=mixture_prior, low_level_steps=80)
    config = CEMAgentConfig(**FAST, planner={"samples": 64, "elites": 8, "iterations": 2, "policy_samples": 4,
                                             "horizon_ramp_steps": 0},
                            learn={"batch_size": 32, "sequence": 3, "hidden": (32, 32)})
    agent = CEM(env, config)
    model, h = agent.skill_model, torch.randn(8, 16)
    with torch.no_grad():
        params = model.prior.net(agent.model.actor[0](h))
        torch.testing.assert_close(agent.model.policy(h)[0], DominantComponent(3)(params)[:, :4])
    agent.learn(120, show_progress=False)
    logs = [agent.update() for _ in range(5)]
    assert all(np.isfinite(list(log.values())).all() for log in logs), logs
    # a sampled KL: never far below 0 (its Monte-Carlo error), under the clamp on these on-data states
    assert all(log["prior_kl"] > -0.5 and log["prior_kl_clamped"] < 0.5 for log in logs), logs


def test_prior_rollouts_draw_from_a_mixture_prior_reproducibly(monkeypatch):
    gaussian = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    model = SkillModel(tiny_config(model={"prior": "mixture"}), gaussian.metadata).eval()
    skills: list[torch.Tensor] = []
    decode = model.decode_action

    def recording(obs, z: torch.Tensor, step: int = 0) -> torch.Tensor:
        skills.append(z)
        return decode(obs, z, step)

    monkeypatch.setattr(model, "decode_action", recording)
    runs = [evaluate_prior(model, 1, workers=1, max_steps=8, seed=3) for _ in range(2)]
    assert len(runs[0].successes) == 1 and len(skills) == 16
    first, second = torch.stack(skills[:8]), torch.stack(skills[8:])
    assert torch.equal(first, second)  # one seed, the same draws
    assert not torch.equal(first[0], first[4])  # a fresh skill every H = 4 steps
