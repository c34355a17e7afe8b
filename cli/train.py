"""`skillplan train` and `skillplan evaluate`: downstream agents on the skill environments."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from skillplan.device import DEVICE_HELP, resolve_device
from skillplan.errors import CheckpointError, ConfigError

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
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Train a downstream agent; metrics.csv, learning_curve.png and checkpoints go to --out."""
    from skillplan.agents import agent_class, make_agent_env

    torch_device = resolve_device(device)
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
    (out / "run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    console.print(f"[bold]{agent}[/bold] on [bold]{env}[/bold] for {steps:,} env steps on {torch_device} → "
                  f"{out}")
    trained = cls(train_env, agent_config, torch_device).learn(steps, out, resume=resume, console=console)
    result = trained.evaluate(agent_config.eval_episodes)
    console.print(_result_table(f"{agent} on {env} after {trained.env_steps:,} env steps", result))


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `skillplan train` run directory (or its agent/ folder)."),
    episodes: int = typer.Option(20, "--episodes", "-n", help="Evaluation episodes."),
    seed: int = typer.Option(10_000, "--seed", help="Seed of the first episode."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Evaluate a trained agent greedily: mean return, subtasks completed and success rate."""
    from skillplan.agents import agent_class

    torch_device = resolve_device(device)
    agent_dir = run_dir / "agent" if (run_dir / "agent").is_dir() else run_dir
    meta_file = agent_dir / "metadata.json"
    if not meta_file.is_file():
        raise CheckpointError(f"'{run_dir}' is not a training run: no agent/metadata.json. Train one "
                              "with `skillplan train --out DIR`.")
    name = json.loads(meta_file.read_text())["agent"]
    agent = agent_class(name).load(agent_dir, device=torch_device)
    result = agent.evaluate(episodes, seed=seed)
    title = f"{name} from {run_dir} ({agent.env_steps:,} env steps, {episodes} episodes)"
    console.print(_result_table(title, result))


def _result_table(title: str, result: dict[str, float]) -> Table:
    table = Table(title=title, min_width=min(len(title), 110))
    for name in result:
        table.add_column(name, justify="right")
    table.add_row(*(f"{v:.3f}" for v in result.values()))
    return table
