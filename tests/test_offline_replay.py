"""The offline data as skill-level replay: task rewards recomputed from recorded kitchen states, the
windows' skill transitions, and the agents whose replay they seed."""

from __future__ import annotations

import dataclasses
import io

import gymnasium as gym
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer
from rich.console import Console

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import CEM, SAC, SSAC, CEMAgentConfig, SACAgentConfig, SSACConfig
from skillplan.agents.offline_replay import offline_skill_transitions
from skillplan.config import resolve_config
from skillplan.data.writing import write_dataset
from skillplan.envs.base import make_base_env
from skillplan.envs.tasks import KITCHEN_SUBTASKS, kitchen_goals, make_kitchen_task
from skillplan.errors import ConfigError
from skillplan.pretrain import pretrain
from tests.test_skill_envs import _stack
from tests.test_tasks import put_in_goal_state, still

H = 4
TINY = {"model": {"horizon": H, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
        "pretrain": {"steps": 20, "batch_size": 32, "n_skills": 2, "precision": "fp32", "threads": 1,
                     "eval_windows": 32, "log_every": 10, "eval_every": 20, "checkpoint_every": 20}}
ORDER = ("microwave", "kettle", "bottom burner", "light switch")  # SkillKitchen-v0's task


def test_kitchen_goals_from_states_are_the_envs_own():
    env = make_kitchen_task()
    obs, _ = env.reset(seed=3)
    put_in_goal_state(env, "kettle")
    obs, *_ = still(env)
    goals = kitchen_goals(obs["observation"])
    for task in KITCHEN_SUBTASKS:  # the observation carries FrankaKitchen's noise (about 1e-4), the goals not
        np.testing.assert_allclose(goals["achieved_goal"][task], obs["achieved_goal"][task], atol=1e-3)
        np.testing.assert_allclose(goals["desired_goal"][task], obs["desired_goal"][task])


@pytest.mark.parametrize("enforce_order", [True, False])
def test_relabelled_rewards_are_the_ones_the_task_paid(enforce_order):
    env = make_kitchen_task(enforce_order=enforce_order)
    obs, _ = env.reset(seed=0)
    states, rewards, ends = [obs["observation"]], [], []
    teleports = {2: "kettle", 4: "microwave", 6: "light switch", 8: "bottom burner"}  # kettle early
    for t in range(11):
        if t in teleports:
            put_in_goal_state(env, teleports[t])
        obs, reward, terminated, _, _ = still(env)
        states.append(obs["observation"]), rewards.append(reward), ends.append(terminated)
        if terminated:
            break
    paid, ended = env.relabel(np.stack(states))
    assert paid.tolist() == rewards and ended.tolist() == ends
    assert sum(rewards) == 4 and ends[-1] and rewards[2] == (0.0 if enforce_order else 1.0)


def record_kitchen_episode(episode: int, complete_at: dict[int, str], length: int) -> EpisodeBuffer:
    """A still kitchen episode whose objects are put into their goal states at the given steps."""
    env = make_base_env("FrankaKitchen-v1", tasks_to_complete=list(KITCHEN_SUBTASKS),
                        max_episode_steps=length, terminate_on_tasks_completed=False,
                        disable_env_checker=True)
    obs, _ = env.reset(seed=episode)
    frames = [obs]
    rng = np.random.default_rng(episode)
    actions = rng.uniform(-0.1, 0.1, (length, 9)).astype(np.float32)
    for t in range(length):
        if t in complete_at:
            put_in_goal_state(env, complete_at[t])
        obs, *_ = env.step(actions[t])
        frames.append({k: (dict(v) if isinstance(v, dict) else v) for k, v in obs.items()})
    ends = np.r_[np.zeros(length - 1, bool), True]
    return EpisodeBuffer(id=episode, observations=_stack(frames), actions=actions, rewards=np.zeros(length),
                         terminations=np.zeros(length, bool), truncations=ends)


@pytest.fixture
def kitchen_prior(tmp_path) -> str:
    """A tiny prior on recorded kitchen episodes of 42 steps (H = 4 leaves a 2-step tail). Expert:
    two episodes that complete the task in order, the last subtask in the tail. General: one that does
    two subtasks in order, one that does only the light switch, out of order."""
    env = make_base_env("FrankaKitchen-v1", tasks_to_complete=list(KITCHEN_SUBTASKS))
    in_order = {3: "microwave", 9: "kettle", 17: "bottom burner", 41: "light switch"}
    expert = [dataclasses.replace(record_kitchen_episode(seed, in_order, 42), id=i)
              for i, seed in enumerate((0, 3))]
    general = [record_kitchen_episode(i, plan, 42) for i, plan in enumerate([{5: "microwave", 6: "kettle"},
                                                                             {2: "light switch"}])]
    write_dataset("test/kitchen-expert-v0", expert, env=env.spec)
    write_dataset("test/kitchen-v0", general, env=env.spec)
    data = {"dataset": "test/kitchen-v0", "expert_dataset": "test/kitchen-expert-v0"}
    config = resolve_config("skillplan", overrides={**TINY, "data": data})
    pretrain(config, tmp_path / "prior-run", console=Console(file=io.StringIO()))
    return str(tmp_path / "prior-run" / "prior")


def test_each_window_becomes_one_skill_transition_paid_the_task_reward(kitchen_prior):
    env = gym.make("SkillKitchen-v0", prior=kitchen_prior)
    model = env.get_wrapper_attr("skill_model")
    data = offline_skill_transitions(env, model)
    # 10 windows from each reset, and a tail window (steps 38-41) since H does not divide 42
    assert len(data) == 4 * 11
    episodes = {source: np.flatnonzero(data.source == source).reshape(-1, 11) for source in set(data.source)}
    paid = {source: data.reward[rows].sum(-1).tolist() for source, rows in episodes.items()}
    assert paid == {"test/kitchen-expert-v0": [4.0, 4.0], "test/kitchen-v0": [2.0, 0.0]}
    first = episodes["test/kitchen-expert-v0"][0]
    assert data.terminated[first].tolist() == [False] * 10 + [True]  # the tail window ends the task
    assert data.reward[first][[0, 2, 4, 10]].tolist() == [1.0, 1.0, 1.0, 1.0]
    # windows chain state to state, except where the tail window overlaps the one before it
    assert np.array_equal(data.next_obs[first][:9], data.obs[first][1:10])
    assert data.episode_end[first].tolist() == [False] * 9 + [True, True]
    assert np.abs(data.z).max() <= env.action_space.high.max()
    recorded = next(minari.load_dataset("test/kitchen-expert-v0").iterate_episodes())
    expected = model.encode_skill(model.layout.flatten(recorded.observations)[None, :H],
                                  recorded.actions[None, :H]).mean
    np.testing.assert_allclose(data.z[first[0]], expected[0].detach().numpy(), atol=1e-6)


def test_ssac_and_cem_start_from_a_replay_seeded_with_the_offline_transitions(kitchen_prior):
    env = gym.make("SkillKitchen-v0", prior=kitchen_prior)
    offline = offline_skill_transitions(env, env.get_wrapper_attr("skill_model"))
    sac = SSACConfig().sac.model_copy(update={"hidden": (32, 32), "batch_size": 16})
    ssac = SSAC(env, SSACConfig(offline_data=True, learning_starts=8, eval_every=10**6, threads=1, sac=sac))
    ssac.learn(8 * H, show_progress=False, console=Console(file=io.StringIO()))
    assert ssac.replay.size == len(offline) + 8
    assert ssac.replay.reward[: len(offline)].sum() == 10.0  # 4 + 4 + 2 + 0
    cem = CEM(gym.make("SkillKitchen-v0", prior=kitchen_prior),
              CEMAgentConfig(offline_data=True, learning_starts=10**6, eval_every=10**6, threads=1))
    cem.learn(2 * H, show_progress=False, console=Console(file=io.StringIO()))
    assert cem.replay.size == len(offline) + 2
    assert cem.replay.episode_end[: len(offline)].tolist() == offline.episode_end.tolist()
    half = SSAC(gym.make("SkillKitchen-v0", prior=kitchen_prior),
                SSACConfig(offline_data=True, offline_share=0.5, learning_starts=8, eval_every=10**6,
                           threads=1, sac=sac))
    half.learn(8 * H, show_progress=False, console=Console(file=io.StringIO()))
    assert (half.replay.pinned, half.replay.pinned_share) == (len(offline), 0.5)


def test_offline_data_needs_a_skill_agent_and_a_task_that_can_relabel():
    from skillplan.agents.offline_replay import task_relabeller
    from skillplan.envs.tasks import make_flat_task, make_maze_task

    with pytest.raises(ConfigError, match="ssac or cem"):
        flat = SAC(make_flat_task("SkillKitchen-v0"), SACAgentConfig(offline_data=True))
        flat.learn(10, show_progress=False)
    with pytest.raises(ConfigError, match="kitchen tasks"):
        task_relabeller(make_maze_task())
