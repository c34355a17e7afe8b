"""Load named or plain Minari datasets into flat float32 episode arrays, local first."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

import h5py
import minari
import numpy as np
from gymnasium import spaces

from skillplan.data.catalog import DatasetSpec, resolve
from skillplan.data.flatten import ObservationLayout
from skillplan.data.writing import dataset_exists
from skillplan.errors import DatasetError

NETWORK_PROBE_SECONDS = 4.0


@dataclass(frozen=True)
class Episodes:
    """Episodes of one dataset as flat arrays, concatenated episode after episode.

    Episode `i` owns `lengths[i] + 1` rows of `observations` (its final state included) and
    `lengths[i]` rows of `actions`.
    """

    observations: np.ndarray
    actions: np.ndarray
    lengths: np.ndarray

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def obs_offsets(self) -> np.ndarray:
        """Row of each episode's first state in `observations`."""
        return np.concatenate([[0], np.cumsum(self.lengths + 1)[:-1]]).astype(np.int64)

    @property
    def act_offsets(self) -> np.ndarray:
        """Row of each episode's first action in `actions`."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def subset(self, episode_ids: np.ndarray) -> Episodes:
        """The chosen episodes, in the given order, as a new contiguous `Episodes`."""
        episode_ids = np.asarray(episode_ids, dtype=np.int64)
        obs_off, act_off = self.obs_offsets, self.act_offsets
        obs_rows = [np.arange(obs_off[i], obs_off[i] + self.lengths[i] + 1) for i in episode_ids]
        act_rows = [np.arange(act_off[i], act_off[i] + self.lengths[i]) for i in episode_ids]
        return Episodes(
            observations=np.ascontiguousarray(self.observations[np.concatenate(obs_rows)]),
            actions=np.ascontiguousarray(self.actions[np.concatenate(act_rows)]),
            lengths=self.lengths[episode_ids].copy(),
        )

    def split(self, holdout_fraction: float, seed: int) -> tuple[Episodes, Episodes]:
        """Split whole episodes into (train, held-out); held-out gets at least one episode."""
        order = np.random.default_rng(seed).permutation(self.n_episodes)
        n_held = min(max(1, round(holdout_fraction * self.n_episodes)), self.n_episodes - 1)
        if n_held < 1:
            raise DatasetError("A held-out split needs at least two episodes.")
        return self.subset(np.sort(order[n_held:])), self.subset(np.sort(order[:n_held]))

    def fingerprint(self) -> str:
        """A content hash of the arrays, stored with checkpoints to tie them to their data."""
        digest = hashlib.blake2b(digest_size=16)
        for arr in (self.lengths, self.observations, self.actions):
            digest.update(np.ascontiguousarray(arr).data)
        return digest.hexdigest()


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean and std of the flat states, for input normalisation."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, *arrays: np.ndarray) -> NormStats:
        """Pooled statistics over several (N_i, D) arrays, accumulated in float64 without copies."""
        count = sum(len(a) for a in arrays)
        mean = sum(a.sum(0, dtype=np.float64) for a in arrays) / count
        var = sum(np.square(a - mean.astype(np.float32)).sum(0, dtype=np.float64) for a in arrays) / count
        return cls(mean.astype(np.float32), np.maximum(np.sqrt(var), 1e-3).astype(np.float32))


@dataclass(frozen=True)
class OfflineData:
    """Everything pretraining needs from a named dataset pair."""

    spec: DatasetSpec
    layout: ObservationLayout
    env_id: str
    env_kwargs: dict
    observation_space: spaces.Space
    action_space: spaces.Box
    general: Episodes
    expert: Episodes | None
    stats: NormStats

    @property
    def fingerprint(self) -> str:
        parts = [self.general.fingerprint()]
        if self.expert is not None:
            parts.append(self.expert.fingerprint())
        return "-".join(parts)


def load_offline_data(
    name: str,
    *,
    expert_id: str | None = None,
    with_expert: bool = True,
    download: bool = True,
    on_generate: Callable[[str], None] | None = None,
    obs_dims: Sequence[int] | None = None,
) -> OfflineData:
    """Load the general (and expert) data of a short name or Minari id as flat arrays.

    `expert_id` overrides (or, for a plain Minari id, supplies) the expert dataset. `obs_dims`
    keeps only those dimensions of the flat state (None: all), in the episodes and the statistics.
    Local datasets are read first. A missing scripted dataset is generated (and `on_generate`
    gets a message saying so); a missing remote one is downloaded through Minari when the network allows.
    """
    spec = resolve(name)
    if expert_id is not None:
        spec = replace(spec, expert_id=expert_id)
    general_ds = open_dataset(spec.general_id, spec, download=download, on_generate=on_generate)
    expert_ds = None
    if with_expert and spec.expert_id is not None:
        expert_ds = open_dataset(spec.expert_id, spec, download=download, on_generate=on_generate)

    layout = ObservationLayout.for_space(general_ds.observation_space, spec.obs_keys, obs_dims or ())
    action_space = general_ds.action_space
    if not isinstance(action_space, spaces.Box):
        raise DatasetError(
            f"Dataset '{spec.general_id}' has {type(action_space).__name__} actions; skills are "
            "sequences of continuous (Box) actions."
        )
    if expert_ds is not None:
        _check_compatible(spec, general_ds, expert_ds, layout)

    env_id, env_kwargs = _env_of(general_ds, spec)
    general = read_episodes(general_ds, layout)
    expert = read_episodes(expert_ds, layout) if expert_ds is not None else None
    arrays = [general.observations] + ([expert.observations] if expert is not None else [])
    return OfflineData(
        spec=replace(spec, env_id=env_id, obs_keys=layout.keys),
        layout=layout,
        env_id=env_id,
        env_kwargs=env_kwargs,
        observation_space=general_ds.observation_space,
        action_space=action_space,
        general=general,
        expert=expert,
        stats=NormStats.of(*arrays),
    )


def read_episodes(dataset: minari.MinariDataset, layout: ObservationLayout) -> Episodes:
    """Read every episode of a Minari dataset as flat arrays, allocated once and filled in place."""
    n_episodes, n_steps = dataset.total_episodes, dataset.total_steps
    act_dim = int(np.prod(dataset.action_space.shape))
    observations = np.empty((n_steps + n_episodes, layout.dim), dtype=np.float32)
    actions = np.empty((n_steps, act_dim), dtype=np.float32)
    lengths = np.empty(n_episodes, dtype=np.int64)
    obs_row = act_row = 0
    for i, (obs, acts) in enumerate(_episode_arrays(dataset, layout)):
        n = len(acts)
        actions[act_row : act_row + n] = np.asarray(acts).reshape(n, act_dim)
        observations[obs_row : obs_row + n + 1] = layout.flatten(obs).reshape(n + 1, -1)
        lengths[i] = n
        obs_row, act_row = obs_row + n + 1, act_row + n
    return Episodes(observations, actions, lengths)


def _episode_arrays(dataset: minari.MinariDataset, layout: ObservationLayout) -> Iterator[tuple]:
    """(observations, actions) per episode, reading only the observation keys the layout uses.

    Minari's HDF5 files are read directly (`episode_i/observations/<key>`, `episode_i/actions`):
    decoding every key of kitchen's nested goal dicts through Minari held ~120 MB more at the
    peak for a D4RL-mixed-sized dataset. Other storage formats go through Minari's iterator.
    """
    main_file = Path(dataset.spec.data_path) / "main_data.hdf5"
    if not main_file.is_file():
        for episode in dataset.iterate_episodes():
            yield episode.observations, episode.actions
        return
    with h5py.File(main_file, "r") as f:
        for i in dataset.episode_indices:
            group = f[f"episode_{i}"]
            if layout.keys:
                obs = {k: group["observations"][k][()] for k in layout.keys}
            else:
                obs = group["observations"][()]
            yield obs, group["actions"][()]


# Writes a missing scripted dataset: `generate(generator, kinds=..., progress=...)`. skillplan.envs
# installs it on `import skillplan`, so that this layer never imports the envs that import it.
_generators: list[Callable[..., None]] = []


def install_generator(generate: Callable[..., None]) -> None:
    """Let `open_dataset` write missing scripted datasets with `generate` (replacing any before)."""
    _generators[:] = [generate]


def open_dataset(
    dataset_id: str,
    spec: DatasetSpec,
    *,
    download: bool = True,
    on_generate: Callable[[str], None] | None = None,
) -> minari.MinariDataset:
    """Open a local Minari dataset, generating or downloading it first when it is missing."""
    if not dataset_exists(dataset_id):
        if spec.generator is not None and _generators:
            from skillplan.progress import progress_bar

            kind = "general" if dataset_id == spec.general_id else "expert"
            if on_generate is not None:
                on_generate(f"Dataset '{dataset_id}' is missing: generating it with the scripted "
                            f"{spec.generator} demonstrator (`skillplan datasets generate {spec.name}`).")
            with progress_bar() as progress:
                _generators[0](spec.generator, kinds=(kind,), progress=progress)
        elif download and _is_remote(dataset_id):
            _download(dataset_id, spec)
        else:
            raise DatasetError(
                f"Dataset '{dataset_id}' is not in the local Minari root "
                f"({os.environ.get('MINARI_DATASETS_PATH', '~/.minari/datasets')})."
                + _instead(spec)
            )
    try:
        return minari.load_dataset(dataset_id)
    except Exception as exc:  # a half-copied or foreign folder under the id
        raise DatasetError(
            f"Dataset '{dataset_id}' exists locally but can't be read by Minari ({exc}). "
            "Delete it and write it again."
        ) from exc


def _is_remote(dataset_id: str) -> bool:
    return not dataset_id.startswith("skillplan/")


def _instead(spec: DatasetSpec) -> str:
    if spec.scripted_equivalent:
        return (
            f" Run `skillplan datasets generate {spec.scripted_equivalent}` and use "
            f"--dataset {spec.scripted_equivalent}, the offline equivalent, instead."
        )
    return " Copy it into the Minari root, or import a D4RL file with `skillplan datasets import-d4rl`."


def _network_reachable(url: str, timeout: float = NETWORK_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the host of `url` opens within `timeout` (DNS included)."""
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _download(dataset_id: str, spec: DatasetSpec) -> None:
    """Download through Minari, failing fast with a clear message when offline."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - minari[hf] is a dependency
        raise DatasetError(
            f"Dataset '{dataset_id}' is not local and downloading needs `minari[hf]`."
            + _instead(spec)
        ) from None
    offline = constants.HF_HUB_OFFLINE or not _network_reachable(constants.ENDPOINT)
    if offline:
        raise DatasetError(
            f"Dataset '{dataset_id}' is not in the local Minari root and can't be downloaded: "
            "the dataset server is unreachable from this machine (no network, or offline mode)."
            + _instead(spec)
        )
    try:
        minari.download_dataset(dataset_id)
    except Exception as exc:
        raise DatasetError(f"Downloading dataset '{dataset_id}' failed: {exc}." + _instead(spec)) from exc


def _env_of(dataset: minari.MinariDataset, spec: DatasetSpec) -> tuple[str, dict]:
    """The env id and kwargs recorded in the dataset's metadata, else the catalog's env id."""
    env_spec = dataset.spec.env_spec
    if env_spec is not None:
        kwargs = dict(env_spec.kwargs)
        if env_spec.max_episode_steps is not None:
            kwargs["max_episode_steps"] = env_spec.max_episode_steps
        return env_spec.id, kwargs
    return spec.env_id, {}


def _check_compatible(
    spec: DatasetSpec,
    general: minari.MinariDataset,
    expert: minari.MinariDataset,
    layout: ObservationLayout,
) -> None:
    expert_layout = ObservationLayout.for_space(expert.observation_space, spec.obs_keys, layout.dims)
    g_act, e_act = general.action_space.shape, expert.action_space.shape
    if layout.dim != expert_layout.dim or g_act != e_act:
        raise DatasetError(
            f"Expert data '{spec.expert_id}' does not match general data '{spec.general_id}': "
            f"flat observations {expert_layout.dim} vs {layout.dim}, actions {e_act} vs {g_act}. "
            "Both datasets must come from the same environment."
        )
