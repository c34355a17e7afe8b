"""Gymnasium registration of the skill environments (done on `import skillplan`, cheaply: entry
points are strings, so nothing heavy is imported until an env is made).

`max_episode_steps` is gymnasium's own `gym.make` argument and limits *skill* steps; the
low-level budget of an episode is `low_level_steps` (280 for kitchen, as in SPiRL/SkiMo).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from skillplan.data.loading import install_generator
from skillplan.envs.tasks import KITCHEN_MISALIGNED_TASK

SKILL_ENVS = ("SkillKitchen-v0", "SkillKitchenMisaligned-v0", "SkillPointMaze-v0")


def _generate(generator: str, **kwargs: Any) -> None:
    from skillplan.envs.generate import generate_dataset  # the demonstrators: imported on first use

    generate_dataset(generator, **kwargs)


def register_skill_envs() -> None:
    """Register the skill envs with gymnasium, and the scripted data generators with the data layer
    (idempotent)."""
    install_generator(_generate)
    if "SkillKitchen-v0" in gym.registry:
        return
    entry = "skillplan.envs.skill_env:"
    gym.register("SkillKitchen-v0", entry + "make_skill_kitchen")
    misaligned = {"tasks": list(KITCHEN_MISALIGNED_TASK)}
    gym.register("SkillKitchenMisaligned-v0", entry + "make_skill_kitchen", kwargs=misaligned)
    gym.register("SkillPointMaze-v0", entry + "make_skill_maze")
