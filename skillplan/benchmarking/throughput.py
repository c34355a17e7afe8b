"""The throughput suite: run every speed script of benchmarks/ and gather their headline figures.

The scripts ship with the source checkout, beside the package; diagnosis-only scripts (why a run
behaved as it did, not how fast or how well) sit apart in benchmarks/diagnostics/.

Each script runs in its own process (a fresh interpreter, so one script's threads and compiled
kernels don't colour the next) and writes its own JSON; this module collects one table from them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from skillplan.benchmarking.methods import METHODS
from skillplan.errors import CheckpointError, SkillplanError
from skillplan.io import atomic_write_text
from skillplan.provenance import SOURCE_ROOT, provenance

BENCHMARKS = SOURCE_ROOT / "benchmarks"
DIAGNOSTICS = BENCHMARKS / "diagnostics"
RESULTS = BENCHMARKS / "results"
PRESETS = tuple(m.preset for m in METHODS.values() if m.preset is not None)

Row = tuple[str, str, str]  # figure, measured, target


@dataclass(frozen=True)
class Measurement:
    """One script run: its arguments (full and --quick), its JSON file, and the rows it contributes."""

    script: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    result: str
    rows: Callable[[dict[str, Any]], list[Row]]
    needs_prior: bool = False


def _pretrain_rows(preset: str) -> Callable[[dict[str, Any]], list[Row]]:
    return lambda r: [(f"pretraining, {preset}: windows/s (batch 256, {r['n_skills']} skills each)",
                       f"{r['windows_per_s']:,.0f} ({r['skills_per_s']:,.0f} skills/s)",
                       "≥ 25k windows/s (all terms on)" if preset == "skillplan" else "")]


def _cem_rows(r: dict[str, Any]) -> list[Row]:
    run = r["runs"][-1]
    best = min((k for k in run["ms_per_decision"] if k != "naive"), key=run["ms_per_decision"].get)
    return [("CEM decision latency (512 × 6 × horizon 5)",
             f"{run['ms_per_decision'][best]:.1f} ms ({best}); naive loop "
             f"{run['ms_per_decision']['naive']:.1f} ms, {run['speedup_vs_naive'][best]:.1f}× faster",
             "≤ 10 ms")]


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("data_throughput", (), ("--steps", "40000", "--episodes", "150"),
                "data_throughput.json",
                lambda r: [("dataset load (157k kitchen-shaped steps)", f"{r['load_s']:.2f} s", "≤ 5 s"),
                           ("window sampling, 512 windows", f"{r['ms_per_512_windows_n1']:.2f} ms",
                            "≤ 1 ms")]),
    *(Measurement("pretrain_throughput", ("--preset", p, "--steps", "60"),
                  ("--preset", p, "--steps", "20", "--warmup", "5"), f"pretrain_throughput_{p}.json",
                  _pretrain_rows(p)) for p in PRESETS),
    Measurement("skill_env_overhead", (), ("--steps", "1000", "--repeats", "3"), "skill_env_overhead.json",
                lambda r: [("skill wrapper overhead over its inner env's stepping, in one run",
                            f"{100 * r['overhead_in_run_median']:.1f}%", "≤ 5%"),
                           ("… against a separate raw env replaying its actions (noisy: ±10% a pair)",
                            f"{100 * r['overhead_paired_median']:.1f}%", "")]),
    Measurement("cem_latency", ("--fresh",), ("--fresh", "--blocks", "3", "--per-block", "4"),
                "cem_latency.json", _cem_rows),
    Measurement("agent_updates", (), ("--updates", "50", "--blocks", "2"), "agent_updates.json",
                lambda r: [("SSAC updates/s (batch 256), fp32 / bf16 autocast",
                            f"{r['ssac_updates_per_s']:.0f} / {r['ssac_updates_per_s_bf16']:.0f}", "≥ 150"),
                           ("flat SAC updates/s (batch 256), fp32 / bf16 autocast",
                            f"{r['sac_updates_per_s']:.0f} / {r['sac_updates_per_s_bf16']:.0f}", "")],
                needs_prior=True),
    Measurement("cem_planner_flops", (), ("--blocks", "2", "--per-block", "2"), "cem_planner_flops.json",
                lambda r: [("CEM planner GFLOP/s ÷ the core's large fp32 matmul GFLOP/s (1 thread)",
                            f"{r['planner_over_peak']['fp32']:.2f} ({r['gflop_per_s']['planner_fp32']:.0f} "
                            f"GFLOP/s)", "≥ 0.6")],
                needs_prior=True),
    Measurement("agent_env_steps", (), ("--steps", "1500"), "agent_env_steps.json",
                lambda r: [(f"end-to-end training env steps/s, {name} (updates and planning included), "
                            "and its share of the raw env's", f"{v:,.0f} ({r['share_of_raw'][name]:.2f})",
                            {"cem": "≥ 0.3", "ssac": "≥ 0.65"}.get(name, ""))
                           for name, v in r["env_steps_per_s"].items()],
                needs_prior=True),
)


@dataclass(frozen=True)
class Script:
    """A benchmark script: where it is, the first line of its docstring, and whether it only diagnoses."""

    path: Path
    summary: str
    diagnostic: bool


def available_scripts() -> dict[str, Script]:
    """The benchmark scripts by name (stem): benchmarks/*.py, then benchmarks/diagnostics/*.py."""
    if not BENCHMARKS.is_dir():
        raise SkillplanError(
            f"The benchmark scripts ship with skillplan's source checkout, not with the installed package, "
            f"and there is no benchmarks/ folder beside it ({BENCHMARKS}). To run them (and the throughput "
            "suite, which runs them), clone the repository and install it from there with `make setup`. "
            "`skillplan benchmark sample-efficiency`, `report` and `restore` need no checkout."
        )
    found = {}
    for folder, diagnostic in ((BENCHMARKS, False), (DIAGNOSTICS, True)):
        for path in sorted(folder.glob("[!_]*.py")):  # _*.py are helpers the scripts share
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            found[path.stem] = Script(path, doc.splitlines()[0] if doc else "", diagnostic)
    return found


def run_throughput(
    out: Path, *, prior: Path, quick: bool = False, console: Console | None = None
) -> list[Row]:
    """Run every measurement into `out`, then write throughput.md/json there and print the table."""
    console = console or Console()
    available_scripts()
    if not (Path(prior) / "weights.safetensors").is_file():
        raise CheckpointError(
            f"The agent figures need a kitchen prior and '{prior}' is not one (no weights.safetensors). "
            "Make it with `make setup` or `skillplan pretrain --dataset kitchen-scripted --out "
            "runs/kitchen-scripted`, or pass --prior DIR."
        )
    out = Path(out)
    rows: list[Row] = []
    failed = []
    for m in MEASUREMENTS:
        target = _relative(out / m.result)
        args = [*(m.quick_args if quick else m.args), "--out", str(target)]
        if m.needs_prior:
            args += ["--prior", str(_relative(Path(prior)))]
        console.rule(f"[bold]{m.script}[/bold] {' '.join(args)}")
        script = (BENCHMARKS / f"{m.script}.py").relative_to(SOURCE_ROOT)  # recorded as typed
        done = subprocess.run([sys.executable, str(script), *args], cwd=SOURCE_ROOT)
        if done.returncode != 0:
            failed.append(m.script)
            continue
        rows += m.rows(json.loads((SOURCE_ROOT / target).read_text()))
    table = Table(title=f"skillplan throughput{' (--quick)' if quick else ''}")
    for column in ("figure", "measured", "target"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    record = {"rows": [dict(zip(("figure", "measured", "target"), r, strict=True)) for r in rows],
              "quick": quick, **provenance(["skillplan", *sys.argv[1:]])}
    atomic_write_text(out / "throughput.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / "throughput.md", _markdown(record))
    if failed:
        raise SkillplanError(f"Benchmark script(s) {', '.join(failed)} failed (their output is above); the "
                             f"other figures are in {out / 'throughput.md'}.")
    return rows


def _relative(path: Path) -> Path:
    """`path` relative to the checkout when inside it (scripts run there), else absolute."""
    path = path.resolve()
    return path.relative_to(SOURCE_ROOT) if path.is_relative_to(SOURCE_ROOT) else path


def _markdown(record: dict[str, Any]) -> str:
    lines = [
        "# Throughput", "",
        f"- command: `{record['command']}`", f"- commit: `{record['commit']}`",
        f"- machine: {record['machine']['cpu']}, {record['machine']['cores']} cores", "",
        "| figure | measured | target |", "|---|---|---|",
        *(f"| {r['figure']} | {r['measured']} | {r['target']} |" for r in record["rows"]), "",
    ]
    return "\n".join(lines)
