"""Hashes of the weights after short runs of every preset and agent: run it at two commits to check
that a change meant to be exact leaves training bit-identical (or to say what it changes).

    python benchmarks/diagnostics/exactness.py --out /tmp/a.json   # at one commit, then at another
Pretrains each preset 20 steps on kitchen-scripted (needs it in MINARI_DATASETS_PATH), then trains
CEM (skimo and skillplan priors), SSAC (spirl prior; serla's with SDE) and flat SAC for 700–900 env
steps on SkillKitchen-v0, one thread, on the committed first-suite priors. Compare the JSON files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from rich.console import Console

import skillplan  # noqa: F401  (registers the skill envs)
from skillplan.agents import agent_class, agent_config, make_agent_env
from skillplan.config import resolve_config
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import pretrain

PRIORS = Path(__file__).parents[1] / "results/sample_efficiency_kitchen/pretrain"
QUIET = Console(quiet=True)
AGENT_RUNS = {  # name: (agent, prior preset or None, extra settings, env steps)
    "cem_skimo": ("cem", "skimo", {}, 900),
    "cem_skillplan": ("cem", "skillplan", {}, 900),
    "ssac_spirl": ("ssac", "spirl", {}, 900),
    "ssac_serla_sde": ("ssac", "serla", {"sde_eta": 0.1}, 900),
    "sac": ("sac", None, {}, 700),
}


def digest(tensors: Iterable[torch.Tensor]) -> str:
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return sha.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("spirl", "serla", "skimo", "skillplan"):
            config = resolve_config(preset, overrides={"pretrain": {
                "steps": 20, "threads": 1, "eval_every": 20, "checkpoint_every": 20, "log_every": 10}})
            run = pretrain(config, Path(tmp) / preset, console=QUIET)
            state = SkillModel.load(run.checkpoint).state_dict()
            hashes[f"pretrain_{preset}"] = digest(state[k] for k in sorted(state))
    for name, (agent, preset, extra, steps) in AGENT_RUNS.items():
        prior = str(PRIORS / f"kitchen-scripted-{preset}/prior") if preset else None
        settings = {"learning_starts": 300, "eval_every": 10**6, "checkpoint_every": 10**6, "threads": 1,
                    "seed": 3, **extra}
        trained = agent_class(agent)(make_agent_env(agent, "SkillKitchen-v0", prior),
                                     agent_config(agent, settings))
        trained.learn(steps, show_progress=False, console=QUIET)
        state = trained.state_tensors()
        hashes[name] = digest(state[k] for k in sorted(state) if not k.startswith("replay."))
    print(json.dumps(hashes, indent=1))
    args.out.write_text(json.dumps(hashes, indent=1) + "\n")


if __name__ == "__main__":
    main()
