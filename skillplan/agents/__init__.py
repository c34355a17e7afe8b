"""Downstream agents: flat SAC, SSAC (skill-space SAC regularised to the prior), CEM planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml

from skillplan.agents.base import Agent, LoopConfig, read_agent_files
from skillplan.agents.cem import CEM, CEMAgentConfig
from skillplan.agents.sac import SAC, SACAgentConfig
from skillplan.agents.ssac import SSAC, SSACConfig
from skillplan.config import validated
from skillplan.errors import ConfigError, SkillplanError
from skillplan.io import atomic_write_text

AGENTS: dict[str, type[Agent]] = {"sac": SAC, "ssac": SSAC, "cem": CEM}
RUN_FILE = "run.yaml"

__all__ = ["AGENTS", "CEM", "SAC", "SSAC", "Agent", "CEMAgentConfig", "LoopConfig", "SACAgentConfig",
           "SSACConfig", "agent_config", "load_agent", "make_agent_env", "write_run_file"]


def agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise ConfigError(f"Unknown agent '{name}'. Valid agents: {', '.join(AGENTS)}.")
    return AGENTS[name]


def load_agent(path: Path, device: torch.device | str = "cpu") -> Agent:
    """The agent saved in `path` (an agent directory), whichever kind it is, onto `device`."""
    _, meta = read_agent_files(Path(path))
    return agent_class(meta["agent"]).load(path, device=device)


def agent_config(agent: str, settings: dict[str, Any], source: Path | None = None) -> LoopConfig:
    """`agent`'s config from `settings`, each section merged key by key onto the agent's defaults.

    Unknown keys and bad values raise one `ConfigError` naming them; `source` is the file they came from.
    """
    return validated(agent_class(agent).config_class, settings, name=agent, source=source)


def write_run_file(out: Path, *, env: str, prior: Path | None, agent: str, steps: int,
                   config: LoopConfig) -> None:
    """`out/run.yaml`: what a training run runs, its agent config resolved down to every default."""
    run = {"env": env, "prior": str(prior) if prior else None, "agent": agent, "steps": steps,
           "config": config.model_dump(mode="json")}
    atomic_write_text(Path(out) / RUN_FILE, yaml.safe_dump(run, sort_keys=False))


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
