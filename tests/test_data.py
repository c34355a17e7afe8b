"""The data layer: catalog, flattening, loading, atomic writing and the window sampler."""

from __future__ import annotations

import os
import time

import minari
import numpy as np
import pytest
from gymnasium import spaces

from skillplan.data import CATALOG, Episodes, ObservationLayout, WindowSampler, load_offline_data, resolve
from skillplan.data.writing import dataset_dir, datasets_root, write_dataset
from skillplan.errors import DatasetError
from tests.conftest import tiny_episodes


def test_catalog_maps_the_issue_names():
    assert CATALOG["kitchen"].general_id == "D4RL/kitchen/mixed-v2"
    assert CATALOG["kitchen"].expert_id == "D4RL/kitchen/complete-v2"
    assert CATALOG["kitchen-partial"].general_id == "D4RL/kitchen/partial-v2"
    assert CATALOG["pointmaze-large"].expert_id is None
    assert CATALOG["antmaze-medium"].general_id == "D4RL/antmaze/medium-diverse-v1"
    for name in ("kitchen-scripted", "pointmaze-scripted"):
        assert CATALOG[name].generator == name and CATALOG[name].expert_id is not None


def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError) as err:
        resolve("kitchn")
    for name in CATALOG:
        assert name in str(err.value)


def test_plain_minari_id_is_accepted():
    assert resolve("someone/env/data-v3").general_id == "someone/env/data-v3"


def test_flatten_kitchen_takes_the_59_dim_observation():
    goal_dict = spaces.Dict({"microwave": spaces.Box(-1, 1, (1,))})
    space = spaces.Dict({
        "observation": spaces.Box(-np.inf, np.inf, (59,), np.float64),
        "achieved_goal": goal_dict, "desired_goal": goal_dict,
    })
    layout = ObservationLayout.for_space(space)
    assert layout.keys == ("observation",) and layout.dim == 59
    flat = layout.flatten({"observation": np.ones((5, 59)), "desired_goal": {}})
    assert flat.dtype == np.float32 and flat.shape == (5, 59) and flat.flags.c_contiguous


def test_flatten_maze_appends_the_goal():
    space = spaces.Dict({
        "observation": spaces.Box(-1, 1, (4,)), "achieved_goal": spaces.Box(-1, 1, (2,)),
        "desired_goal": spaces.Box(-1, 1, (2,)),
    })
    layout = ObservationLayout.for_space(space, ("observation", "desired_goal"))
    obs = {"observation": np.arange(4.0), "achieved_goal": np.zeros(2), "desired_goal": np.array([7.0, 8.0])}
    np.testing.assert_array_equal(layout.flatten(obs), [7, 8, 0, 1, 2, 3])  # gymnasium's sorted order
    assert ObservationLayout.for_space(space) == layout


def test_unflattenable_key_is_named():
    space = spaces.Dict({"observation": spaces.Box(-1, 1, (4,)), "image": spaces.Discrete(3)})
    with pytest.raises(DatasetError, match="'image'"):
        ObservationLayout.for_space(space, ("observation", "image"))
    with pytest.raises(DatasetError, match="'goal'"):
        ObservationLayout.for_space(space, ("goal",))


def test_load_flattens_episodes_and_computes_stats(make_dataset):
    make_dataset("test/toy/general-v0", n_episodes=5, length=(20, 40), dict_obs=True)
    make_dataset("test/toy/expert-v0", n_episodes=2, length=30, dict_obs=True, seed=1)
    data = load_offline_data("test/toy/general-v0", expert_id="test/toy/expert-v0")
    assert data.layout.keys == ("desired_goal", "observation") and data.layout.dim == 8
    general = data.general
    assert general.n_episodes == 5
    assert general.observations.shape == (general.n_steps + 5, 8)
    assert general.actions.shape == (general.n_steps, 3)
    assert data.expert.n_steps == 60
    both = np.concatenate([general.observations, data.expert.observations])
    np.testing.assert_allclose(data.stats.mean, both.mean(0), atol=1e-5)
    # the flat arrays are exactly Minari's episodes
    episode = next(minari.load_dataset("test/toy/general-v0").iterate_episodes())
    np.testing.assert_allclose(general.actions[: len(episode.actions)], episode.actions)
    np.testing.assert_allclose(general.observations[0, 2:], episode.observations["observation"][0])


def test_expert_general_shape_mismatch_names_shapes(make_dataset):
    make_dataset("test/toy/general-v0", obs_dim=6)
    make_dataset("test/toy/expert-v0", obs_dim=7)
    with pytest.raises(DatasetError, match="7 vs 6"):
        load_offline_data("test/toy/general-v0", expert_id="test/toy/expert-v0")


def test_missing_remote_dataset_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(DatasetError) as err:
        load_offline_data("kitchen")
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "D4RL/kitchen/mixed-v2" in message and "kitchen-scripted" in message


def test_missing_local_dataset_is_reported():
    with pytest.raises(DatasetError, match="not in the local Minari root"):
        load_offline_data("skillplan-test/nothing-v0", download=False)


def test_existing_dataset_needs_overwrite(make_dataset):
    make_dataset("test/toy/general-v0")
    with pytest.raises(DatasetError, match="--overwrite"):
        make_dataset("test/toy/general-v0")


def test_interrupted_write_leaves_nothing(monkeypatch):
    episodes, obs_space, act_space = tiny_episodes(3, 20)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", crash)
    with pytest.raises(KeyboardInterrupt):
        write_dataset("test/toy/general-v0", episodes, observation_space=obs_space, action_space=act_space)
    assert not dataset_dir("test/toy/general-v0").exists()
    assert not [p for p in os.listdir(datasets_root()) if p.startswith(".staging")]


def test_overwrite_keeps_the_old_dataset_until_the_new_one_is_whole(make_dataset, monkeypatch):
    make_dataset("test/toy/general-v0", n_episodes=3)
    episodes, obs_space, act_space = tiny_episodes(5, 20)
    real_create, root = minari.create_dataset_from_buffers, os.environ["MINARI_DATASETS_PATH"]
    seen_while_writing = []

    def create_then_look(*args, **kwargs):  # the new dataset is written: the old one must still load
        created = real_create(*args, **kwargs)
        staging, os.environ["MINARI_DATASETS_PATH"] = os.environ["MINARI_DATASETS_PATH"], root
        try:
            seen_while_writing.append(minari.load_dataset("test/toy/general-v0").total_episodes)
        finally:
            os.environ["MINARI_DATASETS_PATH"] = staging
        return created

    monkeypatch.setattr(minari, "create_dataset_from_buffers", create_then_look)
    write_dataset("test/toy/general-v0", episodes, observation_space=obs_space,
                  action_space=act_space, overwrite=True)
    assert seen_while_writing == [3]
    assert minari.load_dataset("test/toy/general-v0").total_episodes == 5

    def crash_after_writing(*args, **kwargs):
        real_create(*args, **kwargs)
        raise KeyboardInterrupt  # killed after the new files were written, before they were moved in

    monkeypatch.setattr(minari, "create_dataset_from_buffers", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        write_dataset("test/toy/general-v0", tiny_episodes(2, 20)[0], observation_space=obs_space,
                      action_space=act_space, overwrite=True)
    assert minari.load_dataset("test/toy/general-v0").total_episodes == 5
    assert not [p for p in os.listdir(datasets_root()) if p.startswith(".")]


def _labelled_episodes(lengths: list[int]) -> Episodes:
    """Episodes whose state holds (episode, step) so windows can be checked exactly."""
    obs = [np.stack([[e, t, 0.0] for t in range(n + 1)]) for e, n in enumerate(lengths)]
    act = [np.stack([[e, t] for t in range(n)]) for e, n in enumerate(lengths)]
    return Episodes(np.concatenate(obs).astype(np.float32), np.concatenate(act).astype(np.float32),
                    np.array(lengths))


@pytest.mark.parametrize("n_skills", [1, 3])
def test_windows_never_cross_an_episode_end(n_skills):
    episodes = _labelled_episodes([5, 31, 12, 60, 9])
    sampler = WindowSampler(episodes, horizon=4, n_skills=n_skills, seed=0)
    batch = sampler.sample(2000)
    length = 4 * n_skills
    assert batch.observations.shape == (2000, length + 1, 3)
    assert batch.actions.shape == (2000, length, 2)
    obs, act = batch.observations.numpy(), batch.actions.numpy()
    assert (obs[:, :, 0] == obs[:, :1, 0]).all(), "a window spans two episodes"
    assert (np.diff(obs[:, :, 1], axis=1) == 1).all()
    np.testing.assert_array_equal(obs[:, :-1, :2], act)
    last_step = obs[:, -1, 1]
    ep_len = episodes.lengths[obs[:, 0, 0].astype(int)]
    assert (last_step <= ep_len).all()
    # every valid start appears, none of the too-short episodes does
    expected = sum(max(0, n - length + 1) for n in episodes.lengths)
    assert sampler.n_windows == expected
    assert len({(e, t) for e, t in obs[:, 0, :2]}) == expected


def test_sampler_is_seeded():
    episodes = _labelled_episodes([40, 50])
    a = WindowSampler(episodes, 10, seed=3).sample(64)
    b = WindowSampler(episodes, 10, seed=3).sample(64)
    c = WindowSampler(episodes, 10, seed=4).sample(64)
    assert (a.observations == b.observations).all()
    assert not (a.observations == c.observations).all()


def test_sampler_rejects_episodes_that_are_all_too_short():
    with pytest.raises(DatasetError, match="long enough"):
        WindowSampler(_labelled_episodes([5, 6]), horizon=10)


def test_split_keeps_whole_episodes():
    episodes = _labelled_episodes([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    train, held = episodes.split(0.2, seed=0)
    assert train.n_episodes == 8 and held.n_episodes == 2
    assert train.n_steps + held.n_steps == episodes.n_steps
    assert not set(train.observations[:, 0]) & set(held.observations[:, 0])
