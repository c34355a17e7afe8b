"""The pretraining run: layout, resume, presets, user errors, and the `skillplan pretrain` CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console
from typer.testing import CliRunner

from skillplan.checkpoint import read_training_state
from skillplan.cli.main import app
from skillplan.config import PRESETS, RunConfig, resolve_config
from skillplan.errors import CheckpointError, ConfigError, DatasetError, TrainingDivergedError
from skillplan.models.prior import SkillPrior
from skillplan.models.skill_model import SkillModel
from skillplan.pretrain import (
    BatchSource,
    JointTrainer,
    live_weights,
    metadata_for,
    normalize_episodes,
    pretrain,
)
from tests.pretrain_fixtures import TINY, tiny_config, write_pu_datasets
from tests.reproducibility import differing_tensors, metrics_rows

QUIET = Console(quiet=True)


@pytest.fixture
def data():
    return write_pu_datasets(n_general=12, n_expert=4)


def metrics_steps(run) -> list[int]:
    with (run / "metrics.csv").open() as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_run_writes_checkpoint_logs_and_plot(data, tmp_path):
    run = tmp_path / "run"
    result = pretrain(tiny_config(pretrain={"steps": 30, "eval_every": 15}), run, console=QUIET)
    assert result.step == 30 and result.checkpoint == run / "prior"
    for name in ("config.yaml", "metrics.csv", "curves.png", "summary.json"):
        assert (run / name).is_file(), name
    assert {"weights.safetensors", "config.json", "metadata.json", "training.safetensors"} <= {
        p.name for p in (run / "prior").iterdir()
    }
    summary = json.loads((run / "summary.json").read_text())
    assert {"val_action_mse", "val_prior_nll", "val_latent_err_k3", "val_obs_err_k3",
            "val_pu_adv_auc", "val_pu_cls_auc"} <= set(summary)
    assert SkillModel.load(run / "prior").metadata.step == 30
    assert yaml.safe_load((run / "config.yaml").read_text())["preset"] == "skillplan"


def test_resume_continues_from_the_saved_step(data, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny_config(pretrain={"steps": 20, "checkpoint_every": 10}), run, console=QUIET)
    saved = SkillModel.load(run / "prior")
    result = pretrain(tiny_config(pretrain={"steps": 40, "checkpoint_every": 10}), run, resume=True,
                      console=QUIET)
    assert result.step == 40
    resumed = SkillModel.load(run / "prior")
    assert resumed.metadata.step == 40
    assert not torch.equal(saved.prior.net[0].weight, resumed.prior.net[0].weight)
    assert metrics_steps(run) == list(range(10, 41, 10))


def test_resume_equals_the_uninterrupted_run(data, tmp_path):
    """20 steps, then a resume to 40, is the run of 40 steps in one go: weights, Adam state, the
    generators' states and the metrics rows (wall time aside) are bit-identical."""
    def config(steps: int) -> RunConfig:
        return tiny_config(pretrain={"steps": steps, "checkpoint_every": 10, "eval_every": 20})

    pretrain(config(40), tmp_path / "whole", console=QUIET)
    pretrain(config(20), tmp_path / "halves", console=QUIET)
    pretrain(config(40), tmp_path / "halves", resume=True, console=QUIET)
    whole, halves = (SkillModel.load(tmp_path / run / "prior") for run in ("whole", "halves"))
    assert differing_tensors(whole.state_dict(), halves.state_dict()) == []
    training = [read_training_state(tmp_path / run / "prior") for run in ("whole", "halves")]
    assert any(key.startswith("adam.") for key in training[0])
    assert differing_tensors(*training) == []
    assert metrics_rows(tmp_path / "whole") == metrics_rows(tmp_path / "halves")


def test_ema_exports_the_average_of_the_live_weights_and_leaves_training_alone(data, tmp_path, monkeypatch):
    """With `ema_decay` d the checkpoint holds e_t = d_t·e_(t−1) + (1 − d_t)·w_t over the live weights
    w_t (e_1 = w_1), d_t = min(d, t / (t + 9)) warming up to d by step 14 of 20; the live weights, kept
    in the training state, are those of the run without it."""
    live_steps: list[dict[str, torch.Tensor]] = []
    step = JointTrainer.step

    def recording_step(self, batch, n_expert):
        terms = step(self, batch, n_expert)
        live_steps.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return terms

    monkeypatch.setattr(JointTrainer, "step", recording_step)
    decay = 0.6
    pretrain(tiny_config(pretrain={"steps": 20, "ema_decay": 0.0}), tmp_path / "plain", console=QUIET)
    plain = SkillModel.load(tmp_path / "plain" / "prior").state_dict()
    live_steps.clear()
    pretrain(tiny_config(pretrain={"steps": 20, "ema_decay": decay}), tmp_path / "ema", console=QUIET)
    expected = dict(live_steps[0])
    for t, weights in enumerate(live_steps[1:], start=2):
        d = min(decay, t / (t + 9))
        expected = {k: d * expected[k] + (1 - d) * weights[k] if weights[k].is_floating_point()
                    else weights[k] for k in weights}
    exported = SkillModel.load(tmp_path / "ema" / "prior").state_dict()
    training = read_training_state(tmp_path / "ema" / "prior")
    live = live_weights(training)
    assert differing_tensors(live, plain) == []
    assert all(torch.allclose(exported[k], expected[k], atol=1e-6) for k in expected)
    moved = [k for k in plain if not torch.allclose(exported[k], plain[k], atol=1e-4)]
    assert len(moved) > len(plain) // 2  # the average is not the last weights


def test_ema_resume_equals_the_uninterrupted_run(data, tmp_path):
    def config(steps: int) -> RunConfig:
        return tiny_config(pretrain={"steps": steps, "checkpoint_every": 10, "ema_decay": 0.9})

    pretrain(config(30), tmp_path / "whole", console=QUIET)
    pretrain(config(10), tmp_path / "halves", console=QUIET)
    pretrain(config(30), tmp_path / "halves", resume=True, console=QUIET)
    whole, halves = (tmp_path / run / "prior" for run in ("whole", "halves"))
    assert differing_tensors(SkillModel.load(whole).state_dict(), SkillModel.load(halves).state_dict()) == []
    assert differing_tensors(read_training_state(whole), read_training_state(halves)) == []


def test_ema_can_be_switched_on_when_a_run_is_resumed(data, tmp_path):
    """The average starts from the resumed weights; the live trajectory is the plain run's."""
    run = tmp_path / "run"
    def config(steps: int, decay: float) -> RunConfig:
        return tiny_config(pretrain={"steps": steps, "checkpoint_every": 10, "ema_decay": decay})

    pretrain(config(10, 0.0), run, console=QUIET)
    pretrain(config(20, 0.9), run, resume=True, console=QUIET)
    pretrain(config(20, 0.0), tmp_path / "plain", console=QUIET)
    training = read_training_state(run / "prior")
    live = live_weights(training)
    plain = SkillModel.load(tmp_path / "plain" / "prior").state_dict()
    assert differing_tensors(live, plain) == []
    assert int(training["ema.n_averaged"]) == 10


def test_resume_falls_back_past_a_corrupt_newest_version_and_says_so(data, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny_config(pretrain={"steps": 20, "checkpoint_every": 10}), run, console=QUIET)
    (run / "prior-checkpoints" / "step-000020" / "weights.safetensors").write_bytes(b"\x00" * 64)
    out = io.StringIO()
    result = pretrain(tiny_config(pretrain={"steps": 30, "checkpoint_every": 10}), run, resume=True,
                      console=Console(file=out, width=400))
    said = " ".join(out.getvalue().split())
    assert "step-000020" in said and "corrupt" in said and "Resuming from" in said and "(step 10)" in said
    assert result.step == 30 and metrics_steps(run) == [10, 20, 30]  # step 20 again, from the restart
    assert sorted(p.name for p in (run / "prior-checkpoints").iterdir()) == ["step-000020", "step-000030"]


def test_resume_with_only_incomplete_versions_names_what_is_missing(data, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny_config(pretrain={"steps": 10, "checkpoint_every": 10}), run, console=QUIET)
    (run / "prior-checkpoints" / "step-000010" / "training.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"step-000010 lacks training\.safetensors"):
        pretrain(tiny_config(pretrain={"steps": 20}), run, resume=True, console=QUIET)


def test_resume_loads_optimizer_state(data, tmp_path):
    config = tiny_config(pretrain={"steps": 5, "checkpoint_every": 5})
    pretrain(config, tmp_path / "run", console=QUIET)
    trainer = JointTrainer(SkillModel.load(tmp_path / "run" / "prior"))
    trainer.load_state_tensors(read_training_state(tmp_path / "run" / "prior"))
    assert trainer.step_count == 5
    assert all(len(state) == 3 for state in trainer.optimizer.state.values())  # step, exp_avg, exp_avg_sq


def test_resume_with_another_config_lists_differences(data, tmp_path):
    pretrain(tiny_config(pretrain={"steps": 5}), tmp_path / "run", console=QUIET)
    changed = tiny_config(model={"sde": False}, pretrain={"steps": 10, "lr": 3e-4})
    with pytest.raises(ConfigError) as err:
        pretrain(changed, tmp_path / "run", resume=True, console=QUIET)
    assert "model.sde: True -> False" in str(err.value)
    assert "pretrain.lr: 0.001 -> 0.0003" in str(err.value)


def test_existing_run_needs_resume_and_resume_needs_a_run(data, tmp_path):
    pretrain(tiny_config(pretrain={"steps": 2}), tmp_path / "run", console=QUIET)
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(tiny_config(pretrain={"steps": 2}), tmp_path / "run", console=QUIET)
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        pretrain(tiny_config(pretrain={"steps": 2}), tmp_path / "other", resume=True, console=QUIET)


def test_divergence_names_the_term_and_keeps_the_last_checkpoint(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    pretrain(tiny_config(pretrain={"steps": 10, "checkpoint_every": 10}), run, console=QUIET)
    weights_before = (run / "prior" / "weights.safetensors").read_bytes()

    real_forward = SkillPrior.forward

    def nan_prior(self, obs):
        dist = real_forward(self, obs)
        return dist._replace(mean=dist.mean * float("nan"))

    monkeypatch.setattr(SkillPrior, "forward", nan_prior)
    with pytest.raises(TrainingDivergedError) as err:
        pretrain(tiny_config(pretrain={"steps": 20, "checkpoint_every": 10}), run, resume=True, console=QUIET)
    message = str(err.value)
    assert "prior" in message and "step 11" in message and "step 10" in message
    assert "diverged at step 11: prior became" in message  # only the prior term, by name
    assert (run / "prior" / "weights.safetensors").read_bytes() == weights_before


def test_pu_without_expert_data_suggests_no_pu(tmp_path):
    write_pu_datasets(n_general=6, n_expert=2)
    config = tiny_config(data={"expert_dataset": None})
    with pytest.raises(DatasetError, match="--no-pu"):
        pretrain(config, tmp_path / "run", console=QUIET)
    no_pu = tiny_config(data={"expert_dataset": None}, model={"pu": False, "pu_prior": False},
                        pretrain={"steps": 3})
    assert pretrain(no_pu, tmp_path / "run", console=QUIET).step == 3


def test_metadata_records_the_datas_first_states(data):
    meta = metadata_for(data, tiny_config())
    firsts = np.concatenate([e.observations[e.obs_offsets] for e in (data.general, data.expert)])
    np.testing.assert_allclose(meta.start_mean, firsts.mean(0), atol=1e-5)
    np.testing.assert_allclose(meta.start_std, np.maximum(firsts.std(0), 1e-3), rtol=1e-4)
    assert not np.allclose(meta.start_mean, meta.obs_mean, atol=0.05)  # first states, not all states


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_trains(data, preset):
    config = tiny_config(preset)
    meta = metadata_for(data, config)
    model = SkillModel(config, meta)
    n_skills = config.pretrain.n_skills if config.model.dynamics else 1
    batches = BatchSource(normalize_episodes(data.general, meta), normalize_episodes(data.expert, meta),
                          config.model.horizon, n_skills, 32, 0.25, seed=0)
    trainer = JointTrainer(model)
    for _ in range(3):
        terms = trainer.step(batches.sample(), batches.n_expert)
    expected = {"spirl": {"bc", "kl", "prior"}, "skimo": {"bc", "kl", "prior", "obs", "consistency"},
                "serla": {"bc", "kl", "prior", "sde", "pu_adv"},
                "skillplan": {"bc", "kl", "prior", "sde", "pu_adv", "pu_cls", "obs", "consistency"}}
    assert set(terms) - {"loss", "grad_norm"} == expected[preset]
    assert all(torch.isfinite(v) for v in terms.values())


def test_open_loop_decoder_trains_and_decodes(data):
    config = tiny_config(model={"decoder": "open"})
    model = SkillModel(config, metadata_for(data, config))
    action = model.decode_action(data.general.observations[:2], torch.zeros(2, 4), step=3)
    assert action.shape == (2, 3)


def test_presets_follow_their_methods():
    assert not resolve_config("spirl").model.dynamics and not resolve_config("spirl").model.pu
    assert resolve_config("skimo").model.dynamics and resolve_config("skimo").pretrain.n_skills == 10
    serla = resolve_config("serla").model
    assert serla.pu and serla.sde and not serla.dynamics
    assert resolve_config("skillplan").model.model_dump() == resolve_config().model.model_dump()


def test_yaml_config_layers_under_cli_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"preset": "skimo", "pretrain": {"lr": 5e-4, "steps": 7}}))
    config = resolve_config(None, path, {"pretrain": {"steps": 9}})
    assert (config.preset, config.pretrain.lr, config.pretrain.steps) == ("skimo", 5e-4, 9)
    path.write_text(yaml.safe_dump({"pretrain": {"lr": -1, "stepz": 3}}))
    with pytest.raises(ConfigError, match=r"pretrain\.lr") as err:
        resolve_config(None, path)
    assert "stepz" in str(err.value)


def test_cli_pretrain_runs_and_reports(data, tmp_path):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(TINY))
    args = ["pretrain", "--dataset", "test/general-v0", "--expert-dataset", "test/expert-v0",
            "--config", str(config_file), "--steps", "12", "--batch-size", "32", "--no-sde",
            "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "val_action_mse" in result.output and "windows/s" in result.output
    saved = SkillModel.load(tmp_path / "run" / "prior").config
    assert not saved.model.sde and saved.pretrain.batch_size == 32 and saved.model.hidden == 32
