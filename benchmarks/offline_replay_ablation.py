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

from _ablation import evaluations, finished, summarise, train
from _report import report

RESULTS = Path(__file__).parent / "results"
MODES = {"off": False, "on": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", required=True)
    parser.add_argument("--agent", default="ssac", choices=["ssac", "cem"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--runs", type=Path, default=Path("runs/offline-ablation"))
    parser.add_argument("--planner-bf16", action="store_true",
                        help="CEM plans compiled under bf16, as in the suite")
    parser.add_argument("--offline-share", type=float, help="the 'on' arm draws this share of each batch "
                        "from the offline data (RLPD: 0.5); default: uniform over the whole replay")
    parser.add_argument("--read-only", action="store_true", help="report the runs there, train nothing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    extra = {"planner": {"precision": "bf16", "compile": True}} if args.planner_bf16 else {}

    curves: dict[str, dict[int, list[tuple[int, float]]]] = {mode: {} for mode in MODES}
    for mode, offline in MODES.items():
        for seed in args.seeds:
            share = f"-share{args.offline_share:g}" if offline and args.offline_share is not None else ""
            run = args.runs / f"{args.agent}-{mode}{share}-s{seed}"
            if not args.read_only and not finished(run, args.steps):
                settings = {**extra, "seed": seed, "offline_data": offline,
                            "offline_share": args.offline_share if offline else None}
                train(args.agent, args.prior, args.steps, settings, run)
            if (run / "metrics.csv").exists():
                curves[mode][seed] = evaluations(run)

    result: dict[str, object] = {"agent": args.agent, "prior": args.prior, "steps": args.steps,
                                 "seeds": args.seeds, "offline_share": args.offline_share}
    for mode, seeds in curves.items():
        result |= summarise(mode, seeds, args.steps)
    share = f"_share{args.offline_share:g}" if args.offline_share is not None else ""
    report(result, args.out or RESULTS / f"offline_replay_{args.agent}{share}.json")


if __name__ == "__main__":
    main()
