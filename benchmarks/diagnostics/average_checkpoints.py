"""Average the weights of checkpoints from one pretraining run into a new checkpoint (uniform
weight averaging, as in SWA: https://arxiv.org/abs/1803.05407).

Asks, without another pretraining run, whether a prior read off an average of its run's recent
weights rolls out more steadily than any single checkpoint of it (the question behind an EMA of the
weights). The new checkpoint takes its config and metadata from the last one given. With `--live`,
checkpoints written under `pretrain.ema_decay` contribute their live (trained, not averaged) weights,
so a single one with `--live` is the run's last weights as a prior.

    python benchmarks/diagnostics/average_checkpoints.py CKPT_40k CKPT_45k CKPT_50k --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from skillplan.checkpoint import read_training_state
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import live_weights


def load(path: Path, live: bool) -> SkillModel:
    model = SkillModel.load(path)
    if live:
        weights = live_weights(read_training_state(path))
        if not weights:
            raise SystemExit(f"{path} holds no live weights: it was not written under pretrain.ema_decay")
        model.load_state_dict(weights)
    return model


def averaged(paths: list[Path], live: bool = False) -> SkillModel:
    """The last checkpoint's model carrying the mean of every checkpoint's floating-point tensors."""
    models = [load(p, live) for p in paths]
    states = [m.state_dict() for m in models]
    if any(s.keys() != states[-1].keys() for s in states):
        raise SystemExit("the checkpoints do not share one architecture: average those of one run")
    mean = {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[-1].items()
    }
    model = models[-1]
    model.load_state_dict(mean)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint dirs of one run")
    parser.add_argument("--out", type=Path, required=True, help="new checkpoint dir")
    parser.add_argument("--live", action="store_true", help="use the live weights kept beside an EMA")
    args = parser.parse_args()
    averaged(args.checkpoints, args.live).save(args.out)
    print(f"{args.out}: mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
