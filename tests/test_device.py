"""`--device`: names resolve to torch devices, bad ones are one clear error, checkpoints load onto the CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from skillplan.agents.sac import SAC, SACAgentConfig, SACConfig
from skillplan.config import resolve_config
from skillplan.device import available_devices, bf16_autocast, resolve_device, uses_bf16
from skillplan.errors import ConfigError
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import BatchSource, JointTrainer, metadata_for, normalize_episodes
from tests.pretrain_fixtures import tiny_config, write_pu_datasets


def skillplan(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "skillplan.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cpu_and_auto_without_a_gpu_are_the_cpu(no_cuda):
    for spec in ("cpu", "CPU", " cpu ", "auto", torch.device("cpu")):
        assert resolve_device(spec) == torch.device("cpu")
    assert available_devices() == ["cpu"]


def test_auto_and_cuda_take_the_first_gpu_where_there_is_one(two_gpus):
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cuda:x", "", "mps"])
def test_an_unknown_device_names_the_devices_there_are(no_cuda, spec):
    with pytest.raises(ConfigError, match=r"Unknown device .*this machine has: cpu\."):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_says_so(no_cuda, spec):
    with pytest.raises(ConfigError, match=r"no CUDA device is available.*Devices on this machine: cpu\."):
        resolve_device(spec)


def test_a_gpu_index_past_the_last_names_the_gpus(two_gpus):
    with pytest.raises(ConfigError, match=r"has 2 CUDA device\(s\)\. Devices on this machine: cpu, cuda:0, "
                                          r"cuda:1\."):
        resolve_device("cuda:3")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("command", [("train", "--agent", "sac"), ("pretrain",), ("evaluate", "run"),
                                     ("evaluate-prior", "prior"), ("benchmark", "sample-efficiency")])
def test_every_command_refuses_cuda_without_cuda_in_one_paragraph(command):
    result = skillplan(*command, "--device", "cuda")
    assert result.returncode == 2, result.stderr
    assert "no CUDA device is available" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_device_on_the_command_line_is_one_paragraph():
    result = skillplan("train", "--agent", "sac", "--device", "tpu")
    assert result.returncode == 2 and "Unknown device 'tpu'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cpu_agent_checkpoint_round_trips_through_device_cpu(tmp_path):
    config = SACAgentConfig(learning_starts=100, eval_every=300, eval_episodes=1, checkpoint_every=300,
                            threads=1, buffer_size=1_000, sac=SACConfig(hidden=(32, 32), batch_size=32))
    agent = SAC(gym.make("Pendulum-v1", max_episode_steps=50), config, device="cpu")
    agent.learn(300, tmp_path / "run", show_progress=False)
    loaded = SAC.load(tmp_path / "run" / "agent", device=resolve_device("cpu"))
    assert loaded.device == torch.device("cpu") and loaded.replay.size == agent.replay.size == 300
    obs = np.linspace(-1, 1, 3).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    for name, value in agent.learner.state_dict().items():
        assert torch.equal(loaded.learner.state_dict()[name], value), name
    result = skillplan("evaluate", str(tmp_path / "run"), "--episodes", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "return" in result.stdout


@pytest.fixture
def bf16_units(monkeypatch, request):
    """A CPU with (param True) or without (False) native bfloat16, whatever this machine has."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: request.param)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return request.param


@pytest.mark.parametrize("bf16_units", [True, False], indirect=True)
def test_auto_precision_is_bf16_only_on_a_cpu_with_bf16_units(bf16_units):
    cpu = torch.device("cpu")
    assert uses_bf16(cpu, "auto") is bf16_units
    assert uses_bf16(cpu, "bf16") and not uses_bf16(cpu, "fp32")
    with bf16_autocast(cpu, "auto"):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == (torch.bfloat16 if bf16_units else torch.float32)


def test_a_gpu_without_bf16_never_autocasts_to_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert not uses_bf16(torch.device("cuda", 0), "bf16") and not uses_bf16(torch.device("cuda", 0), "auto")


@pytest.mark.parametrize("bf16_units", [False], indirect=True)
def test_auto_precision_pretrains_exactly_as_fp32_without_bf16_units(bf16_units):
    data = write_pu_datasets()
    weights = []
    for precision in ("auto", "fp32"):
        config = tiny_config(pretrain={"precision": precision})
        torch.manual_seed(0)
        model = SkillModel(config, metadata_for(data, config))
        meta = model.metadata
        batches = BatchSource(normalize_episodes(data.general, meta), normalize_episodes(data.expert, meta),
                              config.model.horizon, config.pretrain.n_skills, 32, 0.25, seed=0)
        trainer = JointTrainer(model)
        for _ in range(3):
            trainer.step(batches.sample(), batches.n_expert)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*weights)
    assert resolve_config("skillplan").pretrain.precision == "auto"
