"""A suite's report: every evaluation point as CSV, per-env tables at fixed budgets, learning-curve PNGs.

Statistics across seeds are scipy's: `scipy.stats.bootstrap` (percentile, 95%) for the confidence
intervals of the mean and of the IQM, `scipy.stats.trim_mean(·, 0.25)` for the interquartile mean.
With few seeds both are weak: the IQM trims nothing below 4 seeds (it is the mean), and a percentile
interval over 2 seeds is just [min, max]; the markdown summary says so next to the tables.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

from skillplan.benchmarking.methods import METHODS
from skillplan.benchmarking.suite_config import SUITE_FILE, TIMING_FILE, SuiteConfig, load_suite_config
from skillplan.io import atomic_write_text, read_json, save_figure

EVALUATIONS, SUMMARY_MD, SUMMARY_JSON = "evaluations.csv", "summary.md", "summary.json"
EVAL_METRICS = ("return", "subtasks", "success")  # what the report keeps of each evaluation
FIELDS = ("env", "method", "agent", "preset", "seed", "env_steps", *EVAL_METRICS)
CONFIDENCE, RESAMPLES = 0.95, 2_000
# A kitchen seed has collapsed at an evaluation below COLLAPSE_FLOOR subtasks after first reaching
# COLLAPSE_REACHED (issue 20's definition).
COLLAPSE_REACHED, COLLAPSE_FLOOR = 3.0, 2.0


def collect(out: Path, config: SuiteConfig) -> list[dict[str, Any]]:
    """Every evaluation point of the suite's runs (env × method × seed), finished or not, as `FIELDS` rows."""
    rows = []
    for metrics in sorted(Path(out).glob("runs/*/*/seed*/metrics.csv")):
        seed_dir, method_dir, env_dir = metrics.parent, metrics.parent.parent, metrics.parent.parent.parent
        seed = seed_dir.name.removeprefix("seed")
        if (env_dir.name not in config.envs or method_dir.name not in config.methods_on(env_dir.name)
                or not seed.isdigit() or int(seed) >= config.seeds):
            continue  # not one of this suite's runs (a renamed copy, a leftover of another config)
        method = METHODS[method_dir.name]
        with metrics.open() as f:
            for row in csv.DictReader(f):
                if not row.get("eval/return"):
                    continue
                rows.append({
                    "env": env_dir.name, "method": method_dir.name,
                    "agent": method.agent, "preset": method.preset or "",
                    "seed": int(seed), "env_steps": int(float(row["step"])),
                    **{k: float(row[f"eval/{k}"]) for k in EVAL_METRICS
                       if row.get(f"eval/{k}")},
                })
    return rows


def primary_metric(rows: list[dict[str, Any]]) -> str:
    """What an env is judged by: subtasks completed (kitchen), else success rate, else return."""
    for name in ("subtasks", "success"):
        if rows and all(name in r for r in rows):
            return name
    return "return"


def value_at(rows: list[dict[str, Any]], budget: int, metric: str) -> float | None:
    """One seed's score at an env-step budget: its first evaluation at or after the budget.

    Evaluations happen as soon as a budget is crossed, so this is at most one skill past it;
    None when the run has not got there yet.
    """
    reached = [r for r in rows if r["env_steps"] >= budget]
    return min(reached, key=lambda r: r["env_steps"])[metric] if reached else None


def interval(values: np.ndarray, statistic: str) -> dict[str, float]:
    """The statistic ('mean' or 'iqm') over seeds with its bootstrap confidence interval."""
    def compute(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) if statistic == "mean" else stats.trim_mean(x, 0.25, axis=axis)

    point = float(compute(values))
    if len(values) < 2 or np.ptp(values) == 0:  # nothing to resample: the interval is the point
        return {statistic: point, f"{statistic}_low": point, f"{statistic}_high": point}
    result = stats.bootstrap((values,), compute, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                             method="percentile", vectorized=True, rng=np.random.default_rng(0))
    low, high = result.confidence_interval
    return {statistic: point, f"{statistic}_low": float(low), f"{statistic}_high": float(high)}


def collapse_rate(seeds: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """The share of evaluations below COLLAPSE_FLOOR subtasks after a seed first reaches COLLAPSE_REACHED.

    Counted over all seeds' evaluations after each one's first time at COLLAPSE_REACHED or above;
    `rate` is None when no seed got there.
    """
    after, below = 0, 0
    for rows in seeds.values():
        scores = [r["subtasks"] for r in sorted(rows, key=lambda r: r["env_steps"])]
        first = next((i for i, v in enumerate(scores) if v >= COLLAPSE_REACHED), None)
        if first is not None:
            later = scores[first + 1:]
            after += len(later)
            below += sum(v < COLLAPSE_FLOOR for v in later)
    return {"evaluations": after, "collapsed": below, "rate": below / after if after else None}


def summarise(rows: list[dict[str, Any]], budgets: list[int]) -> dict[str, Any]:
    """Per env and method, at each budget: seeds reached, mean and IQM with their CIs, in the metric;
    on kitchen envs (subtasks), each method's collapse rate too."""
    summary: dict[str, Any] = {}
    for env in sorted({r["env"] for r in rows}):
        env_rows = [r for r in rows if r["env"] == env]
        metric = primary_metric(env_rows)
        methods, collapses = {}, {}
        for method in [m for m in METHODS if any(r["method"] == m for r in env_rows)]:
            seeds = _by_seed([r for r in env_rows if r["method"] == method])
            per_budget = {}
            for budget in budgets:
                values = [v for v in (value_at(s, budget, metric) for s in seeds.values()) if v is not None]
                entry: dict[str, Any] = {"seeds": len(values), "values": values}
                if values:
                    array = np.asarray(values, dtype=float)
                    entry |= interval(array, "mean") | interval(array, "iqm")
                per_budget[str(budget)] = entry
            methods[method] = per_budget
            if metric == "subtasks":
                collapses[method] = collapse_rate(seeds)
        summary[env] = {"metric": metric, "methods": methods}
        if collapses:
            summary[env]["collapse"] = collapses
    return summary


def write_report(out: Path, console: Console | None = None) -> dict[str, Any]:
    """Write evaluations.csv, summary.md/json and one PNG per env into `out`; print the tables."""
    out = Path(out)
    config = load_suite_config(out)
    rows = collect(out, config)
    budgets = config.table_budgets()
    summary = summarise(rows, budgets)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / EVALUATIONS, buffer.getvalue())
    record = read_json(out / SUITE_FILE)
    record["sessions"] = read_json(out / TIMING_FILE).get("sessions", [])
    atomic_write_text(out / SUMMARY_JSON, json.dumps({"budgets": budgets, "envs": summary}, indent=2))
    atomic_write_text(out / SUMMARY_MD, markdown(summary, budgets, record))
    for env in summary:
        plot(rows, env, summary[env]["metric"], config.eval_every, config.steps, out / f"{env}.png")
    if console is not None:
        for env, entry in summary.items():
            console.print(_rich_table(env, entry, budgets))
        console.print(f"report: {out / SUMMARY_MD}, {out / EVALUATIONS}, "
                      + ", ".join(str(out / f"{env}.png") for env in summary))
    return summary


def markdown(summary: dict[str, Any], budgets: list[int], record: dict[str, Any]) -> str:
    """The summary tables as markdown, headed by the machine, commit and command that made them."""
    # the machine the suite started on, then any other its invocations ran on
    machines = [record.get("machine", {}), *(s["machine"] for s in record["sessions"] if "machine" in s)]
    names = dict.fromkeys(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" for m in machines)
    # the commit the suite started at, then any later one an invocation ran (a moved frozen checkout)
    commits = dict.fromkeys([record.get("commit", "?"), *(s["commit"] for s in record["sessions"]
                                                            if "commit" in s)])
    lines = [
        "# Sample-efficiency suite",
        "",
        f"- command: `{record.get('command', '?')}`",
        f"- commit: {', then '.join(f'`{c}`' for c in commits)}",
        f"- machine: {'; '.join(names)}",
        f"- wall time: {_duration(sum(s['seconds'] for s in record['sessions']))} over "
        f"{len(record['sessions'])} invocation(s)",
        f"- cells: mean [95% bootstrap CI] · IQM over seeds (n = seeds that reached the budget); "
        f"{RESAMPLES} percentile resamples (scipy.stats.bootstrap). With n < 5 read the interval as the "
        "spread of the seeds (n = 2: [min, max]), and the IQM as the mean (nothing is trimmed below 4)",
        "",
        "Methods: " + "; ".join(f"`{m.name}`: {m.paper}" for m in METHODS.values()) + ".",
        "",
    ]
    for env, entry in summary.items():
        lines += [f"## {env}: {entry['metric']}", "",
                  "| method | " + " | ".join(f"{b:,} steps" for b in budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        for method, per_budget in entry["methods"].items():
            lines.append(f"| {method} | " + " | ".join(_cell(per_budget[str(b)]) for b in budgets) + " |")
        lines.append("")
        if "collapse" in entry:
            lines += [f"Collapse rate: the share of evaluations below {COLLAPSE_FLOOR:g} subtasks after a "
                      f"seed first reached {COLLAPSE_REACHED:g}.", "",
                      "| method | collapse rate (collapsed/evaluations) |", "|---|---|"]
            lines += [f"| {method} | {_rate(c)} |" for method, c in entry["collapse"].items()]
            lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], env: str, metric: str, eval_every: int, steps: int, path: Path) -> None:
    """Mean and 95% CI band per method against env steps, on the evaluation grid; each seed's own
    curve faintly in the method's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = sorted({*range(eval_every, steps + 1, eval_every), steps})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in METHODS:
        seeds = _by_seed([r for r in rows if r["env"] == env and r["method"] == method])
        if not seeds:
            continue
        xs, means, lows, highs = [], [], [], []
        for budget in grid:
            values = [v for v in (value_at(s, budget, metric) for s in seeds.values()) if v is not None]
            if values:
                stat = interval(np.asarray(values, dtype=float), "mean")
                xs.append(budget)
                means.append(stat["mean"])
                lows.append(stat["mean_low"])
                highs.append(stat["mean_high"])
        finished = sum(value_at(s, steps, metric) is not None for s in seeds.values())
        runs = f"{len(seeds)} seeds" + (f", {finished} at {steps:,}" if finished < len(seeds) else "")
        line, = ax.plot(xs, means, marker="o", markersize=3, label=f"{method} ({runs})")
        ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2)
        for seed_rows in seeds.values():
            ordered = sorted(seed_rows, key=lambda r: r["env_steps"])
            ax.plot([r["env_steps"] for r in ordered], [r[metric] for r in ordered],
                    color=line.get_color(), alpha=0.25, linewidth=0.8)
    ax.set_xlabel("env steps")
    ax.set_ylabel(metric)
    ax.set_title(f"{env}: mean and 95% bootstrap CI over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _rate(collapse: dict[str, Any]) -> str:
    if collapse["rate"] is None:
        return "— (no seed reached it)"
    return f"{collapse['rate']:.2f} ({collapse['collapsed']}/{collapse['evaluations']})"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def _by_seed(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    seeds: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        seeds.setdefault(row["seed"], []).append(row)
    return seeds


def _cell(entry: dict[str, Any]) -> str:
    if not entry["seeds"]:
        return "—"
    return (f"{entry['mean']:.2f} [{entry['mean_low']:.2f}, {entry['mean_high']:.2f}] · "
            f"{entry['iqm']:.2f} (n={entry['seeds']})")


def _rich_table(env: str, entry: dict[str, Any], budgets: list[int]) -> Table:
    table = Table(title=f"{env}: {entry['metric']}, mean [95% CI] · IQM")
    table.add_column("method")
    for budget in budgets:
        table.add_column(f"{budget:,} steps", justify="right")
    collapse = entry.get("collapse", {})
    if collapse:
        table.add_column("collapse rate", justify="right")
    for method, per_budget in entry["methods"].items():
        extra = [_rate(collapse[method])] if collapse else []
        table.add_row(method, *(_cell(per_budget[str(b)]) for b in budgets), *extra)
    return table
