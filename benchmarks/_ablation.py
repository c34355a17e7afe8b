"""Shared by the ablation scripts: train one kitchen run, read its evaluations, summarise arms of seeds."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from skillplan.agents import AGENTS, agent_config, make_agent_env
from skillplan.benchmarking.report import collapse_rate, interval


def train(agent: str, prior: str, steps: int, settings: dict[str, Any], run: Path) -> None:
    """One SkillKitchen-v0 run to `steps` (one thread, 20 evaluation episodes every 10k env steps),
    resumed if `run` holds a checkpoint."""
    config = agent_config(agent, {"threads": 1, "eval_every": 10_000, "eval_episodes": 20, **settings})
    env = make_agent_env(agent, "SkillKitchen-v0", prior)
    AGENTS[agent](env, config).learn(steps, run, resume=(run / "agent").exists(), show_progress=False)


def evaluations(run: Path) -> list[tuple[int, float]]:
    """(env steps, mean subtasks) at each evaluation of a run."""
    with (run / "metrics.csv").open() as f:
        return [(int(float(r["step"])), float(r["eval/subtasks"]))
                for r in csv.DictReader(f) if r.get("eval/subtasks")]


def finished(run: Path, steps: int) -> bool:
    """Whether the run in `run` has evaluated at `steps` (its last step)."""
    rows = evaluations(run) if (run / "metrics.csv").exists() else []
    return bool(rows) and rows[-1][0] >= steps


def summarise(arm: str, seeds: dict[int, list[tuple[int, float]]], steps: int) -> dict[str, Any]:
    """One arm's curves per seed, mean with 95% bootstrap CI where every seed evaluated, collapse rate
    and the mean of the evaluations after 30% of `steps`."""
    grid = sorted({round(step, -3) for rows in seeds.values() for step, _ in rows})
    by_step = {g: [v for rows in seeds.values() for s, v in rows if round(s, -3) == g] for g in grid}
    late = [v for rows in seeds.values() for s, v in rows if s > steps * 0.3]
    return {
        f"{arm}_per_seed": {seed: [v for _, v in rows] for seed, rows in seeds.items()},
        f"{arm}_mean_ci": {g: interval(np.array(v), "mean") for g, v in by_step.items()
                           if len(v) == len(seeds)},
        f"{arm}_collapse": collapse_rate(
            {seed: [{"env_steps": s, "subtasks": v} for s, v in rows] for seed, rows in seeds.items()}),
        f"{arm}_mean_after_30pct": float(np.mean(late)) if late else None,
    }
