"""Skill-wrapper overhead: SkillKitchen-v0 against raw task-env stepping, same low-level steps, one run.

Target (issue 5): the skill wrapper costs ≤ 5% over raw env stepping. Two measurements, both in CPU
time of this process (`time.process_time`, one thread), so time the host gives to other processes
doesn't count:

- in-run (the headline): the skill env's whole step time over the time spent inside its inner
  env's `step`, in the same stepping. Nothing differs between the two but the wrapper's work.
- paired: a separate raw env replays exactly the actions the skill env's decoder produced
  (MuJoCo's cost depends on the actions: saturated ones hit joint limits and take longer), timed
  in interleaved pairs. It includes gym.make's wrappers, but on a shared host MuJoCo's own
  run-to-run spread (±10% per pair here) swamps a few-percent difference.

The prior has the default `skillplan` architecture with random weights.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from _report import report
from minari.serialization import serialize_space

import skillplan
from skillplan.checkpoint import SkillMetadata
from skillplan.config import resolve_config
from skillplan.envs.skill_env import SkillWrapper
from skillplan.envs.tasks import make_kitchen_task
from skillplan.models.skill_model import SkillModel

RESULTS = Path(__file__).parent / "results"


def kitchen_prior(path: Path) -> None:
    """A default-architecture skill model with FrankaKitchen-v1's spaces, saved as a checkpoint."""
    env = make_kitchen_task()
    config = resolve_config("skillplan")
    meta = SkillMetadata(
        dataset="kitchen-scripted", dataset_ids=[], fingerprint="benchmark", env_id="FrankaKitchen-v1",
        env_kwargs={}, observation_space=json.loads(serialize_space(env.observation_space)),
        action_space=json.loads(serialize_space(env.action_space)), obs_keys=["observation"], obs_dim=59,
        act_dim=9, horizon=config.model.horizon, z_dim=config.model.z_dim, obs_mean=[0.0] * 59,
        obs_std=[1.0] * 59, act_center=[0.0] * 9, act_scale=[1.0] * 9, act_bounded=True,
        version=skillplan.__version__,
    )
    SkillModel(config, meta).save(path)


class ActionRecorder(gym.Wrapper):
    """Keeps the low-level actions a skill env executes (used in an untimed pass only)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action))
        return self.env.step(action)


class InnerStepTimer(gym.Wrapper):
    """Adds up the CPU time spent inside the wrapped env's `step`: the raw stepping a skill env does."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seconds = 0.0

    def step(self, action):
        start = time.process_time()
        result = self.env.step(action)
        self.seconds += time.process_time() - start
        return result


def skills(steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps // 10, 10)).astype(np.float32)


def decoded_actions(prior: Path, steps: int, seed: int) -> list[np.ndarray]:
    recorder = ActionRecorder(make_kitchen_task(max_episode_steps=10**9))
    env = SkillWrapper(recorder, str(prior))
    env.reset(seed=seed)
    for z in skills(steps, seed):
        env.step(z)
    return recorder.actions


def time_raw(actions: list[np.ndarray], seed: int) -> float:
    env = make_kitchen_task(max_episode_steps=10**9)
    env.reset(seed=seed)
    start = time.process_time()
    for action in actions:
        env.step(action)
    return time.process_time() - start


def time_skill(prior: Path, steps: int, seed: int) -> float:
    env = gym.make("SkillKitchen-v0", prior=str(prior), low_level_steps=10**9)
    env.reset(seed=seed)
    start = time.process_time()
    for z in skills(steps, seed):
        env.step(z)
    return time.process_time() - start


def in_run_overhead(prior: Path, steps: int, seed: int) -> float:
    """The skill env's step time over its inner env's, in one stepping, minus 1."""
    timer = InnerStepTimer(make_kitchen_task(max_episode_steps=10**9))
    env = SkillWrapper(timer, str(prior))
    env.reset(seed=seed)
    start = time.process_time()
    for z in skills(steps, seed):
        env.step(z)
    return (time.process_time() - start) / timer.seconds - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2_000, help="low-level steps per timing")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved raw/skill timing pairs")
    parser.add_argument("--out", type=Path, default=RESULTS / "skill_env_overhead.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        prior = Path(tmp) / "prior"
        kitchen_prior(prior)
        time_skill(prior, 100, 0)  # warm-up: imports, first-call allocations
        raw, skill, in_run = [], [], []
        for i in range(args.repeats):  # interleaved, so a busy neighbour hits both alike
            raw.append(time_raw(decoded_actions(prior, args.steps, i), i))
            skill.append(time_skill(prior, args.steps, i))
            in_run.append(in_run_overhead(prior, args.steps, i))
    ratios = np.array(skill) / np.array(raw)
    result = {
        "overhead_in_run_median": float(np.median(in_run)),
        "overhead_in_run_per_repeat": [round(r, 4) for r in in_run],
        "raw_steps_per_s": args.steps / float(np.median(raw)),
        "skill_env_low_level_steps_per_s": args.steps / float(np.median(skill)),
        "overhead_paired_median": float(np.median(ratios) - 1),
        "overhead_paired_per_repeat": [round(float(r - 1), 4) for r in ratios],
        "target_overhead": 0.05,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
