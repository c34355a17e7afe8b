"""The sample-efficiency suite's machinery on a tiny budget: runs, report, resume and bad directories."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil

import numpy as np
import pytest
from rich.console import Console
from safetensors.torch import load_file, save_file

from skillplan.benchmarking import report
from skillplan.benchmarking.methods import METHODS
from skillplan.benchmarking.report import EVALUATIONS, SUMMARY_JSON, SUMMARY_MD, interval, value_at
from skillplan.benchmarking.suite import (
    DONE_FILE,
    SUITE_FILE,
    TIMING_FILE,
    SuiteConfig,
    _train,
    load_suite_config,
    plan,
    restore_suite,
    run_suite,
)
from skillplan.envs.generate import generate_dataset
from skillplan.errors import ConfigError, SkillplanError

ENV = "SkillPointMaze-v0"
TINY_PRETRAIN = {
    "model": {"horizon": 4, "z_dim": 4, "hidden": 32, "depth": 1, "latent_dim": 16},
    "pretrain": {"batch_size": 32, "n_skills": 2, "precision": "fp32", "eval_windows": 32,
                 "log_every": 10, "eval_every": 20, "checkpoint_every": 20},
}


def tiny_suite(**changes) -> SuiteConfig:
    settings = {
        "envs": [ENV], "methods": ["sac", "spirl", "skillplan"], "seeds": 2, "steps": 240, "eval_every": 80,
        "eval_episodes": 1, "pretrain_steps": 20, "pretrain_overrides": TINY_PRETRAIN,
        "agent_overrides": {"learning_starts": 40}, "compile_planner": False,
    }
    return SuiteConfig.model_validate({**settings, **changes})


@pytest.fixture(scope="module")
def finished_suite(tmp_path_factory):
    """One tiny suite run to the end (on a small generated maze dataset), shared by the tests below."""
    import os

    root = tmp_path_factory.mktemp("suite")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    try:
        generate_dataset("pointmaze-scripted", episodes={"general": 24, "expert": 8}, workers=1)
        config = tiny_suite()
        run_suite(config, root / "out", workers=2, console=Console(file=io.StringIO()))
        yield config, root / "out", str(root / "minari")
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if old is None else os.environ.update(MINARI_DATASETS_PATH=old)


def read_rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_run_reports_every_evaluation(finished_suite):
    config, out, _ = finished_suite
    rows = read_rows(out / EVALUATIONS)
    for method in config.methods:
        for seed in range(config.seeds):
            mine = [r for r in rows if r["method"] == method and r["seed"] == str(seed)]
            steps = sorted(int(r["env_steps"]) for r in mine)
            assert len(steps) == 3, (method, seed, steps)  # at 80, 160 and 240 env steps (or just after)
            assert steps[-1] >= config.steps
            assert all(0 <= float(r["success"]) <= 1 for r in rows)
            assert (out / "runs" / ENV / method / f"seed{seed}" / DONE_FILE).is_file()
    # one prior per preset in use and seed
    assert sorted(p.name for p in (out / "pretrain").iterdir()) == [
        "pointmaze-scripted-skillplan-seed0", "pointmaze-scripted-skillplan-seed1",
        "pointmaze-scripted-spirl-seed0", "pointmaze-scripted-spirl-seed1"]


def test_summary_numbers_match_the_csv(finished_suite):
    config, out, _ = finished_suite
    rows = read_rows(out / EVALUATIONS)
    summary = json.loads((out / SUMMARY_JSON).read_text())
    assert summary["budgets"] == config.table_budgets() == [80, 240]
    env = summary["envs"][ENV]
    assert env["metric"] == "success"
    for method in config.methods:
        for budget in summary["budgets"]:
            expected = []
            for seed in range(config.seeds):
                seed_rows = [r for r in rows if r["method"] == method and r["seed"] == str(seed)]
                after = [r for r in seed_rows if int(r["env_steps"]) >= budget]
                expected.append(float(min(after, key=lambda r: int(r["env_steps"]))["success"]))
            entry = env["methods"][method][str(budget)]
            assert entry["seeds"] == config.seeds
            assert entry["mean"] == pytest.approx(np.mean(expected))
            assert entry["mean_low"] <= entry["mean"] <= entry["mean_high"]
    table = (out / SUMMARY_MD).read_text()
    assert all(f"| {method} |" in table for method in config.methods)
    assert "commit:" in table and "machine:" in table and "command:" in table
    sessions = json.loads((out / "timing.json").read_text())["sessions"]
    assert len(sessions) == 1 and sessions[0]["seconds"] > 0 and "wall time:" in table
    assert sessions[0]["machine"]["cores"] == os.cpu_count()
    assert (out / f"{ENV}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_interval_covers_the_mean_and_iqm_trims_outliers():
    values = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0])
    mean, iqm = interval(values, "mean"), interval(values, "iqm")
    assert mean["mean"] == pytest.approx(values.mean())
    assert mean["mean_low"] < mean["mean"] < mean["mean_high"]
    assert iqm["iqm"] == pytest.approx(1.0)  # the 0 and the 10 are trimmed
    assert interval(np.array([0.5, 0.5]), "mean") == {"mean": 0.5, "mean_low": 0.5, "mean_high": 0.5}


def test_value_at_takes_the_first_evaluation_past_the_budget():
    rows = [{"env_steps": s, "success": v} for s, v in ((84, 0.0), (163, 1.0), (247, 0.5))]
    assert value_at(rows, 160, "success") == 1.0
    assert value_at(rows, 80, "success") == 0.0
    assert value_at(rows, 300, "success") is None


def test_the_plot_legend_says_how_many_seeds_reached_the_budget(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig))
    rows = [{"env": ENV, "method": method, "seed": seed, "env_steps": step, "success": 1.0}
            for method, last in (("sac", 100), ("spirl", 200)) for seed in (0, 1)
            for step in range(100, (200 if seed == 0 else last) + 1, 100)]
    report.plot(rows, ENV, "success", 100, 200, tmp_path / "curves.png")
    labels = [text.get_text() for text in figures[0].axes[0].get_legend().get_texts()]
    assert labels == ["sac (2 seeds, 1 at 200)", "spirl (2 seeds)"]


def test_the_plot_draws_each_seed_faintly_beside_the_mean(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig))
    rows = [{"env": ENV, "method": "spirl", "seed": seed, "env_steps": step, "success": seed * step / 200}
            for seed in range(3) for step in (100, 200)]
    report.plot(rows, ENV, "success", 100, 200, tmp_path / "curves.png")
    lines = figures[0].axes[0].get_lines()
    mean, *seeds = lines
    assert list(mean.get_ydata()) == pytest.approx([0.5, 1.0])
    assert sorted(tuple(line.get_ydata()) for line in seeds) == [(0.0, 0.0), (0.5, 1.0), (1.0, 2.0)]
    assert all(line.get_alpha() < 0.5 and line.get_color() == mean.get_color() for line in seeds)


def test_the_collapse_rate_counts_evaluations_below_2_after_a_seed_first_reached_3():
    def seed(*scores):
        return [{"env_steps": 10 * (i + 1), "subtasks": v} for i, v in enumerate(scores)]

    # seed 0: reaches 3 at its 2nd evaluation, then 1.9 (collapsed), 3.0, 2.0 (not below 2) -> 1 of 3
    # seed 1: never reaches 3 -> nothing counted, however low; seed 2: reaches 3 at its last -> none after
    rates = report.collapse_rate({0: seed(1.0, 3.0, 1.9, 3.0, 2.0), 1: seed(2.9, 0.0), 2: seed(0.0, 3.5)})
    assert rates == {"evaluations": 3, "collapsed": 1, "rate": pytest.approx(1 / 3)}
    assert report.collapse_rate({0: seed(2.0, 2.5)})["rate"] is None
    rows = [{"env": "SkillKitchen-v0", "method": "spirl", "seed": 0, **r} for r in seed(3.0, 0.0)]
    summary = report.summarise(rows, [10, 20])
    assert summary["SkillKitchen-v0"]["collapse"]["spirl"]["rate"] == 1.0
    text = report.markdown(summary, [10, 20], {"sessions": []})
    assert "| spirl | 1.00 (1/1) |" in text


def test_the_summary_names_every_machine_the_suite_ran_on():
    record = {"machine": {"cpu": "Xeon", "cores": 2},
              "sessions": [{"seconds": 60.0}, {"seconds": 60.0, "machine": {"cpu": "Xeon", "cores": 2}},
                           {"seconds": 60.0, "machine": {"cpu": "EPYC", "cores": 2}}]}
    text = report.markdown({}, [], record)
    assert "- machine: Xeon, 2 cores; EPYC, 2 cores" in text
    assert "- wall time: 3.0 min over 3 invocation(s)" in text


def test_the_summary_names_every_commit_the_suite_ran_at_in_order():
    record = {"commit": "aaa", "sessions": [{"seconds": 6.0}, {"seconds": 6.0, "commit": "aaa"},
                                            {"seconds": 6.0, "commit": "bbb"}]}
    assert "- commit: `aaa`, then `bbb`" in report.markdown({}, [], record)
    assert "- commit: `aaa`\n" in report.markdown({}, [], {"commit": "aaa", "sessions": []})


def test_rerun_of_a_finished_suite_trains_nothing(finished_suite, monkeypatch):
    config, out, minari_root = finished_suite
    monkeypatch.setenv("MINARI_DATASETS_PATH", minari_root)
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/metrics.csv")}
    console = Console(file=io.StringIO())
    run_suite(config, out, workers=1, console=console)
    assert "every run asked for has finished" in console.file.getvalue()
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/metrics.csv")} == before


def test_interrupted_and_corrupt_runs_resume_or_are_named(finished_suite, tmp_path, monkeypatch):
    config, finished, minari_root = finished_suite
    monkeypatch.setenv("MINARI_DATASETS_PATH", minari_root)
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    interrupted = out / "runs" / ENV / "spirl" / "seed1"
    shutil.rmtree(interrupted)  # replaced by a run stopped at its checkpoint of 160 env steps
    job = next(j for j in plan(config, out)[1] if j.out == interrupted)
    _train(dataclasses.replace(job, steps=160), report=lambda step: None)
    assert [int(r["step"]) for r in read_rows(interrupted / "metrics.csv") if r["eval/success"]][-1] < 240
    corrupt = out / "runs" / ENV / "sac" / "seed0"
    (corrupt / DONE_FILE).unlink()
    for state in corrupt.glob("agent*/**/state.safetensors"):  # every version: nothing to fall back to
        state.write_bytes(b"not a safetensors file")
    with pytest.raises(SkillplanError) as error:
        run_suite(config, out, workers=1, console=Console(file=io.StringIO()))
    message = str(error.value)
    assert "1 job(s)" in message and "sac SkillPointMaze-v0 seed 0" in message and "corrupt" in message
    assert str(corrupt) in message  # says which directory to delete
    assert (interrupted / DONE_FILE).is_file()  # the interrupted run was resumed and finished
    evals = [int(r["step"]) for r in read_rows(interrupted / "metrics.csv") if r["eval/success"]]
    assert len(evals) == 3 and evals[0] < 160 <= evals[1] < 240 <= evals[2]  # kept, then continued
    assert (out / SUMMARY_MD).is_file()  # the report still covers the runs that finished


def test_a_suite_restored_from_its_report_reruns_only_the_rest(finished_suite, tmp_path, monkeypatch):
    config, finished, minari_root = finished_suite
    monkeypatch.setenv("MINARI_DATASETS_PATH", minari_root)
    committed = tmp_path / "committed"  # what a results dir in git holds: the report, no runs, no priors
    committed.mkdir()
    for name in (SUITE_FILE, TIMING_FILE):
        shutil.copy(finished / name, committed / name)
    spirl_prior = finished / "pretrain" / "pointmaze-scripted-spirl-seed1"  # without optimizer state
    shutil.copytree(spirl_prior, committed / "pretrain" / spirl_prior.name,
                    ignore=lambda _, names: [n for n in names if n == "training.safetensors"])
    rows = read_rows(finished / EVALUATIONS)
    def cut(r):  # spirl seed 1 was interrupted at 160 steps
        return r["method"] == "spirl" and r["seed"] == "1" and int(r["env_steps"]) > 160

    partial = [r for r in rows if not cut(r)]
    with (committed / EVALUATIONS).open("w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        writer.writerows(partial)

    out = tmp_path / "restored"
    restored = restore_suite(committed, out)
    assert len(restored) == 6 and f"spirl {ENV} seed 1" not in restored
    assert "pretrain pointmaze-scripted-spirl-seed1" in restored
    console = Console(file=io.StringIO())
    run_suite(config, out, workers=1, only=["sac", "spirl:0"], console=console)  # all restored: no work
    assert "every run asked for has finished" in console.file.getvalue()
    assert not list(out.glob("runs/*/*/*/agent"))
    with pytest.raises(ConfigError, match="SEED 0-1"):
        run_suite(config, out, only=["spirl:2"], console=console)
    run_suite(config, out, workers=1, only=["spirl:1"], console=console)
    assert "0/1 training runs already done; 0 prior(s) to pretrain first" in console.file.getvalue()
    assert not list((out / "pretrain").glob("*skillplan*"))  # no run left needed it
    assert json.loads((out / "runs" / ENV / "spirl" / "seed1" / "prior.json").read_text())["fingerprint"] == (
        json.loads((finished / "runs" / ENV / "spirl" / "seed1" / "prior.json").read_text())["fingerprint"])
    trained = [p.parent.relative_to(out / "runs" / ENV) for p in out.glob("runs/*/*/*/agent")]
    assert [str(p) for p in trained] == ["spirl/seed1"]
    again = read_rows(out / EVALUATIONS)
    assert [r for r in again if r["method"] != "spirl" or r["seed"] != "1"] == [
        r for r in rows if r["method"] != "spirl" or r["seed"] != "1"]
    assert [int(r["env_steps"]) for r in again if r["method"] == "spirl" and r["seed"] == "1"][-1] >= 240
    earlier = json.loads((committed / TIMING_FILE).read_text())["sessions"]
    sessions = json.loads((out / TIMING_FILE).read_text())["sessions"]
    assert sessions[:len(earlier)] == earlier and len(sessions) == len(earlier) + 2  # earlier time counts
    with pytest.raises(ConfigError, match="already holds a suite"):
        restore_suite(committed, out)
    (committed / TIMING_FILE).unlink()
    with pytest.raises(ConfigError, match=r"lacks timing\.json"):
        restore_suite(committed, tmp_path / "elsewhere")


def test_a_different_suite_or_a_corrupt_suite_file_is_refused(finished_suite, tmp_path):
    config, finished, _ = finished_suite
    with pytest.raises(ConfigError, match="seeds: 2 → 3"):
        run_suite(config.model_copy(update={"seeds": 3}), finished, console=Console(file=io.StringIO()))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / SUITE_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt"):
        run_suite(config, broken, console=Console(file=io.StringIO()))


def test_unknown_methods_and_envs_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="Valid: sac, spirl, serla, skimo, skillplan"):
        plan(tiny_suite(methods=["dreamer"]), tmp_path)
    with pytest.raises(ConfigError, match="SkillKitchen-v0"):
        plan(tiny_suite(envs=["Ant-v5"]), tmp_path)


def test_seed_k_of_every_method_trains_on_the_prior_pretrained_with_seed_k(tmp_path):
    envs = ["SkillKitchen-v0", "SkillKitchenMisaligned-v0"]  # both on the kitchen data
    config = tiny_suite(envs=envs, methods=["sac", "spirl", "serla", "skimo", "skillplan"], seeds=3)
    pretrains, trains = plan(config, tmp_path)
    # one prior per (preset, seed), shared by the envs on the same data
    assert sorted((j.preset, j.seed) for j in pretrains) == [
        (p, k) for p in ("serla", "skillplan", "skimo", "spirl") for k in range(3)]
    by_prior = {j.out / "prior": j for j in pretrains}
    assert len(by_prior) == len(pretrains)
    for run in trains:
        if run.method == "sac":
            assert run.prior is None
            continue
        job = by_prior[run.prior]
        assert (job.preset, job.seed, job.config["pretrain"]["seed"]) == (
            METHODS[run.method].preset, run.seed, run.seed), run.key
    assert len(trains) == 2 * 5 * config.seeds
    assert {t.settings.get("sde_eta") for t in trains if t.method == "serla"} == {0.1}


def test_shared_priors_give_every_seed_the_seed_0_prior(tmp_path):
    config = tiny_suite(envs=["SkillKitchen-v0", "SkillKitchenMisaligned-v0"], methods=["spirl", "serla"],
                        seeds=3, priors="shared")
    pretrains, trains = plan(config, tmp_path)
    assert sorted((j.preset, j.seed, j.out.name) for j in pretrains) == [
        ("serla", 0, "kitchen-scripted-serla"), ("spirl", 0, "kitchen-scripted-spirl")]
    assert {t.prior for t in trains if t.method == "spirl"} == {pretrains[0].out / "prior"}


def test_a_suite_saved_before_per_seed_priors_reads_as_shared(finished_suite, tmp_path):
    _, finished, _ = finished_suite
    record = json.loads((finished / SUITE_FILE).read_text())
    assert record["config"].pop("priors") == "per-seed"
    (tmp_path / SUITE_FILE).write_text(json.dumps(record))
    assert load_suite_config(tmp_path).priors == "shared"


def test_every_run_of_the_suite_logs_to_the_loggers_asked_for(tmp_path):
    pretrains, trains = plan(tiny_suite(), tmp_path, ("csv", "tensorboard"))
    assert {job.loggers for job in [*pretrains, *trains]} == {("csv", "tensorboard")}
    assert {job.loggers for job in plan(tiny_suite(), tmp_path)[1]} == {("csv",)}


def test_cem_methods_plan_compiled_unless_told_not_to(tmp_path):
    from skillplan.agents import CEMAgentConfig

    for compiled in (True, False):
        _, trains = plan(tiny_suite(methods=["spirl", "skimo"], compile_planner=compiled), tmp_path)
        cem = [CEMAgentConfig.model_validate(t.settings).planner for t in trains if t.method == "skimo"]
        # bf16 only where the device computes it: emulated, it plans 3–4× slower than fp32
        assert {(p.compile, p.precision) for p in cem} == {(True, "auto") if compiled else (False, "fp32")}
        assert all("planner" not in t.settings for t in trains if t.method == "spirl")


def test_skillplan_plans_priced_by_the_prior_and_skimo_as_its_paper(tmp_path):
    from skillplan.agents import CEMAgentConfig

    _, trains = plan(tiny_suite(methods=["skimo", "skillplan"]), tmp_path)
    configs = {t.method: CEMAgentConfig.model_validate(t.settings) for t in trains}
    search = {m: (c.plan_prior, c.planner.samples, c.planner.iterations, c.planner.first_skill_samples)
              for m, c in configs.items()}
    assert search == {"skimo": (False, 512, 6, 0), "skillplan": (True, 256, 4, 64)}


def test_planner_overrides_reach_only_the_cem_methods(tmp_path):
    from skillplan.agents import CEMAgentConfig

    config = tiny_suite(methods=["spirl", "skimo"], planner_overrides={"samples": 256, "iterations": 4},
                        compile_planner=True)
    _, trains = plan(config, tmp_path)
    cem = {CEMAgentConfig.model_validate(t.settings).planner for t in trains if t.method == "skimo"}
    assert {(p.samples, p.iterations, p.compile) for p in cem} == {(256, 4, True)}
    assert all("planner" not in t.settings for t in trains if t.method == "spirl")
    with pytest.raises(ConfigError, match=r"unknown key 'samplez' in section 'planner' \(its keys: horizon"):
        plan(tiny_suite(methods=["skimo"], planner_overrides={"samplez": 256}), tmp_path)


def test_every_preset_pretrains_one_length_50k_unless_told(tmp_path):
    from skillplan.config import resolve_config

    pretrains, _ = plan(SuiteConfig(), tmp_path)
    assert {job.preset for job in pretrains} == {"spirl", "skimo", "serla", "skillplan"}
    assert {job.config["pretrain"]["steps"] for job in pretrains} == {50_000}
    assert resolve_config("skillplan").pretrain.steps != 50_000  # the suite's length, not the presets'
    pretrains, _ = plan(SuiteConfig(pretrain_steps=None), tmp_path)
    assert {job.config["pretrain"]["steps"] for job in pretrains} == {resolve_config("spirl").pretrain.steps}


def test_a_second_env_runs_only_its_listed_methods_on_the_same_priors(tmp_path):
    config = SuiteConfig(envs=["SkillKitchen-v0", "SkillKitchenMisaligned-v0"], seeds=2,
                         env_methods={"SkillKitchenMisaligned-v0": ["spirl", "skimo", "skillplan"]})
    pretrains, trains = plan(config, tmp_path)
    ran = {(t.env, t.method) for t in trains}
    assert {m for e, m in ran if e == "SkillKitchen-v0"} == set(METHODS)
    assert {m for e, m in ran if e == "SkillKitchenMisaligned-v0"} == {"spirl", "skimo", "skillplan"}
    assert len(trains) == config.runs() == (5 + 3) * 2
    assert len(pretrains) == 4 * 2  # one prior per preset and seed, shared by both envs (one dataset)
    by_key = {(t.env, t.method, t.seed): t.prior for t in trains}
    assert by_key["SkillKitchenMisaligned-v0", "skimo", 1] == by_key["SkillKitchen-v0", "skimo", 1]


@pytest.mark.parametrize("env_methods, message", [
    ({"SkillPointMaze-v0": ["spirl"]}, "not among envs"),
    ({"SkillKitchen-v0": ["spirl", "spirl"]}, "each method once"),
    ({"SkillKitchen-v0": []}, "each method once"),
])
def test_env_methods_must_name_the_suites_envs_and_each_method_once(env_methods, message):
    with pytest.raises(ValueError, match=message):
        SuiteConfig(envs=["SkillKitchen-v0"], env_methods=env_methods)


def test_an_unknown_method_for_one_env_lists_the_valid_names(tmp_path):
    config = SuiteConfig(envs=["SkillKitchen-v0"], env_methods={"SkillKitchen-v0": ["dreamer"]})
    with pytest.raises(ConfigError, match=r"Unknown agent.*dreamer.*Valid: sac, spirl"):
        plan(config, tmp_path)


def test_the_quick_suite_resolves_with_its_smaller_planner(tmp_path):
    from skillplan.agents import CEMAgentConfig
    from skillplan.benchmarking.suite_config import QUICK

    config = SuiteConfig.model_validate(QUICK)
    _, trains = plan(config, tmp_path)
    assert len(trains) == 5 * 2
    cem = {CEMAgentConfig.model_validate(t.settings).planner
           for t in trains if t.method in ("skimo", "skillplan")}
    assert {(p.samples, p.iterations, p.compile) for p in cem} == {(256, 3, False)}


def test_a_prior_pretrained_with_other_settings_is_not_reused(finished_suite, tmp_path, monkeypatch):
    config, finished, minari_root = finished_suite
    monkeypatch.setenv("MINARI_DATASETS_PATH", minari_root)
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    saved = out / "pretrain" / "pointmaze-scripted-spirl-seed0" / "prior" / "config.json"
    config_json = json.loads(saved.read_text())
    config_json["pretrain"]["beta"] = 0.001
    saved.write_text(json.dumps(config_json))
    with pytest.raises(ConfigError, match=r"pretrain\.beta"):
        run_suite(config, out, workers=1, console=Console(file=io.StringIO()))


def test_runs_on_a_prior_pretrained_again_are_refused(finished_suite, tmp_path, monkeypatch):
    config, finished, minari_root = finished_suite
    monkeypatch.setenv("MINARI_DATASETS_PATH", minari_root)
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    weights = out / "pretrain" / "pointmaze-scripted-spirl-seed0" / "prior" / "weights.safetensors"
    tensors = load_file(str(weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1.0  # stands in for a prior trained anew
    save_file(tensors, str(weights))
    with pytest.raises(ConfigError, match="earlier version of the prior"):
        run_suite(config, out, workers=1, console=Console(file=io.StringIO()))


def test_a_failed_pretraining_names_the_runs_it_held_back(tmp_path):
    generate_dataset("pointmaze-scripted", episodes={"general": 12}, kinds=("general",), workers=1)
    # a plain Minari id has no expert data, which the skillplan preset's PU terms need
    config = tiny_suite(methods=["skillplan"], seeds=1,
                        datasets={ENV: "skillplan/pointmaze-scripted/general-v0"})
    with pytest.raises(SkillplanError) as error:
        run_suite(config, tmp_path / "out", workers=1, console=Console(file=io.StringIO()))
    message = str(error.value)
    assert "2 job(s)" in message and "--no-pu" in message
    assert "skillplan SkillPointMaze-v0 seed 0: its prior (pretrain" in message


@pytest.mark.parametrize(("changes", "problem"), [
    ({"methods": ["sac", "sac"]}, "sac given more than once"),
    ({"budgets": [0, 240]}, "outside 1..steps"),
])
def test_bad_suite_options_are_refused(changes, problem):
    with pytest.raises(ValueError, match=problem):
        tiny_suite(**changes)


def test_a_misspelt_agent_setting_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'learning_start' at the top level"):
        plan(tiny_suite(agent_overrides={"learning_start": 10}), tmp_path)
