"""Short dataset names and what they stand for: Minari ids, base env, observation layout."""

from __future__ import annotations

from dataclasses import dataclass

from skillplan.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """One named pair of datasets: general (unlabeled) data and optional expert (positive) data.

    `obs_keys` are the dict-observation keys concatenated, in order, into the flat state;
    `generator` names the scripted demonstrator that can regenerate the data locally;
    `position_dims` are the flat state's position (not velocity) dimensions, `--obs-dims positions`.
    """

    name: str
    general_id: str
    expert_id: str | None
    env_id: str
    obs_keys: tuple[str, ...]
    generator: str | None = None
    scripted_equivalent: str | None = None
    position_dims: tuple[int, ...] | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.general_id,) if self.expert_id is None else (self.general_id, self.expert_id)


# Keys in gymnasium's Dict order (sorted), so `FlattenObservation` on the env agrees with the data.
KITCHEN_KEYS = ("observation",)
MAZE_KEYS = ("desired_goal", "observation")
# FrankaKitchen-v1's `observation`: robot joint positions 0-8, robot joint velocities 9-17, object
# positions 18-38, object velocities 39-58. D4RL kitchen (SPiRL's, SkiMo's data) had positions only.
KITCHEN_POSITIONS = (*range(0, 9), *range(18, 39))

CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "kitchen", "D4RL/kitchen/mixed-v2", "D4RL/kitchen/complete-v2",
            "FrankaKitchen-v1", KITCHEN_KEYS, scripted_equivalent="kitchen-scripted",
            position_dims=KITCHEN_POSITIONS,
        ),
        DatasetSpec(
            "kitchen-partial", "D4RL/kitchen/partial-v2", "D4RL/kitchen/complete-v2",
            "FrankaKitchen-v1", KITCHEN_KEYS, scripted_equivalent="kitchen-scripted",
            position_dims=KITCHEN_POSITIONS,
        ),
        DatasetSpec(
            "pointmaze-large", "D4RL/pointmaze/large-v2", None,
            "PointMaze_Large-v3", MAZE_KEYS, scripted_equivalent="pointmaze-scripted",
        ),
        DatasetSpec(
            "antmaze-medium", "D4RL/antmaze/medium-diverse-v1", None,
            "AntMaze_Medium-v4", MAZE_KEYS,
        ),
        DatasetSpec(
            "kitchen-scripted", "skillplan/kitchen-scripted/general-v0",
            "skillplan/kitchen-scripted/expert-v0", "FrankaKitchen-v1", KITCHEN_KEYS,
            generator="kitchen-scripted", position_dims=KITCHEN_POSITIONS,
        ),
        DatasetSpec(
            "kitchen-scripted-uniform", "skillplan/kitchen-scripted-uniform/general-v0",
            "skillplan/kitchen-scripted-uniform/expert-v0", "FrankaKitchen-v1", KITCHEN_KEYS,
            generator="kitchen-scripted-uniform", position_dims=KITCHEN_POSITIONS,
        ),
        DatasetSpec(
            "pointmaze-scripted", "skillplan/pointmaze-scripted/general-v0",
            "skillplan/pointmaze-scripted/expert-v0", "PointMaze_Large-v3", MAZE_KEYS,
            generator="pointmaze-scripted",
        ),
    )
}


def resolve(name: str) -> DatasetSpec:
    """The spec for a short name, or a one-off spec for any plain Minari id (`namespace/.../name-vN`).

    A plain id's env and observation layout are read from its metadata when it is loaded.
    """
    if name in CATALOG:
        return CATALOG[name]
    if "/" in name or name.rsplit("-v", 1)[-1].isdigit():
        return DatasetSpec(name, name, None, env_id="", obs_keys=())
    known = ", ".join(CATALOG)
    raise DatasetError(
        f"Unknown dataset '{name}'. Known names: {known}. Any Minari dataset id "
        "(for example 'D4RL/kitchen/mixed-v2') is accepted too; see `skillplan datasets list`."
    )
