"""Keeping only chosen dimensions of the flattened observation: layout, config, pretraining, envs."""

from __future__ import annotations

import io
import json
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from rich.console import Console

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.checkpoint import SkillMetadata
from skillplan.cli.main import run
from skillplan.config import resolve_config
from skillplan.data.catalog import KITCHEN_POSITIONS
from skillplan.data.flatten import ObservationLayout
from skillplan.data.loading import NormStats, load_offline_data
from skillplan.envs.base import make_base_env
from skillplan.errors import ConfigError, DatasetError
from skillplan.evaluation import evaluate_prior
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import pretrain
from tests.pretrain_fixtures import EXPERT_ID, GENERAL_ID, tiny_config, write_pu_datasets
from tests.test_skill_envs import TINY as SKILL_TINY
from tests.test_skill_envs import random_rollouts

QUIET = Console(file=io.StringIO())
KEPT = [0, 2, 5]  # of the tiny datasets' 6 flat dims
FRANKA_POSITIONS = list(range(0, 9)) + list(range(18, 39))


def box(n: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, (n,), np.float32)


def test_layout_keeps_the_chosen_columns_of_a_dict_observation():
    space = spaces.Dict({"observation": box(4), "desired_goal": box(2), "achieved_goal": box(2)})
    layout = ObservationLayout.for_space(space, ("observation", "desired_goal"), (5, 0, 3))
    assert layout.dims == (0, 3, 5) and layout.dim == 3 and layout.space().shape == (3,)
    rng = np.random.default_rng(0)
    stack = {"observation": rng.normal(size=(7, 4)), "desired_goal": rng.normal(size=(7, 2)),
             "achieved_goal": rng.normal(size=(7, 2))}
    full = np.concatenate([stack["desired_goal"], stack["observation"]], axis=-1)  # sorted key order
    np.testing.assert_array_equal(layout.flatten(stack), full[:, [0, 3, 5]].astype(np.float32))
    one = {key: value[2] for key, value in stack.items()}
    np.testing.assert_array_equal(layout.flatten(one), full[2, [0, 3, 5]].astype(np.float32))
    assert layout.flatten(stack).flags.c_contiguous and layout.flatten(stack).dtype == np.float32


def test_layout_keeps_the_chosen_columns_of_a_flat_observation():
    layout = ObservationLayout.for_space(box(59), dims=FRANKA_POSITIONS)
    assert layout.keys == () and layout.dim == 30
    stack = np.random.default_rng(1).normal(size=(5, 59))
    np.testing.assert_array_equal(layout.flatten(stack), stack[:, FRANKA_POSITIONS].astype(np.float32))
    np.testing.assert_array_equal(layout.flatten(stack[3]), stack[3, FRANKA_POSITIONS].astype(np.float32))
    assert ObservationLayout.for_space(box(59)) == ObservationLayout((), 59)  # the default keeps all


@pytest.mark.parametrize(("dims", "message"), [
    ((0, 6), r"dimension 6 is out of range.*\(observation\) has 6 dimensions \(0-5\)"),
    ((-1, 2), r"dimension -1 is out of range"),
    ((1, 4, 1), r"dimension 1 is listed twice"),
])
def test_bad_dims_name_the_bad_index(dims, message):
    with pytest.raises(DatasetError, match=message):
        ObservationLayout.for_space(spaces.Dict({"observation": box(6)}), ("observation",), dims)


def test_dims_of_a_multi_dimensional_box_are_refused():
    with pytest.raises(DatasetError, match=r"1-D observations.*\(2, 3\)"):
        ObservationLayout.for_space(spaces.Box(0, 1, (2, 3)), dims=(0,))


def test_config_reads_ranges_positions_and_lists():
    def dims(value, dataset="kitchen-scripted"):
        config = resolve_config("spirl", overrides={"data": {"dataset": dataset, "obs_dims": value}})
        return config.data.obs_dims

    assert dims("0-8,18-38") == FRANKA_POSITIONS == dims("positions") == list(KITCHEN_POSITIONS)
    assert dims(" 7, 2-3 ") == [2, 3, 7] and dims([5, 1]) == [1, 5]
    assert resolve_config("spirl").data.obs_dims is None  # the default keeps every dimension
    for bad, message in (("3-1", "'3-1' is not an index or an ascending range"), ("x", "'x' is not an index"),
                         ("0-4,2", "dimension 2 is listed twice"), ([], "keep at least one dimension")):
        with pytest.raises(ConfigError, match=message):
            dims(bad)
    with pytest.raises(ConfigError, match="'positions' is known only for the kitchen datasets"):
        dims("positions", dataset="pointmaze-scripted")


@pytest.fixture
def kept_run(tmp_path):
    write_pu_datasets(n_general=12, n_expert=4)
    run_dir = tmp_path / "kept"
    pretrain(tiny_config("spirl", data={"obs_dims": KEPT}, pretrain={"steps": 5}), run_dir, console=QUIET)
    return run_dir


def test_pretraining_on_kept_dims_records_them_and_normalises_by_their_statistics(kept_run):
    model = SkillModel.load(kept_run / "prior")
    meta = model.metadata
    assert meta.obs_dim == len(KEPT) and meta.obs_dims == KEPT and model.layout.dims == tuple(KEPT)
    assert model.config.data.obs_dims == KEPT
    full = load_offline_data(GENERAL_ID, expert_id=EXPERT_ID)
    expected = NormStats.of(full.general.observations[:, KEPT], full.expert.observations[:, KEPT])
    np.testing.assert_allclose(meta.obs_mean, expected.mean, rtol=1e-6)
    np.testing.assert_allclose(meta.obs_std, expected.std, rtol=1e-6)
    kept = load_offline_data(GENERAL_ID, expert_id=EXPERT_ID, obs_dims=KEPT)
    np.testing.assert_array_equal(kept.general.observations, full.general.observations[:, KEPT])
    assert model.prior_dist(full.general.observations[:3, KEPT]).sample().shape == (3, model.metadata.z_dim)


def test_resuming_with_other_dims_is_refused(kept_run):
    changed = tiny_config("spirl", data={"obs_dims": [0, 1]}, pretrain={"steps": 10})
    with pytest.raises(ConfigError, match=r"data\.obs_dims: \[0, 2, 5\] -> \[0, 1\]"):
        pretrain(changed, kept_run, resume=True, console=QUIET)


def test_dims_beyond_the_data_are_named_before_training(tmp_path):
    write_pu_datasets(n_general=12, n_expert=4)
    with pytest.raises(DatasetError, match="dimension 9 is out of range"):
        pretrain(tiny_config("spirl", data={"obs_dims": [0, 9]}), tmp_path / "run", console=QUIET)


def test_checkpoint_metadata_without_obs_dims_reads_as_all_dims(tmp_path):
    write_pu_datasets(n_general=12, n_expert=4)
    pretrain(tiny_config("spirl", pretrain={"steps": 2}), tmp_path / "run", console=QUIET)
    meta_file = tmp_path / "run" / "prior" / "metadata.json"
    saved = json.loads(meta_file.read_text())
    assert saved["obs_dims"] is None
    del saved["obs_dims"]  # as written before dimensions could be chosen
    meta_file.write_text(json.dumps(saved))
    assert SkillMetadata.model_validate_json(meta_file.read_text()).obs_dims is None
    layout = SkillModel.load(tmp_path / "run" / "prior").layout
    assert layout == ObservationLayout((), 6) and layout.flatten(np.arange(6.0)).shape == (6,)


def test_a_skill_env_and_prior_rollouts_observe_the_kept_dims(tmp_path):
    random_rollouts(make_base_env("PointMaze_Large-v3", max_episode_steps=40), "test/maze-v0", 2)
    # The maze's flat state is desired_goal (0-1) then observation (2-5): keep the observation only.
    config = resolve_config("spirl", overrides={
        **SKILL_TINY, "pretrain": {**SKILL_TINY["pretrain"], "steps": 5},
        "data": {"dataset": "test/maze-v0", "obs_dims": "2-5"},
    })
    pretrain(config, tmp_path / "maze", console=QUIET)
    prior = tmp_path / "maze" / "prior"
    env = gym.make("SkillPointMaze-v0", prior=str(prior))
    assert env.observation_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, env.get_wrapper_attr("_obs")["observation"].astype(np.float32))
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs, env.get_wrapper_attr("_obs")["observation"].astype(np.float32))
    rollouts = evaluate_prior(SkillModel.load(prior), 1, workers=1, max_steps=8)
    assert len(rollouts.reset_sigma) == 4 and len(rollouts.successes) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("3-1", "'3-1' is not an index or an ascending range"), ("x", "'x' is not an index"),
])
def test_cli_refuses_a_bad_dims_string_in_one_paragraph(monkeypatch, capsys, text, message):
    monkeypatch.setattr(sys, "argv", ["skillplan", "pretrain", "--dataset", GENERAL_ID, "--obs-dims", text])
    with pytest.raises(SystemExit) as exit_:
        run()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert message in " ".join(err.replace("│", " ").split())


def test_cli_trains_on_the_dims_it_is_given(tmp_path, monkeypatch, capsys):
    write_pu_datasets(n_general=12, n_expert=4)
    monkeypatch.setattr(sys, "argv", [
        "skillplan", "pretrain", "--preset", "spirl", "--dataset", GENERAL_ID, "--expert-dataset", EXPERT_ID,
        "--obs-dims", "0,2-3", "--steps", "3", "--batch-size", "16", "--out", str(tmp_path / "run"),
    ])
    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == 0, capsys.readouterr().err
    assert SkillModel.load(tmp_path / "run" / "prior").metadata.obs_dims == [0, 2, 3]
