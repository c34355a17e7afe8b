"""Offscreen render time per frame for rollout videos: the kitchen with and without shadows and
reflections (what `skillplan.video` switches off under OSMesa), and the point maze.

Uses the MUJOCO_GL that `skillplan.video.choose_mujoco_gl` picks. Each figure is the median over
`--frames` frames after one warm-up frame, taken alternately so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from skillplan import provenance
from skillplan.io import atomic_write_text
from skillplan.video import choose_mujoco_gl

RESULTS = Path(__file__).parent / "results"


def frame_seconds(env, frames: int) -> list[float]:
    times = []
    for _ in range(frames):
        env.step(np.zeros(env.action_space.shape, np.float32))
        started = time.perf_counter()
        env.render()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "video_render.json")
    args = parser.parse_args()
    backend = choose_mujoco_gl()
    from skillplan.envs.base import make_base_env

    envs = {name: make_base_env(env_id, render_mode="rgb_array")
            for name, env_id in (("kitchen", "FrankaKitchen-v1"), ("kitchen_plain", "FrankaKitchen-v1"),
                                 ("maze", "PointMaze_Large-v3"))}
    plain = envs["kitchen_plain"].unwrapped.model
    plain.light_castshadow[:] = 0
    plain.mat_reflectance[:] = 0
    times: dict[str, list[float]] = {name: [] for name in envs}
    for env in envs.values():
        env.reset(seed=0)
        env.render()  # warm-up: the GL context and the textures
    for _ in range(args.frames):
        for name, env in envs.items():
            times[name] += frame_seconds(env, 1)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "mujoco_gl": backend, "frames": args.frames, "load_average_1min": os.getloadavg()[0],
        "seconds_per_frame": {
            "kitchen_shadows_reflections": seconds["kitchen"], "kitchen_plain": seconds["kitchen_plain"],
            "pointmaze_large": seconds["maze"],
        },
        "kitchen_speedup_plain": seconds["kitchen"] / seconds["kitchen_plain"],
        **provenance.provenance(),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
