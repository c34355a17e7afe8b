"""Are expert skills told apart from general ones in z, and what does the adversarial discriminator say?

For each checkpoint: the posterior means of every H-step window of the first `--episodes` general and
expert episodes; the held-out AUC of a fresh probe on them (`skillplan.validation.probe_auc`); the
checkpoint's discriminator on them (logits, AUC); and a fresh discriminator fitted to the nnPU risk on
these fixed embeddings, whose risk says whether the trained one's is the best the embeddings allow
(the trivial "all general" call scores π).

    python benchmarks/diagnostics/z_alignment.py runs/suite/pretrain/kitchen-scripted-serla-seed0/prior
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from skillplan.data.catalog import resolve
from skillplan.data.loading import open_dataset
from skillplan.models.mlp import mlp
from skillplan.models.pu import nnpu_risk
from skillplan.models.skill_model import SkillModel
from skillplan.validation import auc, probe_auc

sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/: the helper the scripts share
from _report import report

RESULTS = Path(__file__).parents[1] / "results"


@torch.no_grad()
def embeddings(model: SkillModel, dataset: str, episodes: int) -> dict[str, torch.Tensor]:
    """{'general'|'expert': posterior means (n_windows, z_dim)} of consecutive H-step windows."""
    spec, horizon, out = resolve(dataset), model.config.model.horizon, {}
    for kind, dataset_id in zip(("general", "expert"), spec.ids, strict=True):
        means = []
        stream = open_dataset(dataset_id, spec).iterate_episodes()
        for _, episode in zip(range(episodes), stream, strict=False):
            obs, act = model.layout.flatten(episode.observations), episode.actions
            n = len(act) // horizon * horizon
            windows = obs[:n].reshape(-1, horizon, obs.shape[-1]), act[:n].reshape(-1, horizon, act.shape[-1])
            means.append(model.encode_skill(*windows).mean.float())
        out[kind] = torch.cat(means)
    return out


@torch.enable_grad()
def fresh_nnpu_risk(general: torch.Tensor, expert: torch.Tensor, class_prior: float,
                    steps: int = 3000) -> float:
    """Held-out nnPU risk of a new discriminator (as the model's: 128 × 2, ReLU) fitted on fixed z."""
    torch.manual_seed(0)
    split_g, split_e = torch.arange(len(general)) % 2 == 0, torch.arange(len(expert)) % 2 == 0
    net = mlp(general.shape[1], 1, 128, 2, "relu")
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        g = general[split_g][torch.randint(int(split_g.sum()), (192,))]
        e = expert[split_e][torch.randint(int(split_e.sum()), (64,))]
        logits = net(torch.cat([g, e])).squeeze(-1)
        loss = nnpu_risk(logits[192:], logits[:192], class_prior) + 1e-3 * logits.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        held_expert, held_general = net(expert[~split_e]).squeeze(-1), net(general[~split_g]).squeeze(-1)
        return nnpu_risk(held_expert, held_general, class_prior).item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--dataset", default="kitchen-scripted")
    parser.add_argument("--episodes", type=int, default=200, help="episodes of each dataset")
    parser.add_argument("--out", type=Path, default=RESULTS / "z_alignment.json")
    args = parser.parse_args()
    rows = {}
    for checkpoint in args.checkpoints:
        model = SkillModel.load(checkpoint)
        z = embeddings(model, args.dataset, args.episodes)
        class_prior = model.config.pretrain.class_prior
        row = {
            "windows": {k: len(v) for k, v in z.items()},
            "probe_auc": probe_auc(z["general"], z["expert"]),
            "fresh_discriminator_risk": fresh_nnpu_risk(z["general"], z["expert"], class_prior),
            "trivial_risk": class_prior,
        }
        if model.discriminator is not None:
            with torch.no_grad():
                logits = {k: model.discriminator(v).float() for k, v in z.items()}
            row["discriminator_auc"] = auc(logits["expert"].numpy(), logits["general"].numpy())
            row["discriminator_risk"] = nnpu_risk(logits["expert"], logits["general"], class_prior).item()
            row["discriminator_logits_min_mean_max"] = {
                k: [round(v.min().item(), 2), round(v.mean().item(), 2), round(v.max().item(), 2)]
                for k, v in logits.items()
            }
        rows[str(checkpoint)] = row
    report({"dataset": args.dataset, "episodes": args.episodes, "checkpoints": rows}, args.out)


if __name__ == "__main__":
    main()
