"""Which kitchen subtasks a general episode performs, and in what order: plan sources and the
statistics of subtask sequences, computed the same way from a plan table and from data.

A `PlanTable` is a list of weighted subtask sequences; `RPL_MIXED` reproduces the task structure
of D4RL's kitchen-mixed (see docs/data.md). `UniformPlans` is the older random-subset source.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from skillplan.errors import DatasetError

SUBTASKS: tuple[str, ...] = (
    "microwave",
    "kettle",
    "bottom burner",
    "top burner",
    "light switch",
    "slide cabinet",
    "hinge cabinet",
)
EXPERT_SEQUENCE: tuple[str, ...] = ("microwave", "kettle", "bottom burner", "light switch")


class PlanSource(Protocol):
    """Draws the subtask sequence of one general episode."""

    # True: the sequence is a commitment, so a subtask given up midway is begun again.
    # False: it is play, so the next subtask begins instead.
    resumes_abandoned: bool

    def draw(self, rng: np.random.Generator, quantile: float | None = None) -> list[str]:
        """The subtasks of one episode, in order; `quantile` (in [0, 1)), if given, places the
        episode in its dataset's stratified sample."""
        ...

    def describe(self) -> str:
        """A JSON string of the source, for the dataset's metadata."""
        ...


@dataclass(frozen=True)
class Plan:
    """One planned sequence of distinct subtasks and its relative weight."""

    tasks: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class PlanTable:
    """Weighted plans; each general episode performs one, drawn by weight."""

    plans: tuple[Plan, ...]
    resumes_abandoned: bool = field(default=True, init=False)

    def draw(self, rng: np.random.Generator, quantile: float | None = None) -> list[str]:
        """The plan whose share of the weights' cumulative sum holds `quantile`, or a random draw.

        With a dataset's episodes at stratified quantiles (`stratified_quantiles`), each plan's
        episode count is within about one of its weight's share, not a multinomial draw's.
        """
        u = rng.random() if quantile is None else quantile
        cdf = np.cumsum([p.weight for p in self.plans])
        i = int(np.searchsorted(cdf / cdf[-1], u, side="right"))
        return list(self.plans[min(i, len(self.plans) - 1)].tasks)

    def describe(self) -> str:
        return json.dumps([{"tasks": list(p.tasks), "weight": p.weight} for p in self.plans])

    def shares(self) -> SequenceStats:
        """The sequence statistics an episode sample converges to if every plan completes."""
        return sequence_stats((p.tasks, p.weight) for p in self.plans)


@dataclass(frozen=True)
class UniformPlans:
    """2-4 distinct subtasks in uniformly random order: task-agnostic play."""

    resumes_abandoned: bool = field(default=False, init=False)

    def draw(self, rng: np.random.Generator, quantile: float | None = None) -> list[str]:
        """Random play has no mix to match: `quantile` is ignored."""
        return [str(t) for t in rng.permutation(SUBTASKS)[: rng.integers(2, 5)]]

    def describe(self) -> str:
        return json.dumps({"uniform": "2-4 distinct subtasks in uniformly random order"})


def stratified_quantiles(n: int, rng: np.random.Generator) -> np.ndarray:
    """One point in each of n equal strata of [0, 1), in random order: a stratified sample."""
    return (rng.permutation(n) + rng.random(n)) / n


def _table(*rows: tuple[tuple[str, ...], float]) -> PlanTable:
    return PlanTable(tuple(Plan(tasks, weight) for tasks, weight in rows))


# Source: RPL's kitchen plan folders (behind D4RL kitchen-mixed), weighted to SkiLD's measured
# kitchen-mixed transitions; bottom-burner-first where a plan turns both knobs. See docs/data.md.
RPL_MIXED = _table(
    (("microwave", "kettle", "bottom burner", "slide cabinet"), 4.72),
    (("microwave", "kettle", "bottom burner", "hinge cabinet"), 3.26),
    (("microwave", "kettle", "hinge cabinet", "slide cabinet"), 4.02),
    (("microwave", "kettle", "top burner", "light switch"), 3.69),
    (("microwave", "kettle", "top burner", "hinge cabinet"), 3.35),
    (("microwave", "kettle", "light switch", "hinge cabinet"), 3.35),
    (("microwave", "kettle", "light switch", "slide cabinet"), 3.18),
    (("microwave", "light switch", "hinge cabinet", "slide cabinet"), 3.47),
    (("microwave", "bottom burner", "light switch", "slide cabinet"), 7.25),
    (("microwave", "bottom burner", "hinge cabinet", "slide cabinet"), 4.92),
    (("microwave", "bottom burner", "top burner", "hinge cabinet"), 4.92),
    (("microwave", "bottom burner", "top burner", "slide cabinet"), 4.92),
    (("microwave", "bottom burner", "top burner", "light switch"), 4.92),
    (("microwave", "top burner", "light switch", "hinge cabinet"), 4.92),
    (("kettle", "bottom burner", "light switch", "slide cabinet"), 4.80),
    (("kettle", "bottom burner", "hinge cabinet", "slide cabinet"), 4.62),
    (("kettle", "light switch", "hinge cabinet", "slide cabinet"), 3.38),
    (("kettle", "bottom burner", "top burner", "slide cabinet"), 3.38),
    (("kettle", "top burner", "light switch", "slide cabinet"), 3.38),
    (("kettle", "bottom burner", "light switch", "hinge cabinet"), 3.38),
    (("kettle", "bottom burner", "top burner", "hinge cabinet"), 3.38),
    (("kettle", "bottom burner", "top burner", "light switch"), 3.38),
    (("bottom burner", "top burner", "light switch", "slide cabinet"), 4.70),
    (("bottom burner", "top burner", "hinge cabinet", "slide cabinet"), 4.70),
)

# SkiLD's measured kitchen-mixed shares (%), which RPL_MIXED reproduces: the first subtask, the
# second after the microwave, and the third after microwave -> kettle.
SKILD_SHARES: dict[str, dict[str, float]] = {
    "first": {"microwave": 60.9, "kettle": 29.7, "bottom burner": 9.5},
    "after microwave": {"kettle": 42.0, "light switch": 5.7},
    "after microwave, kettle": {"bottom burner": 31.2},
}


# ---- sequence statistics, from plans or from data ----


@dataclass(frozen=True)
class SequenceStats:
    """Shares (%) of the next subtask at the three branch points D4RL's statistics describe,
    with the weight (episodes, for data) each share is taken over, and how much weight
    completed EXPERT_SEQUENCE in order (other subtasks may come between)."""

    shares: dict[str, dict[str, float]]
    counts: dict[str, float]
    target_in_order: float
    total: float

    def as_dict(self) -> dict[str, Any]:
        return {"shares": self.shares, "counts": self.counts,
                "target_in_order": self.target_in_order, "total": self.total}


BRANCHES: dict[str, tuple[str, ...]] = {
    "first": (),
    "after microwave": ("microwave",),
    "after microwave, kettle": ("microwave", "kettle"),
}


def in_order(sequence: Sequence[str], target: Sequence[str] = EXPERT_SEQUENCE) -> bool:
    """Whether `target` occurs in `sequence` as a subsequence (in order, gaps allowed)."""
    rest = iter(sequence)
    return all(task in rest for task in target)


def sequence_stats(weighted: Iterable[tuple[Sequence[str], float]]) -> SequenceStats:
    """Branch-point shares of weighted subtask sequences (plans with their weights, or
    completed sequences with weight 1). A branch's share counts only the sequences that
    reach it and go on: the first share skips empty sequences."""
    next_task: dict[str, Counter[str]] = {name: Counter() for name in BRANCHES}
    target, total = 0.0, 0.0
    for sequence, weight in weighted:
        total += weight
        target += weight * in_order(sequence)
        for name, prefix in BRANCHES.items():
            if len(sequence) > len(prefix) and tuple(sequence[: len(prefix)]) == prefix:
                next_task[name][sequence[len(prefix)]] += weight
    counts = {name: float(sum(c.values())) for name, c in next_task.items()}
    shares = {
        name: {t: 100.0 * c[t] / counts[name] for t in SUBTASKS if c[t]} if counts[name] else {}
        for name, c in next_task.items()
    }
    return SequenceStats(shares, counts, target, total)


def completion_order(episode_task_completions: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """The subtasks an episode completed, in the order it first completed them, from its infos'
    per-step `episode_task_completions` flags (subtasks done in the same step: SUBTASKS order)."""
    first = {
        task: int(np.argmax(flags))
        for task, flags in episode_task_completions.items()
        if np.asarray(flags).any()
    }
    return tuple(sorted(first, key=lambda t: (first[t], SUBTASKS.index(t))))


# ---- user plan files ----


def _plan_error(path: Path, problem: str) -> DatasetError:
    return DatasetError(
        f"Plan file {path}: {problem}. A plan file is a YAML list of plans, each a mapping with "
        "'tasks' (a non-empty list of distinct subtasks, performed in order) and 'weight' (a "
        "number >= 0; plans are drawn in proportion to it, and at least one must be positive), "
        "e.g. `- {tasks: [microwave, kettle], weight: 2}`. The seven subtasks are: "
        + ", ".join(SUBTASKS) + "."
    )


def _plan(path: Path, i: int, entry: Any) -> Plan:
    where = f"plan {i + 1}"
    if not isinstance(entry, dict) or set(entry) != {"tasks", "weight"}:
        raise _plan_error(path, f"{where} is {entry!r}, not a mapping with exactly 'tasks' and 'weight'")
    tasks, weight = entry["tasks"], entry["weight"]
    if not isinstance(tasks, list) or not tasks:
        raise _plan_error(path, f"{where} has tasks {tasks!r}; it needs a non-empty list")
    unknown = [t for t in tasks if t not in SUBTASKS]
    if unknown:
        raise _plan_error(path, f"{where} names unknown subtask(s) {', '.join(map(repr, unknown))}")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        names = ", ".join(map(repr, repeated))
        raise _plan_error(path, f"{where} repeats {names}; a subtask stays done once done")
    number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if not number or not np.isfinite(weight) or weight < 0:
        raise _plan_error(path, f"{where} has weight {weight!r}; it needs a number >= 0")
    return Plan(tuple(tasks), float(weight))


def load_plans(path: Path) -> PlanTable:
    """Read and check a YAML plan file; any problem is one DatasetError naming the seven subtasks."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise _plan_error(path, f"it could not be read as YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, list) or not raw:
        held = "nothing" if raw is None else f"a {type(raw).__name__}"
        raise _plan_error(path, f"it holds {held}, not a non-empty list of plans")
    table = PlanTable(tuple(_plan(path, i, entry) for i, entry in enumerate(raw)))
    if not any(p.weight > 0 for p in table.plans):
        raise _plan_error(path, "every weight is 0")
    return table
