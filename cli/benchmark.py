"""`skillplan benchmark ...`: run the speed and quality scripts in benchmarks/ from one place."""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import skillplan
from skillplan.errors import SkillplanError

BENCHMARKS = Path(skillplan.__file__).resolve().parents[1] / "benchmarks"
console = Console()


def available() -> dict[str, str]:
    """Benchmark names (script stems) and the first line of each script's docstring."""
    if not BENCHMARKS.is_dir():
        raise SkillplanError(
            f"No benchmarks/ folder next to the installed package ({BENCHMARKS}). The benchmark "
            "scripts ship with the source checkout: install skillplan from a clone with `make setup`."
        )
    found = {}
    for path in sorted(BENCHMARKS.glob("[!_]*.py")):  # _*.py are helpers the scripts share
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        found[path.stem] = doc.splitlines()[0] if doc else ""
    return found


def benchmark(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="A benchmark to run; leave out to list them."),
) -> None:
    """Run a benchmark script (extra arguments pass through, e.g. `--quick`), or list them.

    Each script prints its figures and writes them, with the machine and the command, to
    benchmarks/results/.
    """
    scripts = available()
    if name is None:
        table = Table(title="Benchmarks (skillplan benchmark NAME [ARGS])")
        table.add_column("name", no_wrap=True)
        table.add_column("what it measures")
        for stem, doc in scripts.items():
            table.add_row(stem, doc)
        console.print(table)
        return
    if name not in scripts:
        raise SkillplanError(f"Unknown benchmark '{name}'. Available: {', '.join(scripts)}.")
    script = BENCHMARKS / f"{name}.py"
    sys.argv = [str(script), *ctx.args]
    sys.path.insert(0, str(BENCHMARKS))  # as `python benchmarks/NAME.py` would have it
    runpy.run_path(str(script), run_name="__main__")
