"""The pretraining data as skill-level replay: each H-step window of a recorded episode becomes one
skill transition (s, z, r, s'), with z the skill posterior's mean and r the task's reward recomputed
from the recorded states. Seeding an agent's replay with them reuses the offline data online, as
SUPE (Wilcoxson et al., 2024) and RLPD (Ball et al., 2023) do.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from skillplan.data.catalog import resolve
from skillplan.data.loading import open_dataset
from skillplan.errors import ConfigError
from skillplan.models.skill_model import SkillModel


@dataclass(frozen=True)
class SkillTransitions:
    """Skill transitions, one row each; `episode_end` marks each recorded episode's last one."""

    obs: np.ndarray
    z: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    episode_end: np.ndarray
    source: np.ndarray  # the dataset id each row came from

    def __len__(self) -> int:
        return len(self.reward)


def task_relabeller(env: gym.Env):
    """The env's `relabel(states) -> (rewards, terminated)`, or a clear error where its task has none."""
    try:
        return env.get_wrapper_attr("relabel")
    except AttributeError:
        raise ConfigError(
            "offline_data needs a task that can recompute its reward from recorded states; the kitchen "
            "tasks (SkillKitchen-v0, SkillKitchenMisaligned-v0) can, this env's task cannot."
        ) from None


@torch.no_grad()
def offline_skill_transitions(env: gym.Env, model: SkillModel) -> SkillTransitions:
    """Every H-step window, from each episode's reset on, of the data `model` was pretrained on, paid
    `env`'s task reward; an episode whose length H does not divide adds the window that ends it. A
    window in which the task ends (all subtasks done) ends its episode, at the state where it ended,
    as the skill env's step does."""
    relabel, horizon = task_relabeller(env), model.metadata.horizon
    bound = float(env.action_space.high.max())
    spec = resolve(model.metadata.dataset)
    rows: dict[str, list] = {k: [] for k in ("obs", "z", "reward", "next_obs", "terminated", "end", "source")}
    for dataset_id in model.metadata.dataset_ids:
        for episode in open_dataset(dataset_id, spec, download=False).iterate_episodes():
            rewards, ended = relabel(episode.observations["observation"])
            flat = model.layout.flatten(episode.observations)
            n = len(episode.actions) // horizon
            if n == 0:
                continue
            starts = [k * horizon for k in range(n)]
            if len(episode.actions) % horizon:  # demonstrations often end mid-window, on their last subtask
                starts.append(len(episode.actions) - horizon)
            windows = (np.stack([flat[t:t + horizon] for t in starts]),
                       np.stack([episode.actions[t:t + horizon] for t in starts]))
            z = model.encode_skill(*windows).mean.clamp(-bound, bound).cpu().numpy()
            for k, start in enumerate(starts):
                done_at = np.flatnonzero(ended[start:start + horizon])
                last = start + (int(done_at[0]) if len(done_at) else horizon - 1)
                rows["obs"].append(flat[start])
                rows["z"].append(z[k])
                rows["reward"].append(float(rewards[start:last + 1].sum()))
                rows["next_obs"].append(flat[last + 1])
                rows["terminated"].append(bool(len(done_at)))
                # the tail window overlaps the one before it: both end a run of consecutive skills
                rows["end"].append(bool(len(done_at)) or k >= n - 1)
                rows["source"].append(dataset_id)
                if len(done_at):
                    break
    return SkillTransitions(
        obs=np.asarray(rows["obs"], dtype=np.float32), z=np.asarray(rows["z"], dtype=np.float32),
        reward=np.asarray(rows["reward"], dtype=np.float32),
        next_obs=np.asarray(rows["next_obs"], dtype=np.float32),
        terminated=np.asarray(rows["terminated"]), episode_end=np.asarray(rows["end"]),
        source=np.asarray(rows["source"]),
    )
