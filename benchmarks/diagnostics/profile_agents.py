"""Where each agent's training loop spends its time on SkillKitchen-v0, one thread, sampled by py-spy.

Run: python benchmarks/diagnostics/profile_agents.py [--prior DIR] [--steps 3000] [--agents cem ssac sac]
An agent may carry loop settings, `NAME:key=value,...` (e.g. `cem:update_every=1`).
Each agent trains in a child process: a warm-up of `--warmup` env steps (not profiled), then py-spy
attaches and samples `--steps` env steps of training with updates on, one evaluation at the end
(10 episodes per 10k steps, the default ratio, scaled to the steps) and one checkpoint; the run's
closing learning-curve plot is left out. Samples are
sorted into the loop's parts by the frames on their stack: evaluation, logging and checkpoints,
updates (replay sampling apart), acting (CEM: planning), the skill env (its decoder apart), replay
writes, and the loop itself. Writes profile_agents.json and profile_agents.md under results/.
Needs py-spy (`pip install py-spy`, in the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).parents[1] / "results"
DEFAULT_PRIOR = RESULTS / "sample_efficiency_kitchen/pretrain/kitchen-scripted-skillplan/prior"
ENV = "SkillKitchen-v0"
EVAL_EPISODES_PER_10K = 10  # LoopConfig's eval_episodes per eval_every

Frame = tuple[str, str]  # (function, file)

# Parts of one training loop, in the order a sample is tested against them: the first whose frame is on
# the stack takes the sample (an evaluation's planning is evaluation, not planning).
PARTS = ("evaluation", "logging & checkpoints", "replay sampling", "updates", "acting / planning",
         "decoder", "env", "replay writes", "loop & other")


def _has(stack: list[Frame], function: str, file: str) -> bool:
    return any(f.rpartition(".")[2] == function and file in path for f, path in stack)


def _in_file(stack: list[Frame], *files: str) -> bool:
    return any(any(name in path for name in files) for _, path in stack)


def part_of(stack: list[Frame]) -> tuple[str, str]:
    """(part, detail) of one sampled stack, root first."""
    if _has(stack, "evaluate", "agents/base.py"):
        return "evaluation", ""
    if (_in_file(stack, "runlog.py", "safetensors") or _has(stack, "save", "agents/base.py")
            or _has(stack, "plot_learning_curve", "agents/base.py")):
        return "logging & checkpoints", ""
    if _has(stack, "update", "skillplan/agents/"):
        if _in_file(stack, "agents/replay.py"):
            return "replay sampling", ""
        if _in_file(stack, "torch/autograd", "torch/_tensor.py"):
            return "updates", "backward"
        if _in_file(stack, "torch/optim"):
            return "updates", "optimizer steps"
        return "updates", "forward and losses"
    if _has(stack, "act", "skillplan/agents/"):
        if _has(stack, "_policy_proposals", "planning.py"):
            return "acting / planning", "policy proposals"
        if _has(stack, "_returns", "planning.py"):
            return "acting / planning", "model rollouts of the samples"
        if _has(stack, "plan", "planning.py"):
            return "acting / planning", "CEM bookkeeping"
        return "acting / planning", "encoder, policy or prior"
    if _has(stack, "__call__", "skill_env.py"):
        return "decoder", ""
    if _has(stack, "step", "skill_env.py") or _in_file(stack, "gymnasium", "mujoco", "skillplan/envs/",
                                                        "/envs/"):
        return "env", ""
    if _has(stack, "observe", "skillplan/agents/"):
        return "replay writes", ""
    return "loop & other", ""


def parse_raw(text: str) -> Counter[tuple[str, str]]:
    """py-spy's raw (collapsed) output, `frame;frame;... count` per line, counted by (part, detail)."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text:
            continue
        stack = []
        for frame in stack_text.split(";"):
            function, _, where = frame.partition(" (")
            stack.append((function.strip(), where.rstrip(")")))
        counts[part_of(stack)] += int(count)
    return counts


def py_spy() -> str | None:
    """The py-spy executable: next to this interpreter (a venv's bin/) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def parse_agent(spec: str) -> tuple[str, dict[str, int | float]]:
    """`NAME:key=value,...` -> (NAME, {key: number})."""
    name, _, settings = spec.partition(":")
    pairs = (item.split("=", 1) for item in settings.split(",") if item)
    return name, {key: float(value) if "." in value else int(value) for key, value in pairs}


def child(spec: str, prior: str, warmup: int, steps: int, raw_out: Path, rate: int) -> None:
    """Train one agent; attach py-spy to this process after the warm-up; write samples and timing."""
    import torch

    import skillplan  # noqa: F401  (registers the skill envs)
    from skillplan.agents import AGENTS, make_agent_env

    torch.set_num_threads(1)
    agent_name, overrides = parse_agent(spec)
    env = make_agent_env(agent_name, ENV, prior)
    cls = AGENTS[agent_name]
    total = warmup + steps
    settings = {"learning_starts": warmup, "eval_every": total, "checkpoint_every": total, "threads": 1,
                "eval_episodes": max(1, round(EVAL_EPISODES_PER_10K * steps / 10_000))}
    if agent_name == "cem":  # plan at the full horizon from the start, as after the ramp
        settings["planner"] = {"horizon_ramp_steps": 0}
    agent = cls(env, cls.config_class.model_validate({**settings, **overrides}))
    spy: dict[str, object] = {}

    def on_step(n: int) -> None:
        if n >= total and "elapsed" not in spy:  # before the once-per-run learning-curve plot
            spy["elapsed"] = time.perf_counter() - spy["start"]
            spy["process"].send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
            spy["process"].wait(timeout=120)
        elif n >= warmup and "process" not in spy:
            spy["process"] = subprocess.Popen(
                [py_spy(), "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", str(rate),
                 "--output", str(raw_out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # py-spy attaches
            spy["start"], spy["steps"] = time.perf_counter(), n

    with tempfile.TemporaryDirectory() as run_dir:
        agent.learn(total, Path(run_dir) / "run", show_progress=False, on_step=on_step)
    timing = {"profiled_env_steps": agent.env_steps - spy["steps"], "profiled_s": spy["elapsed"]}
    raw_out.with_suffix(".timing.json").write_text(json.dumps(timing))


def profile(spec: str, args: argparse.Namespace, scratch: Path) -> dict:
    raw = scratch / f"{spec.replace(':', '_').replace('=', '_').replace(',', '_')}.txt"
    subprocess.run([sys.executable, __file__, "--child", spec, "--prior", str(args.prior),
                    "--warmup", str(args.warmup), "--steps", str(args.steps), "--rate", str(args.rate),
                    "--raw", str(raw)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    counts = parse_raw(raw.read_text())
    timing = json.loads(raw.with_suffix(".timing.json").read_text())
    samples = sum(counts.values())
    parts = {p: sum(n for (q, _), n in counts.items() if q == p) / samples for p in PARTS}
    details = {f"{p}: {d}": n / samples for (p, d), n in sorted(counts.items()) if d}
    return {"share": parts, "detail": details, "samples": samples,
            "env_steps_per_s": timing["profiled_env_steps"] / timing["profiled_s"], **timing}


def markdown(result: dict) -> str:
    agents = list(result["agents"])
    lines = ["# Where the training loop's time goes (SkillKitchen-v0, 1 thread, py-spy)", "",
             f"- command: `{result['command']}`", f"- commit: `{result['commit']}`",
             f"- machine: {result['machine']['cpu']}, {result['machine']['cores']} cores (shared)",
             f"- prior: `{result['prior']}`; {result['steps']} env steps profiled per agent after "
             f"{result['warmup']} of warm-up; evaluation at {EVAL_EPISODES_PER_10K} episodes per 10k steps",
             "", "| part | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
    for part in PARTS:
        lines.append(f"| {part} | " + " | ".join(f"{100 * result['agents'][a]['share'][part]:.1f}%"
                                                  for a in agents) + " |")
    lines.append("| env steps/s while profiled (evaluation included) | " + " | ".join(
        f"{result['agents'][a]['env_steps_per_s']:.1f}" for a in agents) + " |")
    lines += ["", "Within the parts (share of all samples):", ""]
    for a in agents:
        for name, share in result["agents"][a]["detail"].items():
            lines.append(f"- {a}, {name}: {100 * share:.1f}%")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", type=Path, default=DEFAULT_PRIOR)
    parser.add_argument("--agents", nargs="+", default=["cem", "ssac", "sac"])
    parser.add_argument("--warmup", type=int, default=500,
                        help="env steps before updates start (not profiled)")
    parser.add_argument("--steps", type=int, default=3_000, help="profiled env steps per agent")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_agents.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.prior), args.warmup, args.steps, args.raw, args.rate)
        return
    if py_spy() is None:
        raise SystemExit("py-spy is not installed: pip install py-spy (or the project's `bench` extra).")
    from skillplan.provenance import provenance

    source = provenance(["python", *sys.argv])  # the code as it is when the children start
    with tempfile.TemporaryDirectory() as scratch:
        agents = {spec: profile(spec, args, Path(scratch)) for spec in args.agents}
    result = {"env": ENV, "prior": str(args.prior), "warmup": args.warmup, "steps": args.steps,
              "threads": 1, "agents": agents, **source}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
