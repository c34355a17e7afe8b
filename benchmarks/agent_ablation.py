"""One agent setting against the defaults: the same agent, prior and seeds, with and without `--set`.

Run: MINARI_DATASETS_PATH=... python benchmarks/agent_ablation.py --prior PRIOR --agent cem \
         --set plan_prior=true --seeds 0 1 2 --steps 30000 --runs runs/ablation
Each arm and seed trains on SkillKitchen-v0 (one thread, 20 evaluation episodes every 10k env steps)
into RUNS/<agent>-base-s<seed> and RUNS/<agent>-<setting>-s<seed>; runs already there are resumed
or, when finished, only read. `--base-set` applies to both arms (the base arm is then named after
it). `--set` takes KEY=VALUE (VALUE read as YAML; KEY may be dotted, e.g.
planner.samples=256) and may repeat. Prints each seed's curve, the mean over seeds with its 95%
bootstrap CI at every evaluation, and the collapse rate (evaluations below 2 subtasks after a seed
first reached 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from _ablation import add_arguments, planner_settings, run_arm, summarise
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
    add_arguments(parser, agent="cem", steps=30_000, runs="runs/ablation")
    parser.add_argument("--set", dest="sets", action="append", required=True, metavar="KEY=VALUE")
    parser.add_argument("--base-set", dest="base_sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting both arms share (the base arm is then named after it)")
    args = parser.parse_args()
    base = merge(planner_settings(args), parse_sets(args.base_sets))
    base_label = label(args.base_sets) or "base"
    set_label = label(args.base_sets + args.sets)
    arms = {"base": (base, base_label), "set": (merge(base, parse_sets(args.sets)), set_label)}

    result: dict[str, Any] = {"agent": args.agent, "prior": args.prior, "steps": args.steps,
                              "seeds": args.seeds, "base_set": args.base_sets, "set": args.sets}
    for arm, (settings, name) in arms.items():
        result |= summarise(arm, run_arm(args, settings, name), args.steps)
    report(result, args.out or RESULTS / f"ablation_{args.agent}_{set_label}.json")


def label(pairs: list[str]) -> str:
    """A run-directory name for KEY=VALUE pairs."""
    return "-".join(pair.replace("=", "-") for pair in pairs)


if __name__ == "__main__":
    main()
