"""Run logging: metrics.csv always, TensorBoard and W&B on request, namespaced names, config as hparams."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from skillplan.agents.sac import SAC
from skillplan.cli.main import app
from skillplan.errors import ConfigError
from skillplan.runlog import RunLog, check_loggers, namespaced
from tests.pretrain_fixtures import TINY, write_pu_datasets

CONFIG = {"data": {"dataset": "kitchen-scripted"}, "pretrain": {"lr": 1e-3, "steps": 20}, "tags": ["a"]}
ROWS = {10: {"bc": 0.5, "grad_norm": 3.0, "windows_per_s": 900.0},
        20: {"bc": 0.25, "val_action_mse": 0.1, "train/return": 1.0, "eval/return": 2.0}}
NAMESPACED = {"losses/bc", "losses/grad_norm", "time/windows_per_s", "eval/action_mse", "train/return",
              "eval/return"}


def write_rows(run_dir, loggers, resume_step=0) -> RunLog:
    log = RunLog(run_dir, resume_step, loggers, CONFIG)
    for step, values in ROWS.items():
        log.log(step, values)
    log.close()
    return log


def test_names_are_namespaced_for_dashboards():
    assert {namespaced(name) for row in ROWS.values() for name in row} == NAMESPACED


def test_csv_is_always_written_first_and_once():
    assert check_loggers(None) == ("csv",)
    assert check_loggers(["tensorboard", "csv", "tensorboard"]) == ("csv", "tensorboard")


def test_an_unknown_logger_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"'mlflow'.*csv, tensorboard, wandb"):
        check_loggers(["tensorboard", "mlflow"])
    result = CliRunner().invoke(app, ["train", "--logger", "tb", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "csv, tensorboard, wandb" in str(result.exception)
    assert not (tmp_path / "run").exists()  # refused before anything was made


@pytest.mark.parametrize("logger", ["tensorboard", "wandb"])
def test_a_logger_without_its_package_names_the_extra(logger, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == logger else real(name))
    with pytest.raises(ConfigError, match=rf"pip install 'skillplan\[{logger}\]'"):
        check_loggers([logger])


def test_the_cli_error_for_a_missing_logger_package_shows_the_extra_verbatim():
    without_wandb = ("import importlib.util as u, sys; real = u.find_spec; "
                     "u.find_spec = lambda name, *a: None if name == 'wandb' else real(name, *a); "
                     "sys.argv = ['skillplan', 'train', '--logger', 'wandb']; "
                     "from skillplan.cli.main import run; run()")
    result = subprocess.run([sys.executable, "-c", without_wandb], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert result.returncode == 2 and "pip install 'skillplan[wandb]'" in result.stderr, result.stderr


def tensorboard_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return events


def test_tensorboard_holds_the_namespaced_scalars_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    write_rows(tmp_path, ["tensorboard"])
    events = tensorboard_events(tmp_path / "tensorboard")
    assert set(events.Tags()["scalars"]) == NAMESPACED
    assert [(e.step, e.value) for e in events.Scalars("losses/bc")] == [(10, 0.5), (20, 0.25)]
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    assert b"pretrain/lr" in hparams and b"data/dataset" in hparams
    with (tmp_path / "metrics.csv").open() as f:  # the CSV keeps its own names
        assert set(next(csv.reader(f))) == {"step", *(name for row in ROWS.values() for name in row)}


def test_tensorboard_is_written_only_when_asked(tmp_path):
    write_rows(tmp_path, [])
    assert (tmp_path / "metrics.csv").is_file() and not (tmp_path / "tensorboard").exists()


def test_wandb_offline_writes_its_run_and_continues_it_on_resume(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    write_rows(tmp_path, ["wandb"])
    wandb.teardown()  # W&B's service writes the run file in the background; this waits for it
    run_id = (tmp_path / "wandb-run-id.txt").read_text()
    (record,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    content = record.read_bytes()
    assert [n for n in NAMESPACED if n.encode() not in content] == [] and b"pretrain" in content
    write_rows(tmp_path, ["wandb"], resume_step=20)
    assert (tmp_path / "wandb-run-id.txt").read_text() == run_id
    assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) >= 1


def test_cli_pretrain_logs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    write_pu_datasets(n_general=12, n_expert=4)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(TINY))
    args = ["pretrain", "--dataset", "test/general-v0", "--expert-dataset", "test/expert-v0",
            "--config", str(config_file), "--steps", "20", "--batch-size", "32",
            "--out", str(tmp_path / "run"), "--logger", "tensorboard"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    events = tensorboard_events(tmp_path / "run" / "tensorboard")
    scalars = set(events.Tags()["scalars"])
    assert {"losses/loss", "losses/bc", "time/windows_per_s", "eval/action_mse"} <= scalars
    assert [e.step for e in events.Scalars("losses/bc")] == [10, 20]
    assert b"pretrain/batch_size" in b"".join(events.PluginTagToContent("hparams").values())


def test_training_logs_namespaced_scalars_and_its_run_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tests.test_agents import pendulum, small_sac

    SAC(pendulum(), small_sac()).learn(600, tmp_path, show_progress=False, loggers=["tensorboard"])
    events = tensorboard_events(tmp_path / "tensorboard")
    scalars = set(events.Tags()["scalars"])
    assert {"eval/return", "train/return", "losses/critic_loss", "time/env_steps_per_s"} <= scalars
    assert [e.step for e in events.Scalars("eval/return")] == [600]
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    assert b"config/learning_starts" in hparams and b"Pendulum-v1" in hparams
