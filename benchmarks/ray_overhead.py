"""The Ray backend's added wall time over the local backend on one small suite, and Ray's memory.

In a temporary Minari root with a small generated maze dataset, the same suite runs once on the
local backend and once on `--backend ray` (which starts and stops its own local Ray instance with
`--workers` CPUs, as the command does). While the Ray suite runs, the resident memory of every Ray
process (its daemons and its workers, not this driver) is sampled; the peak is reported, and so is
that of the daemons alone.

    python benchmarks/ray_overhead.py --out benchmarks/results/ray_overhead.json
    python benchmarks/ray_overhead.py --quick --out benchmarks/results/ray_overhead_quick.json

`--quick` runs the suite `benchmark sample-efficiency --quick` runs (the issue's target is stated on
it), on the maze data in `MINARI_DATASETS_PATH` (generated there first if missing, as the command does).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
import time
from pathlib import Path

from _report import report
from rich.console import Console

from skillplan.benchmarking.ray_backend import run_suite_on_ray
from skillplan.benchmarking.suite import run_suite
from skillplan.benchmarking.suite_config import QUICK, SuiteConfig
from skillplan.data.loading import load_offline_data
from skillplan.envs.generate import generate_dataset

SUITE = {
    "envs": ["SkillPointMaze-v0"], "methods": ["sac", "spirl", "skillplan"], "seeds": 2, "steps": 1_000,
    "eval_every": 500, "eval_episodes": 1, "pretrain_steps": 200, "agent_overrides": {"learning_starts": 200},
    "compile_planner": False,
    "pretrain_overrides": {
        "model": {"horizon": 4, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
        "pretrain": {"batch_size": 32, "n_skills": 2, "precision": "fp32", "eval_windows": 32,
                     "log_every": 50, "eval_every": 100, "checkpoint_every": 100}},
}


def descends_from_me(pid: int) -> bool:
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        if pid == os.getpid():
            return True
    return False


def ray_rss_mib() -> tuple[float, float]:
    """Resident memory of the Ray processes this one started (all, and the daemons alone), in MiB."""
    total = daemons = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            status = Path(f"/proc/{entry}/status").read_text()
            is_ray = b"/ray/" in cmdline or cmdline.startswith(b"ray::")
            if not is_ray or not descends_from_me(int(entry)):
                continue
        except OSError:
            continue
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
        total += rss
        daemons += 0 if cmdline.startswith(b"ray::_ray_job") or cmdline.startswith(b"ray::IDLE") else rss
    return total, daemons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="time the --quick suite instead of a tiny one")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_overhead.json"))
    args = parser.parse_args()
    suite = QUICK if args.quick else SUITE
    config = SuiteConfig.model_validate(suite)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.quick:
            os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
            generate_dataset("pointmaze-scripted", episodes={"general": 24, "expert": 8}, workers=1)
        for env in config.envs:  # made before the clock starts, so neither backend is timed generating it
            load_offline_data(config.dataset(env))
        seconds = {}
        peaks = [0.0, 0.0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peaks[:] = [max(p, v) for p, v in zip(peaks, ray_rss_mib(), strict=True)]
                time.sleep(0.2)

        for backend in ("local", "ray"):
            sampler = threading.Thread(target=sample) if backend == "ray" else None
            if sampler:
                sampler.start()
            started = time.perf_counter()
            run = run_suite_on_ray if backend == "ray" else run_suite
            run(config, root / backend, workers=args.workers, console=Console(file=io.StringIO()))
            seconds[backend] = time.perf_counter() - started
            if sampler:
                sampling.set()
                sampler.join()
    report({"suite": "quick" if args.quick else suite, "workers": args.workers,
            "load_average_1min": os.getloadavg()[0],
            "local_s": round(seconds["local"], 1), "ray_s": round(seconds["ray"], 1),
            "ray_overhead": round(seconds["ray"] / seconds["local"] - 1, 3),
            "ray_peak_rss_mib": round(peaks[0]), "ray_daemons_peak_rss_mib": round(peaks[1])}, args.out)


if __name__ == "__main__":
    main()
