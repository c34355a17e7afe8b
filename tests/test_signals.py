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


def start_until(args: list[str], markers: Path | list[Path], cwd: Path) -> subprocess.Popen:
    """Start `skillplan ARGS` (or, from a Python file, `python FILE ...`) and return once every marker
    exists (each run has checkpointed once)."""
    command = args if args[0] == sys.executable else [*CLI, *args]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "COLUMNS": "300"})
    deadline = time.monotonic() + 180
    while not all(marker.exists() for marker in ([markers] if isinstance(markers, Path) else markers)):
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
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: a Ray test may run first in this worker
    with stop_on_signals() as request:
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.requested and request.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


SUITE_SCRIPT = """
import json
import sys

from skillplan.benchmarking import suite_config
from skillplan.cli.main import run

if __name__ == "__main__":  # spawned workers import this file too
    suite_config.QUICK = json.loads(sys.argv[1])  # a tiny suite behind the CLI's --quick
    sys.argv = ["skillplan", *sys.argv[2:]]
    run()
"""


def test_the_suite_stops_its_runs_at_checkpoints_on_ctrl_c_and_a_rerun_finishes_it(tmp_path):
    from skillplan.benchmarking.suite_config import DONE_FILE
    from skillplan.envs.generate import generate_dataset
    from tests.test_benchmark_suite import ENV, TINY_PRETRAIN

    generate_dataset("pointmaze-scripted", episodes={"general": 24, "expert": 8}, workers=1)
    pretrain_overrides = {**TINY_PRETRAIN, "pretrain": {**TINY_PRETRAIN["pretrain"], "checkpoint_every": 5}}
    suite = {"envs": [ENV], "methods": ["sac", "spirl"], "seeds": 1, "steps": 1_000, "eval_every": 500,
             "eval_episodes": 1, "pretrain_steps": 1_000, "pretrain_overrides": pretrain_overrides,
             "agent_overrides": {"learning_starts": 40, "checkpoint_every": 40,
                                 "sac": {"hidden": [16, 16], "batch_size": 16}},
             "compile_planner": False}
    (tmp_path / "suite.py").write_text(SUITE_SCRIPT)
    args = ["benchmark", "sample-efficiency", "--quick", "--out", "out", "--workers", "2"]
    command = [sys.executable, "suite.py", json.dumps(suite), *args]
    prior_run = tmp_path / "out" / "pretrain" / "pointmaze-scripted-spirl-seed0"
    sac_run, spirl_run = (tmp_path / "out" / "runs" / ENV / method / "seed0" for method in ("sac", "spirl"))
    # both workers busy: the spirl prior pretraining (checkpointed once), the sac run begun
    process = start_until(command, [prior_run / "prior", sac_run / "run.yaml"], tmp_path)
    said = stop(process, signal.SIGINT)

    pretrained = re.search(r"pretrain pointmaze-scripted-spirl-seed0: step ([\d,]+)", said)
    trained = re.search(r"sac SkillPointMaze-v0 seed 0: env step ([\d,]+)", said)
    assert pretrained and trained, said
    pretrained, trained = (int(m.group(1).replace(",", "")) for m in (pretrained, trained))
    assert SkillModel.load(prior_run / "prior").metadata.step == pretrained < 1_000  # not a step lost
    assert json.loads((sac_run / "agent" / "metadata.json").read_text())["env_steps"] == trained < 1_000
    assert not (sac_run / DONE_FILE).exists() and not (prior_run / "summary.json").exists()
    assert not spirl_run.exists()  # its prior was not finished: it never started
    assert f"Rerun the same command to resume every run: skillplan {' '.join(args)}" in said

    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "0/2 training runs already done; 1 prior(s) to pretrain first" in " ".join(rerun.stdout.split())
    for run in (sac_run, spirl_run):
        assert json.loads((run / DONE_FILE).read_text())["env_steps"] >= 1_000
    assert json.loads((prior_run / "summary.json").read_text())["step"] == 1_000
