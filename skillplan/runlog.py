"""A run's metrics: rows by step in `metrics.csv` (rewritten atomically), plots, and on request
TensorBoard and Weights & Biases, where the names are namespaced (losses/…, eval/…, time/…)."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from skillplan.errors import ConfigError
from skillplan.io import atomic_write_text, save_figure

METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR, WANDB_ID_FILE = "tensorboard", "wandb-run-id.txt"
LOGGERS = ("csv", "tensorboard", "wandb")  # the last two need the package, and extra, of their name
LOGGER_HELP = ("Where metrics go besides metrics.csv: tensorboard (RUN/tensorboard) or wandb (RUN/wandb); "
               "repeat for both.")


def check_loggers(names: Sequence[str] | None) -> tuple[str, ...]:
    """The loggers to write, csv always first; an error for an unknown name or a missing package."""
    names = tuple(dict.fromkeys(["csv", *(names or [])]))
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"Unknown logger(s) {', '.join(map(repr, unknown))}. Valid loggers: "
                          f"{', '.join(LOGGERS)} (csv is always written); repeat --logger for several.")
    for name in names[1:]:
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"--logger {name} needs the '{name}' package, which is not installed. "
                              f"Install it with `pip install 'skillplan[{name}]'`, or drop --logger {name}.")
    return names


def log_files(run_dir: Path, loggers: Sequence[str], plot: str) -> list[str]:
    """Where a run's logs are, for the closing line of a command."""
    places = {"csv": METRICS_FILE, "tensorboard": TENSORBOARD_DIR + "/", "wandb": "wandb/"}
    return [f"{run_dir}/{places[name]}" for name in loggers] + [f"{run_dir}/{plot}"]


def namespaced(name: str) -> str:
    """A metric's TensorBoard / W&B name: held-out values under eval/, rates under time/, the terms
    an update returns under losses/; a name with a namespace (train/return, eval/return) keeps it."""
    if "/" in name:
        return name
    if name.startswith("val_"):
        return "eval/" + name.removeprefix("val_")
    if name.endswith("_per_s"):
        return "time/" + name
    return "losses/" + name


class RunLog:
    """Collects metric rows keyed by step; train and validation values of one step share a row.

    Resuming at `resume_step` keeps the earlier rows of an existing `metrics.csv` up to that step.
    `loggers` (see `check_loggers`) adds TensorBoard (`RUN/tensorboard/`) and W&B (`RUN/wandb/`,
    continued on resume); `config`, the run's resolved config, is logged to them as hyperparameters.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0, loggers: Sequence[str] = ("csv",),
                 config: dict[str, Any] | None = None) -> None:
        run_dir = Path(run_dir)
        loggers = check_loggers(loggers)
        self.path = run_dir / METRICS_FILE
        self.rows: dict[int, dict[str, float]] = {}
        if resume_step and self.path.is_file():
            with self.path.open() as f:
                for row in csv.DictReader(f):
                    step = int(row.pop("step"))
                    if step <= resume_step:
                        self.rows[step] = {k: float(v) for k, v in row.items() if v != ""}
        self._sinks: list[TensorBoardSink | WandbSink] = []
        if "tensorboard" in loggers:
            self._sinks.append(TensorBoardSink(run_dir, config or {}))
        if "wandb" in loggers:
            self._sinks.append(WandbSink(run_dir, config or {}))

    def log(self, step: int, values: dict[str, float]) -> None:
        self.rows.setdefault(step, {}).update(values)
        for sink in self._sinks:
            sink.log(step, {namespaced(k): float(v) for k, v in values.items()})

    def columns(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.rows.values():
            names.update(dict.fromkeys(row))
        return list(names)

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["step", *self.columns()])
        writer.writeheader()
        for step in sorted(self.rows):
            writer.writerow({"step": step, **{k: f"{v:.6g}" for k, v in self.rows[step].items()}})
        atomic_write_text(self.path, buffer.getvalue())
        for sink in self._sinks:
            sink.flush()

    def close(self) -> None:
        """Write everything out and end the TensorBoard and W&B runs."""
        self.flush()
        for sink in self._sinks:
            sink.close()
        self._sinks = []

    def series(self, name: str) -> tuple[list[int], list[float]]:
        steps = [s for s in sorted(self.rows) if name in self.rows[s]]
        return steps, [self.rows[s][name] for s in steps]

    def plot(self, path: Path) -> None:
        """Learning curves: training terms on the left, held-out metrics on the right (log scale)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        columns = self.columns()
        train = [c for c in columns if not c.startswith("val_") and c not in ("windows_per_s", "grad_norm")]
        held_out = [c for c in columns if c.startswith("val_") and not c.endswith("_auc")]
        aucs = [c for c in columns if c.endswith("_auc")]
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        for ax, names, title, log_scale in (
            (axes[0], train, "training losses", True),
            (axes[1], held_out, "held-out errors", True),
            (axes[2], aucs, "held-out AUC, expert vs general", False),
        ):
            for name in names:
                ax.plot(*self.series(name), label=name)
            if log_scale and names:
                ax.set_yscale("log")
            ax.set_title(title)
            ax.set_xlabel("step")
            if names:
                ax.legend(fontsize=7)
        save_figure(fig, path)


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """A nested config as TensorBoard hyperparameters: `section/key` names, scalars kept, the rest
    (lists, None) as text."""
    out: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flat_hparams(value, name + "/")
        else:
            out[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return out


class TensorBoardSink:
    """Scalars through torch's SummaryWriter into `RUN/tensorboard/`; the config as hparams and text."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR))
        if config:
            self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```")
            self.writer.add_hparams(flat_hparams(config), {}, run_name=".")

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A W&B run in `RUN/wandb/`, named by the run's path, continued when the run is resumed.

    Project: $WANDB_PROJECT, else "skillplan"; $WANDB_MODE=offline keeps it on disk (`wandb sync`
    uploads it later). The run's id is kept in `RUN/wandb-run-id.txt`.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import wandb

        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(id_file, run_id)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "skillplan"), name=str(run_dir), id=run_id,
            resume="allow", dir=str(run_dir), config=config, reinit="finish_previous",
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def flush(self) -> None:
        """W&B writes in the background as it goes."""

    def close(self) -> None:
        self.run.finish()
