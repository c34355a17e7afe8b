"""One strict configuration: unknown keys named, partial sections merged, bad files refused, provenance."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from skillplan.agents import agent_config
from skillplan.agents.ssac import SSACConfig
from skillplan.benchmarking.suite_config import SuiteConfig
from skillplan.cli.main import run
from skillplan.config import PRESETS, PROVENANCE, RunConfig, resolve_config, validated
from skillplan.errors import ConfigError


def _suite(settings: dict[str, Any]) -> SuiteConfig:
    return validated(SuiteConfig, settings, name="suite")


@pytest.mark.parametrize(("build", "settings", "where"), [
    (lambda s: resolve_config(overrides=s), {"modle": {"depth": 3}}, "'modle' at the top level"),
    (lambda s: resolve_config(overrides=s), {"data": {"datset": "x"}}, "'datset' in section 'data'"),
    (lambda s: resolve_config(overrides=s), {"model": {"dept": 3}}, "'dept' in section 'model'"),
    (lambda s: resolve_config(overrides=s), {"pretrain": {"stepz": 3}}, "'stepz' in section 'pretrain'"),
    (lambda s: agent_config("ssac", s), {"learning_start": 10}, "'learning_start' at the top level"),
    (lambda s: agent_config("ssac", s), {"sac": {"lrr": 0.1}}, "'lrr' in section 'sac'"),
    (lambda s: agent_config("sac", s), {"sac": {"tua": 0.1}}, "'tua' in section 'sac'"),
    (lambda s: agent_config("cem", s), {"learn": {"fixed_alfa": 1}}, "'fixed_alfa' in section 'learn'"),
    (lambda s: agent_config("cem", s), {"planner": {"samplez": 8}}, "'samplez' in section 'planner'"),
    (lambda s: agent_config("cem", s), {"sac": {"lr": 1e-3}}, "'sac' at the top level"),
    (_suite, {"seed": 3}, "'seed' at the top level"),
])
def test_an_unknown_key_in_any_section_is_an_error_naming_it(
    build: Callable[[dict[str, Any]], Any], settings: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConfigError, match=f"unknown key {where} \\(its keys: "):
        build(settings)


def test_a_partial_sac_section_keeps_ssacs_divergence_target_and_clamp():
    default = SSACConfig().sac
    assert (default.target_divergence, default.max_divergence) == (5.0, 100.0)
    for config in (agent_config("ssac", {"sac": {"precision": "bf16"}}),
                   SSACConfig.model_validate({"sac": {"precision": "bf16"}}),
                   SSACConfig(sac={"precision": "bf16"})):
        assert config.sac.precision == "bf16"
        assert config.sac == default.model_copy(update={"precision": "bf16"})


def test_partial_cem_sections_keep_the_other_defaults():
    config = agent_config("cem", {"planner": {"samples": 256}, "learn": {"lr": 3e-4}})
    assert (config.planner.samples, config.planner.elites, config.planner.max_std) == (256, 64, 0.5)
    assert (config.learn.lr, config.learn.fixed_alpha, config.learn.td_target) == (3e-4, 0.5, "min")


def test_a_bad_value_names_its_section_and_key():
    with pytest.raises(ConfigError, match=r"sac\.lr: Input should be a valid number.*got 'fast'"):
        agent_config("ssac", {"sac": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"elites \(64\) must not exceed"):
        agent_config("cem", {"planner": {"samples": 8, "policy_samples": 2}})


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["skillplan", *args])
    with pytest.raises(SystemExit) as exit_:
        run()
    return exit_.value.code, capsys.readouterr().err


TRAIN = ("train", "--agent", "ssac", "--prior", "nowhere")
PRETRAIN = ("pretrain", "--dataset", "test/general-v0", "--steps", "1")


@pytest.mark.parametrize(("command", "text", "message"), [
    (TRAIN, "", "is empty"),
    (TRAIN, "- 1\n- 2\n", "holds a list, not a mapping"),
    (TRAIN, "sacc: {lr: 0.1}\n", "unknown key 'sacc' at the top level"),
    (TRAIN, "sac: {lr: fast}\n", "sac.lr: Input should be a valid number"),
    (TRAIN, "learning_starts: [1]\n", "learning_starts: Input should be a valid integer"),
    (TRAIN, "sac: {lr: [\n", "is not valid YAML"),
    (TRAIN, "offline_share: 0.5\n", "offline_share is the share of each batch drawn from the offline data, "
     "so it needs offline_data: true"),
    (PRETRAIN, "", "is empty"),
    (PRETRAIN, "3\n", "holds a int, not a mapping"),
    (PRETRAIN, "modle: {depth: 3}\n", "unknown key 'modle' at the top level"),
    (PRETRAIN, "pretrain: {lr: fast}\n", "pretrain.lr: Input should be a valid number"),
    (PRETRAIN, "preset: [spirl]\n", "Unknown preset '['spirl']'"),
])
def test_a_bad_config_file_is_one_paragraph_and_exit_2(tmp_path, monkeypatch, capsys, command, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, err = _cli(monkeypatch, capsys, *command, "--config", str(path))
    assert code == 2
    flat = " ".join(err.replace("│", " ").split())
    assert message in flat and "Traceback" not in err


def test_train_writes_the_config_it_resolved(tmp_path, monkeypatch, capsys):
    config = tmp_path / "sac.yaml"
    config.write_text(yaml.safe_dump({"learning_starts": 100, "buffer_size": 1000, "threads": 1,
                                      "sac": {"hidden": [16, 16], "batch_size": 32}}))
    out = tmp_path / "run"
    code, err = _cli(monkeypatch, capsys, "train", "--env", "SkillPointMaze-v0", "--agent", "sac",
                     "--steps", "200", "--eval-every", "1000", "--eval-episodes", "1",
                     "--config", str(config), "--out", str(out))
    assert code == 0, err
    run_file = yaml.safe_load((out / "run.yaml").read_text())
    assert run_file["agent"] == "sac" and run_file["steps"] == 200
    resolved = run_file["config"]
    assert (resolved["learning_starts"], resolved["eval_every"], resolved["update_every"]) == (100, 1000, 1)
    assert resolved["sac"]["hidden"] == [16, 16] and resolved["sac"]["batch_size"] == 32
    assert (resolved["sac"]["lr"], resolved["sac"]["gamma"]) == (3e-4, 0.99)


def _setting(config: RunConfig, key: str) -> Any:
    section, field = key.split(".")
    return getattr(getattr(config, section), field)


@pytest.mark.parametrize("source", PROVENANCE, ids=lambda s: f"{s.key}={s.value}:{','.join(s.presets)}")
def test_each_provenance_entry_names_a_values_actual_setting(source):
    if source.presets:
        for preset in source.presets:
            assert _setting(resolve_config(preset), source.key) == source.value, preset
    else:
        assert _setting(RunConfig(), source.key) == source.value


def test_every_value_a_preset_sets_has_its_provenance():
    for preset, sections in PRESETS.items():
        for section, values in sections.items():
            for field, value in values.items():
                key = f"{section}.{field}"
                cited = [s for s in PROVENANCE if s.key == key and s.value == value
                         and (preset in s.presets or not s.presets)]
                assert cited, f"{preset}: {key} = {value} has no provenance entry"
