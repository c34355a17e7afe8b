"""One agent setting against the defaults: the same agent, prior and seeds, with and without `--set`.

Run: MINARI_DATASETS_PATH=... python benchmarks/agent_ablation.py --prior PRIOR --agent cem \
         --set plan_prior=true --seeds 0 1 2 --steps 30000 --runs runs/ablation
Each arm and seed trains on SkillKitchen-v0 (one thread, 20 evaluation episodes every 10k env steps)
into RUNS/<agent>-base-s<seed> and RUNS/<agent>-<setting>-s<seed>; runs already there are resumed
or, when finished, only read. `--set` takes KEY=VALUE (VALUE read as YAML; KEY may be dotted, e.g.
planner.samples=256) and may repeat. Prints each seed's curve, the mean over seeds with its 95%
bootstrap CI at every evaluation, and the collapse rate (evaluations below 2 subtasks after a seed
first reached 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from _ablation import evaluations, finished, summarise, train
from _report import report

RESULTS = Path(__file__).parent / "results"


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs as nested agent settings."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, not '{pair}'")
        *sections, name = key.split(".")
        node = settings
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = yaml.safe_load(value)
    return settings


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied, section by section."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", required=True)
    parser.add_argument("--agent", default="cem", choices=["ssac", "cem"])
    parser.add_argument("--set", dest="sets", action="append", required=True, metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--runs", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--planner-bf16", action="store_true",
                        help="CEM plans compiled under bf16, as in the suite")
    parser.add_argument("--read-only", action="store_true", help="report the runs there, train nothing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    base = {"planner": {"precision": "bf16", "compile": True}} if args.planner_bf16 else {}
    label = "-".join(pair.replace("=", "-") for pair in args.sets)
    arms = {"base": base, "set": merge(base, parse_sets(args.sets))}

    result: dict[str, Any] = {"agent": args.agent, "prior": args.prior, "steps": args.steps,
                              "seeds": args.seeds, "set": args.sets}
    for arm, settings in arms.items():
        curves = {}
        for seed in args.seeds:
            run = args.runs / f"{args.agent}-{'base' if arm == 'base' else label}-s{seed}"
            if not args.read_only and not finished(run, args.steps):
                train(args.agent, args.prior, args.steps, {**settings, "seed": seed}, run)
            if (run / "metrics.csv").exists():
                curves[seed] = evaluations(run)
        result |= summarise(arm, curves, args.steps)
    report(result, args.out or RESULTS / f"ablation_{args.agent}_{label}.json")


if __name__ == "__main__":
    main()
