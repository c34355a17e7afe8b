"""Prior rollouts in real environments, through the API and `skillplan evaluate-prior`."""

from __future__ import annotations

import json

import numpy as np
import torch
from minari.serialization import serialize_space
from typer.testing import CliRunner

from skillplan.checkpoint import SkillMetadata
from skillplan.cli.main import app
from skillplan.data.flatten import ObservationLayout
from skillplan.envs.base import make_base_env
from skillplan.evaluation import PriorRollouts, evaluate_prior
from skillplan.models.skill_model import SkillModel
from tests.pretrain_fixtures import tiny_config


def untrained_model(env_id: str, keys: tuple[str, ...]) -> SkillModel:
    """A tiny random skill model for `env_id`, as if pretrained on a dataset of that env."""
    env = make_base_env(env_id)
    layout = ObservationLayout.for_space(env.observation_space, keys)
    act_dim = env.action_space.shape[0]
    config = tiny_config()
    meta = SkillMetadata(
        dataset="test", dataset_ids=[], fingerprint="", env_id=env_id, env_kwargs={},
        observation_space=json.loads(serialize_space(env.observation_space)),
        action_space=json.loads(serialize_space(env.action_space)), obs_keys=list(layout.keys),
        obs_dim=layout.dim, act_dim=act_dim, horizon=4, z_dim=4, obs_mean=[0.0] * layout.dim,
        obs_std=[1.0] * layout.dim, act_center=[0.0] * act_dim, act_scale=[1.0] * act_dim,
        act_bounded=True, version="test",
    )
    env.close()
    torch.manual_seed(0)
    return SkillModel(config, meta).eval()


def test_maze_rollouts_report_success():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    rollouts = evaluate_prior(model, 3, workers=1, max_steps=15)
    assert rollouts.kind == "success" and len(rollouts.successes) == 3 and len(rollouts.returns) == 3
    assert 0.0 <= rollouts.summary()["success_rate"] <= 1.0


def test_kitchen_rollouts_count_subtasks():
    model = untrained_model("FrankaKitchen-v1", ("observation",))
    rollouts = evaluate_prior(model, 1, workers=1, max_steps=12)
    assert rollouts.kind == "kitchen" and rollouts.subtasks == [0] and rollouts.n_tasks == 7
    assert rollouts.distribution()[0] == 1
    assert rollouts.summary()["full_completion_rate"] == 0.0
    assert rollouts.first_subtask_counts() == {"none": 1}
    assert rollouts.orders == [[]]


def test_reset_states_off_the_data_are_reported():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    model.obs_std.fill_(1e3)
    model.obs_std[0] = 1e-4  # the ball's x position: random at reset, so far off this "data"
    rollouts = evaluate_prior(model, 2, workers=1, max_steps=5)
    assert list(rollouts.reset_outliers()) == [0] and rollouts.reset_outliers()[0] > 100
    assert len(rollouts.reset_sigma) == model.metadata.obs_dim


def test_first_subtasks_are_counted_most_common_first():
    rollouts = PriorRollouts("FrankaKitchen-v1", subtasks=[2, 1, 0, 1], n_tasks=4,
                             first_subtasks=["kettle", "microwave", None, "microwave"])
    assert list(rollouts.first_subtask_counts().items()) == [("microwave", 2), ("kettle", 1), ("none", 1)]


def test_actions_stay_in_the_action_space():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    obs = {"observation": np.full((2, 4), 50.0), "desired_goal": np.zeros((2, 2))}
    with torch.no_grad():
        action = model.decode_action(obs, torch.full((2, 4), 30.0)).numpy()
    assert np.all(np.abs(action) <= 1.0)


def test_cli_evaluate_prior_prints_a_table(tmp_path):
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    model.save(tmp_path / "prior")
    args = ["evaluate-prior", str(tmp_path / "prior"), "--episodes", "2", "--workers", "2",
            "--max-steps", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "success_rate" in result.output and "PointMaze_UMaze-v3" in result.output


def test_cli_evaluate_prior_on_a_missing_checkpoint(tmp_path):
    result = CliRunner().invoke(app, ["evaluate-prior", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "weights.safetensors" in str(result.exception)
