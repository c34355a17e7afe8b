"""Flatten dict observations into contiguous float32 states, the form every model consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from skillplan.errors import DatasetError


@dataclass(frozen=True)
class ObservationLayout:
    """Which keys of a (possibly dict) observation make up the flat state.

    Keys are kept in gymnasium's `Dict` order (sorted), the order `FilterObservation` +
    `FlattenObservation` concatenate them in, so env-side flattening matches the data.
    An empty `keys` means the observation is already a flat Box.
    """

    keys: tuple[str, ...]
    dim: int

    @classmethod
    def for_space(cls, space: spaces.Space, keys: Sequence[str] = ()) -> ObservationLayout:
        """Check that `keys` name flat Box entries of `space`; infer them when not given.

        Inference takes `observation`, plus `desired_goal` when it is a Box (goal-conditioned
        mazes); kitchen's `desired_goal` is a dict of per-task goals and is left out.
        """
        keys = tuple(sorted(keys))
        if isinstance(space, spaces.Box):
            return cls((), int(np.prod(space.shape)))
        if not isinstance(space, spaces.Dict):
            raise DatasetError(
                f"Observations of type {type(space).__name__} can't be flattened: skillplan "
                "reads Box observations or Dict observations whose chosen entries are Boxes."
            )
        if not keys:
            keys = tuple(k for k in ("desired_goal", "observation") if isinstance(space.get(k), spaces.Box))
            if not keys:
                raise DatasetError(
                    f"Can't choose which observation keys to flatten among {list(space.keys())}: "
                    "none of 'observation' or 'desired_goal' is a Box. Use a catalog name or "
                    "a dataset whose observation has a Box 'observation' entry."
                )
        dim = 0
        for key in keys:
            sub = space.spaces.get(key)
            if not isinstance(sub, spaces.Box):
                kind = "missing" if sub is None else f"a {type(sub).__name__}, not a Box"
                raise DatasetError(
                    f"Observation key '{key}' can't be flattened: it is {kind}. "
                    f"Available keys: {list(space.keys())}."
                )
            dim += int(np.prod(sub.shape))
        return cls(tuple(keys), dim)

    def flatten(self, obs: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """One observation (dim,) or a stack of them (T, dim), as contiguous float32."""
        if not self.keys:
            arr = np.asarray(obs, dtype=np.float32)
            flat = arr.reshape(self.dim) if arr.size == self.dim else arr.reshape(-1, self.dim)
            return np.ascontiguousarray(flat)
        parts = [np.asarray(obs[k], dtype=np.float32) for k in self.keys]
        return np.ascontiguousarray(np.concatenate(parts, axis=-1))

    def space(self) -> spaces.Box:
        """The flat observation space."""
        return spaces.Box(-np.inf, np.inf, (self.dim,), np.float32)
