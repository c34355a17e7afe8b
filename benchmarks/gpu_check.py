"""The first thing to run on a GPU: pretrain, train CEM and SSAC, and time a CEM decision, on one device.

Run: python benchmarks/gpu_check.py [--device auto] [--pretrain-steps 500] [--agent-steps 2000]
In a temporary Minari root it generates a small scripted kitchen dataset (`--episodes`), pretrains
the skillplan preset on it, trains CEM and SSAC on SkillKitchen-v0 with that prior (updates from
env step 500), and times CEM decisions of the default planner (512 samples + 25 proposals × 6
iterations × horizon 5). Everything but the environments runs on `--device`; without a GPU, `auto`
runs it all on the CPU and the report says so. The prior is small and weak: this checks that every
part runs on the device and how fast, not how well the agents learn.
Writes results/gpu_check_<device type>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _report import report

RESULTS = Path(__file__).parent / "results"
ENV = "SkillKitchen-v0"
WARMUP = 500  # env steps before the agents start updating


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU (no GPU in use: none is available here)" if not torch.cuda.is_available() else "CPU"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(agent_name: str, prior: Path, steps: int, device: torch.device, threads: int) -> dict:
    from skillplan.agents import AGENTS, make_agent_env

    cls = AGENTS[agent_name]
    settings = {"learning_starts": WARMUP, "eval_every": 10**9, "eval_episodes": 1, "threads": threads}
    env = make_agent_env(agent_name, ENV, str(prior))
    agent = cls(env, cls.config_class.model_validate(settings), device)
    marks: list[tuple[int, float]] = []
    start = time.perf_counter()
    agent.learn(steps, show_progress=False, on_step=lambda n: marks.append((n, time.perf_counter())))
    learning = [(n, t) for n, t in marks if n >= WARMUP][:-1]  # the last mark includes the evaluation
    (n0, t0), (n1, t1) = learning[0], learning[-1]
    return {"agent": agent, "seconds": time.perf_counter() - start,
            "env_steps_per_s_while_learning": (n1 - n0) / (t1 - t0)}


def decision_ms(agent, device: torch.device, decisions: int) -> list[float]:
    """Milliseconds per CEM decision at the full horizon, from a reset state."""
    obs, _ = agent.env.reset(seed=0)
    with torch.inference_mode():
        h0 = agent.model.encode(torch.as_tensor(obs, device=device).unsqueeze(0))
    for _ in range(3):  # warm-up (kernels, allocator)
        agent.planner.plan(h0, step=10**9)
    times = []
    for _ in range(decisions):
        synchronize(device)
        start = time.perf_counter()
        agent.planner.plan(h0, step=10**9)
        synchronize(device)
        times.append(1e3 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--pretrain-steps", type=int, default=500)
    parser.add_argument("--agent-steps", type=int, default=2_000)
    parser.add_argument("--episodes", type=int, default=30, help="general episodes of generated data")
    parser.add_argument("--decisions", type=int, default=50, help="CEM decisions timed")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--out", type=Path, help="default: results/gpu_check_<device type>.json")
    args = parser.parse_args()

    from skillplan.device import resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    print(f"gpu_check on {device} ({device_name(device)})")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(scratch) / "minari")  # leave the user's data alone
        from rich.console import Console

        import skillplan  # noqa: F401  (registers the skill envs)
        from skillplan.config import resolve_config
        from skillplan.envs.generate import generate_dataset
        from skillplan.pretrain import pretrain

        start = time.perf_counter()
        generate_dataset("kitchen-scripted", episodes={"general": args.episodes,
                                                       "expert": max(2, args.episodes // 10)},
                         workers=max(1, min(2, os.cpu_count() or 1)))
        generate_s = time.perf_counter() - start
        steps = args.pretrain_steps
        config = resolve_config("skillplan", overrides={
            "data": {"dataset": "kitchen-scripted"},
            "pretrain": {"steps": steps, "threads": args.threads, "eval_every": steps,
                         "checkpoint_every": steps, "log_every": min(50, steps)}})
        start = time.perf_counter()
        pretrained = pretrain(config, Path(scratch) / "pretrain", console=Console(quiet=True), device=device)
        synchronize(device)
        pretrain_s = time.perf_counter() - start
        print(f"pretrained {steps} steps in {pretrain_s:.1f} s ({pretrained.windows_per_s:,.0f} windows/s)")
        runs = {}
        for name in ("cem", "ssac"):
            runs[name] = train(name, pretrained.checkpoint, args.agent_steps, device, args.threads)
            print(f"{name}: {args.agent_steps} env steps in {runs[name]['seconds']:.1f} s "
                  f"({runs[name]['env_steps_per_s_while_learning']:.1f} env steps/s while learning)")
        latency = decision_ms(runs["cem"]["agent"], device, args.decisions)
    planner = runs["cem"]["agent"].planner.config
    result = {
        "device": str(device), "device_name": device_name(device),
        "cuda_available": torch.cuda.is_available(), "torch": torch.__version__, "threads": args.threads,
        "generate_s": generate_s,
        "pretrain": {"steps": steps, "seconds": pretrain_s, "windows_per_s": pretrained.windows_per_s},
        **{f"{name}_train": {"env_steps": args.agent_steps, "seconds": run["seconds"],
                             "env_steps_per_s_while_learning": run["env_steps_per_s_while_learning"]}
           for name, run in runs.items()},
        "cem_decision_ms": {"median": statistics.median(latency), "min": min(latency),
                            "decisions": len(latency),
                            "planner": planner.model_dump(include={"samples", "policy_samples", "iterations",
                                                                   "horizon", "precision", "compile"})},
        "target_cem_decision_ms_on_h100": 2.0,
    }
    report(result, args.out or RESULTS / f"gpu_check_{device.type}.json")


if __name__ == "__main__":
    main()
