"""Offline data as replay, on and off: the same agent, prior and seeds, with `offline_data` false and true.

Run: MINARI_DATASETS_PATH=... python benchmarks/offline_replay_ablation.py --prior PRIOR --agent ssac \
         --seeds 0 1 2 --steps 100000 --runs runs/offline-ablation
Each (mode, seed) trains with `skillplan train`'s defaults for the agent (one thread, 20 evaluation
episodes every 10k env steps) into RUNS/<agent>-<mode>-s<seed>; runs already there are resumed or, when
finished, only read. Prints each seed's curve, the mean over seeds with its 95% bootstrap CI at
every evaluation, and the collapse rate (evaluations below 2 subtasks after a seed first reached 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _ablation import add_arguments, planner_settings, run_arm, summarise
from _report import report

RESULTS = Path(__file__).parent / "results"
MODES = {"off": False, "on": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, agent="ssac", steps=100_000, runs="runs/offline-ablation")
    parser.add_argument("--offline-share", type=float, help="the 'on' arm draws this share of each batch "
                        "from the offline data (RLPD: 0.5); default: uniform over the whole replay")
    args = parser.parse_args()
    result: dict[str, object] = {"agent": args.agent, "prior": args.prior, "steps": args.steps,
                                 "seeds": args.seeds, "offline_share": args.offline_share}
    for mode, offline in MODES.items():
        share = f"-share{args.offline_share:g}" if offline and args.offline_share is not None else ""
        settings = {**planner_settings(args), "offline_data": offline,
                    "offline_share": args.offline_share if offline else None}
        result |= summarise(mode, run_arm(args, settings, mode + share), args.steps)
    share = f"_share{args.offline_share:g}" if args.offline_share is not None else ""
    report(result, args.out or RESULTS / f"offline_replay_{args.agent}{share}.json")


if __name__ == "__main__":
    main()
