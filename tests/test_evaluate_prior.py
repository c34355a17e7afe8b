"""Prior rollouts in real environments, through the API and `skillplan evaluate-prior`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from minari.serialization import serialize_space
from typer.testing import CliRunner

from skillplan.checkpoint import SkillMetadata
from skillplan.cli.main import app
from skillplan.data.flatten import ObservationLayout
from skillplan.data.loading import NormStats
from skillplan.envs.base import make_base_env
from skillplan.envs.scripted.kitchen import DEMONSTRATOR, rollout
from skillplan.envs.tasks import KITCHEN_MISALIGNED_TASK, KITCHEN_SUBTASKS, SubtaskProgress, subtasks_in_goal
from skillplan.errors import ConfigError
from skillplan.evaluation import KitchenGoal, PriorRollouts, chosen_task, evaluate_prior
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


def toward_the_goal(states: np.ndarray, z: torch.Tensor, step: int = 0) -> torch.Tensor:
    """A PD controller straight at the goal: it reaches goals in sight and stalls at walls.

    The flat maze state is desired_goal (0-1), then observation: position (2-3), velocity (4-5)."""
    goal, position, velocity = states[:, :2], states[:, 2:4], states[:, 4:]
    action = np.clip(5 * (goal - position) - velocity, -1, 1)
    return torch.as_tensor(action, dtype=torch.float32)


def test_maze_rollouts_report_success():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    model.decode_action = toward_the_goal
    rollouts = evaluate_prior(model, 6, workers=2, seed=1, max_steps=100)
    assert rollouts.kind == "success" and len(rollouts.successes) == 6 and len(rollouts.returns) == 6
    # the sparse reward pays every step at the goal: an episode succeeded exactly when it earned some
    assert rollouts.successes == [ret > 0 for ret in rollouts.returns]
    assert 0 < sum(rollouts.successes) < 6  # these seeds put some goals in sight, some behind a wall
    assert rollouts.summary()["success_rate"] == sum(rollouts.successes) / 6


def test_kitchen_rollouts_count_the_subtasks_a_scripted_expert_does():
    """The scripted expert's actions, replayed as the prior's skills from the same reset seed, do three
    of the kitchen's seven subtasks: counted, first and in order; after them the arm stands still."""
    done = ["light switch", "slide cabinet", "microwave"]
    env = DEMONSTRATOR.make_env("general")
    run = rollout(env, 0, done, np.random.default_rng(0))
    env.close()
    assert all(a.done_at is not None for a in run.attempts), "the scripted expert failed a subtask"
    actions = iter(run.actions)
    model = untrained_model("FrankaKitchen-v1", ("observation",))
    model.decode_action = lambda obs, z, step: torch.as_tensor(
        np.stack([next(actions, np.zeros(9))]), dtype=torch.float32)
    rollouts = evaluate_prior(model, 1, workers=1, seed=0, max_steps=len(run.actions) + 8)
    assert rollouts.kind == "kitchen" and rollouts.n_tasks == 7
    assert rollouts.subtasks == [3] and rollouts.distribution()[3] == 1
    assert rollouts.first_subtask_counts() == {"light switch": 1}
    assert rollouts.orders == [done]
    assert rollouts.summary()["full_completion_rate"] == 0.0


def test_reset_states_off_the_data_are_reported():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    model.obs_std.fill_(1e3)
    model.obs_std[0] = 1e-4  # the ball's x position: random at reset, so far off this "data"
    rollouts = evaluate_prior(model, 2, workers=1, max_steps=5)
    assert list(rollouts.reset_outliers()) == [0] and rollouts.reset_outliers()[0] > 100
    assert len(rollouts.reset_sigma) == model.metadata.obs_dim


KETTLE_QUAT_W = 35  # FrankaKitchen-v1's kettle quaternion w: 1.0062 at reset, 1.0000 after one step


def kitchen_model_with_settled_data() -> SkillModel:
    """A kitchen model whose data, as the scripted kitchen's, has the reset states as first states and
    later states settled: the kettle's quaternion w sits 0.0062 off its reset value, at the 1e-3 std floor."""
    model = untrained_model("FrankaKitchen-v1", ("observation",))
    env = make_base_env("FrankaKitchen-v1")
    firsts = NormStats.of(np.stack([env.reset(seed=100 + i)[0]["observation"] for i in range(16)]))
    settled = env.step(np.zeros(9))[0]["observation"]
    env.close()
    model.obs_mean.copy_(torch.as_tensor(settled))
    model.obs_std.fill_(1.0)
    model.obs_std[KETTLE_QUAT_W] = 1e-3
    model.metadata.start_mean, model.metadata.start_std = firsts.mean.tolist(), firsts.std.tolist()
    return model


def test_reset_states_like_the_datas_first_states_are_on_the_data():
    model = kitchen_model_with_settled_data()
    assert abs(model.metadata.start_mean[KETTLE_QUAT_W] - model.obs_mean[KETTLE_QUAT_W].item()) > 5e-3
    rollouts = evaluate_prior(model, 2, workers=1, max_steps=2)
    assert rollouts.reset_outliers() == {} and max(rollouts.reset_sigma) < 4.0
    model.metadata.start_mean = model.metadata.start_std = None  # judged by the data's mean alone
    rollouts = evaluate_prior(model, 2, workers=1, max_steps=2)
    assert list(rollouts.reset_outliers()) == [KETTLE_QUAT_W]


def test_reset_states_off_the_datas_first_states_are_still_reported():
    model = kitchen_model_with_settled_data()
    model.metadata.start_mean[KETTLE_QUAT_W] -= 0.0062  # the data began where it settles
    rollouts = evaluate_prior(model, 2, workers=1, max_steps=2)
    assert list(rollouts.reset_outliers()) == [KETTLE_QUAT_W]
    assert 5.0 < rollouts.reset_outliers()[KETTLE_QUAT_W] < 7.5


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
    assert "PointMaze_UMaze-v3" in result.output
    expected = evaluate_prior(SkillModel.load(tmp_path / "prior"), 2, workers=2, seed=0, max_steps=10)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in result.output.splitlines() if line.count("│") == 3}
    assert rows["success_rate"] == f"{expected.summary()['success_rate']:.3g}"
    assert rows["reset states: largest |z-score|"] == f"{max(expected.reset_sigma):.3g}"


def test_cli_evaluate_prior_on_a_missing_checkpoint(tmp_path):
    result = CliRunner().invoke(app, ["evaluate-prior", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "weights.safetensors" in str(result.exception)


def count_along(observations: list[dict], tasks: tuple[str, ...]) -> list[tuple[int, int]]:
    """(in order, any order) after each observation of a rollout, as evaluate-prior counts them."""
    progress, counts = SubtaskProgress(tasks), []
    for obs in observations:
        progress.update([t for t, done in subtasks_in_goal(obs, tasks).items() if done])
        counts.append((progress.in_order, progress.any_order))
    return counts


def test_an_ordered_task_counts_a_scripted_rollout_in_order():
    """The scripted expert switches the light and opens the slide cabinet, then the microwave. For the
    misaligned task (microwave, light switch, slide cabinet, hinge cabinet) the first two count only
    in any order until the microwave is open; then, still done, they count in order too."""
    env = DEMONSTRATOR.make_env("general")
    run = rollout(env, 0, ["light switch", "slide cabinet", "microwave"], np.random.default_rng(0))
    env.close()
    assert all(a.done_at is not None for a in run.attempts), "the scripted expert failed a subtask"
    counts = count_along(run.observations, KITCHEN_MISALIGNED_TASK)
    before_microwave = run.attempts[2].start  # observation index of the step the microwave begins
    assert counts[run.attempts[0].done_at] == (0, 1)
    assert counts[before_microwave] == (0, 2)
    assert counts[run.attempts[2].done_at] == (3, 3) and counts[-1] == (3, 3)
    assert count_along(run.observations, ("slide cabinet", "light switch"))[-1] == (2, 2)
    assert count_along(run.observations, ("kettle", "microwave"))[-1] == (0, 1)


def test_a_subtask_undone_before_its_turn_does_not_count_in_order():
    progress = SubtaskProgress(("microwave", "kettle", "light switch"))
    for in_goal in (["kettle"], [], ["microwave"], ["microwave", "light switch"]):
        progress.update(in_goal)
    assert (progress.in_order, progress.any_order, progress.reached) == (1, 3, ["kettle", "microwave",
                                                                            "light switch"])


def test_chosen_tasks_from_env_or_subtask_names():
    assert chosen_task("SkillKitchenMisaligned-v0", None, False) == KitchenGoal(KITCHEN_MISALIGNED_TASK, True)
    assert chosen_task(None, " microwave , kettle", True) == KitchenGoal(("microwave", "kettle"), True)
    assert chosen_task(None, "microwave,kettle", False).ordered is False
    assert chosen_task(None, None, False) is None
    with pytest.raises(ConfigError, match="SkillKitchen-v0, SkillKitchenMisaligned-v0"):
        chosen_task("SkillPointMaze-v0", None, False)
    with pytest.raises(ConfigError, match="not both"):
        chosen_task("SkillKitchen-v0", "microwave", True)
    with pytest.raises(ConfigError, match="--tasks"):
        chosen_task(None, None, True)


def test_cli_evaluate_prior_on_a_chosen_task_reports_both_counts(tmp_path):
    untrained_model("FrankaKitchen-v1", ("observation",)).save(tmp_path / "prior")
    args = ["evaluate-prior", str(tmp_path / "prior"), "--episodes", "1", "--workers", "1", "--max-steps",
            "6", "--tasks", "microwave,light switch,slide cabinet,hinge cabinet", "--ordered"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for row in ("mean_subtasks_in_order", "mean_subtasks_any_order", "first subtask: none",
                "microwave → light switch → slide cabinet → hinge cabinet (in order)"):
        assert row in result.output


def test_kitchen_rollouts_on_a_chosen_task_count_its_subtasks():
    model = untrained_model("FrankaKitchen-v1", ("observation",))
    model.metadata.env_kwargs = {"tasks_to_complete": ["kettle"]}  # the data's env watched one subtask
    goal = KitchenGoal(("microwave", "kettle"), ordered=True)
    rollouts = evaluate_prior(model, 1, workers=1, max_steps=4, goal=goal)
    assert rollouts.n_tasks == 2 and rollouts.subtasks == rollouts.subtasks_in_order == [0]
    assert set(rollouts.summary()) >= {"mean_subtasks_in_order", "mean_subtasks_any_order"}


def test_cli_unknown_subtask_names_list_the_seven(tmp_path):
    untrained_model("FrankaKitchen-v1", ("observation",)).save(tmp_path / "prior")
    args = ["evaluate-prior", str(tmp_path / "prior"), "--tasks", "microwave,fridge"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "fridge" in str(result.exception)
    assert all(name in str(result.exception) for name in KITCHEN_SUBTASKS)


def test_a_maze_prior_cannot_be_judged_on_a_kitchen_task():
    model = untrained_model("PointMaze_UMaze-v3", ("observation", "desired_goal"))
    with pytest.raises(ConfigError, match="PointMaze_UMaze-v3"):
        evaluate_prior(model, 1, workers=1, max_steps=4, goal=KitchenGoal(("microwave",), False))
