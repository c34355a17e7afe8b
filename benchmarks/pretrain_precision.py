"""Joint pretraining steps/s in fp32 and under bf16 autocast, per preset, interleaved in one process.

`pretrain.precision: auto` (the default) picks bf16 only where the device computes it natively
(`skillplan.device.has_bf16_units`); this prints the ratio that choice rests on for this machine's CPU.
Synthetic kitchen-shaped data (`pretrain_throughput.py`), so no dataset is needed.

    python benchmarks/pretrain_precision.py --out benchmarks/results/pretrain_precision.json
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
from _report import report
from pretrain_throughput import measure

from skillplan.device import has_bf16_units

PRESETS = ("spirl", "skimo", "serla", "skillplan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--blocks", type=int, default=3, help="fp32/bf16 block pairs per preset")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per block")
    parser.add_argument("--threads", type=int, default=1)
    default_out = Path(__file__).parent / "results" / "pretrain_precision.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = {}
    for preset in args.presets:
        rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.blocks):
            for precision in rates:
                overrides = {"threads": args.threads, "precision": precision}
                rates[precision].append(measure(preset, 256, args.steps, 3, overrides)["steps_per_s"])
        fp32, bf16 = (statistics.median(rates[p]) for p in ("fp32", "bf16"))
        rows[preset] = {"fp32_steps_per_s": round(fp32, 2), "bf16_steps_per_s": round(bf16, 2),
                        "fp32_over_bf16": round(fp32 / bf16, 2)}
        print(f"{preset}: fp32 {fp32:.2f} steps/s, bf16 {bf16:.2f} steps/s, fp32 ÷ bf16 {fp32 / bf16:.2f}")
    report({"presets": rows, "bf16_units": has_bf16_units(torch.device("cpu")), "threads": args.threads,
            "blocks": args.blocks, "steps_per_block": args.steps, "batch_size": 256,
            "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]}, args.out)


if __name__ == "__main__":
    main()
