"""Shared by the ablation scripts: train one kitchen run, read its evaluations, summarise arms of seeds."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from skillplan.agents import AGENTS, agent_config, make_agent_env
from skillplan.benchmarking.report import collapse_rate, interval


def add_arguments(parser: argparse.ArgumentParser, agent: str, steps: int, runs: str) -> None:
    """The options every ablation takes: prior, agent, seeds, length, run directory, planner, read-only."""
    parser.add_argument("--prior", required=True)
    parser.add_argument("--agent", default=agent, choices=["ssac", "cem"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--runs", type=Path, default=Path(runs))
    parser.add_argument("--planner-bf16", action="store_true",
                        help="CEM plans compiled under bf16, also where the CPU emulates it")
    parser.add_argument("--planner-compiled", action="store_true",
                        help="CEM plans compiled, in bf16 only where the CPU has bf16 units, as in the suite")
    parser.add_argument("--read-only", action="store_true", help="report the runs there, train nothing")
    parser.add_argument("--out", type=Path)


def planner_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The compiled planner under --planner-bf16 or --planner-compiled, else the agent's default."""
    if args.planner_bf16 or args.planner_compiled:
        return {"planner": {"precision": "bf16" if args.planner_bf16 else "auto", "compile": True}}
    return {}


def run_arm(args: argparse.Namespace, settings: dict[str, Any],
            name: str) -> dict[int, list[tuple[int, float]]]:
    """Each seed's run of one arm in RUNS/<agent>-<name>-s<seed>, trained unless finished or
    --read-only; returns the evaluations of the runs that exist."""
    curves = {}
    for seed in args.seeds:
        run = args.runs / f"{args.agent}-{name}-s{seed}"
        if not args.read_only and not finished(run, args.steps):
            train(args.agent, args.prior, args.steps, {**settings, "seed": seed}, run)
        if (run / "metrics.csv").exists():
            curves[seed] = up_to(evaluations(run), args.steps)
    return curves


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


def up_to(rows: list[tuple[int, float]], steps: int) -> list[tuple[int, float]]:
    """The evaluations up to the first at or past `steps` (a run trained further for another study)."""
    ends = [i for i, (step, _) in enumerate(rows) if step >= steps]
    return rows[: ends[0] + 1] if ends else rows


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
