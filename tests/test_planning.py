"""CEMPlanner on toy latent models whose best skills are known in closed form."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from skillplan.agents.planning import CEMConfig, CEMPlanner

GOAL = torch.tensor([1.2, 0.5, -0.9])
H0 = torch.tensor([0.3, -0.4, 0.1])
BEST_FIRST = GOAL - H0  # reach the goal with the first skill, then stay


class GoalModel:
    """h' = h + z, reward −‖h + z − goal‖², Q the same.

    The policy is N(0, 1), or with `guide` N(goal − h, 0.01), which points at the best skill.
    """

    def __init__(self, guide: bool = False) -> None:
        self.guide = guide
        self.dynamics_calls = 0

    def next_latent(self, h: Tensor, z: Tensor) -> Tensor:
        self.dynamics_calls += 1
        return h + z

    def reward(self, h: Tensor, z: Tensor) -> Tensor:
        return -(h + z - GOAL).square().sum(-1)

    def q_value(self, h: Tensor, z: Tensor) -> Tensor:
        return self.reward(h, z)

    def policy(self, h: Tensor) -> tuple[Tensor, Tensor]:
        if self.guide:
            return GOAL - h, torch.full_like(h, 0.01)
        return torch.zeros_like(h), torch.ones_like(h)


class FixedTargetModel(GoalModel):
    """The same skill z* is best at every step, whatever h: reward −‖z − z*‖²."""

    TARGET = torch.tensor([1.5, -1.5, 1.5])

    def reward(self, h: Tensor, z: Tensor) -> Tensor:
        return -(z - self.TARGET).square().sum(-1)


def planner(model: GoalModel, seed: int = 0, **config: object) -> CEMPlanner:
    cfg = CEMConfig(horizon_ramp_steps=0, **config)
    return CEMPlanner(model, 3, cfg, generator=torch.Generator().manual_seed(seed))


def error(z: Tensor, best: Tensor = BEST_FIRST) -> float:
    return (z - best).norm().item()


@pytest.mark.parametrize(("horizon", "iterations", "tolerance"), [(1, 6, 0.02), (2, 10, 0.1)])
def test_finds_the_known_best_first_skill(horizon: int, iterations: int, tolerance: float) -> None:
    # Horizon 1 scores r(h0, z) + γ Q(h0 + z, π): the dynamics must carry h into the terminal value.
    # The best skill lies 1.4 from the policy's mean: TD-MPC's max_std 2 lets the search reach it.
    cem = planner(GoalModel(), horizon=horizon, iterations=iterations, max_std=2.0)
    assert error(cem.plan(H0, step=0, eval_mode=True)) < tolerance
    explored = cem.plan(H0, step=0)
    assert error(explored) < 0.3  # an elite's first skill plus exploration noise of the final std
    assert explored.abs().max() <= cem.config.z_bound
    random_skills = torch.empty(1000, 3).uniform_(-2, 2)
    assert (random_skills - BEST_FIRST).norm(dim=-1).median() > 1.0


def test_horizon_ramps_from_one_to_horizon() -> None:
    cfg = CEMConfig(horizon=5, horizon_ramp_steps=1000)
    horizons = [cfg.planning_horizon(step) for step in range(0, 2001, 50)]
    assert horizons[0] == 1 and cfg.planning_horizon(1000) == 5 and horizons[-1] == 5
    assert horizons == sorted(horizons) and cfg.planning_horizon(500) == 3
    assert CEMConfig(horizon=5, horizon_ramp_steps=0).planning_horizon(0) == 5

    model = GoalModel()
    cem = CEMPlanner(model, 3, CEMConfig(horizon_ramp_steps=1000, iterations=2, policy_samples=0,
                                               start_at_policy=False))
    cem.plan(H0, step=0)
    assert model.dynamics_calls == 2 * 1  # iterations × horizon: one skill deep at step 0
    cem.plan(H0, step=1000)
    assert model.dynamics_calls == 2 + 2 * 5


def test_warm_start_carries_the_plan_across_decisions() -> None:
    # Initial std 0.5 and 2 iterations cannot reach z* from a zero mean in one decision, but each
    # decision starts from the last plan shifted by one skill, so the search resumes where it stopped.
    def decide(warm: bool) -> float:
        cem = planner(FixedTargetModel(), samples=64, elites=8, policy_samples=0, start_at_policy=False,
                      iterations=2, max_std=0.5)
        for _ in range(8):
            if not warm:
                cem.reset()
            skill = cem.plan(H0, step=0, eval_mode=True)
        return error(skill, FixedTargetModel.TARGET)

    cold, warm = decide(warm=False), decide(warm=True)
    assert cold > 1.0
    assert warm < cold / 3


def test_policy_proposals_compete_for_the_elites() -> None:
    # One iteration of 32 random samples lands far from the optimum; proposals from a policy that
    # points at it become the elites.
    config = {"samples": 32, "elites": 8, "iterations": 1, "momentum": 0.0, "start_at_policy": False}
    without = planner(GoalModel(guide=True), policy_samples=0, **config).plan(H0, step=0, eval_mode=True)
    with_policy = planner(GoalModel(guide=True), policy_samples=25, **config).plan(H0, step=0, eval_mode=True)
    assert error(without) > 0.2
    assert error(with_policy) < 0.05


def test_given_first_skills_compete_for_the_elites() -> None:
    # Horizon 1: a candidate is its first skill. 32 samples around the policy's N(0, 1) proposals miss
    # the best skill; eight given first skills near it become the elites.
    config = {"samples": 32, "elites": 8, "iterations": 1, "momentum": 0.0, "horizon": 1, "policy_samples": 4}
    firsts = BEST_FIRST + 0.01 * torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    without = planner(GoalModel(), **config).plan(H0, step=0, eval_mode=True)
    given = planner(GoalModel(), first_skill_samples=8, **config)
    assert error(without) > 0.2
    assert error(given.plan(H0, step=0, eval_mode=True, first_skills=firsts)) < 0.05


def test_the_first_gaussian_starts_at_the_policy() -> None:
    # Two proposals are too few of 16 near-equal elites to pull the mean; started at the policy, every
    # one of the 64 samples lies near the optimum, started at N(0, 2²) few do.
    config = {"samples": 64, "elites": 16, "policy_samples": 2, "iterations": 1, "momentum": 0.0,
              "temperature": 0.01}  # elites weigh nearly alike
    at_policy, at_zero = (planner(GoalModel(guide=True), start_at_policy=start, **config)
                          .plan(H0, step=0, eval_mode=True) for start in (True, False))
    assert error(at_policy) < 0.05
    assert error(at_zero) > 0.2


def test_a_first_skill_score_pulls_the_first_skill_and_only_it() -> None:
    # GoalModel's best plan reaches the goal with the first skill; a score that prices first skills by
    # their distance from zero (as a prior centred there would) makes a later skill do the travelling.
    def score(z: Tensor) -> Tensor:
        return -20.0 * z.square().sum(-1)

    free, scored = (planner(GoalModel(), horizon=2, iterations=10, max_std=2.0) for _ in range(2))
    assert error(free.plan(H0, step=0, eval_mode=True)) < 0.1
    assert scored.plan(H0, step=0, eval_mode=True, first_skill_score=score).norm().item() < 0.1
    assert error(scored.last_plan[1]) < 0.3  # the second skill reaches the goal instead


def test_seeded_generator_makes_plans_reproducible() -> None:
    a, b, c = planner(GoalModel(), seed=1), planner(GoalModel(), seed=1), planner(GoalModel(), seed=2)
    plans_a = [a.plan(H0, step=0) for _ in range(3)]
    assert all(torch.equal(x, b.plan(H0, step=0)) for x in plans_a)
    assert not torch.equal(plans_a[0], c.plan(H0, step=0))
    a.reset()  # forgets the warm start: the same seed replays the first decision
    a.generator.manual_seed(1)
    assert torch.equal(a.plan(H0, step=0), plans_a[0])


class TinyMLPModel(nn.Module):
    """A `LatentModel` of linear layers, to exercise the bfloat16 autocast path."""

    def __init__(self, latent: int = 8, skill: int = 3) -> None:
        super().__init__()
        self.dynamics, self.heads = nn.Linear(latent + skill, latent), nn.Linear(latent + skill, 2)
        self.pi = nn.Linear(latent, 2 * skill)

    def next_latent(self, h: Tensor, z: Tensor) -> Tensor:
        return self.dynamics(torch.cat([h, z], -1))

    def reward(self, h: Tensor, z: Tensor) -> Tensor:
        return self.heads(torch.cat([h, z], -1))[:, 0]

    def q_value(self, h: Tensor, z: Tensor) -> Tensor:
        return self.heads(torch.cat([h, z], -1))[:, 1]

    def policy(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.pi(h).chunk(2, -1)
        return mean, log_std.exp()


def test_bf16_autocast_plans_in_float32() -> None:
    torch.manual_seed(0)
    cem = CEMPlanner(TinyMLPModel(), 3, CEMConfig(precision="bf16", samples=64, elites=8))
    skill = cem.plan(torch.randn(8), step=0)
    assert skill.shape == (3,) and skill.dtype == torch.float32
    assert skill.isfinite().all() and skill.abs().max() <= cem.config.z_bound


def test_config_rejects_more_elites_than_candidates() -> None:
    # start_at_policy off: with it, policy_samples=0 would be refused on its own account
    with pytest.raises(ValidationError, match=r"elites \(64\) must not exceed"):
        CEMConfig(samples=32, policy_samples=0, elites=64, start_at_policy=False)
    CEMConfig(samples=32, policy_samples=32, elites=64)  # proposals count as candidates
    with pytest.raises(ValidationError, match=r"min_std \(1.0\) must not exceed"):
        CEMConfig(min_std=1.0, max_std=0.5)
    with pytest.raises(ValidationError, match="policy_samples"):
        CEMConfig(policy_samples=1)


def test_compiled_planner_plans_as_eager_in_one_graph_per_batch_size() -> None:
    """Compiled, each rollout step traces whole (no graph break, `auto` precision included) and
    compiles once per batch size, not per horizon, so a horizon ramp never exhausts dynamo's
    recompile limit (past it, dynamo silently runs eager); the plans match the eager planner's."""
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model, h0 = TinyMLPModel().requires_grad_(False), torch.randn(8)
    first_skills = torch.randn(4, 3)
    plans = {}
    for compiled in (False, True):
        cfg = CEMConfig(samples=32, policy_samples=8, elites=8, iterations=2, horizon=3,
                        horizon_ramp_steps=6, precision="auto", compile=compiled)
        cem = CEMPlanner(model, 3, cfg, generator=torch.Generator().manual_seed(0))
        firsts = [None if step % 2 else first_skills for step in range(8)]
        plans[compiled] = torch.stack([cem.plan(h0, step=step, first_skills=first)
                                       for step, first in enumerate(firsts)])
    assert not counters["graph_break"]
    # 3 steps (model step, bootstrap value, policy sample) × ≤ 3 batch sizes (samples, policy, first).
    assert counters["stats"]["unique_graphs"] <= 8
    torch.testing.assert_close(plans[True], plans[False], atol=1e-4, rtol=1e-4)
