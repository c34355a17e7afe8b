"""Data-layer speed: load a D4RL-kitchen-mixed-sized dataset, and sample skill windows.

Targets (issue 2): 512 windows in ≤ 1 ms on 2 cores; a 157k-step dataset loads in ≤ 5 s and ≤ 200 MB.
The dataset is kitchen-shaped (dict observations with per-task goal dicts), written to a temp
Minari root, unless `--dataset NAME` points at a local one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import report

KITCHEN_TASKS = ("bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet",
                 "microwave", "kettle")
RESULTS = Path(__file__).parent / "results"


def write_kitchen_shaped(dataset_id: str, steps: int, episodes: int) -> None:
    """A dataset with FrankaKitchen-v1's observation structure and D4RL-mixed's size."""
    from gymnasium import spaces
    from minari.data_collector import EpisodeBuffer

    from skillplan.data.writing import write_dataset

    rng = np.random.default_rng(0)
    lengths = np.full(episodes, steps // episodes)
    lengths[: steps - lengths.sum()] += 1
    goal_space = spaces.Dict({t: spaces.Box(-np.inf, np.inf, (2,), np.float64) for t in KITCHEN_TASKS})
    obs_space = spaces.Dict({"observation": spaces.Box(-np.inf, np.inf, (59,), np.float64),
                             "achieved_goal": goal_space, "desired_goal": goal_space})
    buffers = []
    for i, n in enumerate(lengths):
        goals = {t: rng.normal(size=(n + 1, 2)) for t in KITCHEN_TASKS}
        buffers.append(EpisodeBuffer(
            id=i, observations={"observation": rng.normal(size=(n + 1, 59)),
                                "achieved_goal": goals, "desired_goal": goals},
            actions=rng.uniform(-1, 1, (n, 9)).astype(np.float32), rewards=np.zeros(n),
            terminations=np.zeros(n, bool), truncations=np.r_[np.zeros(n - 1, bool), True],
        ))
    write_dataset(dataset_id, buffers, observation_space=obs_space,
                  action_space=spaces.Box(-1, 1, (9,), np.float32))


def measure_load(name: str) -> dict:
    """Load in a fresh process: time, and peak RSS over the RSS just before loading.

    The peak is the process's high-water mark, so import transients can only inflate it.
    """
    code = (
        "import resource, time, sys, json\n"
        "from skillplan.data import load_offline_data\n"
        "base = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 1024\n"
        "t = time.perf_counter(); d = load_offline_data(sys.argv[1]); dt = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "n = d.general.n_steps + (d.expert.n_steps if d.expert is not None else 0)\n"
        "arrays = sum(e.observations.nbytes + e.actions.nbytes for e in (d.general, d.expert) if e)\n"
        "print(json.dumps({'load_s': dt, 'peak_rss_increase_mb': (peak - base) / 1024, 'steps': n,\n"
        "                  'array_mb': arrays / 2**20}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_sampling(name: str, batch: int = 512, blocks: int = 10, repeats: int = 200) -> dict:
    """Milliseconds per batch: the median over timing blocks, robust to a busy neighbour core."""
    import torch

    from skillplan.data import WindowSampler, load_offline_data

    torch.set_num_threads(2)
    data = load_offline_data(name)
    result = {}
    for n_skills in (1, 3):
        sampler = WindowSampler(data.general, horizon=10, n_skills=n_skills, seed=0)
        for _ in range(50):
            sampler.sample(batch)
        times = []
        for _ in range(blocks):
            start = time.perf_counter()
            for _ in range(repeats):
                sampler.sample(batch)
            times.append((time.perf_counter() - start) / repeats * 1e3)
        result[f"ms_per_{batch}_windows_n{n_skills}"] = float(np.median(times))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", help="Benchmark this local dataset instead of a synthetic one.")
    parser.add_argument("--steps", type=int, default=157_000)
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS / "data_throughput.json")
    args = parser.parse_args()

    name = args.dataset
    if name is None:
        os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="skillplan-bench-")
        name = "bench/kitchen-shaped/mixed-v0"
        t = time.perf_counter()
        write_kitchen_shaped(name, args.steps, args.episodes)
        print(f"wrote {name}: {args.steps} steps, {args.episodes} episodes in {time.perf_counter() - t:.1f}s")
    result = {"dataset": name, **measure_load(name), **measure_sampling(name)}
    result["targets"] = {"ms_per_512_windows": 1.0, "load_s": 5.0, "peak_rss_increase_mb": 200}
    report(result, args.out)


if __name__ == "__main__":
    main()
