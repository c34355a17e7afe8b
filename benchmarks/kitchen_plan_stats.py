"""Task structure of a kitchen dataset against D4RL kitchen-mixed's (SkiLD's measured shares).

Reads each episode's per-step `episode_task_completions` infos, orders the subtasks it completed
by when they first completed, and prints the first-subtask shares, the second after the
microwave, the third after microwave -> kettle, and how many episodes complete the target
(microwave, kettle, bottom burner, light switch) in order; beside them, the shares the dataset's
recorded plan table implies. Writes benchmarks/results/kitchen_plan_stats[_<name>].{json,md}.

    MINARI_DATASETS_PATH=/work/minari python benchmarks/kitchen_plan_stats.py [kitchen-scripted]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import minari
import numpy as np

from skillplan.data.catalog import resolve
from skillplan.envs.scripted.kitchen_plans import (
    SKILD_SHARES,
    Plan,
    PlanTable,
    SequenceStats,
    completion_order,
    sequence_stats,
)
from skillplan.provenance import provenance

RESULTS = Path(__file__).parent / "results"
TOLERANCE = 5.0  # points, the requirement


def planned_stats(metadata: dict[str, Any]) -> SequenceStats | None:
    """The shares implied by the plan table recorded in a dataset's metadata, if it has one."""
    table = json.loads(metadata.get("plan_table", "null"))
    if not isinstance(table, list):
        return None
    return PlanTable(tuple(Plan(tuple(p["tasks"]), p["weight"]) for p in table)).shares()


def compare(measured: SequenceStats, planned: SequenceStats | None) -> list[dict[str, Any]]:
    """One row per SkiLD share: target, measured, planned, and whether measured is within 5."""
    rows = []
    for branch, targets in SKILD_SHARES.items():
        for task, target in targets.items():
            got = measured.shares[branch].get(task, 0.0)
            rows.append({
                "branch": branch, "subtask": task, "target": target, "measured": round(got, 2),
                "planned": None if planned is None else round(planned.shares[branch].get(task, 0.0), 2),
                "within_tolerance": abs(got - target) <= TOLERANCE,
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", default="kitchen-scripted",
                        help="A short name (its general data is read) or a Minari id.")
    args = parser.parse_args()
    dataset_id = resolve(args.dataset).general_id
    ds = minari.load_dataset(dataset_id)
    sequences = [completion_order(ep.infos["episode_task_completions"]) for ep in ds.iterate_episodes()]
    measured = sequence_stats((s, 1.0) for s in sequences)
    metadata = ds.storage.metadata
    rows = compare(measured, planned_stats(metadata))
    lengths = np.array([len(s) for s in sequences])
    result = {
        "dataset": dataset_id,
        "description": metadata.get("description"),
        "episodes": len(sequences),
        "steps": int(ds.total_steps),
        "subtasks_per_episode": {str(k): int((lengths == k).sum()) for k in range(lengths.max() + 1)},
        "mean_subtasks": float(lengths.mean()),
        "episodes_completing_target_in_order": int(measured.target_in_order),
        "rows": rows,
        "all_within_tolerance": all(r["within_tolerance"] for r in rows),
        "measured": measured.as_dict(),
        **provenance(["python", *sys.argv]),
    }
    lines = [
        f"# Task structure of {dataset_id}",
        "",
        f"Command: `{result['command']}`  ",
        f"Commit: {result['commit']}; machine: {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores.",
        "",
        f"{result['episodes']} episodes, {result['steps']:,} steps; subtasks completed per episode: "
        + ", ".join(f"{k}: {n}" for k, n in result["subtasks_per_episode"].items())
        + f" (mean {result['mean_subtasks']:.2f}).",
        f"Episodes completing the target (microwave, kettle, bottom burner, light switch) in order: "
        f"{result['episodes_completing_target_in_order']}.",
        "",
        f"Shares (%) of the next subtask at each branch point; measured from the data's infos, "
        f"target from SkiLD's kitchen-mixed statistics, planned from the plan table in the "
        f"dataset's metadata. Within ±{TOLERANCE:g} points: "
        + ("all." if result["all_within_tolerance"] else "NOT all."),
        "",
        "| branch | next subtask | target | measured | planned | within ±5 |",
        "|---|---|---|---|---|---|",
    ]
    counts = measured.counts
    for r in rows:
        planned = "–" if r["planned"] is None else f"{r['planned']:.1f}"
        lines.append(f"| {r['branch']} (n={counts[r['branch']]:.0f}) | {r['subtask']} | {r['target']:.1f} "
                     f"| {r['measured']:.1f} | {planned} | {'yes' if r['within_tolerance'] else 'no'} |")
    lines += ["", "All measured shares:", ""]
    for branch, shares in measured.shares.items():
        lines.append(f"- {branch}: " + ", ".join(f"{t} {v:.1f}" for t, v in shares.items()))
    text = "\n".join(lines) + "\n"
    print(text)
    suffix = "" if args.dataset == "kitchen-scripted" else "_" + args.dataset.replace("/", "_")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"kitchen_plan_stats{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"kitchen_plan_stats{suffix}.md").write_text(text)


if __name__ == "__main__":
    main()
