"""`skillplan train` and `skillplan evaluate`: downstream agents on the skill environments."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from skillplan.config import read_yaml
from skillplan.device import DEVICE_HELP, resolve_device
from skillplan.errors import CheckpointError
from skillplan.runlog import LOGGER_HELP, check_loggers, log_files

console = Console()
AGENT_SETTINGS = "an agent's settings, e.g. `learning_starts: 5000` or `sac: {precision: bf16}`"


def train(
    env: str = typer.Option(
        "SkillKitchen-v0", "--env", help="SkillKitchen-v0, SkillKitchenMisaligned-v0 or SkillPointMaze-v0."
    ),
    prior: Path = typer.Option(
        None, "--prior", help="Pretrained checkpoint dir (skill agents), e.g. runs/kitchen-scripted/prior."
    ),
    agent: str = typer.Option("ssac", "--agent", help="ssac (skill SAC), cem (planning) or sac (flat)."),
    steps: int = typer.Option(250_000, "--steps", help="Low-level env steps to train for."),
    seed: int = typer.Option(0, "--seed", help="Seed for the agent and the env."),
    out: Path = typer.Option(None, "--out", help="Run directory. Default: runs/<env>-<agent>-s<seed>."),
    config: Path = typer.Option(None, "--config", help="YAML of agent settings, merged key by key onto "
                                "the agent's defaults (options override it)."),
    eval_every: int = typer.Option(None, "--eval-every", help="Evaluate every N env steps."),
    eval_episodes: int = typer.Option(None, "--eval-episodes", help="Episodes per evaluation."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    loggers: list[str] = typer.Option(None, "--logger", help=LOGGER_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Train a downstream agent; metrics.csv, learning_curve.png and checkpoints go to --out.

    The first Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and prints the
    command that resumes; a second one aborts at once.
    """
    from skillplan.agents import agent_class, agent_config, make_agent_env, write_run_file
    from skillplan.agents.base import AGENT_DIR
    from skillplan.interrupt import stop_on_signals, stopped_message

    loggers = check_loggers(loggers)
    torch_device = resolve_device(device)
    cls = agent_class(agent)
    settings = read_yaml(config, holds=AGENT_SETTINGS) if config else {}
    overrides = {"seed": seed, "eval_every": eval_every, "eval_episodes": eval_episodes}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    resolved = agent_config(agent, settings, source=config)
    out = out or Path("runs") / f"{env}-{agent}-s{seed}"
    train_env = make_agent_env(agent, env, str(prior) if prior else None)
    write_run_file(out, env=env, prior=prior, agent=agent, steps=steps, config=resolved)
    console.print(f"[bold]{agent}[/bold] on [bold]{env}[/bold] for {steps:,} env steps on {torch_device} → "
                  f"{out}")
    with stop_on_signals() as stop:
        trained = cls(train_env, resolved, torch_device).learn(steps, out, resume=resume, console=console,
                                                               loggers=loggers, stop=stop)
    if trained.stopped:
        console.print(stopped_message(stop, f"env step {trained.env_steps:,}", out / AGENT_DIR, sys.argv[1:]))
        raise typer.Exit(stop.exit_code)
    # the evaluation `learn` made at its last step; a run resumed already finished makes one now
    result = trained.last_evaluation or trained.evaluate(resolved.eval_episodes)
    console.print(_result_table(f"{agent} on {env} after {trained.env_steps:,} env steps", result))
    console.print("[green]logs[/green] " + ", ".join(log_files(out, loggers, "learning_curve.png")))


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `skillplan train` run directory (or its agent/ folder)."),
    episodes: int = typer.Option(20, "--episodes", "-n", help="Evaluation episodes."),
    seed: int = typer.Option(10_000, "--seed", help="Seed of the first episode."),
    video: Path = typer.Option(None, "--video", help="Record the first --video-episodes episodes as MP4s "
                               "in this directory (needs the video extra; see docs/videos.md)."),
    video_episodes: int = typer.Option(3, "--video-episodes", min=1, help="Episodes to record with --video."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Evaluate a trained agent greedily: mean return, subtasks completed and success rate."""
    from skillplan.agents import load_agent
    from skillplan.video import prepare_video_dir, record_agent_env

    if video is not None:
        prepare_video_dir(video)

    torch_device = resolve_device(device)
    agent_dir = run_dir / "agent" if (run_dir / "agent").is_dir() else run_dir
    meta_file = agent_dir / "metadata.json"
    if not meta_file.is_file():
        raise CheckpointError(f"'{run_dir}' is not a training run: no agent/metadata.json. Train one "
                              "with `skillplan train --out DIR`.")
    agent = load_agent(agent_dir, device=torch_device)
    name = agent.name
    env = record_agent_env(agent.env, video, video_episodes, name) if video is not None else None
    result = agent.evaluate(episodes, env=env, seed=seed)
    if env is not None:
        env.close()  # writes the last video
    title = f"{name} from {run_dir} ({agent.env_steps:,} env steps, {episodes} episodes)"
    console.print(_result_table(title, result))
    if video is not None:
        console.print(f"[green]videos[/green] {video}/{name}-episode-*.mp4")


def _result_table(title: str, result: dict[str, float]) -> Table:
    table = Table(title=title, min_width=min(len(title), 110))
    for name in result:
        table.add_column(name, justify="right")
    table.add_row(*(f"{v:.3f}" for v in result.values()))
    return table
