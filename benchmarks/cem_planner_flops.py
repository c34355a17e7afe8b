"""The CEM planner's achieved FLOP/s against the same core's matmul rate, timed in one run.

Run: python benchmarks/cem_planner_flops.py [--prior DIR] [--blocks 5] [--per-block 5] [--threads 1]
A CEM agent on SkillKitchen-v0 with its default planner (512 samples + 25 policy proposals × 6
iterations × horizon 5, no ramp) and task heads plans from reset states. Its FLOPs per decision are
counted by torch's FlopCounterMode (matrix products, 2·M·N·K each); its milliseconds per decision are
timed in blocks that alternate with large square fp32 matmuls (`--matmul-sizes`; the fastest, block by
block, is the core's practical peak) and with a matmul of the planner's own commonest shape (samples ×
[latent + skill] × 256). The median over blocks of planner GFLOP/s ÷ peak GFLOP/s is the figure; bf16
rows are added where the CPU has bf16 units (AVX512-BF16 or AMX).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import torch
from _report import report
from torch.utils.flop_counter import FlopCounterMode

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import CEM, CEMAgentConfig

RESULTS = Path(__file__).parent / "results"
DEFAULT_PRIOR = RESULTS / "sample_efficiency_kitchen/pretrain/kitchen-scripted-skillplan/prior"


def bf16_units() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def matmul(n: int, k: int, m: int, dtype: torch.dtype) -> tuple[Callable[[], object], float]:
    """A timed matmul (n × k) @ (k × m) and its FLOPs."""
    a, b = torch.randn(n, k, dtype=dtype), torch.randn(k, m, dtype=dtype)
    out = torch.empty(n, m, dtype=dtype)
    return (lambda: torch.mm(a, b, out=out)), 2.0 * n * k * m


def time_blocks(fns: dict[str, Callable[[], object]], blocks: int, per_block: int) -> dict[str, list[float]]:
    """Seconds per call of each fn (median within a block), the fns taking turns block by block."""
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            calls = []
            for _ in range(per_block):
                start = time.perf_counter()
                fn()
                calls.append(time.perf_counter() - start)
            seconds[name].append(statistics.median(calls))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", type=Path, default=DEFAULT_PRIOR)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--per-block", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--matmul-sizes", type=int, nargs="+", default=[1024, 2048],
                        help="square matmuls timed; the fastest is the peak")
    parser.add_argument("--out", type=Path, default=RESULTS / "cem_planner_flops.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    env = gym.make("SkillKitchen-v0", prior=str(args.prior))
    config = CEMAgentConfig.model_validate({"threads": args.threads, "planner": {"horizon_ramp_steps": 0}})
    agent = CEM(env, config)
    obs, _ = env.reset(seed=0)
    with torch.inference_mode():
        h0 = agent.model.encode(torch.as_tensor(obs).unsqueeze(0))
    planners = {"fp32": agent.planner}
    dtypes = {"fp32": torch.float32}
    if bf16_units():
        bf16 = config.planner.model_copy(update={"precision": "bf16", "z_bound": agent.bound})
        planners["bf16"] = type(agent.planner)(agent.model, agent.z_dim, bf16,
                                               generator=torch.Generator().manual_seed(0))
        dtypes["bf16"] = torch.bfloat16

    with FlopCounterMode(display=False) as counter:
        agent.planner.plan(h0, step=0)
    flops = counter.get_total_flops()
    latent = agent.model.step[-1].out_features
    fns: dict[str, Callable[[], object]] = {}
    matmul_flops: dict[str, float] = {}
    for name, dtype in dtypes.items():
        fns[f"planner_{name}"] = lambda p=planners[name]: p.plan(h0, step=0)
        for size in args.matmul_sizes:
            key = f"matmul_{size}_{name}"
            fns[key], matmul_flops[key] = matmul(size, size, size, dtype)
        key = f"matmul_planner_shape_{name}"
        fns[key], matmul_flops[key] = matmul(config.planner.samples, latent + agent.z_dim, 256, dtype)
    with torch.inference_mode():
        time_blocks(fns, 1, 2)  # warm-up
        seconds = time_blocks(fns, args.blocks, args.per_block)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    gflops = {name: (flops if name.startswith("planner") else matmul_flops[name]) / median[name] / 1e9
              for name in fns}
    # the peak: the fastest of the large square matmuls, per block
    peak = {name: [max(matmul_flops[f"matmul_{n}_{name}"] / seconds[f"matmul_{n}_{name}"][b]
                       for n in args.matmul_sizes) for b in range(args.blocks)] for name in dtypes}
    per_block_ratio = {name: [flops / s / q for s, q in zip(seconds[f"planner_{name}"], peak[name],
                                                             strict=True)] for name in dtypes}
    ratios = {name: statistics.median(r) for name, r in per_block_ratio.items()}
    # On a busy machine the large matmuls lose their caches to the neighbours and the planner's own
    # shape can run faster than them: the fastest matmul timed is the stricter yardstick.
    fastest = {name: [max(matmul_flops[k] / seconds[k][b] for k in matmul_flops if k.endswith(name))
                      for b in range(args.blocks)] for name in dtypes}
    over_fastest = {name: statistics.median(flops / s / q for s, q in zip(seconds[f"planner_{name}"],
                                                                            fastest[name], strict=True))
                    for name in dtypes}
    result = {
        "planner": config.planner.model_dump(include={"samples", "policy_samples", "iterations", "horizon",
                                                      "elites"}),
        "gflop_per_decision": flops / 1e9,
        "ms_per_decision": {name: 1e3 * median[f"planner_{name}"] for name in dtypes},
        "gflop_per_s": gflops,
        "planner_over_peak": ratios,
        "planner_over_peak_per_block": per_block_ratio,
        "planner_over_fastest_matmul": over_fastest,
        "bf16_units": bf16_units(),
        "peak_gflop_per_s": {name: statistics.median(p) / 1e9 for name, p in peak.items()},
        "matmul_sizes": args.matmul_sizes,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "target_ratio": 0.6,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
