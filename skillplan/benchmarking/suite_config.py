"""The sample-efficiency suite's configuration, and the files that mark a suite directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skillplan.benchmarking.methods import ENV_DATASETS, METHODS
from skillplan.errors import ConfigError
from skillplan.io import read_json

SUITE_FILE, DONE_FILE, TIMING_FILE, PRIOR_FILE = "suite.json", "done.json", "timing.json", "prior.json"


PriorSeeding = Literal["per-seed", "shared"]
BUDGET_FRACTIONS = (0.08, 0.2, 0.4)  # with `steps`, the default budgets of the summary tables


class SuiteConfig(BaseModel):
    """What one suite measures; two runs with equal configs measure the same thing."""

    model_config = ConfigDict(extra="forbid")

    envs: list[str] = ["SkillKitchen-v0"]
    methods: list[str] = list(METHODS)
    seeds: int = Field(5, ge=1)
    steps: int = Field(250_000, ge=1, description="low-level env steps per run")
    eval_every: int = Field(10_000, ge=1)
    eval_episodes: int = Field(20, ge=1)
    priors: PriorSeeding = Field("per-seed", description="per-seed: seed k of every method trains on a "
                                 "prior pretrained with seed k; shared: one prior (seed 0) per preset")
    budgets: list[int] | None = Field(None, description="env-step budgets of the summary tables; default: "
                                      "the evaluations nearest 2/25, 1/5, 2/5 and all of `steps` "
                                      "(20k, 50k, 100k and 250k of 250k)")
    # spirl's decoder executes the data's own skills at 1.2 of 4 subtasks after 20k steps, 2.9-3.3 after 50k
    # (docs/prior.md); one length for every preset keeps the comparison fair
    pretrain_steps: int | None = Field(50_000, ge=1, description="gradient steps per prior; None: each "
                                       "preset's own (20k)")
    env_methods: dict[str, list[str]] = Field(default_factory=dict, description="env → the methods run "
                                              "there, in place of `methods` (e.g. only the skill methods "
                                              "on a second task)")
    datasets: dict[str, str] = Field(default_factory=dict, description="env → dataset, overriding "
                                     "the default scripted data")
    pretrain_overrides: dict[str, Any] = Field(default_factory=dict, description="nested config "
                                               "sections applied to every pretraining run")
    agent_overrides: dict[str, Any] = Field(default_factory=dict, description="settings applied to "
                                            "every agent (e.g. learning_starts)")
    planner_overrides: dict[str, Any] = Field(default_factory=dict, description="CEM planner settings "
                                              "applied to the CEM methods (e.g. samples, iterations)")
    compile_planner: bool = Field(True, description="CEM methods plan under torch.compile, in bfloat16 "
                                  "where the device has bf16 units (emulated bf16 is slower): faster per "
                                  "decision after under a minute of compiling per batch size; needs a C "
                                  "compiler")

    @field_validator("envs", "methods")
    @classmethod
    def _no_repeats(cls, names: list[str]) -> list[str]:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} given more than once")
        return names

    @model_validator(mode="after")
    def _env_methods_name_suite_envs(self) -> SuiteConfig:
        strays = sorted(set(self.env_methods) - set(self.envs))
        if strays:
            raise ValueError(f"env_methods names {', '.join(strays)}, not among envs "
                             f"({', '.join(self.envs)})")
        for env, names in self.env_methods.items():
            if not names or len(set(names)) < len(names):
                raise ValueError(f"env_methods for {env} must list each method once ({names} given)")
        return self

    @model_validator(mode="after")
    def _budgets_within_runs(self) -> SuiteConfig:
        outside = [b for b in self.budgets or [] if not 1 <= b <= self.steps]
        if outside:
            raise ValueError(f"budgets {outside} lie outside 1..steps ({self.steps})")
        return self

    def table_budgets(self) -> list[int]:
        """The env-step budgets the summary tables report."""
        if self.budgets:
            return sorted(set(self.budgets))
        grid = self.eval_every
        on_grid = {max(1, round(self.steps * f / grid)) * grid for f in BUDGET_FRACTIONS}
        return sorted({*(b for b in on_grid if b < self.steps), self.steps})

    def methods_on(self, env: str) -> list[str]:
        """The methods the suite runs on `env`."""
        return self.env_methods.get(env, self.methods)

    def all_methods(self) -> list[str]:
        """Every method the suite runs on some env, in the order first named."""
        return list(dict.fromkeys(m for env in self.envs for m in self.methods_on(env)))

    def runs(self) -> int:
        """How many training runs the suite holds."""
        return sum(len(self.methods_on(env)) for env in self.envs) * self.seeds

    def dataset(self, env: str) -> str:
        """The offline data the priors for `env` are pretrained on."""
        return self.datasets.get(env, ENV_DATASETS[env])

    def prior_seed(self, seed: int) -> int:
        """The pretraining seed of the prior that run seed `seed` trains on."""
        return seed if self.priors == "per-seed" else 0


# `--quick`: the maze (a fast env) at a small budget, every method, two seeds; ≤ 10 min on 2 cores.
QUICK = {
    "envs": ["SkillPointMaze-v0"], "seeds": 2, "steps": 8_000, "eval_every": 2_000, "eval_episodes": 3,
    "pretrain_steps": 1_000, "agent_overrides": {"learning_starts": 1_000},
    # a smaller planner keeps the CEM runs, half of them planning, within the 10 minutes
    "planner_overrides": {"samples": 256, "iterations": 3},
    "compile_planner": False,  # compiling would take longer than these short runs plan
}


def load_suite_config(out: Path) -> SuiteConfig:
    """The config a suite directory was started with, or a clear error if the file is missing or bad."""
    path = Path(out) / SUITE_FILE
    if not path.is_file():
        raise ConfigError(f"'{out}' is not a sample-efficiency suite: it has no {SUITE_FILE}.")
    try:
        saved = read_json(path)["config"]
        saved.setdefault("priors", "shared")  # suites from before per-seed pretraining shared one prior
        return SuiteConfig.model_validate(saved)
    except (KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ConfigError(f"'{path}' is corrupt ({exc}). Delete it to start the suite afresh; the "
                          "finished runs beside it are reused.") from None
