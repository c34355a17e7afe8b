"""`skillplan train` and `skillplan evaluate`: downstream agents on the skill environments."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from skillplan.errors import CheckpointError, ConfigError
from skillplan.io import atomic_write_text

console = Console()


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
    config: Path = typer.Option(None, "--config", help="YAML of agent settings (options override it)."),
    eval_every: int = typer.Option(None, "--eval-every", help="Evaluate every N env steps."),
    eval_episodes: int = typer.Option(None, "--eval-episodes", help="Episodes per evaluation."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
) -> None:
    """Train a downstream agent; metrics.csv, learning_curve.png and checkpoints go to --out.

    The first Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and prints the
    command that resumes; a second one aborts at once.
    """
    from skillplan.agents import agent_class, make_agent_env
    from skillplan.agents.base import AGENT_DIR
    from skillplan.interrupt import stop_on_signals, stopped_message

    cls = agent_class(agent)
    settings = yaml.safe_load(config.read_text()) if config else {}
    overrides = {"seed": seed, "eval_every": eval_every, "eval_episodes": eval_episodes}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        agent_config = cls.config_class.model_validate(settings)
    except ValueError as exc:
        raise ConfigError(f"Invalid agent settings for '{agent}': {exc}") from None
    out = out or Path("runs") / f"{env}-{agent}-s{seed}"
    train_env = make_agent_env(agent, env, str(prior) if prior else None)
    out.mkdir(parents=True, exist_ok=True)
    run = {"env": env, "prior": str(prior) if prior else None, "agent": agent, "steps": steps,
           "config": agent_config.model_dump(mode="json")}
    atomic_write_text(out / "run.yaml", yaml.safe_dump(run, sort_keys=False))
    console.print(f"[bold]{agent}[/bold] on [bold]{env}[/bold] for {steps:,} env steps → {out}")
    with stop_on_signals() as stop:
        trained = cls(train_env, agent_config).learn(steps, out, resume=resume, console=console, stop=stop)
    if trained.stopped:
        console.print(stopped_message(stop, f"env step {trained.env_steps:,}", out / AGENT_DIR, sys.argv[1:]))
        raise typer.Exit(stop.exit_code)
    result = trained.evaluate(agent_config.eval_episodes)
    console.print(_result_table(f"{agent} on {env} after {trained.env_steps:,} env steps", result))


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `skillplan train` run directory (or its agent/ folder)."),
    episodes: int = typer.Option(20, "--episodes", "-n", help="Evaluation episodes."),
    seed: int = typer.Option(10_000, "--seed", help="Seed of the first episode."),
) -> None:
    """Evaluate a trained agent greedily: mean return, subtasks completed and success rate."""
    from skillplan.agents import agent_class

    agent_dir = run_dir / "agent" if (run_dir / "agent").is_dir() else run_dir
    meta_file = agent_dir / "metadata.json"
    if not meta_file.is_file():
        raise CheckpointError(f"'{run_dir}' is not a training run: no agent/metadata.json. Train one "
                              "with `skillplan train --out DIR`.")
    name = json.loads(meta_file.read_text())["agent"]
    agent = agent_class(name).load(agent_dir)
    result = agent.evaluate(episodes, seed=seed)
    title = f"{name} from {run_dir} ({agent.env_steps:,} env steps, {episodes} episodes)"
    console.print(_result_table(title, result))


def _result_table(title: str, result: dict[str, float]) -> Table:
    table = Table(title=title, min_width=min(len(title), 110))
    for name in result:
        table.add_column(name, justify="right")
    table.add_row(*(f"{v:.3f}" for v in result.values()))
    return table
