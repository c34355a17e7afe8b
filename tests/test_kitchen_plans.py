"""Kitchen plan sources and sequence statistics: the D4RL-structured table reproduces SkiLD's
shares where the uniform generator cannot, plan files are checked, completion order is read
from infos. No simulation here; see test_scripted_kitchen.py and test_generate.py for that."""

from __future__ import annotations

import json

import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from skillplan.cli.main import app
from skillplan.data.catalog import resolve
from skillplan.data.writing import dataset_exists
from skillplan.envs.generate import demonstrator
from skillplan.envs.scripted.kitchen_plans import (
    EXPERT_SEQUENCE,
    RPL_MIXED,
    SKILD_SHARES,
    SUBTASKS,
    Plan,
    PlanTable,
    UniformPlans,
    completion_order,
    in_order,
    load_plans,
    sequence_stats,
    stratified_quantiles,
)
from skillplan.errors import DatasetError


@pytest.fixture
def plan_file(tmp_path):
    """Writes its text to a YAML file and returns the path, as a string."""

    def write(text: str) -> str:
        path = tmp_path / "plans.yaml"
        path.write_text(text)
        return str(path)

    return write


def _drawn(source, n: int, seed: int = 0):
    """Sequence statistics of n plans drawn as generation draws them: at stratified quantiles."""
    rng = np.random.default_rng(seed)
    return sequence_stats((source.draw(rng, q), 1.0) for q in stratified_quantiles(n, rng))


def test_rpl_table_is_four_distinct_subtasks_per_plan_and_never_the_target():
    assert len(RPL_MIXED.plans) == 24
    for plan in RPL_MIXED.plans:
        assert len(plan.tasks) == 4 and len(set(plan.tasks)) == 4 and set(plan.tasks) <= set(SUBTASKS)
        assert plan.weight > 0 and not in_order(plan.tasks)
    assert RPL_MIXED.shares().target_in_order == 0.0


def test_rpl_table_reproduces_skilds_shares_analytically():
    shares = RPL_MIXED.shares().shares
    for branch, targets in SKILD_SHARES.items():
        for task, target in targets.items():
            assert shares[branch][task] == pytest.approx(target, abs=0.2), (branch, task)
    assert "top burner" not in shares["first"]  # SkiLD saw no top-burner openings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drawn_plans_match_skilds_shares_where_uniform_plans_fail(seed):
    """600 episodes, the dataset's size: stratified, every share lands within 1.5 points (600
    multinomial draws miss one by more than 5 in a quarter of seeds); the uniform source misses
    the microwave's and the kettle's first shares by far more."""
    table, uniform = _drawn(RPL_MIXED, 600, seed).shares, _drawn(UniformPlans(), 600, seed).shares
    for branch, targets in SKILD_SHARES.items():
        for task, target in targets.items():
            assert abs(table[branch][task] - target) <= 1.5, (branch, task, table[branch][task])
    assert abs(uniform["first"]["microwave"] - 60.9) > 30 and abs(uniform["first"]["kettle"] - 29.7) > 10
    assert set(uniform["first"]) == set(SUBTASKS)


def test_a_quantile_picks_the_plan_whose_share_holds_it():
    table = PlanTable((Plan(("kettle",), 1.0), Plan(("microwave",), 0.0), Plan(("light switch",), 3.0)))
    rng = np.random.default_rng(0)
    picks = {q: table.draw(rng, q) for q in (0.0, 0.2499, 0.25, 0.9999)}
    assert picks == {0.0: ["kettle"], 0.2499: ["kettle"], 0.25: ["light switch"], 0.9999: ["light switch"]}


def test_completion_order_reads_first_completion_steps():
    flags = {task: np.zeros(8, dtype=bool) for task in SUBTASKS}
    flags["kettle"][3:] = True
    flags["microwave"][5:] = True
    flags["bottom burner"][5:] = True  # the same step as the microwave: SUBTASKS order
    flags["slide cabinet"][7:] = True
    assert completion_order(flags) == ("kettle", "microwave", "bottom burner", "slide cabinet")
    assert completion_order({task: np.zeros(8, dtype=bool) for task in SUBTASKS}) == ()


def test_sequence_stats_on_hand_made_sequences():
    m, k, b, light, s = "microwave", "kettle", "bottom burner", "light switch", "slide cabinet"
    stats = sequence_stats([
        ((m, k, b, s), 1.0),      # reaches all three branch points
        ((m, k, s, b, light), 1.0),   # the target in order, with a gap
        ((m, b, k, light), 1.0),      # all four, out of order
        ((k, m), 2.0),
        ((m,), 1.0),              # ends at the microwave: no second subtask
        ((), 1.0),                # nothing completed
    ])
    assert stats.total == 7.0 and stats.target_in_order == 1.0
    assert stats.counts == {"first": 6.0, "after microwave": 3.0, "after microwave, kettle": 2.0}
    assert stats.shares["first"] == pytest.approx({m: 400 / 6, k: 200 / 6})
    assert stats.shares["after microwave"] == pytest.approx({k: 200 / 3, b: 100 / 3})
    assert stats.shares["after microwave, kettle"] == pytest.approx({b: 50.0, s: 50.0})


GOOD = "- {tasks: [light switch, microwave], weight: 1}\n- {tasks: [kettle], weight: 0}\n"
BAD = {
    "unknown subtask": "- {tasks: [microwave, oven door], weight: 1}\n",
    "repeated subtask": "- {tasks: [kettle, microwave, kettle], weight: 1}\n",
    "empty plan": "- {tasks: [], weight: 1}\n",
    "negative weight": "- {tasks: [kettle], weight: -0.5}\n",
    "not a list": "tasks: [kettle]\nweight: 1\n",
    "every weight zero": "- {tasks: [kettle], weight: 0}\n",
    "missing weight": "- {tasks: [kettle]}\n",
    "not YAML": "- {tasks: [kettle\n",
}


def test_a_good_plan_file_loads(plan_file):
    path = plan_file(GOOD)
    table = load_plans(path)
    assert [p.tasks for p in table.plans] == [("light switch", "microwave"), ("kettle",)]
    assert all(table.draw(np.random.default_rng(i)) == ["light switch", "microwave"] for i in range(20))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_plan_files_name_the_seven_subtasks(plan_file, case):
    with pytest.raises(DatasetError) as err:
        load_plans(plan_file(BAD[case]))
    message = str(err.value)
    assert all(task in message for task in SUBTASKS) and "\n" not in message


@pytest.mark.parametrize("case", ["unknown subtask", "negative weight", "not a list"])
def test_generate_with_a_bad_plan_file_fails_and_writes_nothing(plan_file, case):
    path = plan_file(BAD[case])
    result = CliRunner().invoke(app, ["datasets", "generate", "kitchen-scripted", "-n", "1", "--plans", path])
    assert result.exit_code != 0 and isinstance(result.exception, DatasetError)
    assert all(task in str(result.exception) for task in SUBTASKS)
    assert not dataset_exists("skillplan/kitchen-scripted/general-v0")
    assert not dataset_exists("skillplan/kitchen-scripted/expert-v0")


def test_both_kitchen_generators_are_named_datasets():
    assert demonstrator("kitchen-scripted").plans == RPL_MIXED
    assert demonstrator("kitchen-scripted-uniform").plans == UniformPlans()
    assert resolve("kitchen-scripted-uniform").generator == "kitchen-scripted-uniform"


def test_plans_apply_to_kitchen_generators_only(plan_file):
    result = CliRunner().invoke(app, ["datasets", "generate", "pointmaze-scripted", "-n", "1",
                                      "--plans", plan_file(GOOD)])
    assert isinstance(result.exception, DatasetError) and "kitchen" in str(result.exception)


def test_generated_data_follows_a_plan_file_and_records_it(plan_file):
    """Two simulated episodes of a two-subtask plan (the zero-weight plan is never drawn)."""
    path = plan_file(GOOD)
    result = CliRunner().invoke(app, ["datasets", "generate", "kitchen-scripted", "-n", "2", "-w", "1",
                                      "--plans", path])
    assert result.exit_code == 0, result.output
    general = minari.load_dataset("skillplan/kitchen-scripted/general-v0")
    recorded = json.loads(general.storage.metadata["plan_table"])
    assert recorded == [{"tasks": ["light switch", "microwave"], "weight": 1.0},
                        {"tasks": ["kettle"], "weight": 0.0}]
    for episode in general.iterate_episodes():
        assert completion_order(episode.infos["episode_task_completions"]) == ("light switch", "microwave")
    expert = minari.load_dataset("skillplan/kitchen-scripted/expert-v0")
    assert json.loads(expert.storage.metadata["plan_table"]) == [
        {"tasks": list(EXPERT_SEQUENCE), "weight": 1.0}
    ]
