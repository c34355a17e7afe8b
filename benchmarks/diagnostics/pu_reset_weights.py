"""The weight a PU-weighted prior gives each kitchen opening: the PU classifier's expert probability
on the window that starts at step t of every episode, grouped by the episode's first subtask.

The `skillplan` preset trains its prior toward skills in proportion to this probability, so at the
reset state (t = 0) it decides which first subtask the prior learns. Needs a checkpoint pretrained
with the PU-weighted prior on kitchen-scripted, whose episodes record `step_task_completions`.

    python benchmarks/diagnostics/pu_reset_weights.py runs/kitchen-scripted/prior
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from skillplan.data.catalog import resolve
from skillplan.data.loading import open_dataset
from skillplan.models.skill_model import SkillModel

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report

RESULTS = Path(__file__).parents[1] / "results"


def first_subtask(completions: dict[str, np.ndarray]) -> str:
    """The subtask an episode completes first ('none' if it completes none)."""
    steps = {name: np.flatnonzero(done) for name, done in completions.items()}
    done = {name: s[0] for name, s in steps.items() if len(s)}
    return min(done, key=done.get) if done else "none"


def opening_weights(model: SkillModel, dataset_name: str, steps: list[int]) -> dict[str, dict]:
    """{'<kind>: <first subtask>': {'episodes': n, 't=<t>': mean expert probability}}."""
    spec, horizon = resolve(dataset_name), model.config.model.horizon
    groups: dict[str, list[list[float]]] = defaultdict(list)
    for kind, dataset_id in zip(("general", "expert"), spec.ids, strict=False):
        for episode in open_dataset(dataset_id, spec).iterate_episodes():
            obs = model.normalize_obs(episode.observations)
            actions = model.normalize_action(episode.actions)
            starts = [t for t in steps if t + horizon <= len(episode.actions)]
            if len(starts) < len(steps):
                continue
            with torch.no_grad():
                logits = model.classifier(obs[starts], torch.stack([actions[t:t + horizon] for t in starts]))
            opener = first_subtask(episode.infos["step_task_completions"])
            groups[f"{kind}: {opener}"].append(torch.sigmoid(logits).tolist())
    table = {}
    for group, rows in sorted(groups.items()):
        means = dict(zip((f"t={t}" for t in steps), np.mean(rows, axis=0).tolist(), strict=True))
        table[group] = {"episodes": len(rows), **means}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--dataset", default="kitchen-scripted")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 1, 5], help="window start steps t")
    parser.add_argument("--out", type=Path, default=RESULTS / "pu_reset_weights.json")
    args = parser.parse_args()
    model = SkillModel.load(args.checkpoint)
    if model.classifier is None:
        parser.error(f"{args.checkpoint} was pretrained without the PU-weighted prior: it has no classifier.")
    weights = opening_weights(model, args.dataset, args.steps)
    header = "| episodes' first subtask | episodes | " + " | ".join(f"t = {t}" for t in args.steps) + " |"
    print(header + "\n|" + "---|" * (len(args.steps) + 2))
    for group, row in weights.items():
        cells = " | ".join(f"{row[f't={t}']:.2f}" for t in args.steps)
        print(f"| {group} | {row['episodes']} | {cells} |")
    report({"checkpoint": str(args.checkpoint), "dataset": args.dataset, "weights": weights}, args.out)


if __name__ == "__main__":
    main()
