"""Rollout videos: MP4s through gymnasium's RecordVideo, frames captioned with the skill and subtasks.

MuJoCo renders offscreen through EGL (needs a GPU) or OSMesa (software, needs libosmesa6);
`choose_mujoco_gl` picks one that works unless MUJOCO_GL is already set. In software, shadows
and reflections are switched off: they make a kitchen frame about 7× slower
(benchmarks/results/video_render.json).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo

from skillplan.envs.base import make_base_env
from skillplan.errors import ConfigError, SkillplanError

# Opens an 8×8 offscreen context with the MUJOCO_GL the probe process was given.
_PROBE = "import mujoco; context = mujoco.GLContext(8, 8); context.make_current(); context.free()"


def gpu_present() -> bool:
    """Whether this machine shows a GPU device (NVIDIA, or a DRM render node) that EGL could use."""
    return Path("/dev/nvidiactl").exists() or any(Path("/dev/dri").glob("renderD*"))


def _renders(backend: str) -> bool:
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:  # in a child process: a broken GL driver may crash rather than raise
        return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                              timeout=120).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def choose_mujoco_gl() -> str:
    """Set MUJOCO_GL for offscreen rendering unless it is set: EGL with a GPU, else OSMesa."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    tried = (["egl"] if gpu_present() else []) + ["osmesa"]
    for backend in tried:
        if _renders(backend):
            os.environ["MUJOCO_GL"] = backend
            return backend
    raise SkillplanError(
        f"MuJoCo can't render offscreen on this machine (tried {' and '.join(tried)}). Videos need "
        "OSMesa without a GPU: install the libosmesa6 package (`sudo apt-get install -y libosmesa6` on "
        "Debian/Ubuntu) and run again, or set MUJOCO_GL to a backend that works here."
    )


def prepare_video_dir(path: Path) -> Path:
    """Check, before any episode runs, that videos can be written into `path` and rendered here."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"Can't write videos into '{path}': {exc.strerror or exc}. Choose a --video "
                          "directory you can write to.") from None
    if importlib.util.find_spec("moviepy") is None:
        raise ConfigError("--video needs the 'moviepy' package (gymnasium's RecordVideo writes MP4s with "
                          "it). Install it with `pip install 'skillplan[video]'`.")
    choose_mujoco_gl()
    return path


def caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` in white on a black band along its top edge."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, frame.shape[0] // 32))
    bottom = draw.multiline_textbbox((6, 4), text, font=font)[3]
    draw.rectangle((0, 0, frame.shape[1], bottom + 4), fill=(0, 0, 0))
    draw.multiline_text((6, 4), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


class Captions(gym.Wrapper):
    """Captions each rendered frame with the skill being run (every `horizon` steps a new one) and,
    in the kitchen, the subtasks completed so far (and the task's count, where a task counts them)."""

    def __init__(self, env: gym.Env, horizon: int | None) -> None:
        super().__init__(env)
        self.horizon = horizon
        self._steps, self._info = 0, {}

    def reset(self, **kwargs) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._steps, self._info = 0, info
        return obs, info

    def step(self, action) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps, self._info = self._steps + 1, info
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        return caption(self.env.render(), self.text())

    def text(self) -> str:
        lines = [f"step {self._steps}"]
        if self.horizon:
            lines[0] += f"   skill {max(self._steps - 1, 0) // self.horizon}"
        if "episode_task_completions" in self._info:
            done = list(self._info["episode_task_completions"])
            lines.append("done: " + (", ".join(done) if done else "nothing yet"))
        if "subtasks_completed" in self._info:
            lines[0] += f"   task: {self._info['subtasks_completed']} subtask(s)"
        return "\n".join(lines)


def recorded(env: gym.Env, video_dir: Path, episodes: int | None, horizon: int | None, prefix: str
             ) -> gym.Env:
    """`env` (made with render_mode="rgb_array") recording its first `episodes` episodes (None: all)
    as MP4s named PREFIX-episode-N.mp4."""
    if os.environ.get("MUJOCO_GL") == "osmesa":
        model = env.unwrapped.model
        model.light_castshadow[:] = 0
        model.mat_reflectance[:] = 0
    return RecordVideo(Captions(env, horizon), str(video_dir), name_prefix=prefix, disable_logger=True,
                       episode_trigger=lambda i: episodes is None or i < episodes)


def make_recorded_env(env_id: str, video_dir: Path, episodes: int | None, horizon: int | None, prefix: str,
                      **kwargs) -> gym.Env:
    """A dataset env (see `make_base_env`) recording its first `episodes` episodes."""
    env = make_base_env(env_id, render_mode="rgb_array", **kwargs)
    return recorded(env, video_dir, episodes, horizon, prefix)


def record_agent_env(env: gym.Env, video_dir: Path, episodes: int, prefix: str) -> gym.Env:
    """A fresh copy of an agent's env (from its spec) that records its first `episodes` episodes.

    A skill env records under its skill wrapper, so the video holds every low-level step.
    """
    from skillplan.envs.skill_env import SkillWrapper

    if env.spec is None:
        raise ConfigError("This agent's env has no spec to make a rendering copy of; videos need one.")
    env = gym.make(env.spec, render_mode="rgb_array")
    inner = env
    while isinstance(inner, gym.Wrapper) and not isinstance(inner, SkillWrapper):
        inner = inner.env
    if isinstance(inner, SkillWrapper):
        inner.env = recorded(inner.env, video_dir, episodes, inner.horizon, prefix)
        return env
    return recorded(env, video_dir, episodes, None, prefix)
