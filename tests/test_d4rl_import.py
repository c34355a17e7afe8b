"""Importing D4RL's own HDF5 files as Minari datasets, without the d4rl package."""

from __future__ import annotations

import h5py
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from skillplan.cli.main import app
from skillplan.data.d4rl_import import split_episodes
from skillplan.data.loading import load_offline_data


def write_d4rl_file(path, lengths=(30, 25, 40), obs_dim=60, act_dim=9, terminal_last=False, next_obs=False):
    """A file in D4RL's layout: flat rows, episodes ended by `timeouts` (or `terminals`)."""
    n = sum(lengths)
    rng = np.random.default_rng(0)
    ends = np.cumsum(lengths) - 1
    timeouts = np.zeros(n, dtype=bool)
    terminals = np.zeros(n, dtype=bool)
    timeouts[ends[:-1]] = True
    (terminals if terminal_last else timeouts)[ends[-1]] = True
    obs = np.arange(n, dtype=np.float32)[:, None] * np.ones(obs_dim, dtype=np.float32)
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
        f["rewards"] = rng.integers(0, 2, n).astype(np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts
        if next_obs:
            f["next_observations"] = obs + 1


def test_split_episodes_at_terminals_and_timeouts():
    terminals = np.array([0, 0, 1, 0, 0, 0, 0], dtype=bool)
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0], dtype=bool)
    assert split_episodes(terminals, timeouts) == [(0, 3), (3, 5), (5, 7)]


def test_import_d4rl_cli_writes_a_loadable_minari_dataset(tmp_path):
    path = tmp_path / "kitchen_mixed-v0.hdf5"
    write_d4rl_file(path, terminal_last=True)
    args = ["datasets", "import-d4rl", str(path), "--name", "d4rl/kitchen-mixed-v0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    dataset = minari.load_dataset("d4rl/kitchen-mixed-v0")
    assert dataset.total_episodes == 3
    episodes = list(dataset.iterate_episodes())
    # no next_observations in the file: each episode's last row becomes its final state
    assert [len(e.actions) for e in episodes] == [29, 24, 39]
    np.testing.assert_array_equal(episodes[1].observations[:, 0], np.arange(30, 55))
    assert all(e.truncations[-1] and not e.terminations.any() for e in episodes)
    data = load_offline_data("d4rl/kitchen-mixed-v0")
    assert data.layout.dim == 60 and data.general.n_steps == 92


def test_import_keeps_every_step_and_terminals_with_next_observations(tmp_path):
    path = tmp_path / "hopper.hdf5"
    write_d4rl_file(path, terminal_last=True, next_obs=True)
    CliRunner().invoke(app, ["datasets", "import-d4rl", str(path), "--name", "d4rl/toy-v0"])
    episodes = list(minari.load_dataset("d4rl/toy-v0").iterate_episodes())
    assert [len(e.actions) for e in episodes] == [30, 25, 40]
    np.testing.assert_array_equal(episodes[0].observations[:, 0], np.arange(31))
    assert episodes[2].terminations[-1] and episodes[0].truncations[-1]


def test_import_rejects_a_file_in_another_layout(tmp_path):
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((3, 2))
    result = CliRunner().invoke(app, ["datasets", "import-d4rl", str(path), "--name", "d4rl/bad-v0"])
    assert result.exit_code != 0
    assert "terminals" in str(result.exception)


@pytest.mark.parametrize("content", [b"not hdf5 at all", b""])
def test_import_rejects_a_non_hdf5_file(tmp_path, content):
    path = tmp_path / "broken.hdf5"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["datasets", "import-d4rl", str(path), "--name", "d4rl/bad-v0"])
    assert result.exit_code != 0 and "HDF5" in str(result.exception)
