"""End-to-end training speed of each agent: low-level env steps/s while learning, against the raw env.

Run: python benchmarks/agent_env_steps.py [--prior runs/kitchen-scripted/prior] [--steps 4000]
         [--agents ssac ...]
Each agent trains on SkillKitchen-v0 (SAC on its flat task) with updates on from the first step
after a short warm-up; the rate counts collection, updates and planning, not evaluation. The raw
env's steps/s under random actions is timed before the first agent and after each one, and
`share_of_raw` divides each agent's rate by the mean of the two raw timings around it (the issue's
figure), so that a neighbour's load, which changes over minutes, shifts both alike. Read it with
care: random actions flail the arm into more contacts than skills do, so the physics costs differ
(`skill_env_overhead.py` compares like with like).
CEM is also timed in variants (VARIANTS): updating once per skill (`cem_update_every_1`), its default
before SkiMo's rate, and planning compiled, in bf16 where the CPU has bf16 units, as the suite does
(`cem_compiled`), compiled under bf16 also where it is emulated (`cem_compiled_bf16`), and with a
third of the search, 256 samples × 4 iterations plus 64 first skills from the prior, priced by the
prior (`cem_small_search`), also compiled as the suite's skillplan method plans
(`cem_small_search_compiled`). Timing starts 200 env steps after the warm-up, past one-time costs (a
compiled planner's first call).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import report

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import AGENTS, make_agent_env
from skillplan.envs.tasks import make_flat_task

RESULTS = Path(__file__).parent / "results"
ENV = "SkillKitchen-v0"
WARMUP = 500  # env steps of random collection before updates start (not timed)
SETTLE = 200  # env steps after the warm-up, not timed either
# CEM variants timed beside the defaults, by name: (agent, settings)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cem_update_every_1": ("cem", {"update_every": 1}),
    "cem_compiled": ("cem", {"planner": {"precision": "auto", "compile": True}}),
    "cem_compiled_bf16": ("cem", {"planner": {"precision": "bf16", "compile": True}}),
    "cem_small_search": ("cem", {"plan_prior": True, "planner": {"samples": 256, "iterations": 4,
                                                                 "first_skill_samples": 64}}),
    "cem_small_search_compiled": ("cem", {"plan_prior": True, "planner": {
        "samples": 256, "iterations": 4, "first_skill_samples": 64, "precision": "auto", "compile": True}}),
}


def raw_steps_per_s(steps: int) -> float:
    env = make_flat_task(ENV)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def training_steps_per_s(agent_name: str, prior: str, steps: int, overrides: dict[str, Any]) -> float:
    """Env steps/s from SETTLE steps after the warm-up to the last step (the final evaluation excluded)."""
    env = make_agent_env(agent_name, ENV, prior)
    cls = AGENTS[agent_name]
    settings = {"learning_starts": WARMUP, "eval_every": 10**9, "eval_episodes": 1, "threads": 1, **overrides}
    if agent_name == "cem":  # plan at the full horizon from the start, as after the ramp
        settings["planner"] = {**settings.get("planner", {}), "horizon_ramp_steps": 0}
    marks: list[tuple[int, float]] = []
    cls(env, cls.config_class.model_validate(settings)).learn(
        WARMUP + SETTLE + steps, show_progress=False,
        on_step=lambda n: marks.append((n, time.perf_counter())))
    timed = [(n, t) for n, t in marks if n >= WARMUP + SETTLE][:-1]  # the last includes the evaluation
    if len(timed) < 2 or timed[-1][0] == timed[0][0]:
        raise SystemExit(f"--steps {steps} is too few to time {agent_name}; use a few hundred or more")
    (n0, t0), (n1, t1) = timed[0], timed[-1]
    return (n1 - n0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prior", default="runs/kitchen-scripted/prior")
    parser.add_argument("--steps", type=int, default=4_000, help="timed env steps per agent")
    parser.add_argument("--raw-steps", type=int, default=2_000, help="env steps per raw-env timing")
    parser.add_argument("--agents", nargs="+", choices=[*AGENTS, *VARIANTS],
                        help="time only these agents and variants (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_env_steps.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raws = [raw_steps_per_s(args.raw_steps)]
    rates, shares = {}, {}
    runs = {**{name: (name, {}) for name in AGENTS}, **VARIANTS}
    for run, (agent, overrides) in runs.items():
        if args.agents and run not in args.agents:
            continue
        rates[run] = training_steps_per_s(agent, args.prior, args.steps, overrides)
        raws.append(raw_steps_per_s(args.raw_steps))
        shares[run] = rates[run] / statistics.mean(raws[-2:])
    timed = [name for name in AGENTS if name in rates]
    result = {"env": ENV, "raw_env_steps_per_s": statistics.median(raws),
              "env_steps_per_s": {name: rates[name] for name in timed},
              "share_of_raw": {name: shares[name] for name in timed},
              "raw_env_steps_per_s_each": raws, "threads": 1, "timed_steps": args.steps,
              **{run: {"env_steps_per_s": rates[run], "share_of_raw": shares[run]}
                 for run in VARIANTS if run in rates}}
    report(result, args.out)


if __name__ == "__main__":
    main()
