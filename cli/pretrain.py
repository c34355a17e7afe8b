"""`skillplan pretrain` and `skillplan evaluate-prior`: joint skill pretraining and prior rollouts.

Run layout (`--out runs/NAME`): the checkpoint `prior/` (weights.safetensors, config.json,
metadata.json, training.safetensors), a link to its newest version in `prior-checkpoints/`, plus
`config.yaml`, `metrics.csv`, `curves.png` and `summary.json` beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from skillplan.config import resolve_config
from skillplan.device import DEVICE_HELP, resolve_device, uses_bf16
from skillplan.runlog import LOGGER_HELP, check_loggers, log_files

console = Console(width=None if Console().is_terminal else 120)

# Held-out targets shown next to the final metrics (see the pretraining issue).
TARGETS = {
    "val_action_mse": ("≤ 0.01", lambda v: v <= 0.01),
    "val_action_mse_expert": ("≤ 0.01", lambda v: v <= 0.01),
    "val_pu_cls_auc": ("≥ 0.8", lambda v: v >= 0.8),
}


def _overrides(**options: Any) -> dict[str, dict[str, Any]]:
    """Nested overrides from the CLI options the user actually gave (None means not given)."""
    sections = {
        "dataset": "data", "expert_dataset": "data", "obs_dims": "data", "decoder": "model",
        "steps": "pretrain",
        "batch_size": "pretrain", "seed": "pretrain", "lr": "pretrain", "threads": "pretrain",
        "precision": "pretrain", "compile": "pretrain", "prior": "model", "prior_components": "model",
    }
    nested: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        if value is not None:
            nested.setdefault(sections[key], {})[key] = value
    return nested


def pretrain_command(
    dataset: str = typer.Option(
        None, "--dataset", "-d", help="Short name or Minari id (default: kitchen-scripted)."
    ),
    expert_dataset: str = typer.Option(
        None, "--expert-dataset", help="Minari id of expert data (default: the catalog's pair)."
    ),
    obs_dims: str = typer.Option(
        None, "--obs-dims", help="Keep only these dimensions of the flattened observation: indices and "
        "ranges, e.g. 0-8,18-38, or 'positions' (kitchen datasets: no velocities). Default: all.",
    ),
    preset: str = typer.Option(None, "--preset", help="spirl|skimo|serla|skillplan (default: skillplan)"),
    steps: int = typer.Option(None, "--steps", help="Gradient steps in total (a resumed run may raise it)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Windows per batch (default: 256)."),
    seed: int = typer.Option(None, "--seed", help="Seed of init, batches and splits (default: 0)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (default: preset's)."),
    out: Path = typer.Option(None, "--out", "-o", help="Run directory (default: runs/DATASET)."),
    config: Path = typer.Option(None, "--config", help="YAML file with data/model/pretrain sections."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    no_pu: bool = typer.Option(False, "--no-pu", help="Switch off both PU terms (adversarial + prior)."),
    pu_prior: bool | None = typer.Option(
        None, "--pu-prior/--no-pu-prior",
        help="Weight the prior toward windows a PU classifier calls expert (default: on in skillplan only).",
    ),
    no_dynamics: bool = typer.Option(False, "--no-dynamics", help="Switch off the skill dynamics model."),
    no_sde: bool = typer.Option(False, "--no-sde", help="Switch off skill-level data enhancement."),
    decoder: str = typer.Option(None, "--decoder", help="closed | open action decoder (default: closed)."),
    prior: str = typer.Option(
        None, "--prior", help="gaussian | mixture skill prior (default: mixture in skillplan, gaussian in "
        "the other presets)."
    ),
    prior_components: int = typer.Option(
        None, "--prior-components", help="K: components of a mixture prior (default: 5)."
    ),
    precision: str = typer.Option(
        None, "--precision", help="auto | bf16 | fp32 matmuls (default: auto: bf16 on devices with bf16 "
        "units, else fp32)."
    ),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (default: 2)."),
    compile: bool = typer.Option(None, "--compile/--eager", help="torch.compile the loss (default: off)"),
    loggers: list[str] = typer.Option(None, "--logger", help=LOGGER_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Jointly pretrain skills, skill prior, skill dynamics and PU networks on offline data.

    The first Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and prints the
    command that resumes; a second one aborts at once.
    """
    from skillplan.interrupt import stop_on_signals, stopped_message
    from skillplan.pretrain import pretrain

    loggers = check_loggers(loggers)
    torch_device = resolve_device(device)
    overrides = _overrides(
        dataset=dataset, expert_dataset=expert_dataset, obs_dims=obs_dims, steps=steps,
        batch_size=batch_size, seed=seed,
        lr=lr, threads=threads, precision=precision, decoder=decoder, compile=compile, prior=prior,
        prior_components=prior_components,
    )
    switched_off = {"pu": no_pu, "pu_prior": no_pu, "dynamics": no_dynamics, "sde": no_sde}
    model = {term: False for term, off in switched_off.items() if off}
    if pu_prior is not None and not no_pu:
        model["pu_prior"] = pu_prior
    if model:
        overrides.setdefault("model", {}).update(model)
    run_config = resolve_config(preset, config, overrides)
    out = out or Path("runs") / run_config.data.dataset.replace("/", "_")
    resolved_precision = "bf16" if uses_bf16(torch_device, run_config.pretrain.precision) else "fp32"
    console.print(f"[bold]pretrain[/bold] preset={run_config.preset} dataset={run_config.data.dataset} "
                  f"steps={run_config.pretrain.steps} batch={run_config.pretrain.batch_size} "
                  f"device={torch_device} precision={resolved_precision} -> {out}")
    with stop_on_signals() as stop:
        result = pretrain(run_config, out, resume=resume, console=console, loggers=loggers,
                          device=torch_device, stop=stop)
    if result.stopped:
        console.print(stopped_message(stop, f"step {result.step:,}", result.checkpoint, sys.argv[1:]))
        raise typer.Exit(stop.exit_code)
    table = Table(title=f"Held-out metrics at step {result.step:,}")
    for column in ("metric", "value", "target"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, value in result.validation.items():
        target, passed = TARGETS.get(name, ("", None))
        mark = "" if passed is None else (" [green]✓[/green]" if passed(value) else " [red]✗[/red]")
        table.add_row(name, f"{value:.4g}", target + mark)
    console.print(table)
    console.print(f"training throughput: {result.windows_per_s:,.0f} windows/s")
    console.print(f"[green]checkpoint[/green] {result.checkpoint}   [green]logs[/green] "
                  + ", ".join(log_files(out, loggers, "curves.png")))


def evaluate_prior_command(
    checkpoint: Path = typer.Argument(..., help="A checkpoint directory, e.g. runs/kitchen-scripted/prior."),
    episodes: int = typer.Option(20, "--episodes", "-n", help="Episodes to run."),
    workers: int = typer.Option(2, "--workers", "-w", help="Environments run in parallel (processes)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the env resets and the sampled skills."),
    max_steps: int = typer.Option(None, "--max-steps", help="Episode length (default: env's; kitchen 280)."),
    env: str = typer.Option(None, "--env", help="Kitchen: count the subtasks of this skill env's task, in "
                            "order: SkillKitchen-v0 or SkillKitchenMisaligned-v0."),
    tasks: str = typer.Option(None, "--tasks", help='Kitchen: count these subtasks, comma-separated, e.g. '
                              '"microwave,light switch,slide cabinet,hinge cabinet".'),
    ordered: bool = typer.Option(False, "--ordered", help="With --tasks: a subtask counts only once every "
                                 "earlier one does, as the skill envs count."),
    video: Path = typer.Option(None, "--video", help="Also record --video-episodes prior rollouts as MP4s "
                               "in this directory (needs the video extra; see docs/videos.md)."),
    video_episodes: int = typer.Option(3, "--video-episodes", min=1, help="Episodes to record with --video."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Prior rollouts: execute skills sampled from the prior, H steps at a time, in the dataset's env.

    Kitchen reports the subtasks completed (of the data env's tasks, or of --env's or --tasks' task:
    then both in order and in any order) and which subtask each episode completed first.
    """
    import torch

    from skillplan.evaluation import chosen_task, evaluate_prior
    from skillplan.models.skill_model import SkillModel
    from skillplan.progress import progress_bar
    from skillplan.video import prepare_video_dir

    goal = chosen_task(env, tasks, ordered)
    if video is not None:
        prepare_video_dir(video)
    torch_device = resolve_device(device)
    torch.set_num_threads(1)  # the env workers need the other cores
    model = SkillModel.load(checkpoint)
    with progress_bar(console) as progress:
        task = progress.add_task("prior rollouts", total=episodes)
        rollouts = evaluate_prior(
            model, episodes, workers=workers, seed=seed, max_steps=max_steps, goal=goal,
            on_episode=lambda: progress.advance(task), device=torch_device,
        )
    if goal is not None:
        console.print(f"task: {' → '.join(goal.subtasks)} ({'in order' if goal.ordered else 'any order'})")
    table = Table(title=f"Prior rollouts: {model.metadata.env_id}, {episodes} episodes")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rollouts.summary().items():
        table.add_row(name, f"{value:.3g}")
    if rollouts.kind == "kitchen":
        for n, count in rollouts.distribution().items():
            table.add_row(f"episodes with {n} subtask(s)", str(count))
        for name, count in rollouts.first_subtask_counts().items():
            table.add_row(f"first subtask: {name}", str(count))
    table.add_row("reset states: largest |z-score|", f"{max(rollouts.reset_sigma):.3g}")
    console.print(table)
    outliers = rollouts.reset_outliers()
    if outliers:
        dims = ", ".join(f"{dim} ({sigma:.1f}σ)" for dim, sigma in outliers.items())
        console.print(f"[yellow]Reset states lie off the data in state dimension(s) {dims}.[/yellow] Every "
                      "episode's first skill is chosen there, where the prior was barely trained: "
                      "compare its rollouts with the downstream task's first subtask.")
    if video is not None:
        with progress_bar(console) as progress:
            task = progress.add_task("recording videos", total=video_episodes)
            evaluate_prior(model, video_episodes, workers=1, seed=seed, max_steps=max_steps, goal=goal,
                           video_dir=video, on_episode=lambda: progress.advance(task))
        console.print(f"[green]videos[/green] {video}/prior-episode-*.mp4")
