"""Skill environments and the skill agents, on tiny priors pretrained from real env rollouts."""

from __future__ import annotations

import io
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from minari.data_collector import EpisodeBuffer
from rich.console import Console

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import CEM, SSAC, CEMAgentConfig, SSACConfig, make_agent_env
from skillplan.agents.planning import CEMPlanner
from skillplan.agents.replay import Batch
from skillplan.config import resolve_config
from skillplan.data.writing import write_dataset
from skillplan.envs.base import make_base_env
from skillplan.errors import CheckpointError, ConfigError, SkillplanError
from skillplan.models.distributions import floor_std
from skillplan.pretrain import pretrain
from tests.reproducibility import differing_tensors, metrics_rows

H = 4  # the tiny priors' skill horizon
TINY = {"model": {"horizon": H, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
        "pretrain": {"steps": 30, "batch_size": 32, "n_skills": 2, "precision": "fp32", "threads": 1,
                     "eval_windows": 32, "log_every": 10, "eval_every": 30, "checkpoint_every": 30}}


def _stack(frames: list) -> dict | np.ndarray:
    if isinstance(frames[0], dict):
        return {k: _stack([f[k] for f in frames]) for k in frames[0]}
    return np.stack(frames)


def random_rollouts(env: gym.Env, dataset_id: str, episodes: int, seed: int = 0) -> None:
    """Write random-action episodes of `env` (full dict observations) as a Minari dataset."""
    buffers = []
    env.action_space.seed(seed)  # the same data, so the same tiny priors, in every test session
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        frames, actions, done = [obs], [], False
        while not done:
            action = env.action_space.sample()
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append({k: (dict(v) if isinstance(v, dict) else v) for k, v in obs.items()})
            actions.append(action)
            done = terminated or truncated
        n = len(actions)
        buffers.append(EpisodeBuffer(id=i, observations=_stack(frames), actions=np.stack(actions),
                                     rewards=np.zeros(n), terminations=np.zeros(n, bool),
                                     truncations=np.r_[np.zeros(n - 1, bool), True]))
    write_dataset(dataset_id, buffers, env=env.spec)


@pytest.fixture(scope="session")
def priors(tmp_path_factory) -> dict[str, str]:
    """Tiny skimo-preset priors (with dynamics) for the kitchen and the point maze."""
    root = tmp_path_factory.mktemp("priors")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    try:
        random_rollouts(make_base_env("FrankaKitchen-v1", max_episode_steps=40), "test/kitchen-v0", 3)
        random_rollouts(make_base_env("PointMaze_Large-v3", max_episode_steps=40), "test/maze-v0", 3)
        paths = {}
        for name, data, decoder in (("kitchen", "kitchen", "closed"), ("maze", "maze", "closed"),
                                    ("kitchen-open", "kitchen", "open")):
            model = {**TINY["model"], "decoder": decoder}
            config = resolve_config("skimo", overrides={**TINY, "model": model,
                                                        "data": {"dataset": f"test/{data}-v0"}})
            pretrain(config, root / name, console=Console(file=io.StringIO()))
            paths[name] = str(root / name / "prior")
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if old is None else os.environ.update(MINARI_DATASETS_PATH=old)
    return paths


@pytest.mark.parametrize("env_id", ["SkillKitchen-v0", "SkillKitchenMisaligned-v0", "SkillPointMaze-v0"])
def test_registered_skill_envs_pass_check_env(priors, env_id):
    prior = priors["maze" if "Maze" in env_id else "kitchen"]
    env = gym.make(env_id, prior=prior)
    check_env(env, skip_render_check=True)
    assert env.action_space.shape == (4,) and env.observation_space.dtype == np.float32


def test_one_skill_step_is_h_low_level_steps(priors):
    env = gym.make("SkillKitchen-v0", prior=priors["kitchen"])
    env.reset(seed=0)
    base = env.unwrapped
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["low_level_steps"] == H
    assert base.robot_env.data.time == pytest.approx(H * 0.08, rel=1e-6)  # dt = 0.08 s per step
    assert "subtasks_completed" in info and "success" in info


def test_skill_episode_ends_with_the_low_level_budget(priors):
    env = gym.make("SkillKitchen-v0", prior=priors["kitchen"], low_level_steps=10)
    env.reset(seed=0)
    steps = []
    truncated = False
    while not truncated:
        *_, truncated, info = env.step(np.zeros(4, np.float32))
        steps.append(info["low_level_steps"])
    assert steps == [4, 4, 2]  # stops early inside the third skill


def test_spec_remakes_the_env(priors):
    env = gym.make("SkillKitchenMisaligned-v0", prior=priors["kitchen"], enforce_order=False)
    again = gym.make(env.spec)
    assert again.spec.kwargs == env.spec.kwargs
    assert again.get_wrapper_attr("tasks") == ("microwave", "light switch", "slide cabinet", "hinge cabinet")
    assert again.get_wrapper_attr("enforce_order") is False


def test_skill_model_is_reachable_through_the_wrappers(priors):
    env = gym.make("SkillPointMaze-v0", prior=priors["maze"])
    model = env.get_wrapper_attr("skill_model")
    assert model.metadata.env_id == "PointMaze_Large-v3" and model.dynamics is not None


def test_vector_env_steps_skills_in_parallel(priors):
    envs = gym.make_vec("SkillPointMaze-v0", num_envs=2, vectorization_mode="async", prior=priors["maze"])
    obs, _ = envs.reset(seed=0)
    obs, *_, info = envs.step(envs.action_space.sample())
    assert obs.shape == (2, 6) and (info["low_level_steps"] == H).all()
    envs.close()


def test_prior_from_another_env_is_named(priors):
    with pytest.raises(CheckpointError, match=r"PointMaze_Large-v3.*FrankaKitchen-v1"):
        gym.make("SkillKitchen-v0", prior=priors["maze"])


@pytest.mark.parametrize(("env_id", "dataset"), [("SkillKitchen-v0", "kitchen-scripted"),
                                                ("SkillKitchenMisaligned-v0", "kitchen-scripted"),
                                                ("SkillPointMaze-v0", "pointmaze-scripted")])
def test_a_skill_env_without_a_prior_says_what_one_is_and_how_to_make_it(env_id, dataset):
    with pytest.raises(ConfigError) as caught:
        gym.make(env_id)
    message = str(caught.value)
    assert "prior=DIR" in message and "skill prior" in message
    assert f"skillplan pretrain --dataset {dataset}" in message and f"runs/{dataset}/prior" in message


def test_missing_or_corrupt_prior_says_what_a_checkpoint_holds(priors, tmp_path):
    with pytest.raises(CheckpointError, match=r"weights\.safetensors"):
        gym.make("SkillKitchen-v0", prior=str(tmp_path / "nowhere"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("weights.safetensors", "config.json", "metadata.json"):
        (broken / name).write_text("{")
    with pytest.raises(CheckpointError, match="corrupt"):
        gym.make("SkillKitchen-v0", prior=str(broken))


def test_unknown_agent_or_env_lists_the_valid_ones(priors):
    with pytest.raises(ConfigError, match="ssac"):
        make_agent_env("ppo", "SkillKitchen-v0", priors["kitchen"])
    with pytest.raises(SkillplanError, match="SkillPointMaze-v0"):
        make_agent_env("ssac", "SkillAntMaze-v0", priors["kitchen"])


FAST = dict(learning_starts=40, eval_every=200, eval_episodes=1, checkpoint_every=200, threads=1,
            buffer_size=2_000)


def test_ssac_trains_on_a_skill_env_and_round_trips(priors, tmp_path):
    env = gym.make("SkillPointMaze-v0", prior=priors["maze"], low_level_steps=80)
    agent = SSAC(env, SSACConfig(**FAST))
    start = agent.learner.actor.state_dict()["net.net.0.weight"].clone()
    # the policy starts as the prior: same mean skill, same spread (to first order)
    obs = np.zeros(6, np.float32)
    prior = agent.skill_model.prior_dist(obs)
    bound = env.action_space.high[0]
    expected = np.clip(prior.mean.detach().numpy(), -0.999 * bound, 0.999 * bound)
    np.testing.assert_allclose(agent.predict(obs), expected, atol=1e-4)
    samples = np.stack([agent.predict(obs, deterministic=False) for _ in range(2000)])
    np.testing.assert_allclose(samples.std(0), prior.stddev.detach().numpy(), rtol=0.25)
    agent.learn(400, tmp_path, show_progress=False)
    assert not np.allclose(start, agent.learner.actor.state_dict()["net.net.0.weight"])
    loaded = SSAC.load(tmp_path / "agent")
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))


def test_ssac_bf16_updates_stay_finite_where_the_prior_sits_at_the_action_bound(priors):
    env = gym.make("SkillPointMaze-v0", prior=priors["maze"])
    sac = SSACConfig().sac.model_copy(update={"precision": "bf16"})
    agent = SSAC(env, SSACConfig(**FAST, sac=sac))
    with torch.no_grad():  # push the policy's (the prior copy's) means far past the bound
        agent.learner.actor.net.net[-1].bias[: agent.action_dim] = 100.0
    with agent.learner.forward_precision():
        _, log_prob = agent.learner.actor(torch.zeros(8, 6))
    assert torch.isfinite(log_prob).all(), log_prob
    rng = np.random.default_rng(0)
    for _ in range(300):
        obs, next_obs, z = rng.normal(size=6), rng.normal(size=6), rng.uniform(-1, 1, agent.action_dim)
        agent.replay.add(obs, z, 1.0, next_obs, False)
    metrics = [agent.update() for _ in range(5)]
    assert all(np.isfinite(list(m.values())).all() for m in metrics), metrics


def test_ssac_kl_stays_bounded_where_the_prior_is_over_confident(priors, monkeypatch):
    env = gym.make("SkillPointMaze-v0", prior=priors["maze"])
    agent = SSAC(env, SSACConfig(**FAST))
    model = agent.skill_model
    real = model.prior_from_params

    def sharp(params):
        dist = real(params)
        return torch.distributions.Normal(dist.mean, torch.full_like(dist.mean, 1e-5))

    monkeypatch.setattr(model, "prior_from_params", sharp)
    obs = torch.zeros(64, 6)
    z, log_prob = agent.learner.actor(obs)
    z = z + 1.0  # a skill well off the prior's mean
    divergence = agent.learner.divergence(model.prior_params(obs), z.clamp(-5, 5), log_prob)
    assert torch.isfinite(divergence).all() and divergence.max() < 1e5  # 1e-5 std would give ~1e10


def tiny_cem(prior: str, loop: dict | None = None, **learn: object) -> CEM:
    """A CEM agent on the tiny maze prior with a small planner and learner; `learn` overrides the latter,
    `loop` the loop settings."""
    env = gym.make("SkillPointMaze-v0", prior=prior, low_level_steps=80)
    planner = {"samples": 64, "elites": 8, "iterations": 2, "policy_samples": 4, "horizon_ramp_steps": 0}
    config = CEMAgentConfig(**{**FAST, **(loop or {})}, planner=planner,
                            learn={"batch_size": 32, "sequence": 3, "hidden": (32, 32), **learn})
    return CEM(env, config)


def test_cem_training_with_one_seed_gives_identical_weights(priors, tmp_path):
    states = []
    for run in ("a", "b"):
        agent = tiny_cem(priors["maze"])
        agent.learn(200, tmp_path / run, show_progress=False)
        states.append(agent.state_tensors())
    assert states[0].keys() == states[1].keys()
    assert [k for k in states[0] if not torch.equal(states[0][k], states[1][k])] == []


def test_cem_updates_at_skimos_rate_by_default():
    config = CEMAgentConfig()
    # SkiMo: 10 updates every 500 env steps, with skills of 10 env steps
    assert config.updates_per_step / config.update_every == 10 / (500 / 10)


@pytest.mark.parametrize(("update_every", "updates_per_step"), [(5, 1), (3, 2)])
def test_cem_updates_the_configured_number_of_times(priors, update_every, updates_per_step):
    loop = {"update_every": update_every, "updates_per_step": updates_per_step}
    agent = tiny_cem(priors["maze"], loop=loop)
    counted = []  # agent steps taken once learning has started
    agent.learn(300, show_progress=False, on_step=lambda n: counted.append(n) if n >= 40 else None)
    expected = updates_per_step * (len(counted) // update_every)
    assert len(counted) > 30 and expected < len(counted)  # fewer updates than skills: the cadence shows
    # every world-model parameter took exactly one Adam step per update
    steps = {int(state["step"]) for state in agent.model_opt.state.values()}
    assert steps == {expected}


def test_cem_plans_alike_through_the_fused_heads_and_the_separate_ones(priors):
    agent = tiny_cem(priors["maze"])

    class Separate:  # the task model without its fused reward-and-next-latent call
        next_latent, reward = agent.model.next_latent, agent.model.reward
        q_value, policy = agent.model.q_value, agent.model.policy

    config = agent.planner.config
    fused = CEMPlanner(agent.model, agent.z_dim, config, generator=torch.Generator().manual_seed(5))
    separate = CEMPlanner(Separate(), agent.z_dim, config, generator=torch.Generator().manual_seed(5))
    h0 = agent.model.encode(torch.randn(1, agent.replay.obs.shape[1])).detach()
    for step in range(3):  # warm starts carried across decisions, exploring and greedy
        assert torch.equal(fused.plan(h0, step=step, eval_mode=step == 2),
                           separate.plan(h0, step=step, eval_mode=step == 2))
        assert torch.equal(fused.last_plan, separate.last_plan)


def test_cem_plan_prior_prices_the_executed_skill_as_the_policy_pays_kl(priors):
    plain, priced = (tiny_cem(priors["maze"], loop={"plan_prior": on}, fixed_alpha=50.0)
                     for on in (False, True))
    obs = np.stack([plain.env.reset(seed=i)[0] for i in range(6)]).astype(np.float32)
    z = torch.randn(7, plain.z_dim)
    prior = floor_std(priced.skill_model.prior_dist(torch.as_tensor(obs[:1])), 0.05)
    torch.testing.assert_close(priced.prior_score(torch.as_tensor(obs[:1]))(z), 50.0 * prior.log_prob(z))

    def prior_log_prob(agent: CEM) -> float:  # of the skills its greedy plans would execute
        skills = torch.as_tensor(np.stack([agent.act(o, explore=False) for o in obs]))
        return priced.skill_model.prior_dist(torch.as_tensor(obs)).log_prob(skills).mean().item()

    dist = priced.skill_model.prior_dist(torch.as_tensor(obs))
    at_mode = dist.log_prob(dist.mean).mean().item()  # the most a skill can score
    assert prior_log_prob(priced) > prior_log_prob(plain) + 0.5  # alike if the score were ignored
    assert prior_log_prob(priced) > at_mode - 0.3  # at α = 50 the prior's plausibility rules the plan


def test_cem_first_skill_samples_come_from_the_prior_and_join_the_plan(priors, monkeypatch):
    env = gym.make("SkillPointMaze-v0", prior=priors["maze"], low_level_steps=80)
    planner = {"samples": 64, "elites": 8, "iterations": 2, "policy_samples": 4, "horizon_ramp_steps": 0,
               "first_skill_samples": 512}
    agent = CEM(env, CEMAgentConfig(**FAST, planner=planner,
                                    learn={"batch_size": 32, "sequence": 3, "hidden": (32, 32)}))
    obs = torch.as_tensor(env.reset(seed=0)[0], dtype=torch.float32).unsqueeze(0)
    assert tiny_cem(priors["maze"]).prior_first_skills(obs) is None  # off by default
    agent.learn(160, show_progress=False)  # plans with them from learning_starts on
    # drawn from the skill model's prior at the state (a known one here), seeded by the planner
    known = lambda o: torch.distributions.Normal(torch.full((len(o), agent.z_dim), 0.7),  # noqa: E731
                                                 torch.full((len(o), agent.z_dim), 0.2))
    monkeypatch.setattr(agent.skill_model, "prior_dist", known)
    state = agent.planner.generator.get_state()
    skills = agent.prior_first_skills(obs)
    assert skills.shape == (512, agent.z_dim)
    assert (skills.mean(0) - 0.7).abs().max() < 0.05 and (skills.std(0) - 0.2).abs().max() < 0.05
    agent.planner.generator.set_state(state)
    assert torch.equal(agent.prior_first_skills(obs), skills)
    assert np.isfinite(agent.act(obs[0].numpy(), explore=True)).all()


def skill_agent(name: str, prior: str, every: int = 200) -> CEM | SSAC:
    """A small SSAC or CEM agent on the maze, evaluating and checkpointing every `every` env steps."""
    agent = tiny_cem(prior) if name == "cem" else SSAC(
        gym.make("SkillPointMaze-v0", prior=prior, low_level_steps=80),
        SSACConfig(**FAST, sac=SSACConfig().sac.model_copy(update={"hidden": (32, 32), "batch_size": 32})))
    agent.config.eval_every = agent.config.checkpoint_every = every
    return agent


def test_ssac_training_with_one_seed_gives_identical_weights(priors, tmp_path):
    runs = [skill_agent("ssac", priors["maze"]).learn(120, tmp_path / run, show_progress=False)
            for run in "ab"]
    assert differing_tensors(runs[0].state_tensors(), runs[1].state_tensors()) == []
    assert metrics_rows(tmp_path / "a") == metrics_rows(tmp_path / "b")


@pytest.mark.parametrize("name", ["ssac", "cem"])
def test_resume_equals_the_uninterrupted_run(priors, tmp_path, name):
    """100 env steps, then a resume to 200, is the run of 200 steps in one go: weights, optimizer
    state, replay, every generator (the planner's too) and the metrics rows. Episodes take 80 steps,
    so the checkpoint at 100 falls mid-episode."""
    whole = skill_agent(name, priors["maze"], every=100).learn(200, tmp_path / "whole", show_progress=False)
    skill_agent(name, priors["maze"], every=100).learn(100, tmp_path / "halves", show_progress=False)
    resumed = skill_agent(name, priors["maze"], every=100)
    resumed.learn(200, tmp_path / "halves", resume=True, show_progress=False)
    assert differing_tensors(whole.state_tensors(), resumed.state_tensors()) == []
    assert metrics_rows(tmp_path / "whole") == metrics_rows(tmp_path / "halves")


def test_cem_trains_and_its_losses_move(priors, tmp_path):
    agent = tiny_cem(priors["maze"])
    agent.learn(200, show_progress=False)
    # Fresh batches of 32 make single losses noisy: fit one fixed batch, with rewards planted on half
    # its skills (the maze paid none in 200 steps), which the reward head must learn.
    fixed = agent.replay.sample_sequences(32, 3)
    fixed = fixed._replace(reward=(torch.arange(fixed.reward.numel()) % 2).float().view_as(fixed.reward))
    agent.replay.sample_sequences = lambda *_: fixed
    losses = [agent.update()["reward_loss"] for _ in range(150)]
    # from predicting 0 (about 0.9) to below the best constant (0.5 of that): it tells the skills apart
    assert losses[-1] < 0.45 * losses[0]
    agent.save(tmp_path / "agent")
    loaded = CEM.load(tmp_path / "agent")
    assert loaded.env_steps == agent.env_steps and loaded.replay.size == agent.replay.size


def test_cem_value_target_by_hand(priors):
    """Q(h_k, z_k) regresses on r_k + γ (1 − terminated_k) min Q̄(E(s'_k), π(E(s'_k))) along the run,
    each step weighted ρ^k: terminated transitions keep their reward alone."""
    agent = tiny_cem(priors["maze"])
    model, cfg = agent.model, agent.config.learn
    with torch.no_grad():
        model.critic_target.head.bias.fill_(10.0)  # values well away from 0: a dropped term shows
    gen = torch.Generator().manual_seed(0)
    obs, next_obs = torch.randn(4, 2, 6, generator=gen), torch.randn(4, 2, 6, generator=gen)
    z = torch.rand(4, 2, 4, generator=gen) * 2 - 1
    reward = torch.tensor([[1.0, 0.5], [0.0, 2.0], [1.5, 0.0], [0.25, 1.0]])
    terminated = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    agent.replay.sample_sequences = lambda *_: Batch(obs, z, reward, next_obs, terminated)
    with torch.no_grad():
        expected, h = 0.0, model.encode(obs[:, 0])
        for k in range(2):
            next_h = model.encode(next_obs[:, k])
            next_z = model.policy(next_h)[0].clamp(-agent.bound, agent.bound)
            next_value = model.critic_target(next_h, next_z).min(0).values
            target = reward[:, k] + cfg.gamma * (1 - terminated[:, k]) * next_value
            if k == 1:
                assert torch.equal(target[terminated[:, 1] == 1], reward[terminated[:, 1] == 1, 1])
                assert (target - reward[:, k]).abs().max() > 5
            expected += cfg.rho ** k * (model.critic(h, z[:, k]) - target).pow(2).mean().item()
            h = model.next_latent(h, z[:, k])
    agent.config.learn = cfg.model_copy(update={"sequence": 2, "batch_size": 4})
    assert agent.update()["value_loss"] == pytest.approx(expected, rel=1e-5)


def test_cem_stores_terminated_apart_from_episode_ends(priors):
    """A time-limit cut ends the episode (no replayed run crosses it) but keeps its value."""
    agent = tiny_cem(priors["maze"])
    obs, z = np.zeros(6, np.float32), np.zeros(4, np.float32)
    agent.observe(obs, z, 0.0, obs, False, True)
    agent.observe(obs, z, 0.0, obs, True, False)
    assert agent.replay.terminated[:2].tolist() == [0.0, 1.0]
    assert agent.replay.episode_end[:2].tolist() == [True, True]


def test_cem_alpha_ignores_kl_the_actor_cannot_reduce(priors, monkeypatch):
    # Half the states get a prior sharply far from any policy (KL past the clamp: no gradient), half a
    # broad one the actor can match. α must answer to the second half only: it falls once that half is
    # under δ, where counting the clamped half (mean KL ≥ 50 > δ = 5) would raise it at every step.
    agent = tiny_cem(priors["maze"], fixed_alpha=None, init_alpha=1.0)
    agent.learn(120, show_progress=False)
    fixed = agent.replay.sample_sequences(32, 3)
    agent.replay.sample_sequences = lambda *_: fixed

    def prior_dist(obs: torch.Tensor) -> torch.distributions.Normal:
        far = (torch.arange(len(obs)) % 2 == 0)[:, None].expand(-1, agent.z_dim)
        mean = torch.where(far, torch.full_like(obs[..., :agent.z_dim], 1.9), 0.0)
        std = torch.where(far, 1e-3, torch.ones_like(mean))
        return torch.distributions.Normal(mean, std)

    monkeypatch.setattr(agent.skill_model, "prior_dist", prior_dist)
    logs = [agent.update() for _ in range(150)]
    assert logs[0]["prior_kl_clamped"] >= 0.4 and logs[-1]["prior_kl_clamped"] >= 0.4
    assert logs[-1]["prior_kl"] < agent.config.learn.target_divergence
    assert agent.log_alpha.exp().item() < 0.95  # started at 1.0


def test_cem_alpha_stops_at_its_cap_when_the_kl_cannot_reach_delta(priors):
    agent = tiny_cem(priors["maze"], fixed_alpha=None, init_alpha=0.5, target_divergence=-1.0, max_alpha=0.6,
                     lr=0.01)
    agent.learn(120, show_progress=False)
    alphas = [agent.update()["alpha"] for _ in range(60)]
    # a KL is never below δ = -1: α rises at every step (lr 0.01: 0.5 → 0.6 in about 18) and stops at 0.6
    assert alphas[5] > 0.5 and alphas[-1] == pytest.approx(0.6)


def test_cem_fixed_alpha_stays_put_and_holds_the_policy_to_the_prior(priors):
    # The kitchen default: α fixed (SkiMo's 0.5), not tuned toward δ. On one fixed batch, a policy
    # that pays 2 per nat of KL must end nearer the prior than one that pays 0.001.
    kls = {}
    for alpha in (0.001, 2.0):
        torch.manual_seed(0)
        agent = tiny_cem(priors["maze"], fixed_alpha=alpha, lr=0.01)
        agent.learn(120, show_progress=False)
        fixed = agent.replay.sample_sequences(32, 3)
        agent.replay.sample_sequences = lambda *_, fixed=fixed: fixed
        start = agent.log_alpha.item()
        logs = [agent.update() for _ in range(100)]
        assert all(log["alpha"] == pytest.approx(alpha) for log in logs) and agent.log_alpha.item() == start
        kls[alpha] = logs[-1]["prior_kl"]
    assert kls[2.0] < 0.5 * kls[0.001], kls


def test_cem_needs_a_skill_env():
    with pytest.raises(ConfigError, match="skill environment"):
        CEM(make_base_env("Pendulum-v1"), CEMAgentConfig())


@pytest.mark.parametrize("activation", ["elu", "relu"])
def test_numpy_decoder_matches_the_torch_decoder(priors, activation):
    from skillplan.models.skill_model import SkillModel

    model = SkillModel.load(priors["kitchen"])
    if activation != model.config.model.activation:  # same shapes, fresh weights
        config = model.config.model_copy(deep=True)
        config.model.activation = activation
        model = SkillModel(config, model.metadata).eval()
    fast = model.numpy_decoder()
    rng = np.random.default_rng(0)
    for _ in range(20):
        state = rng.normal(size=59).astype(np.float32) * 2
        z = rng.normal(size=4).astype(np.float32)
        torch_action = model.decode_action(state, z).detach().numpy()
        np.testing.assert_allclose(fast(state, z), torch_action, rtol=1e-3, atol=2e-4)  # float32 rounding


def test_states_far_off_the_data_are_clipped_alike_everywhere(priors):
    # An object the data never moved sits at the std floor: knocking it reads as hundreds of σ.
    from skillplan.models.skill_model import SkillModel
    from skillplan.models.standardize import OBS_CLIP

    model = SkillModel.load(priors["kitchen"])
    direction = torch.arange(59) % 2 * 2.0 - 1  # ±1
    far = model.obs_mean + 1000 * model.obs_std * direction
    edge = model.obs_mean + OBS_CLIP * model.obs_std * direction
    assert model.normalize_obs(far).abs().max() == pytest.approx(OBS_CLIP)
    z = torch.ones(4)
    torch.testing.assert_close(model.decode_action(far, z), model.decode_action(edge, z))
    np.testing.assert_allclose(model.numpy_decoder()(far.numpy(), z.numpy()),
                               model.decode_action(far, z).detach().numpy(), rtol=1e-3, atol=2e-4)


def test_open_loop_prior_plays_its_action_sequence(priors):
    env = gym.make("SkillKitchen-v0", prior=priors["kitchen-open"])
    model = env.get_wrapper_attr("skill_model")
    env.reset(seed=0)
    played = []
    base_step = env.unwrapped.step

    def record(action):
        played.append(np.array(action))
        return base_step(action)

    env.unwrapped.step = record
    z = np.full(4, 0.3, np.float32)
    env.step(z)
    expected = [model.decode_action(np.zeros(59), z, t).detach().numpy() for t in range(H)]
    np.testing.assert_allclose(np.stack(played), np.stack(expected), atol=1e-5)


@pytest.mark.parametrize("td_target", ["min", "mean"])
def test_cem_td_target_reads_the_twins_as_configured(priors, td_target):
    # Rewards 0 everywhere: the true value is 0. Probe the TD target through the value loss with a
    # critic that answers 0 and target twins that answer 0 and 2: the target is γ·0 or γ·1.
    agent = tiny_cem(priors["maze"], td_target=td_target)
    agent.learn(120, show_progress=False)
    runs = agent.replay.sample_sequences(32, 3)
    fixed = runs._replace(reward=torch.zeros_like(runs.reward), terminated=torch.zeros_like(runs.terminated))
    agent.replay.sample_sequences = lambda *_: fixed
    twins = lambda h, z: torch.stack([torch.zeros(h.shape[:-1]), torch.full(h.shape[:-1], 2.0)])  # noqa: E731
    agent.model.critic_target.forward = twins
    agent.model.critic.forward = lambda h, z: torch.zeros((2, *h.shape[:-1]), requires_grad=True)
    learn = agent.config.learn
    next_value = 0.0 if td_target == "min" else 1.0
    expected = sum(learn.rho**k for k in range(learn.sequence)) * (learn.gamma * next_value) ** 2
    assert agent.update()["value_loss"] == pytest.approx(expected, rel=1e-5)
