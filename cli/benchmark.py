"""`skillplan benchmark ...`: the throughput and sample-efficiency suites, and single benchmark scripts."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from skillplan.device import DEVICE_HELP
from skillplan.errors import SkillplanError
from skillplan.runlog import LOGGER_HELP, check_loggers

console = Console()
benchmark_app = typer.Typer(
    help="Speed and sample-efficiency benchmarks; every figure is written with machine, commit and command.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@benchmark_app.callback()
def overview(ctx: typer.Context) -> None:
    """List the suites and the single benchmark scripts (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from skillplan.benchmarking.throughput import available_scripts

    try:
        scripts, missing = available_scripts(), None
    except SkillplanError as exc:  # an install without the checkout still has the built-in suites
        scripts, missing = {}, str(exc)
    table = Table(title="skillplan benchmark ...")
    table.add_column("command", no_wrap=True)
    table.add_column("what it measures")
    table.add_row("throughput [--quick]", "every speed figure below in one run, summarised")
    table.add_row("sample-efficiency [--quick]", "methods × envs × seeds: learning curves, IQM and CIs")
    table.add_row("report DIR", "rewrite a sample-efficiency suite's CSV, tables and plots")
    table.add_row("restore RESULTS --out DIR", "rebuild a suite dir from its committed report, to finish it")
    for stem, script in scripts.items():
        table.add_row(f"run {stem}", f"(diagnosis) {script.summary}" if script.diagnostic else script.summary)
    console.print(table)
    if missing:
        console.print(Text(missing))


@benchmark_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run_script(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A script of benchmarks/ or benchmarks/diagnostics/ (see "
                               "`skillplan benchmark`)."),
) -> None:
    """Run one benchmark script; extra arguments pass through to it (e.g. `--quick`, `--help`)."""
    from skillplan.benchmarking.throughput import available_scripts

    scripts = available_scripts()
    if name not in scripts:
        raise SkillplanError(f"Unknown benchmark '{name}'. Available: {', '.join(scripts)}.")
    script = scripts[name].path
    sys.argv = [str(script), *ctx.args]
    sys.path.insert(0, str(script.parent))  # as `python benchmarks/.../NAME.py` would have it
    runpy.run_path(str(script), run_name="__main__")


@benchmark_app.command("throughput")
def throughput(
    quick: bool = typer.Option(False, "--quick", help="Shorter measurements (about 3 min in all)."),
    prior: Path = typer.Option(
        Path("runs/kitchen-scripted/prior"), "--prior", help="Kitchen checkpoint the agent figures use."
    ),
    out: Path = typer.Option(None, "--out", help="Results dir (default: benchmarks/results)."),
) -> None:
    """Every throughput figure: data, pretraining per preset, skill env, CEM, agent updates and env steps."""
    from skillplan.benchmarking.throughput import RESULTS, run_throughput

    run_throughput(out or RESULTS, prior=prior, quick=quick, console=console)


@benchmark_app.command("sample-efficiency")
def sample_efficiency(
    quick: bool = typer.Option(False, "--quick", help="A small suite for a first run: the maze, every "
                               "method, 2 seeds, 8k steps, a smaller CEM planner (≤ 10 min on 2 cores)."),
    envs: list[str] = typer.Option(None, "--env", help="Env(s), repeatable (default SkillKitchen-v0). "
                                   "ENV:METHOD,METHOD runs only those methods there, e.g. "
                                   "SkillKitchenMisaligned-v0:spirl,skimo,skillplan."),
    agents: list[str] = typer.Option(None, "--agents", help="Method(s): sac, spirl, serla, skimo, "
                                     "skillplan; repeat the option. Default: all five."),
    seeds: int = typer.Option(None, "--seeds", help="Seeds per method and env (default 5)."),
    priors: str = typer.Option(None, "--priors", help="per-seed (default): seed k of every method trains "
                               "on a prior pretrained with seed k, so the pretraining draw shows in the "
                               "CIs; shared: one prior (seed 0) per preset for every seed."),
    steps: int = typer.Option(None, "--steps", help="Low-level env steps per run (default 250,000)."),
    pretrain_steps: int = typer.Option(None, "--pretrain-steps", help="Gradient steps per prior "
                                       "(default 50,000 for every preset)."),
    eval_every: int = typer.Option(None, "--eval-every", help="Env steps between evaluations."),
    eval_episodes: int = typer.Option(None, "--eval-episodes", help="Episodes per evaluation (default 20)."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Runs in parallel (processes, 1 thread "
                                "each)."),
    compile_planner: bool = typer.Option(None, "--compile-planner/--no-compile-planner", help="CEM plans "
                                         "under torch.compile (bf16 where the device has bf16 units): "
                                         "faster per decision, needs a C compiler (default: on, off with "
                                         "--quick)."),
    out: Path = typer.Option(None, "--out", help="Suite dir (default: runs/benchmark[-quick]). Rerunning "
                             "the same command there resumes it."),
    only: list[str] = typer.Option(None, "--only", help="Run only these of the suite's runs this time: "
                                   "METHOD or METHOD:SEED, repeatable (e.g. those that fit the time left)."),
    loggers: list[str] = typer.Option(None, "--logger", help=LOGGER_HELP + " Every run logs alike."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " With a GPU, --workers runs share "
                               "it."),
    backend: str = typer.Option("local", "--backend", help="local: a process pool here; ray: one Ray "
                                "task per job (needs `pip install 'skillplan[ray]'`; see docs/ray.md)."),
    ray_address: str = typer.Option(None, "--ray-address", help="With --backend ray: 'auto' or HOST:PORT "
                                    "of a running Ray cluster (default: start a local Ray instance with "
                                    "--workers CPUs). The suite dir must be on storage every node shares."),
) -> None:
    """Train every method on every env over seeds; write evaluations.csv, summary.md and one PNG per env.

    Priors are pretrained per (dataset, preset, seed) and shared by the methods and envs that use the
    same preset and data. An interrupted suite
    resumes where it stopped when the same command is run again.

    The first Ctrl-C (or SIGTERM) has each running run finish its step and write a checkpoint, then
    prints where each stopped; a second one aborts at once.
    """
    from skillplan.benchmarking.suite import run_suite, stopped_suite_message
    from skillplan.benchmarking.suite_config import QUICK, SuiteConfig
    from skillplan.config import validated
    from skillplan.interrupt import stop_on_signals

    loggers = check_loggers(loggers)
    env_names, env_methods = split_env_methods(envs or [])
    given = {"envs": env_names or None, "env_methods": env_methods or None, "methods": agents or None,
             "seeds": seeds, "priors": priors,
             "steps": steps,
             "pretrain_steps": pretrain_steps, "eval_every": eval_every, "eval_episodes": eval_episodes,
             "compile_planner": compile_planner}
    settings = {**(QUICK if quick else {}), **{k: v for k, v in given.items() if v is not None}}
    config = validated(SuiteConfig, settings, name="suite")
    out = out or Path("runs") / ("benchmark-quick" if quick else "benchmark")
    where = "; ".join(f"{', '.join(config.methods_on(env))} on {env}" for env in config.envs)
    console.print(f"[bold]sample-efficiency[/bold]: {config.runs()} runs of {config.steps:,} env steps "
                  f"({where}) → {out}")
    if backend not in ("local", "ray"):
        raise SkillplanError(f"Unknown --backend '{backend}'. Use local or ray.")
    if ray_address is not None and backend != "ray":
        raise SkillplanError("--ray-address only applies with --backend ray.")
    if backend == "ray":  # Ctrl-C ends the Ray tasks; a rerun resumes each from its last checkpoint
        from skillplan.benchmarking.ray_backend import run_suite_on_ray

        run_suite_on_ray(config, out, ray_address=ray_address, workers=workers, only=only, console=console,
                         loggers=loggers, device=device)
        return
    with stop_on_signals() as stop:
        stopped = run_suite(config, out, workers=workers, only=only, console=console, loggers=loggers,
                            device=device, stop=stop)
    if stop.requested:
        console.print(stopped_suite_message(stop, stopped, sys.argv[1:]))
        raise typer.Exit(stop.exit_code)


@benchmark_app.command("report")
def report(out: Path = typer.Argument(..., help="A sample-efficiency suite directory.")) -> None:
    """Rewrite a suite's evaluations.csv, summary.md/json and plots from its runs so far."""
    from skillplan.benchmarking.report import write_report

    write_report(out, console)


def split_env_methods(given: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`--env` values, each ENV or ENV:METHOD,METHOD, as the env names and the per-env method lists."""
    names, methods = [], {}
    for value in given:
        env, _, listed = value.partition(":")
        names.append(env)
        if listed:
            methods[env] = [m.strip() for m in listed.split(",") if m.strip()]
    return names, methods


@benchmark_app.command("restore")
def restore(
    results: Path = typer.Argument(..., help="A committed copy of a suite's report (suite.json, timing.json, "
                                   "evaluations.csv), e.g. benchmarks/results/sample_efficiency_kitchen."),
    out: Path = typer.Option(..., "--out", help="The new suite dir to rebuild."),
) -> None:
    """Rebuild a suite dir from its report elsewhere; its command then runs only what is missing.

    Runs that reached the step budget come back finished, and so do the priors the copy holds;
    partial runs, and priors it lacks, are redone.
    """
    from skillplan.benchmarking.suite import restore_suite

    restored = restore_suite(results, out)
    priors = [key for key in restored if key.startswith("pretrain ")]
    runs = [key for key in restored if key not in priors]
    console.print(f"restored into {out}: {len(runs)} finished run(s) ({', '.join(runs) or 'none'}) and "
                  f"{len(priors)} prior(s). Rerun the suite's command (suite.json's `command`) with "
                  "--out there to finish it.")
