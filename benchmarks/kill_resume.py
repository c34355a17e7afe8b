"""Kill harness: SIGKILL `skillplan pretrain` and `skillplan train` at random instants, resume each time.

On tiny data in a temporary Minari root, each command is started (with --resume once a checkpoint
exists) and killed with SIGKILL at a random instant of its training, `--kills` times; after every
kill the run's checkpoint must load, and its step must not have gone back. Then the run is resumed
to completion. A second phase sends SIGTERM at random instants: the step the run prints as reached
must be the step its checkpoint holds (no step lost).

    python benchmarks/kill_resume.py --kills 20 --terms 5 --out benchmarks/results/kill_resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _report import report
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer

CLI = [sys.executable, "-m", "skillplan.cli.main"]
PRETRAIN_STEPS, PRETRAIN_EVERY = 8_000, 20  # long enough that no run finishes before its last kill
TRAIN_STEPS, TRAIN_EVERY = 20_000, 100


def write_datasets() -> None:
    """A random-action general dataset and a shifted 'expert' one, 6-dim states, 3-dim actions."""
    from skillplan.data.writing import write_dataset

    box = spaces.Box(-np.inf, np.inf, (6,), np.float32)
    for name, n, offset in (("kill/general-v0", 16, 0.0), ("kill/expert-v0", 6, 0.7)):
        rng = np.random.default_rng(len(name))
        episodes = []
        for i in range(n):
            actions = np.clip(offset + rng.normal(0, 0.5, (60, 3)), -1, 1).astype(np.float32)
            obs = np.cumsum(np.r_[rng.normal(size=(1, 6)), 0.1 * actions @ np.ones((3, 6))], 0)
            episodes.append(EpisodeBuffer(id=i, observations=obs.astype(np.float32), actions=actions,
                                          rewards=np.zeros(60), terminations=np.zeros(60, bool),
                                          truncations=np.r_[np.zeros(59, bool), True]))
        write_dataset(name, episodes, observation_space=box, action_space=spaces.Box(-1, 1, (3,), np.float32))


def pretrain_args(root: Path) -> tuple[list[str], Path, str]:
    config = {"data": {"dataset": "kill/general-v0", "expert_dataset": "kill/expert-v0"},
              "model": {"horizon": 4, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
              "pretrain": {"batch_size": 64, "n_skills": 3, "precision": "fp32", "threads": 1,
                           "eval_windows": 128, "log_every": 10, "eval_every": 100,
                           "checkpoint_every": PRETRAIN_EVERY}}
    (root / "pretrain.yaml").write_text(yaml.safe_dump(config))
    args = ["pretrain", "--config", "pretrain.yaml", "--out", "pre", "--steps", str(PRETRAIN_STEPS)]
    return args, root / "pre" / "prior", "config.yaml"


def train_args(root: Path) -> tuple[list[str], Path, str]:
    config = {"learning_starts": 100, "checkpoint_every": TRAIN_EVERY, "eval_every": 2_000,
              "eval_episodes": 1, "buffer_size": 10_000, "threads": 1,
              "sac": {"hidden": [32, 32], "batch_size": 32}}
    (root / "agent.yaml").write_text(yaml.safe_dump(config))
    args = ["train", "--agent", "sac", "--env", "SkillPointMaze-v0", "--config", "agent.yaml",
            "--steps", str(TRAIN_STEPS), "--out", "agent"]
    return args, root / "agent" / "agent", "run.yaml"


def checkpoint_step(link: Path) -> int | None:
    """The step of the checkpoint a resume would start from; None when there is none yet."""
    from skillplan.agents.base import CONFIG, METADATA, STATE
    from skillplan.checkpoint import REQUIRED_FILES, TRAINING
    from skillplan.versions import candidates

    agent = link.name == "agent"
    found = candidates(link, (STATE, CONFIG, METADATA) if agent else (*REQUIRED_FILES, TRAINING))
    if not found:
        return None
    meta = json.loads((found[0] / METADATA).read_text())
    if agent:
        return int(meta["env_steps"])
    from skillplan.models.skill_model import SkillModel

    return SkillModel.load(found[0]).metadata.step  # loads whole, or raises


def start(args: list[str], link: Path, marker: Path, root: Path) -> subprocess.Popen:
    """Start the command (resuming where a checkpoint exists) and return once it is training."""
    resume = ["--resume"] if os.path.lexists(link) else []
    before = marker.stat().st_mtime_ns if marker.exists() else 0
    process = subprocess.Popen([*CLI, *args, *resume], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    while (not marker.exists() or marker.stat().st_mtime_ns == before) and process.poll() is None:
        time.sleep(0.02)
    return process


def kill_trials(args: list[str], link: Path, marker: Path, root: Path, kills: int, total: int,
                rng: random.Random) -> dict[str, Any]:
    steps, failures, finished_before_kill = [], [], 0
    for _ in range(kills):
        process = start(args, link, marker, root)
        time.sleep(rng.uniform(0.0, 6.0))
        finished = process.poll() is not None
        process.kill()
        output = process.communicate()[0]
        finished_before_kill += finished
        if finished and process.returncode != 0:
            failures.append(output[-2000:])
        try:
            step = checkpoint_step(link)
        except Exception as exc:  # a checkpoint that fails to load is a lost run
            failures.append(f"{type(exc).__name__}: {exc}")
            step = None
        if steps and steps[-1] is not None and (step is None or step < steps[-1]):
            failures.append(f"checkpoint went back from {steps[-1]} to {step}")
        steps.append(step)
    process = start(args, link, marker, root)
    output = process.communicate()[0]
    final = checkpoint_step(link)
    if process.returncode != 0 or final != total:
        failures.append(f"final resume: exit {process.returncode}, step {final}: {output[-2000:]}")
    return {"kills": kills, "finished_before_kill": finished_before_kill,
            "checkpoint_step_after_each_kill": steps, "final_step": final,
            "runs_lost": int(bool(failures)), "failures": failures}


def term_trials(args: list[str], link: Path, marker: Path, root: Path, terms: int,
                rng: random.Random) -> dict[str, Any]:
    lost, problems = [], []
    for _ in range(terms):
        process = start(args, link, marker, root)
        time.sleep(rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGTERM)
        output = " ".join(process.communicate()[0].split())
        reached = re.search(r"Stopped by SIGTERM at (?:env )?step ([\d,]+)", output)
        if process.returncode != 128 + signal.SIGTERM or reached is None:
            problems.append(f"exit {process.returncode}: {output[-1000:]}")
            continue
        lost.append(int(reached.group(1).replace(",", "")) - checkpoint_step(link))
    return {"sigterms": terms, "steps_lost_per_sigterm": lost, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--terms", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/kill_resume.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
        os.environ["HF_HUB_OFFLINE"] = "1"
        write_datasets()
        started = time.perf_counter()
        commands = (("pretrain", pretrain_args, PRETRAIN_STEPS), ("train", train_args, TRAIN_STEPS))
        for name, make, total in commands:
            command, link, marker_name = make(root)
            marker = link.parent / marker_name
            result[f"{name}_checkpoint_every"] = PRETRAIN_EVERY if name == "pretrain" else TRAIN_EVERY
            result[f"{name}_sigkill"] = kill_trials(command, link, marker, root, args.kills, total, rng)
            fresh = list(command)  # a new run directory, and no end in sight, for the SIGTERM phase
            fresh[fresh.index("--out") + 1] += "-term"
            fresh[fresh.index("--steps") + 1] = str(total * 100)
            fresh_link = root / fresh[fresh.index("--out") + 1] / link.name
            result[f"{name}_sigterm"] = term_trials(fresh, fresh_link, fresh_link.parent / marker_name, root,
                                                     args.terms, rng)
        result["wall_s"] = round(time.perf_counter() - started, 1)
    report(result, args.out)


if __name__ == "__main__":
    main()
