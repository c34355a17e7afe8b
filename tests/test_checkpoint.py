"""Checkpoints: identical outputs after a round trip, clear errors for broken directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from skillplan.checkpoint import REQUIRED_FILES
from skillplan.errors import CheckpointError
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import metadata_for
from tests.pretrain_fixtures import tiny_config, write_pu_datasets


@pytest.fixture
def model() -> SkillModel:
    data = write_pu_datasets(n_general=8, n_expert=4)
    config = tiny_config()
    torch.manual_seed(1)
    return SkillModel(config, metadata_for(data, config)).eval()


def outputs(model: SkillModel) -> list[torch.Tensor]:
    """Every public output on fixed raw inputs."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, model.metadata.obs_dim)).astype(np.float32)
    z = rng.normal(size=(5, model.metadata.z_dim)).astype(np.float32)
    obs_seq = rng.normal(size=(5, 4, model.metadata.obs_dim)).astype(np.float32)
    act_seq = rng.uniform(-1, 1, size=(5, 4, model.metadata.act_dim)).astype(np.float32)
    with torch.no_grad():
        prior, posterior = model.prior_dist(obs), model.encode_skill(obs_seq, act_seq)
        h = model.encode_state(obs)
        return [prior.mean, prior.stddev, posterior.mean, posterior.stddev, model.decode_action(obs, z),
                h, model.predict_latent(h, z), model.decode_state(h)]


def test_round_trip_gives_identical_outputs(model, tmp_path):
    model.save(tmp_path / "prior")
    assert sorted(p.name for p in (tmp_path / "prior").iterdir()) == sorted(REQUIRED_FILES)
    loaded = SkillModel.load(tmp_path / "prior")
    for before, after in zip(outputs(model), outputs(loaded), strict=True):
        assert torch.equal(before, after)
    assert loaded.config == model.config
    assert loaded.metadata == model.metadata
    meta = json.loads((tmp_path / "prior" / "metadata.json").read_text())
    assert meta["dataset_ids"] == ["test/general-v0", "test/expert-v0"] and meta["horizon"] == 4


def test_save_replaces_atomically(model, tmp_path):
    run = tmp_path / "run"
    model.save(run / "prior")
    model.save(run / "prior")  # over an existing checkpoint: no staging leftovers
    assert [p.name for p in run.iterdir()] == ["prior"]


@pytest.mark.parametrize("damage", ["missing-metadata", "garbage-weights", "bad-json", "not-a-dir"])
def test_broken_checkpoint_names_the_files(model, tmp_path, damage):
    path = tmp_path / "prior"
    model.save(path)
    if damage == "missing-metadata":
        (path / "metadata.json").unlink()
    elif damage == "garbage-weights":
        (path / "weights.safetensors").write_bytes(b"\x00not safetensors")
    elif damage == "bad-json":
        (path / "config.json").write_text("{")
    else:
        path = tmp_path / "nothing-here"
    with pytest.raises(CheckpointError) as err:
        SkillModel.load(path)
    for name in REQUIRED_FILES:
        assert name in str(err.value)


def test_weights_of_another_config_are_rejected(model, tmp_path):
    path = tmp_path / "prior"
    model.save(path)
    config = json.loads((path / "config.json").read_text())
    config["model"]["hidden"] = 48
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="consistent"):
        SkillModel.load(path)
