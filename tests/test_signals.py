"""Ctrl-C and SIGTERM keep the work: `skillplan pretrain` and `skillplan train` in real subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from skillplan.config import resolve_config
from skillplan.interrupt import resume_command, stop_on_signals
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import pretrain
from tests.pretrain_fixtures import EXPERT_ID, GENERAL_ID, TINY, write_pu_datasets

CLI = [sys.executable, "-m", "skillplan.cli.main"]


def start_until(args: list[str], marker: Path, cwd: Path) -> subprocess.Popen:
    """Start `skillplan ARGS` and return once `marker` exists (the run has checkpointed once)."""
    process = subprocess.Popen([*CLI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "COLUMNS": "300"})
    deadline = time.monotonic() + 180
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint within 180 s")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen, signum: int) -> str:
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, output
    return " ".join(output.split())


def test_pretrain_stops_at_a_checkpoint_on_ctrl_c_and_prints_the_command_that_resumes(tmp_path):
    write_pu_datasets(n_general=12, n_expert=4)
    config = {**TINY, "data": {"dataset": GENERAL_ID, "expert_dataset": EXPERT_ID}}
    config["pretrain"] = {**TINY["pretrain"], "checkpoint_every": 5}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    args = ["pretrain", "--config", "tiny.yaml", "--out", "run", "--steps", "1000000"]
    process = start_until(args, tmp_path / "run" / "prior", tmp_path)
    said = stop(process, signal.SIGINT)
    step = int(re.search(r"Stopped by SIG\w+ at step (\d+)", said).group(1))
    assert SkillModel.load(tmp_path / "run" / "prior").metadata.step == step  # not a step lost
    assert resume_command(args) in said
    more = resolve_config(yaml_path=tmp_path / "tiny.yaml", overrides={"pretrain": {"steps": step + 3}})
    assert pretrain(more, tmp_path / "run", resume=True, console=Console(quiet=True)).step == step + 3


def test_train_stops_at_a_checkpoint_on_sigterm(tmp_path):
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump({
        "learning_starts": 50, "checkpoint_every": 100, "eval_every": 1_000_000, "eval_episodes": 1,
        "buffer_size": 10_000, "threads": 1, "sac": {"hidden": [16, 16], "batch_size": 16}}))
    args = ["train", "--agent", "sac", "--env", "SkillPointMaze-v0", "--config", "agent.yaml",
            "--steps", "1000000", "--out", "run"]
    process = start_until(args, tmp_path / "run" / "agent", tmp_path)
    said = stop(process, signal.SIGTERM)
    steps = int(re.search(r"Stopped by SIGTERM at env step ([\d,]+)", said).group(1).replace(",", ""))
    saved = json.loads((tmp_path / "run" / "agent" / "metadata.json").read_text())
    assert saved["env_steps"] == steps and steps > 100
    assert resume_command(args) in said


def test_a_second_signal_aborts_at_once():
    with stop_on_signals() as request:
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.requested and request.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
