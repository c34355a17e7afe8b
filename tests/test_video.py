"""Rollout videos: MP4s of the right frames, captions, offscreen GL choice, and bad --video input."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

from skillplan import video
from skillplan.cli.main import app
from skillplan.envs.base import make_base_env
from skillplan.errors import ConfigError, SkillplanError
from skillplan.evaluation import evaluate_prior
from tests.test_evaluate_prior import untrained_model

MAZE_KEYS = ("observation", "desired_goal")


@pytest.fixture
def renders():
    """Skip where videos can't be made: no moviepy, or no offscreen GL (`apt-get install libosmesa6`)."""
    pytest.importorskip("moviepy")
    try:
        video.choose_mujoco_gl()
    except SkillplanError as exc:
        pytest.skip(str(exc))


def read_frames(path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path)


def test_prior_rollouts_record_a_short_maze_video(renders, tmp_path):
    model = untrained_model("PointMaze_UMaze-v3", MAZE_KEYS)
    evaluate_prior(model, 1, workers=1, max_steps=12, video_dir=tmp_path / "videos")
    (path,) = (tmp_path / "videos").glob("*.mp4")
    assert path.name == "prior-episode-0.mp4"
    env = make_base_env("PointMaze_UMaze-v3", render_mode="rgb_array")
    env.reset(seed=0)
    frames = read_frames(path)
    assert frames.shape[1:] == env.render().shape
    assert frames.shape[0] in (12, 13)  # the reset state and 12 steps (moviepy may round the last off)
    assert frames[:, :10].mean() < 40 and frames[:, 40:].mean() > 40  # the caption's black band, the maze


def test_a_skill_env_records_every_low_level_step(renders, tmp_path):
    untrained_model("PointMaze_Large-v3", MAZE_KEYS).save(tmp_path / "prior")
    env = gym.make("SkillPointMaze-v0", prior=str(tmp_path / "prior"), low_level_steps=8)
    recording = video.record_agent_env(env, tmp_path / "videos", 1, "ssac")
    recording.reset(seed=0)
    done, skills = False, 0
    while not done:
        *_, terminated, truncated, _ = recording.step(recording.action_space.sample())
        done, skills = terminated or truncated, skills + 1
    recording.close()
    assert skills == 2  # two skills of H = 4 steps
    assert read_frames(tmp_path / "videos" / "ssac-episode-0.mp4").shape[0] in (8, 9)  # not 2 or 3


class KitchenLike(gym.Env):
    """Steps report the kitchen's completed subtasks and a task's count; renders a grey frame."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))
    render_mode = "rgb_array"

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        done = ["microwave", "kettle"][: self.t // 3]
        return np.zeros(1, np.float32), 0.0, False, False, {"episode_task_completions": done,
                                                            "subtasks_completed": len(done)}

    def render(self):
        return np.full((96, 128, 3), 128, np.uint8)


def test_kitchen_captions_say_the_skill_and_the_subtasks_done():
    env = video.Captions(KitchenLike(), horizon=4)
    env.reset()
    assert env.text() == "step 0   skill 0"
    for _ in range(6):
        env.step(np.zeros(1))
    assert env.text() == "step 6   skill 1   task: 2 subtask(s)\ndone: microwave, kettle"
    frame = env.render()
    assert frame.shape == (96, 128, 3) and frame.dtype == np.uint8
    assert (frame[:4] == 0).all() and (frame[-10:] == 128).all()  # a black band on top, the rest kept
    assert (frame[:20] > 200).any()  # white text in it


def test_an_unwritable_video_dir_is_refused_before_any_episode(tmp_path, monkeypatch):
    untrained_model("PointMaze_UMaze-v3", MAZE_KEYS).save(tmp_path / "prior")
    (tmp_path / "file").write_text("")
    monkeypatch.setattr("skillplan.evaluation.evaluate_prior", lambda *a, **k: pytest.fail("an episode ran"))
    bad = tmp_path / "file" / "videos"
    for args in (["evaluate-prior", str(tmp_path / "prior")], ["evaluate", str(tmp_path / "no-run")]):
        result = CliRunner().invoke(app, [*args, "--video", str(bad)])
        assert isinstance(result.exception, ConfigError), result.output
        assert f"Can't write videos into '{bad}'" in str(result.exception)


def test_videos_without_moviepy_name_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    missing = {"moviepy"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name))
    with pytest.raises(ConfigError, match=r"pip install 'skillplan\[video\]'"):
        video.prepare_video_dir(tmp_path)


def test_without_a_working_gl_backend_the_error_names_libosmesa6(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(video, "_renders", lambda backend: False)
    with pytest.raises(SkillplanError, match=r"apt-get install -y libosmesa6"):
        video.choose_mujoco_gl()


def test_gl_backend_is_egl_with_a_gpu_and_osmesa_without(monkeypatch):
    monkeypatch.setattr(video, "_renders", lambda backend: True)
    for gpu, expected in ((True, "egl"), (False, "osmesa")):
        monkeypatch.delenv("MUJOCO_GL", raising=False)
        monkeypatch.setattr(video, "gpu_present", lambda gpu=gpu: gpu)
        assert video.choose_mujoco_gl() == expected
    monkeypatch.setattr(video, "_renders", lambda backend: backend == "osmesa")  # EGL broken
    monkeypatch.setattr(video, "gpu_present", lambda: True)
    monkeypatch.delenv("MUJOCO_GL")
    assert video.choose_mujoco_gl() == "osmesa"
    monkeypatch.setenv("MUJOCO_GL", "glfw")  # the user's choice stands
    assert video.choose_mujoco_gl() == "glfw"
