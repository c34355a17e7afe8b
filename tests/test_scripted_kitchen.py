"""The scripted FrankaKitchen-v1 demonstrator: primitives succeed, episodes are well-formed and
reproducible. Success rates over many seeds live in benchmarks/scripted_kitchen.py."""

from __future__ import annotations

import minari
import numpy as np
import pytest

from skillplan.data.writing import write_dataset
from skillplan.envs.scripted.kitchen import (
    DEMONSTRATOR,
    EXPERT_SEQUENCE,
    GENERAL_NOISE,
    SUBTASKS,
    Scene,
    primitive,
    rollout,
)
from skillplan.errors import SkillplanError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def env():
    env = DEMONSTRATOR.make_env("general")
    yield env
    env.close()


@pytest.fixture(scope="module")
def general_episode(env):
    return DEMONSTRATOR.episode(env, 8, "general")


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    else:
        yield tree


def _at(tree, t):
    return {k: _at(v, t) for k, v in tree.items()} if isinstance(tree, dict) else tree[t]


@pytest.mark.parametrize("tasks", [["microwave"], ["light switch"], ["kettle", "bottom burner"]])
def test_primitives_complete_their_subtasks(env, tasks):
    run = rollout(env, 0, tasks, np.random.default_rng(0))
    assert [a.task for a in run.attempts] == tasks
    assert all(a.done_at is not None for a in run.attempts)
    assert sum(run.rewards) == len(tasks)  # the env agrees, once per subtask


def test_episode_is_reproducible(env, general_episode):
    again = DEMONSTRATOR.episode(env, 8, "general")
    for name in ("observations", "actions", "rewards", "terminations", "truncations", "infos"):
        first = list(_leaves(getattr(general_episode, name)))
        second = list(_leaves(getattr(again, name)))
        assert len(first) == len(second)
        assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True)), name
    other = DEMONSTRATOR.episode(env, 9, "general")
    assert not np.array_equal(other.actions[:20], general_episode.actions[:20])


def test_episode_buffer_matches_the_env(env, general_episode):
    ep = general_episode
    T = len(ep.actions)
    assert 0 < T <= 450 and ep.actions.shape == (T, 9) and ep.actions.dtype == np.float32
    assert np.abs(ep.actions).max() <= 1.0
    for leaf in _leaves(ep.observations):
        assert leaf.shape[0] == T + 1 and leaf.dtype == np.float64
    for t in (0, T // 2, T):
        assert env.observation_space.contains(_at(ep.observations, t))
    assert len(ep.rewards) == len(ep.terminations) == len(ep.truncations) == T
    assert ep.terminations[-1] or ep.truncations[-1]
    assert not (ep.terminations[:-1] | ep.truncations[:-1]).any()
    done = ep.infos["episode_task_completions"]
    assert set(done) == set(SUBTASKS) and all(v.shape == (T + 1,) for v in done.values())
    assert not any(v[0] for v in done.values())  # the reset info comes first
    assert sum(v[-1] for v in done.values()) == ep.rewards.sum() >= 2


def test_expert_episode_does_the_expert_sequence():
    env = DEMONSTRATOR.make_env("expert")
    ep = DEMONSTRATOR.episode(env, 0, "expert")
    done = ep.infos["episode_task_completions"]
    assert all(done[task][-1] for task in EXPERT_SEQUENCE) and ep.terminations[-1]
    assert len(ep.actions) <= 280
    env.close()


def test_episodes_write_as_a_minari_dataset(env, general_episode):
    write_dataset(
        "test/kitchen-scripted-v0",
        [general_episode],
        observation_space=env.observation_space,
        action_space=env.action_space,
    )
    loaded = next(iter(minari.load_dataset("test/kitchen-scripted-v0")))
    saved = general_episode.observations["observation"]
    assert np.array_equal(loaded.observations["observation"], saved)
    assert loaded.infos["episode_task_completions"]["microwave"].shape == (len(loaded.actions) + 1,)


def test_unknown_subtask_lists_the_seven(env):
    with pytest.raises(SkillplanError) as err:
        primitive("oven door", Scene(env))
    assert all(task in str(err.value) for task in SUBTASKS)


def test_an_abandoned_subtask_begins_again_only_when_resumed(env):
    """Cut 15 steps in, the microwave is still closed: play moves on, a plan begins it again."""
    tasks, cuts = ["microwave", "light switch"], [15, None]
    dropped = rollout(env, 0, tasks, np.random.default_rng(0), GENERAL_NOISE, cuts)
    resumed = rollout(env, 0, tasks, np.random.default_rng(0), GENERAL_NOISE, cuts, resume=True)
    assert dropped.attempts[0].done_at is None and dropped.attempts[1].done_at is not None
    assert all(a.done_at is not None for a in resumed.attempts)
    assert sum(resumed.rewards) == 2 and sum(dropped.rewards) == 1
