"""Benchmark the scripted FrankaKitchen-v1 demonstrator: success rates, expert completion, speed.

Measures, per subtask, the success rate and mean steps to success from the reset state and after
a random other subtask (at the expert data's action noise, and at the general data's); the
expert sequence's full-completion rate within 280 steps; and the env steps/s of scripted
episode generation in one process and with two worker processes.
Writes benchmarks/results/scripted_kitchen.{json,md}.

    python benchmarks/scripted_kitchen.py [--quick] [--attempts N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from skillplan.envs.scripted.kitchen import (
    DEMONSTRATOR,
    EXPERT_NOISE,
    EXPERT_SEQUENCE,
    GENERAL_NOISE,
    SUBTASKS,
    rollout,
)

RESULTS = Path(__file__).parent / "results"
EXPERT_STEPS = 280  # the expert task's evaluation horizon (FrankaKitchen-v1's default)


def _last_task(pairs: list[tuple[int, list[str]]], noise: float) -> list[int | None]:
    """Run each (seed, task sequence); steps its last task took to succeed, None on failure."""
    env = DEMONSTRATOR.make_env("general")
    out = []
    for seed, tasks in pairs:
        last = rollout(env, seed, tasks, np.random.default_rng(seed), noise).attempts[-1]
        ok = last.task == tasks[-1] and last.done_at is not None
        out.append(last.done_at - last.start if ok else None)
    env.close()
    return out


def primitive_table(attempts: int, noise: float) -> dict[str, dict[str, float]]:
    """Success rate and mean steps to success per subtask, from reset and after another one.

    Attempt k of subtask i uses seed 1000 i + k; "after" draws the preceding subtask uniformly
    from the other six with that seed (its own success is not required).
    """
    table = {}
    for i, task in enumerate(SUBTASKS):
        seeds = [1000 * i + k for k in range(attempts)]
        others = [t for t in SUBTASKS if t != task]
        first = [others[np.random.default_rng(s).integers(len(others))] for s in seeds]
        row = {}
        for name, pairs in (
            ("reset", [(s, [task]) for s in seeds]),
            ("after", [(s, [f, task]) for s, f in zip(seeds, first, strict=True)]),
        ):
            steps = _last_task(pairs, noise)
            done = [n for n in steps if n is not None]
            row[f"{name}_success"] = len(done) / len(steps)
            row[f"{name}_steps"] = float(np.mean(done)) if done else float("nan")
        table[task] = row
        print(f"noise {noise} {task:14s} " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()))
    return table


def expert_completion(seeds: int) -> dict[str, float]:
    """How often the expert sequence completes all four subtasks within EXPERT_STEPS."""
    env = DEMONSTRATOR.make_env("expert")
    counts, finish = [], []
    for seed in range(seeds):
        run = rollout(env, seed, EXPERT_SEQUENCE, np.random.default_rng(seed), EXPERT_NOISE)
        done = [a.done_at for a in run.attempts if a.done_at is not None]
        counts.append(sum(d <= EXPERT_STEPS for d in done))
        if len(done) == len(EXPERT_SEQUENCE):
            finish.append(max(done))
    env.close()
    return {
        "seeds": seeds,
        "full_completion_rate": float(np.mean([c == len(EXPERT_SEQUENCE) for c in counts])),
        "mean_subtasks_completed": float(np.mean(counts)),
        "mean_steps_to_complete": float(np.mean(finish)) if finish else float("nan"),
    }


_ENVS: dict = {}  # one env per kind, per process


def _generate(job: tuple[str, int]) -> int:
    """Generate one episode with this process's env for its kind; return its length."""
    kind, seed = job
    if kind not in _ENVS:
        warnings.filterwarnings("ignore")  # gymnasium's passive checker, robotics notices
        _ENVS[kind] = DEMONSTRATOR.make_env(kind)
    return len(DEMONSTRATOR.episode(_ENVS[kind], seed, kind).actions)


def generation_speed(episodes: int) -> dict[str, float]:
    """Env steps/s of scripted general-episode generation: one process, then two workers; and
    of bare env stepping for reference."""
    jobs = [("general", seed) for seed in range(episodes)]
    _generate(jobs[0])  # build the env outside the timing
    start = time.perf_counter()
    steps = sum(map(_generate, jobs))
    single = steps / (time.perf_counter() - start)
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_generate, [("general", 0)] * 2)  # start both workers' envs
        start = time.perf_counter()
        steps = sum(pool.imap_unordered(_generate, jobs))
        double = steps / (time.perf_counter() - start)
    env = DEMONSTRATOR.make_env("general")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(1000):
        env.step(np.zeros(9))
    raw = 1000 / (time.perf_counter() - start)
    env.close()
    return {"raw_env_steps_per_s": raw, "single_process": single, "two_workers": double}


def write_results(results: dict, command: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scripted_kitchen.json").write_text(json.dumps(results, indent=2) + "\n")
    e, g = results["expert"], results["generation"]
    lines = [
        "# Scripted FrankaKitchen-v1 demonstrator",
        "",
        f"Command: `{command}`",
        "",
        f"{results['attempts']} attempts per cell, each with its own seed; 'after' = preceded "
        "by a random other subtask (whose own success is not required). Steps: mean steps to "
        "success, counting the primitive's approach. Action noise: Gaussian, on the arm joints.",
        "",
    ]
    for noise, table in results["primitives"].items():
        lines += [
            f"## Action noise std {noise}",
            "",
            "| subtask | success from reset | steps | success after another | steps |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {task} | {row['reset_success']:.0%} | {row['reset_steps']:.0f} "
            f"| {row['after_success']:.0%} | {row['after_steps']:.0f} |"
            for task, row in table.items()
        ]
        lines.append("")
    lines += [
        "## Expert sequence and speed",
        "",
        f"Expert sequence ({', '.join(EXPERT_SEQUENCE)}), noise {EXPERT_NOISE}, {e['seeds']} "
        f"seeds: all four within {EXPERT_STEPS} steps in {e['full_completion_rate']:.0%}; mean "
        f"subtasks completed {e['mean_subtasks_completed']:.2f}; mean steps to complete all "
        f"{e['mean_steps_to_complete']:.0f}.",
        "",
        f"Generation of general episodes, env steps/s: single process "
        f"{g['single_process']:.0f}, two worker processes {g['two_workers']:.0f}; bare env "
        f"stepping {g['raw_env_steps_per_s']:.0f}. Machine: {results['machine']}.",
        "",
    ]
    (RESULTS / "scripted_kitchen.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 attempts and 5 expert seeds")
    parser.add_argument("--attempts", type=int, default=20, help="attempts per table cell")
    args = parser.parse_args()
    attempts = 5 if args.quick else args.attempts
    warnings.filterwarnings("ignore")  # gymnasium's passive checker, robotics notices
    load = os.getloadavg()[0]
    results = {
        "attempts": attempts,
        "primitives": {
            str(noise): primitive_table(attempts, noise) for noise in (EXPERT_NOISE, GENERAL_NOISE)
        },
        "expert": expert_completion(attempts),
        "generation": generation_speed(4 if args.quick else 20),
        "machine": f"{platform.machine()}, {mp.cpu_count()} cores, load average {load:.1f} "
        "at the start (other jobs share it)",
    }
    print(json.dumps({k: results[k] for k in ("expert", "generation")}, indent=2))
    write_results(results, " ".join(["python benchmarks/scripted_kitchen.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
