"""The `skillplan` command line: Typer commands, rich output, one-paragraph errors."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

import skillplan
from skillplan.cli.benchmark import benchmark_app
from skillplan.cli.datasets import datasets_app
from skillplan.cli.pretrain import evaluate_prior_command, pretrain_command
from skillplan.cli.train import evaluate, train
from skillplan.errors import SkillplanError

app = typer.Typer(
    name="skillplan",
    help="Skill-based, model-based RL from offline Minari data: datasets, pretraining, agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(datasets_app, name="datasets")
app.command("pretrain")(pretrain_command)
app.command("evaluate-prior")(evaluate_prior_command)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.add_typer(benchmark_app, name="benchmark")

err_console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skillplan {skillplan.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """skillplan: pretrain skills, a skill prior, skill dynamics and a PU discriminator from
    Minari data, then solve long-horizon tasks with SSAC or CEM latent planning."""
    _state["debug"] = debug


def run() -> None:
    """Console-script entry point: user errors become a red paragraph and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except SkillplanError as exc:
        if _state["debug"]:
            raise
        # Plain text: brackets in a message (an extra's name, a YAML list) are not markup.
        err_console.print(Panel(Text(str(exc)), title="skillplan: error", border_style="red", expand=False))
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]Aborted. Nothing half-written was kept: the last complete checkpoint "
                          "is there for --resume.[/yellow]")
        sys.exit(130)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        # Usage errors (an unknown option, a missing argument) arrive here in non-standalone
        # mode. They are Click exceptions, but recent typer releases raise those of their own vendored
        # copy of Click, so they are recognised by what they can do, not by class.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
