"""Do N one-thread jobs at once each get a whole core? The figure behind `--workers` and the suite's cost.

Run: python benchmarks/core_scaling.py [--jobs 2] [--seconds 8]
Times a 1024² fp32 matmul loop in one process alone, then in `--jobs` processes at once, then in one
process with `--jobs` threads. If the concurrent jobs each keep the lone job's GFLOP/s, the machine's
cores are real (not hyperthreads sharing one core's vector units) and a suite with one job per core
runs each job at its idle rate. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch
from _report import report

RESULTS = Path(__file__).parent / "results"
SIZE = 1024


def matmul_rate(threads: int, seconds: float, start_at: float = 0.0) -> float:
    """GFLOP/s of back-to-back SIZE² matmuls for `seconds` from wall time `start_at`, on `threads` threads."""
    torch.set_num_threads(threads)
    a, b, out = torch.randn(SIZE, SIZE), torch.randn(SIZE, SIZE), torch.empty(SIZE, SIZE)
    for _ in range(3):
        torch.mm(a, b, out=out)
    time.sleep(max(start_at - time.time(), 0.0))  # concurrent jobs start together, whenever they spawned
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        torch.mm(a, b, out=out)
        calls += 1
    return 2 * SIZE**3 * calls / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "core_scaling.json")
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        alone = pool.submit(matmul_rate, 1, args.seconds).result()
        start_at = time.time() + 10  # time for the other workers to spawn
        runs = [pool.submit(matmul_rate, 1, args.seconds, start_at) for _ in range(args.jobs)]
        together = [run.result() for run in runs]
    threaded = matmul_rate(args.jobs, args.seconds)
    report({"gflop_per_s_one_job_alone": alone, "gflop_per_s_each_of_concurrent_jobs": together,
            "concurrent_over_alone": min(together) / alone, "gflop_per_s_one_job_threads": threaded,
            "threads_over_alone": threaded / alone, "jobs": args.jobs, "matmul_size": SIZE}, args.out)


if __name__ == "__main__":
    main()
