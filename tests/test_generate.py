"""Scripted dataset generation end to end: a few episodes per env, written and loaded back."""

from __future__ import annotations

import dataclasses
import os

import minari
import numpy as np
import pytest
from gymnasium.vector.utils import iterate
from typer.testing import CliRunner

import skillplan.envs.generate as generate
from skillplan.cli.main import app
from skillplan.data import load_offline_data
from skillplan.data.writing import dataset_dir, datasets_root
from skillplan.errors import DatasetError

SMALL = {"kitchen-scripted": ["-n", "2"], "pointmaze-scripted": ["-n", "4"]}


@pytest.mark.parametrize("name", ["kitchen-scripted", "pointmaze-scripted"])
def test_generate_cli_writes_loadable_datasets(name):
    result = CliRunner().invoke(app, ["datasets", "generate", name, *SMALL[name], "--workers", "2"])
    assert result.exit_code == 0, result.output
    general = minari.load_dataset(f"skillplan/{name}/general-v0")
    expert = minari.load_dataset(f"skillplan/{name}/expert-v0")
    assert general.total_episodes == int(SMALL[name][1]) and expert.total_episodes == 1
    env = general.recover_environment()
    assert env.spec.id == ("FrankaKitchen-v1" if name == "kitchen-scripted" else "PointMaze_Large-v3")
    episode = next(general.iterate_episodes())
    first_obs = next(iterate(env.observation_space, episode.observations))
    assert env.observation_space.contains(first_obs)
    data = load_offline_data(name)
    assert data.expert is not None and data.general.n_steps == general.total_steps
    assert data.layout.dim == (59 if name == "kitchen-scripted" else 6)


def test_generation_is_deterministic_whatever_the_workers():
    generate.generate_dataset("pointmaze-scripted", episodes={"general": 3, "expert": 1}, seed=7, workers=2)
    first = load_offline_data("pointmaze-scripted")
    generate.generate_dataset("pointmaze-scripted", episodes={"general": 3, "expert": 1}, seed=7,
                              workers=1, overwrite=True)
    second = load_offline_data("pointmaze-scripted")
    np.testing.assert_array_equal(first.general.observations, second.general.observations)
    np.testing.assert_array_equal(first.expert.actions, second.expert.actions)
    generate.generate_dataset("pointmaze-scripted", episodes={"general": 3, "expert": 1}, seed=8,
                              workers=1, overwrite=True)
    third = load_offline_data("pointmaze-scripted")
    assert first.general.fingerprint() != third.general.fingerprint()


def test_existing_dataset_asks_for_overwrite():
    generate.generate_dataset("pointmaze-scripted", episodes={"general": 1, "expert": 1}, workers=1)
    with pytest.raises(DatasetError, match="--overwrite"):
        generate.generate_dataset("pointmaze-scripted", episodes={"general": 1, "expert": 1}, workers=1)


def test_interrupted_generation_leaves_no_dataset(monkeypatch):
    real = generate._worker_episode
    calls = []

    def flaky(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(generate, "_worker_episode", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate.generate_dataset("pointmaze-scripted", episodes={"general": 5, "expert": 1}, workers=1)
    assert not dataset_dir("skillplan/pointmaze-scripted/general-v0").exists()
    assert not [p for p in os.listdir(datasets_root()) if p.startswith(".")]


def test_missing_scripted_dataset_is_generated_on_use_and_says_so(monkeypatch):
    small = dataclasses.replace(generate.demonstrator("pointmaze-scripted"),
                                default_episodes={"general": 2, "expert": 1})
    monkeypatch.setattr(generate, "demonstrator", lambda name: small)
    messages = []
    data = load_offline_data("pointmaze-scripted", on_generate=messages.append)
    assert data.general.n_episodes == 2 and data.expert.n_episodes == 1
    assert len(messages) == 2 and "generating" in messages[0]
    assert "skillplan/pointmaze-scripted/general-v0" in messages[0]
