"""The methods the sample-efficiency suite compares: a downstream agent on a pretraining preset's prior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skillplan.errors import ConfigError


@dataclass(frozen=True)
class Method:
    """`agent` trained on the prior pretrained with `preset` (None: flat, no pretraining).

    `cost` ranks the methods by wall time per env step on 2 cores (0: slowest), so a suite can start
    the slow runs first and let the fast ones fill the gaps.
    """

    name: str
    agent: str
    preset: str | None
    paper: str
    cost: int
    settings: tuple[tuple[str, Any], ...] = ()  # agent settings the method implies


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("sac", "sac", None, "flat SAC on low-level actions (Haarnoja et al., 2018)", cost=2),
        Method("spirl", "ssac", "spirl", "SPiRL: SSAC on a skill VAE + prior (Pertsch et al., 2020)", cost=4),
        Method("serla", "ssac", "serla", "SeRLA: SSAC on PU-aligned skills, SDE on replayed skills", cost=3,
               settings=(("sde_eta", 0.1),)),
        Method("skimo", "cem", "skimo", "SkiMo: CEM in a jointly trained skill dynamics model "
               "(Shi et al., 2022)", cost=0),
        Method("skillplan", "cem", "skillplan", "skillplan: CEM as SkiMo, on skills aligned by PU + SDE, "
               "plans priced by the prior, a third of SkiMo's search plus first skills from the prior",
               cost=1, settings=(("plan_prior", True),
                                 ("planner", {"samples": 256, "iterations": 4, "first_skill_samples": 64}))),
    )
}

# The offline data each skill env's priors are pretrained on (both kitchen tasks share it).
ENV_DATASETS: dict[str, str] = {
    "SkillKitchen-v0": "kitchen-scripted",
    "SkillKitchenMisaligned-v0": "kitchen-scripted",
    "SkillPointMaze-v0": "pointmaze-scripted",
}


def check_names(methods: list[str], envs: list[str]) -> None:
    """A `ConfigError` listing the valid names for any unknown method or env."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"Unknown agent(s) {', '.join(unknown)}. Valid: {', '.join(METHODS)}.")
    unknown = [e for e in envs if e not in ENV_DATASETS]
    if unknown:
        raise ConfigError(f"Unknown env(s) {', '.join(unknown)}. Valid: {', '.join(ENV_DATASETS)}.")
