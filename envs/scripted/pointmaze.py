"""Scripted PointMaze_Large-v3 demonstrator: shortest cell paths plus a velocity-tracking controller.

A BFS distance field over the maze grid gives, from whatever cell the point is in, the
shortest cell path to the goal. Each step the controller steers at the farthest waypoint on
that path it can see with clearance (so corridors are run straight and corners cut), brakes
only as much as the next corner needs, and tracks that velocity with a P controller on the
measured velocity, i.e. a PD law on position. Replanning from the current cell every step
keeps it on course after noise or a bump.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import gymnasium_robotics
import numpy as np
from gymnasium_robotics.envs.maze.maze_v4 import Maze
from minari.data_collector import EpisodeBuffer

from skillplan.envs.scripted.base import DataKind

Cell = tuple[int, int]
MazeMap = list[list[int | str]]

ENV_ID = "PointMaze_Large-v3"
MAX_EPISODE_STEPS = 800
# The downstream task: bottom-left corner to top-right corner, 17 cells apart by BFS.
EXPERT_START_CELL: Cell = (7, 1)
EXPERT_GOAL_CELL: Cell = (1, 10)
MIN_GENERAL_DISTANCE = 5  # BFS cells between a general episode's start and goal
GENERAL_ACTION_NOISE = 0.1  # std of the Gaussian noise added to general actions

_STEPS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def free_cells(maze_map: MazeMap) -> list[Cell]:
    """All non-wall cells, row-major."""
    return [(r, c) for r, row in enumerate(maze_map) for c, v in enumerate(row) if v != 1]


def bfs_distances(maze_map: MazeMap, source: Cell) -> dict[Cell, int]:
    """Shortest 4-connected path length, in cells, from `source` to every reachable free cell."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for dr, dc in _STEPS:
            nxt = (r + dr, c + dc)
            if maze_map[nxt[0]][nxt[1]] != 1 and nxt not in dist:
                dist[nxt] = dist[(r, c)] + 1
                queue.append(nxt)
    return dist


def _descend(dist: dict[Cell, int], start: Cell, max_len: int | None = None) -> list[Cell]:
    """Follow a distance field downhill from `start` to its zero: a shortest path."""
    path = [start]
    while dist[path[-1]] > 0 and (max_len is None or len(path) < max_len):
        r, c = path[-1]
        path.append(min(((r + dr, c + dc) for dr, dc in _STEPS), key=lambda n: dist.get(n, 1 << 30)))
    return path


def bfs_path(maze_map: MazeMap, start: Cell, goal: Cell) -> list[Cell]:
    """A shortest path of adjacent free cells from `start` to `goal`, both included."""
    return _descend(bfs_distances(maze_map, goal), start)


class WaypointController:
    """Drives the point to `goal_xy` through `maze`; call it on the 4-d point observation.

    `clearance` is how far (per axis) a line of sight must stay from walls; the ball's radius
    is 0.1. Corners are taken at up to `corner_speed` after braking at `brake` m/s².
    """

    def __init__(
        self,
        maze: Maze,
        goal_xy: np.ndarray,
        *,
        max_speed: float = 4.5,
        corner_speed: float = 2.0,
        brake: float = 16.0,
        gain: float = 3.0,
        clearance: float = 0.2,
        lookahead: int = 6,
    ) -> None:
        self.maze = maze
        self.goal_xy = np.asarray(goal_xy, dtype=np.float64)
        self.wall = np.array([[v == 1 for v in row] for row in maze.maze_map])
        goal_cell = tuple(int(i) for i in maze.cell_xy_to_rowcol(self.goal_xy))
        self.dist = bfs_distances(maze.maze_map, goal_cell)
        self.max_speed, self.corner_speed, self.brake, self.gain = (
            max_speed, corner_speed, brake, gain
        )
        self.lookahead = lookahead
        self._square = clearance * np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])

    def cells(self, xy: np.ndarray) -> np.ndarray:
        """Vectorised `Maze.cell_xy_to_rowcol`: (..., 2) positions to (..., 2) int cells."""
        m = self.maze
        row = np.floor((m.y_map_center - xy[..., 1]) / m.maze_size_scaling)
        col = np.floor((xy[..., 0] + m.x_map_center) / m.maze_size_scaling)
        return np.stack([row, col], axis=-1).astype(int)

    def visible(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the segment a-b keeps `clearance` from every wall (checked every 5 cm)."""
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / 0.05)) + 1)
        points = a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)
        cells = self.cells(points[:, None, :] + self._square)
        return not self.wall[cells[..., 0], cells[..., 1]].any()

    def waypoint(self, pos: np.ndarray) -> tuple[np.ndarray, bool]:
        """The farthest visible waypoint ahead on the shortest path, and whether it is the goal."""
        cell = tuple(int(i) for i in self.cells(pos))
        ahead = _descend(self.dist, cell, self.lookahead + 1)[1:]
        reaches_goal = not ahead or self.dist[ahead[-1]] == 0
        points = [self.maze.cell_rowcol_to_xy(np.array(c)) for c in ahead if self.dist[c] > 0]
        if reaches_goal:
            points.append(self.goal_xy)
        # Fallback: the next cell's centre (or the goal, in the goal cell) is reachable in a line.
        i = next((i for i in range(len(points) - 1, 0, -1) if self.visible(pos, points[i])), 0)
        return points[i], reaches_goal and i == len(points) - 1

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The force action, in [-1, 1]², for observation [x, y, vx, vy]."""
        pos, vel = observation[:2], observation[2:4]
        target, is_goal = self.waypoint(pos)
        offset = target - pos
        distance = float(np.linalg.norm(offset))
        speed = self.max_speed
        if not is_goal:  # the goal terminates the episode on contact, so no braking there
            speed = min(speed, np.sqrt(self.corner_speed**2 + 2 * self.brake * distance))
        desired = offset / max(distance, 1e-6) * speed
        return np.clip(self.gain * (desired - vel), -1.0, 1.0).astype(np.float32)


def sample_start_goal(maze_map: MazeMap, rng: np.random.Generator) -> tuple[Cell, Cell]:
    """A random free start cell and a goal at least `MIN_GENERAL_DISTANCE` BFS cells away."""
    cells = free_cells(maze_map)
    start = cells[rng.integers(len(cells))]
    dist = bfs_distances(maze_map, start)
    far = [c for c in cells if dist[c] >= MIN_GENERAL_DISTANCE]
    return start, far[rng.integers(len(far))]


def _stack(items: list[dict], space: gym.spaces.Dict | None = None) -> dict[str, np.ndarray]:
    """Per-step dicts to a dict of stacked arrays, in `space`'s dtypes when given."""
    return {
        k: np.asarray([item[k] for item in items], dtype=None if space is None else space[k].dtype)
        for k in items[0]
    }


@dataclass(frozen=True)
class PointMazeDemonstrator:
    """`ScriptedDemonstrator` for PointMaze_Large-v3: random goal-reaching (general) and the
    fixed `EXPERT_START_CELL` -> `EXPERT_GOAL_CELL` task (expert)."""

    name: str = "pointmaze-scripted"
    default_episodes: dict[DataKind, int] = field(
        default_factory=lambda: {"general": 1000, "expert": 100}
    )

    def dataset_metadata(self, kind: DataKind) -> dict[str, str]:
        return {}

    def make_env(self, kind: DataKind) -> gym.Env:
        """Episodic PointMaze: `continuing_task=False` terminates once the goal is within 0.45."""
        gym.register_envs(gymnasium_robotics)
        return gym.make(ENV_ID, continuing_task=False, max_episode_steps=MAX_EPISODE_STEPS)

    def episode(
        self, env: gym.Env, seed: int, kind: DataKind, quantile: float | None = None
    ) -> EpisodeBuffer:
        """Reset to the kind's start/goal cells (jittered by the env, seeded) and drive to the goal."""
        rng = np.random.default_rng(seed)
        maze = env.unwrapped.maze
        if kind == "expert":
            (start, goal), noise = (EXPERT_START_CELL, EXPERT_GOAL_CELL), 0.0
        else:
            (start, goal), noise = sample_start_goal(maze.maze_map, rng), GENERAL_ACTION_NOISE
        obs, info = env.reset(seed=int(seed), options={"reset_cell": start, "goal_cell": goal})
        controller = WaypointController(maze, obs["desired_goal"])
        observations, infos, steps = [obs], [info], []
        while True:
            action = controller(obs["observation"])
            if noise:
                action = np.clip(action + rng.normal(0.0, noise, 2), -1.0, 1.0).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            infos.append(info)
            steps.append((action, reward, terminated, truncated))
            if terminated or truncated:
                break
        actions, rewards, terminations, truncations = zip(*steps, strict=True)
        return EpisodeBuffer(
            id=None,
            seed=int(seed),
            observations=_stack(observations, env.observation_space),
            actions=np.asarray(actions, dtype=np.float32),
            rewards=np.asarray(rewards, dtype=np.float64),
            terminations=np.asarray(terminations, dtype=bool),
            truncations=np.asarray(truncations, dtype=bool),
            infos=_stack(infos),
        )


DEMONSTRATOR = PointMazeDemonstrator()
