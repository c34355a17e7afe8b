"""How much each decoder relies on z to reproduce the data, before and after its N-th subtask.

For every expert episode, windows of H steps every `--stride` steps are encoded (posterior mean) and
decoded along the recorded states (teacher-forced, normalised actions): the action MSE with z, the
MSE with z zeroed (the decoder from the state alone), and KL(q ‖ N(0, I)) in nats per skill. A
decoder whose MSE barely changes without z reproduces the expert from the state; one whose MSE with
z is high cannot express the expert's skills in that phase however they are encoded.

With `--split tail --tail-skills N` the windows are split instead by whether an N-skill training
window can start there: the "tail" is each episode's last N·H − H steps, which a pretraining run
that decodes only the first skill of N-skill windows never reconstructs.

    python benchmarks/diagnostics/skill_reconstruction.py PRIOR... --after 3
    python benchmarks/diagnostics/skill_reconstruction.py PRIOR... --split tail --tail-skills 5 --data general
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from skillplan.data.catalog import resolve
from skillplan.data.loading import open_dataset
from skillplan.models.skill_model import SkillModel

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report
from diagnostics.next_subtask import completion_steps

RESULTS = Path(__file__).parents[1] / "results"


@torch.inference_mode()
def phases(
    model: SkillModel, after: int, stride: int, tail_skills: int | None = None, data: str = "expert",
) -> dict[str, dict[str, float]]:
    """Mean MSE with z, MSE with z = 0 and KL per skill of a dataset's windows, split at the step
    each episode completed its `after`-th subtask, or with `tail_skills` at the last step where a
    window of that many skills can start."""
    spec, horizon = resolve(model.metadata.dataset), model.config.model.horizon
    split = ("body", "tail") if tail_skills else ("before", "after")
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in split}
    dataset_id = spec.expert_id if data == "expert" else spec.general_id
    for episode in open_dataset(dataset_id, spec, download=False).iterate_episodes():
        done = [t for t, _ in completion_steps(episode)]
        last_start = len(episode.actions) - (tail_skills or 0) * horizon
        flat, actions = model.layout.flatten(episode.observations), episode.actions
        starts = range(0, len(actions) - horizon + 1, stride)
        obs = model.normalize_obs(np.stack([flat[t:t + horizon] for t in starts]))
        act = model.normalize_action(np.stack([actions[t:t + horizon] for t in starts]))
        posterior = model.skill_encoder(obs, act)
        mse = [(model.decoder.skill(obs, z) - act).square().mean(dim=(1, 2)).tolist()
               for z in (posterior.mean, torch.zeros_like(posterior.mean))]
        kl = posterior.kl_standard().sum(-1)
        for t, *values in zip(starts, *mse, kl.tolist(), strict=True):
            if tail_skills:
                rows["tail" if t > last_start else "body"].append(values)
            else:
                rows["after" if len(done) >= after and t >= done[after - 1] else "before"].append(values)
    names = ("mse", "mse_without_z", "kl_nats")
    return {phase: {"windows": len(r), **dict(zip(names, np.mean(r, axis=0).tolist(), strict=True))}
            for phase, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("priors", nargs="+", type=Path, help="prior checkpoint dirs")
    parser.add_argument("--after", type=int, default=3, help="split each expert episode at this subtask")
    parser.add_argument("--split", choices=("subtask", "tail"), default="subtask",
                        help="split at the --after-th subtask, or at the episode's tail")
    parser.add_argument("--tail-skills", type=int, default=5,
                        help="with --split tail: N, the training windows' skills")
    parser.add_argument("--data", choices=("expert", "general"), default="expert")
    parser.add_argument("--stride", type=int, default=5, help="steps between window starts")
    parser.add_argument("--out", type=Path, default=RESULTS / "skill_reconstruction.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for path in args.priors:
        model = SkillModel.load(path).eval()
        tail_skills = args.tail_skills if args.split == "tail" else None
        results[str(path)] = phases(model, args.after, args.stride, tail_skills, args.data)
    split = {"tail_skills": args.tail_skills} if args.split == "tail" else {"after": args.after}
    report({**split, "data": args.data, **results}, args.out)


if __name__ == "__main__":
    main()
