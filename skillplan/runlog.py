"""A run's metrics: rows by step in `metrics.csv` (rewritten atomically), TensorBoard if installed, plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from skillplan.io import atomic_write_text, save_figure

METRICS_FILE = "metrics.csv"


class RunLog:
    """Collects metric rows keyed by step; train and validation values of one step share a row.

    Resuming at `resume_step` keeps the earlier rows of an existing `metrics.csv` up to that step.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.rows: dict[int, dict[str, float]] = {}
        if resume_step and self.path.is_file():
            with self.path.open() as f:
                for row in csv.DictReader(f):
                    step = int(row.pop("step"))
                    if step <= resume_step:
                        self.rows[step] = {k: float(v) for k, v in row.items() if v != ""}
        self._tensorboard = _tensorboard_writer(Path(run_dir) / "tensorboard")

    def log(self, step: int, values: dict[str, float]) -> None:
        self.rows.setdefault(step, {}).update(values)
        if self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(name, value, step)

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
        if self._tensorboard is not None:
            self._tensorboard.flush()

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
            (axes[2], aucs, "held-out PU AUC (expert vs general)", False),
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


def _tensorboard_writer(log_dir: Path):
    """A TensorBoard SummaryWriter when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir))
