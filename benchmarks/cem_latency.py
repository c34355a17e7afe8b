"""CEM latent-planning latency: ms per decision of `CEMPlanner` against a naive reference loop.

Target: ≤ 10 ms per decision at 512 samples (+25 policy) × 6 iterations × horizon 5 on 2 CPU cores.
The model is a TD-MPC2-style stand-in for the skill model: latent 128, skill 10, and for each of
dynamics, reward, Q and policy an MLP with two hidden layers of 256 (`--hidden`), Linear → LayerNorm
→ ELU. The naive loop and every `CEMPlanner` variant run in one process, interleaved in blocks, so a
busy neighbour slows them alike: the ratio is the robust number, the absolute milliseconds are not.
Each run is appended to the results (`--fresh` starts them over).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from skillplan import provenance
from skillplan.agents.planning import CEMConfig, CEMPlanner

RESULTS = Path(__file__).parent / "results"
LATENT, SKILL = 128, 10
# Our planner's settings under test, by name.
VARIANTS: dict[str, dict] = {
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "compile-fp32": {"precision": "fp32", "compile": True},
    "compile-bf16": {"precision": "bf16", "compile": True},
}


def mlp(in_dim: int, out_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.ELU(),
                         nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ELU(),
                         nn.Linear(hidden, out_dim))


class MLPLatentModel(nn.Module):
    """Dynamics, reward, Q and policy as separate MLPs over [h, z]: a `LatentModel`."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.dynamics = mlp(LATENT + SKILL, LATENT, hidden)
        self.reward_head = mlp(LATENT + SKILL, 1, hidden)
        self.q_head = mlp(LATENT + SKILL, 1, hidden)
        self.policy_head = mlp(LATENT, 2 * SKILL, hidden)

    def next_latent(self, h: Tensor, z: Tensor) -> Tensor:
        return self.dynamics(torch.cat([h, z], -1))

    def reward(self, h: Tensor, z: Tensor) -> Tensor:
        return self.reward_head(torch.cat([h, z], -1)).squeeze(-1)

    def q_value(self, h: Tensor, z: Tensor) -> Tensor:
        return self.q_head(torch.cat([h, z], -1)).squeeze(-1)

    def policy(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.policy_head(h).chunk(2, -1)
        return 2 * torch.tanh(mean), log_std.clamp(-5, 1).exp()


@torch.no_grad()
def naive_plan(model: MLPLatentModel, h0: Tensor, cfg: CEMConfig) -> Tensor:
    """The reference an average implementation would write: torch.distributions, one call per module."""
    horizon, bound = cfg.horizon, cfg.z_bound
    pi_skills = []
    h = h0.repeat(cfg.policy_samples, 1)
    for _ in range(horizon):
        mean, std = model.policy(h)
        z = torch.distributions.Normal(mean, std).sample().clamp(-bound, bound)
        pi_skills.append(z)
        h = model.next_latent(h, z)
    pi_skills = torch.stack(pi_skills)

    mean = torch.zeros(horizon, SKILL)
    std = torch.full((horizon, SKILL), cfg.max_std)
    for _ in range(cfg.iterations):
        samples = torch.distributions.Normal(mean, std).sample((cfg.samples,)).transpose(0, 1)
        skills = torch.cat([samples.clamp(-bound, bound), pi_skills], 1)
        h = h0.repeat(skills.shape[1], 1)
        value = torch.zeros(skills.shape[1])
        for t in range(horizon):
            value = value + cfg.discount**t * model.reward(h, skills[t])
            h = model.next_latent(h, skills[t])
        value = value + cfg.discount**horizon * model.q_value(h, model.policy(h)[0])
        elite_value, idx = torch.topk(value, cfg.elites)
        elites = skills[:, idx]
        score = torch.exp(cfg.temperature * (elite_value - elite_value.max()))
        score = score / score.sum()
        new_mean = (score[None, :, None] * elites).sum(1)
        new_std = torch.sqrt((score[None, :, None] * (elites - new_mean[:, None]) ** 2).sum(1))
        mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
        std = new_std.clamp(cfg.min_std, cfg.max_std)
    return mean


def time_blocks(fns: dict[str, Callable[[], object]], blocks: int, per_block: int) -> dict[str, list[float]]:
    """ms per call of each fn, one sample per call, the fns taking turns block by block."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            for _ in range(per_block):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def machine() -> dict:
    """skillplan's machine record plus the CPU's bf16 units and the load at the start."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    flags = fields.get("flags\t\t", "").split()
    return {**provenance.machine(), "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "load_average_1m_at_start": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256, help="width of the model's two hidden layers")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--per-block", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--out", type=Path, default=RESULTS / "cem_latency.json")
    parser.add_argument("--fresh", action="store_true", help="drop the runs already in --out")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = machine()
    model = MLPLatentModel(args.hidden).eval()
    base = CEMConfig(horizon_ramp_steps=0)
    h0 = torch.randn(LATENT)
    variants = {name: base.model_copy(update=update) for name, update in VARIANTS.items()
                if not (args.no_compile and update.get("compile"))}

    fns: dict[str, Callable[[], object]] = {"naive": lambda: naive_plan(model, h0, base)}
    first_call_s = {}
    for name, cfg in variants.items():
        planner = CEMPlanner(model, SKILL, cfg)
        start = time.perf_counter()
        planner.plan(h0, step=0)
        first_call_s[name] = time.perf_counter() - start
        fns[name] = lambda p=planner: p.plan(h0, step=0)
        # Where the time goes: the model's rollouts alone, as `plan` runs them (iterations × returns).
        z = torch.randn(base.horizon, base.samples, SKILL)
        fns[f"{name}/rollouts-only"] = (
            lambda p=planner, z=z: [p.returns(h0[None], z) for _ in range(base.iterations)]
        )
    with torch.inference_mode():
        time_blocks(fns, 1, 3)  # warm-up
        times = time_blocks(fns, args.blocks, args.per_block)
    ms = {name: statistics.median(t) for name, t in times.items()}
    p10 = {name: statistics.quantiles(t, n=10)[0] for name, t in times.items() if "/" not in name}

    naive = ms["naive"]
    result = {
        "hidden": args.hidden,
        "config": base.model_dump(include={"horizon", "iterations", "samples", "policy_samples", "elites"}),
        "model": f"dynamics, reward, Q, policy MLPs: 2 × {args.hidden} hidden, LayerNorm + ELU; "
                 f"latent {LATENT}, skill {SKILL}",
        "ms_per_decision": {"naive": naive, **{k: ms[k] for k in variants}},
        "ms_per_decision_p10": p10,
        "speedup_vs_naive": {k: naive / ms[k] for k in variants},
        "rollouts_only_ms": {k: ms[f"{k}/rollouts-only"] for k in variants},
        "first_call_s": first_call_s,
        "target_ms": 10.0,
        "decisions_timed_per_variant": args.blocks * args.per_block,
        "machine": {**info, "load_average_1m_at_end": os.getloadavg()[0]},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "command": "python " + " ".join(sys.argv),
    }
    print(f"naive reference: {naive:7.2f} ms/decision (p10 {p10['naive']:.2f})")
    for k in variants:
        print(f"{k:>15}: {ms[k]:7.2f} ms/decision (p10 {p10[k]:.2f}), {naive / ms[k]:4.1f}× naive; rollouts "
              f"alone {ms[f'{k}/rollouts-only']:.2f} ms; first call {first_call_s[k]:.1f} s")
    runs = [] if args.fresh or not args.out.exists() else json.loads(args.out.read_text())["runs"]
    runs.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(runs))


def markdown(runs: list[dict]) -> str:
    """A summary row per run, then the latest run in detail."""
    r, m = runs[-1], runs[-1]["machine"]
    def cell(run: dict, k: str) -> str:
        return f"{run['ms_per_decision'][k]:.1f}" if k in run["ms_per_decision"] else "–"

    summary = "\n".join(
        f"| {i + 1} | {run['machine']['cpu']} | {run['threads']} | {run['hidden']} | {cell(run, 'naive')} | "
        + " | ".join(cell(run, k) for k in VARIANTS)
        + f" | {max(run['speedup_vs_naive'].values()):.1f}× | "
        + f"{run['machine']['load_average_1m_at_start']:.1f} |"
        for i, run in enumerate(runs)
    )
    detail = "\n".join(
        f"| {k} | {v:.2f} | {r['ms_per_decision_p10'][k]:.2f} | {r['speedup_vs_naive'].get(k, 1.0):.1f}× | "
        + (f"{r['rollouts_only_ms'][k]:.2f} | {r['first_call_s'][k]:.1f} |" if k != "naive" else "– | – |")
        for k, v in r["ms_per_decision"].items()
    )
    return (
        "# CEM planning latency\n\n"
        f"{r['config']['samples']} samples + {r['config']['policy_samples']} policy proposals × "
        f"{r['config']['iterations']} iterations × horizon {r['config']['horizon']}, target "
        f"{r['target_ms']:.0f} ms per decision. Median ms per decision over "
        f"{r['decisions_timed_per_variant']} decisions per variant, all variants interleaved in blocks "
        "in one process, so a busy neighbour slows them alike; the ratio to the naive loop is the "
        "robust number.\n\n"
        "## Runs\n\n"
        f"| run | cpu | threads | hidden | naive | {' | '.join(VARIANTS)} | best vs naive | load at start |\n"
        f"|{'---|' * (7 + len(VARIANTS))}\n"
        f"{summary}\n\n"
        "## Latest run\n\n"
        f"Model: {r['model']}.\n\n"
        "| planner | median ms | p10 ms | vs naive (median) | model rollouts alone (ms) | first call (s) |\n"
        "|---|---|---|---|---|---|\n"
        f"{detail}\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores (AMX-BF16: {m['amx_bf16']}, AVX512-BF16: "
        f"{m.get('avx512_bf16', '?')}), torch {r['torch']}, "
        f"{r['threads']} threads (OMP_WAIT_POLICY {r['omp_wait_policy']}); 1-min load average "
        f"{m['load_average_1m_at_start']:.1f} at start, {m['load_average_1m_at_end']:.1f} at end.\n"
        f"Command: `{r['command']}`\n"
    )


if __name__ == "__main__":
    main()
