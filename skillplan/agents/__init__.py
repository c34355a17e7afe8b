"""Downstream agents: flat SAC, SSAC (skill-space SAC regularised to the prior), CEM planning."""

from __future__ import annotations

import gymnasium as gym

from skillplan.agents.base import Agent, LoopConfig
from skillplan.agents.cem import CEM, CEMAgentConfig
from skillplan.agents.sac import SAC, SACAgentConfig
from skillplan.agents.ssac import SSAC, SSACConfig
from skillplan.errors import ConfigError, SkillplanError

AGENTS: dict[str, type[Agent]] = {"sac": SAC, "ssac": SSAC, "cem": CEM}

__all__ = ["AGENTS", "CEM", "SAC", "SSAC", "Agent", "CEMAgentConfig", "LoopConfig", "SACAgentConfig",
           "SSACConfig", "make_agent_env"]


def agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise ConfigError(f"Unknown agent '{name}'. Valid agents: {', '.join(AGENTS)}.")
    return AGENTS[name]


def make_agent_env(agent: str, env_id: str, prior: str | None) -> gym.Env:
    """The env an agent trains on: the skill env for skill agents, the flat low-level task for SAC."""
    from skillplan.envs.registration import SKILL_ENVS
    from skillplan.envs.tasks import make_flat_task

    agent_class(agent)
    if env_id not in SKILL_ENVS:
        raise SkillplanError(f"Unknown env '{env_id}'. Valid envs: {', '.join(SKILL_ENVS)}.")
    if agent == "sac":
        return make_flat_task(env_id)
    if prior is None:
        raise ConfigError(f"Agent '{agent}' acts in skill space and needs --prior DIR (a pretrained "
                          "checkpoint, e.g. runs/kitchen-scripted/prior from `skillplan pretrain`).")
    return gym.make(env_id, prior=str(prior))
