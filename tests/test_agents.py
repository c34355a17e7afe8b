"""The shared agent API on a cheap env: learn, evaluate, save/load, resume, NaN guard."""

from __future__ import annotations

import csv
import itertools
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from skillplan.agents import base
from skillplan.agents.sac import SAC, SACAgentConfig, SACConfig
from skillplan.errors import CheckpointError, ConfigError, TrainingDivergedError
from skillplan.interrupt import StopRequest
from tests.reproducibility import differing_tensors, metrics_rows

FAST = dict(learning_starts=200, eval_every=600, eval_episodes=1, checkpoint_every=600, threads=1,
            buffer_size=5_000)


def pendulum() -> gym.Env:
    return gym.make("Pendulum-v1", max_episode_steps=100)


def small_sac(**overrides) -> SACAgentConfig:
    return SACAgentConfig(**FAST, sac=SACConfig(hidden=(32, 32), batch_size=64), **overrides)


def test_sac_learns_writes_metrics_and_round_trips(tmp_path):
    agent = SAC(pendulum(), small_sac())
    before = {k: v.clone() for k, v in agent.learner.critic.state_dict().items()}
    agent.learn(1_200, tmp_path / "run", show_progress=False)
    after = agent.learner.critic.state_dict()
    assert any(not np.allclose(before[k], after[k]) for k in before), "critic never updated"
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("step") and "eval/return" in metrics[0] and len(metrics) >= 3
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 1000

    loaded = SAC.load(tmp_path / "run" / "agent")
    obs = np.linspace(-1, 1, 3).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    assert loaded.env_steps == agent.env_steps == 1_200


def test_learn_keeps_its_last_evaluation_for_the_caller(tmp_path, monkeypatch):
    agent = SAC(pendulum(), small_sac())
    calls = []
    evaluate = agent.evaluate
    monkeypatch.setattr(agent, "evaluate", lambda *a, **k: calls.append(agent.env_steps) or evaluate(*a, **k))
    agent.learn(1_200, tmp_path / "run", show_progress=False)
    assert calls == [600, 1_200]  # `skillplan train` prints the last one instead of evaluating again
    with (tmp_path / "run" / "metrics.csv").open() as f:
        last = [row for row in csv.DictReader(f) if row["eval/return"]][-1]
    assert agent.last_evaluation["return"] == pytest.approx(float(last["eval/return"]))


@pytest.mark.parametrize("update_every", [1, 4])
def test_updates_come_every_update_every_steps_after_learning_starts(update_every, monkeypatch):
    agent = SAC(pendulum(), small_sac(update_every=update_every, updates_per_step=2))
    calls = []
    monkeypatch.setattr(agent, "update", lambda: calls.append(agent.env_steps) or {"critic_loss": 0.0})
    agent.learn(400, show_progress=False)
    # 201 steps reach learning_starts (env steps 200 to 400): 2 updates every `update_every` of them
    assert len(calls) == 2 * (201 // update_every)
    assert calls[:2] == [200 + update_every - 1] * 2


def test_seed_updates_come_at_once_when_learning_starts_then_the_cadence_goes_on(monkeypatch):
    agent = SAC(pendulum(), small_sac(update_every=4, seed_updates=30))
    calls = []
    monkeypatch.setattr(agent, "update", lambda: calls.append(agent.env_steps) or {"critic_loss": 0.0})
    agent.learn(400, show_progress=False)
    assert calls[:30] == [200] * 30  # the burst, on the step that reaches learning_starts
    assert calls[30:] == list(range(203, 401, 4))  # then the cadence, as without it


class StopAfterReads(StopRequest):
    """A stop request that arrives while the loop is between two looks at it (another process sets it)."""

    def __init__(self, reads_before: int) -> None:
        super().__init__()
        self.reads = 0
        self.reads_before = reads_before

    @property
    def requested(self) -> bool:
        self.reads += 1
        return self.reads > self.reads_before


@pytest.mark.parametrize("reads_before", [50, 51])  # the request turns up at either look within a step
def test_a_stop_request_arriving_mid_step_still_checkpoints_the_step_it_stops_at(tmp_path, reads_before):
    agent = SAC(pendulum(), small_sac()).learn(300, tmp_path, show_progress=False,
                                               stop=StopAfterReads(reads_before))
    assert agent.stopped and 0 < agent.env_steps < 300
    assert SAC.load(tmp_path / "agent").env_steps == agent.env_steps


def test_resume_continues_from_the_saved_step(tmp_path):
    SAC(pendulum(), small_sac()).learn(600, tmp_path, show_progress=False)
    resumed = SAC(pendulum(), small_sac()).learn(1_200, tmp_path, resume=True, show_progress=False)
    assert resumed.env_steps == 1_200 and resumed.replay.size == 1_200
    steps = [int(line.split(",")[0]) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 1_200


def test_resumed_run_reports_the_speed_of_its_own_steps(tmp_path, monkeypatch):
    """env_steps_per_s counts the steps this call took, not those made before the resume."""
    SAC(pendulum(), small_sac()).learn(600, tmp_path, show_progress=False)
    clock = itertools.count()  # a fake clock: one second per reading
    monkeypatch.setattr(base, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    SAC(pendulum(), small_sac()).learn(1_200, tmp_path, resume=True, show_progress=False)
    with open(tmp_path / "metrics.csv") as f:
        evals = [row for row in csv.DictReader(f) if row["env_steps_per_s"]]
    assert [int(row["step"]) for row in evals] == [600, 1_200]
    assert float(evals[-1]["env_steps_per_s"]) == 600.0  # 600 steps since the resume, in one fake second


def test_resume_with_another_config_lists_the_differences(tmp_path):
    SAC(pendulum(), small_sac()).learn(600, tmp_path, show_progress=False)
    with pytest.raises(ConfigError, match="seed: 0 → 3"):
        SAC(pendulum(), small_sac(seed=3)).learn(1_200, tmp_path, resume=True, show_progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        SAC(pendulum(), small_sac()).learn(1_200, tmp_path, show_progress=False)


def test_corrupt_agent_checkpoint_is_reported(tmp_path):
    agent = SAC(pendulum(), small_sac())
    agent.save(tmp_path / "agent")
    (tmp_path / "agent" / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        SAC.load(tmp_path / "agent")
    (tmp_path / "agent" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json missing"):
        SAC.load(tmp_path / "agent")


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    agent = SAC(pendulum(), small_sac())
    agent.learn(600, tmp_path, show_progress=False)
    saved = (tmp_path / "agent" / "state.safetensors").read_bytes()
    monkeypatch.setattr(agent.learner, "update", lambda batch: {"critic_loss": float("nan")})
    with pytest.raises(TrainingDivergedError, match="critic_loss") as err:
        agent.learn(1_200, tmp_path, resume=True, show_progress=False)
    assert "last good checkpoint" in str(err.value)
    assert (tmp_path / "agent" / "state.safetensors").read_bytes() == saved


TINY = dict(learning_starts=100, eval_every=150, eval_episodes=1, checkpoint_every=150, threads=1,
            buffer_size=1_000)


def short_pendulum() -> gym.Env:
    return gym.make("Pendulum-v1", max_episode_steps=70)  # episodes end mid-way between checkpoints


def tiny_sac() -> SAC:
    return SAC(short_pendulum(), SACAgentConfig(**TINY, sac=SACConfig(hidden=(16, 16), batch_size=32)))


def test_one_seed_gives_one_run_warm_up_included(tmp_path):
    runs = [tiny_sac().learn(150, tmp_path / name, show_progress=False) for name in "ab"]
    assert differing_tensors(runs[0].state_tensors(), runs[1].state_tensors()) == []
    assert metrics_rows(tmp_path / "a") == metrics_rows(tmp_path / "b")
    warm_up = runs[0].replay.action[:100]
    assert warm_up.std() > 0.5, "the warm-up actions are uniform over [-2, 2]"


def test_resume_equals_the_uninterrupted_run(tmp_path):
    """150 steps, then a resume to 300 (mid-episode both times), is the run of 300 steps in one go."""
    whole = tiny_sac().learn(300, tmp_path / "whole", show_progress=False)
    tiny_sac().learn(150, tmp_path / "halves", show_progress=False)
    resumed = tiny_sac().learn(300, tmp_path / "halves", resume=True, show_progress=False)
    assert resumed.loop.episode == whole.loop.episode == 4
    assert differing_tensors(whole.state_tensors(), resumed.state_tensors()) == []
    assert metrics_rows(tmp_path / "whole") == metrics_rows(tmp_path / "halves")
