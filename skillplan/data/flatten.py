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
    An empty `keys` means the observation is already a flat Box. `dims` are the indices kept
    from the concatenation of `keys`, ascending (empty: all); `dim` counts the kept ones.
    """

    keys: tuple[str, ...]
    dim: int
    dims: tuple[int, ...] = ()

    @classmethod
    def for_space(
        cls, space: spaces.Space, keys: Sequence[str] = (), dims: Sequence[int] = ()
    ) -> ObservationLayout:
        """Check that `keys` name flat Box entries of `space` (inferring them when not given) and
        that `dims` index their concatenation.

        Inference takes `observation`, plus `desired_goal` when it is a Box (goal-conditioned
        mazes); kitchen's `desired_goal` is a dict of per-task goals and is left out.
        """
        full = cls._full(space, tuple(sorted(keys)))
        if not dims:
            return full
        if not full.keys and len(space.shape) != 1:
            raise DatasetError(
                f"Observation dimensions can only be chosen from 1-D observations; this one has shape "
                f"{space.shape}. Drop obs_dims (--obs-dims) for this dataset."
            )
        return cls(full.keys, len(dims), _checked_dims(dims, full))

    @classmethod
    def _full(cls, space: spaces.Space, keys: tuple[str, ...]) -> ObservationLayout:
        """Every dimension of `keys` (or of a flat Box)."""
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
            flat = np.asarray(obs, dtype=np.float32)
            if not self.dims:
                flat = flat.reshape(self.dim) if flat.size == self.dim else flat.reshape(-1, self.dim)
        else:
            flat = np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in self.keys], axis=-1)
        if self.dims:
            flat = flat[..., list(self.dims)]
        return np.ascontiguousarray(flat)

    def space(self) -> spaces.Box:
        """The flat observation space."""
        return spaces.Box(-np.inf, np.inf, (self.dim,), np.float32)


def _checked_dims(dims: Sequence[int], full: ObservationLayout) -> tuple[int, ...]:
    """`dims` sorted ascending, after checking each indexes `full` once."""
    source = f"the flattened observation ({', '.join(full.keys)})" if full.keys else "the observation"
    seen: set[int] = set()
    for index in dims:
        if not 0 <= index < full.dim:
            raise DatasetError(
                f"Observation dimension {index} is out of range: {source} has {full.dim} dimensions "
                f"(0-{full.dim - 1}). Choose obs_dims (--obs-dims) among them."
            )
        if index in seen:
            raise DatasetError(
                f"Observation dimension {index} is listed twice in obs_dims (--obs-dims); list each "
                "kept dimension once."
            )
        seen.add(index)
    return tuple(sorted(int(index) for index in dims))
