"""The skill model and its parts: VAE, prior, skill dynamics, PU networks, Gaussians."""

from skillplan.models.distributions import DiagGaussian
from skillplan.models.skill_model import SkillModel

__all__ = ["DiagGaussian", "SkillModel"]
