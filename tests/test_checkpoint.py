"""Checkpoints: identical outputs after a round trip, clear errors for broken directories."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from skillplan import checkpoint, io, versions
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


def save_at(model: SkillModel, path, step: int) -> None:
    model.metadata.step = step
    model.save(path)


def test_saves_are_versions_behind_one_link(model, tmp_path):
    tmp_path = tmp_path / "run"
    for step in (10, 20, 30):
        save_at(model, tmp_path / "prior", step)
    assert os.readlink(tmp_path / "prior") == os.path.join("prior-checkpoints", "step-000030")
    kept = sorted(p.name for p in (tmp_path / "prior-checkpoints").iterdir())
    assert kept == ["step-000020", "step-000030"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prior", "prior-checkpoints"]
    assert SkillModel.load(tmp_path / "prior").metadata.step == 30


def test_a_failure_mid_write_keeps_the_last_version(model, tmp_path, monkeypatch):
    save_at(model, tmp_path / "prior", 10)
    expected = outputs(model)

    def half_written(tensors, filename):  # some bytes reach the disk, then the write fails
        with open(filename, "wb") as f:
            f.write(b"\x00" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", half_written)
    with torch.no_grad():
        model.prior.net[0].weight.add_(1.0)
    with pytest.raises(OSError, match="No space"):
        save_at(model, tmp_path / "prior", 20)
    assert [p.name for p in (tmp_path / "prior-checkpoints").iterdir()] == ["step-000010"]  # no leftovers
    loaded = SkillModel.load(tmp_path / "prior")
    assert loaded.metadata.step == 10
    for before, after in zip(expected, outputs(loaded), strict=True):
        assert torch.equal(before, after)


def test_a_kill_before_the_link_moves_leaves_the_new_version_to_resume_from(model, tmp_path, monkeypatch):
    save_at(model, tmp_path / "prior", 10)
    def killed(link, version):
        raise KeyboardInterrupt  # the process ends after the version's rename, before the link moves

    monkeypatch.setattr(versions, "_point", killed)
    with pytest.raises(KeyboardInterrupt):
        save_at(model, tmp_path / "prior", 20)
    assert SkillModel.load(tmp_path / "prior").metadata.step == 10  # the link still leads to a whole version
    found = versions.candidates(tmp_path / "prior", REQUIRED_FILES)
    assert [p.name for p in found] == ["step-000020", "step-000010"]  # --resume takes the newest
    (tmp_path / "prior").unlink()  # and a link lost with the process is found again by step
    assert SkillModel.load(tmp_path / "prior").metadata.step == 20


def test_only_incomplete_versions_name_what_is_missing(model, tmp_path):
    for step in (10, 20):
        save_at(model, tmp_path / "prior", step)
    (tmp_path / "prior-checkpoints" / "step-000010" / "metadata.json").unlink()
    (tmp_path / "prior-checkpoints" / "step-000020" / "config.json").unlink()
    missing = r"step-000020 lacks config\.json; step-000010 lacks metadata\.json"
    with pytest.raises(CheckpointError, match=missing):
        versions.candidates(tmp_path / "prior", REQUIRED_FILES)


def test_a_plain_checkpoint_directory_of_an_earlier_release_loads_and_becomes_a_link(model, tmp_path):
    save_at(model, tmp_path / "new", 10)
    shutil.copytree(tmp_path / "new", tmp_path / "prior")  # the plain layout: files in prior/ itself
    assert SkillModel.load(tmp_path / "prior").metadata.step == 10
    assert versions.candidates(tmp_path / "prior", REQUIRED_FILES) == [tmp_path / "prior"]
    save_at(model, tmp_path / "prior", 20)
    assert (tmp_path / "prior").is_symlink() and SkillModel.load(tmp_path / "prior").metadata.step == 20


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_directory_leaves_the_new_contents_and_no_leftovers(tmp_path, monkeypatch, exchange):
    tmp_path = tmp_path / "dir"
    tmp_path.mkdir()
    if not exchange:  # the two-rename path of systems without an atomic exchange
        monkeypatch.setattr(io, "exchange_paths", lambda a, b: False)
    for name, text in (("old", "old"), ("new", "new")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text(text)
    io.replace_directory(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "old" / "file").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


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
