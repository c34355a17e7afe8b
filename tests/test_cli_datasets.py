"""`skillplan datasets ...` and the CLI's error contract: one paragraph, non-zero exit, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from skillplan.cli.main import app


def skillplan(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "skillplan.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_help_explains_the_commands():
    result = skillplan("--help")
    assert result.returncode == 0 and "datasets" in result.stdout
    result = skillplan("datasets", "--help")
    for command in ("list", "info", "generate", "import-d4rl"):
        assert command in result.stdout


def test_usage_errors_are_one_message_and_exit_2_not_a_traceback():
    for args, message in [(("pretrain", "--bogus"), "No such option: --bogus"),
                          (("evaluate-prior",), "Missing argument"),
                          (("frobnicate",), "No such command 'frobnicate'")]:
        result = skillplan(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_list_shows_local_counts(make_dataset):
    result = CliRunner().invoke(app, ["datasets", "list"])
    assert result.exit_code == 0
    assert "D4RL/kitchen/mixed-v2" in result.output and "kitchen-scripted" in result.output
    make_dataset("someone/toy/data-v0", n_episodes=4, length=25)
    result = CliRunner().invoke(app, ["datasets", "info", "someone/toy/data-v0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"(?<![\d,])100(?![\d,])", result.output), result.output  # 4 × 25 steps, as a number
    assert "yes" in result.output  # local


def test_unknown_name_is_one_paragraph_and_exit_2():
    result = skillplan("datasets", "info", "kitchn")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Unknown dataset 'kitchn'" in result.stderr and "pointmaze-scripted" in result.stderr


def test_debug_shows_the_traceback():
    result = skillplan("--debug", "datasets", "info", "kitchn")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_generate_rejects_unknown_generator():
    result = skillplan("datasets", "generate", "kitchen")
    assert result.returncode == 2 and "kitchen-scripted" in result.stderr


def test_benchmark_lists_scripts_and_rejects_unknown_ones():
    result = CliRunner().invoke(app, ["benchmark"])
    assert result.exit_code == 0 and "data_throughput" in result.output
    assert "sample-efficiency" in result.output and "throughput" in result.output
    result = skillplan("benchmark", "run", "nope")
    assert result.returncode == 2 and "data_throughput" in result.stderr


def test_benchmark_lists_diagnostics_apart_and_runs_them():
    result = CliRunner().invoke(app, ["benchmark"])
    lines = result.output.splitlines()
    assert any("run critic_bias" in line and "(diagnosis)" in line for line in lines)
    assert not any("run data_throughput" in line and "(diagnosis)" in line for line in lines)
    result = skillplan("benchmark", "run", "critic_bias")  # found in diagnostics/, its own parser answers
    assert result.returncode == 2 and "critic_bias.py: error" in result.stderr and "agent" in result.stderr


def test_benchmark_without_the_checkouts_scripts(monkeypatch, tmp_path, capsys):
    from skillplan.benchmarking import throughput
    from skillplan.cli import main

    monkeypatch.setattr(throughput, "BENCHMARKS", tmp_path / "benchmarks")
    result = CliRunner().invoke(app, ["benchmark"])
    assert result.exit_code == 0 and "sample-efficiency" in result.output and "restore" in result.output
    assert "run data_throughput" not in result.output and "source checkout" in " ".join(result.output.split())
    monkeypatch.setattr(sys, "argv", ["skillplan", "benchmark", "run", "data_throughput"])
    with pytest.raises(SystemExit) as exit_:
        main.run()
    error = " ".join(capsys.readouterr().err.replace("│", " ").split())  # the panel's wrapped lines
    assert exit_.value.code == 2 and "no benchmarks/ folder" in error and "make setup" in error


def test_sample_efficiency_rejects_unknown_methods_before_any_work(tmp_path):
    result = skillplan("benchmark", "sample-efficiency", "--agents", "dreamer", "--out", str(tmp_path / "s"))
    assert result.returncode == 2 and "sac, spirl, serla, skimo, skillplan" in result.stderr
    assert not (tmp_path / "s").exists()
    result = skillplan("benchmark", "sample-efficiency", "--env", "SkillKitchen-v0:spirl,dreamer",
                       "--out", str(tmp_path / "s"))
    assert result.returncode == 2 and "dreamer" in result.stderr and "sac, spirl" in result.stderr
    assert not (tmp_path / "s").exists()
