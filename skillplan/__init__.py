"""skillplan: skill-based, model-based reinforcement learning from offline Minari data."""

__version__ = "0.1.0"

from skillplan.envs.registration import register_skill_envs

register_skill_envs()
