"""Prior quality at the kitchen data's branch points, and in prior rollouts.

A branch point is where the data's episodes go different ways: the reset state, and the state right
after each subtask is completed. Prior rollouts are decided there, by two things this measures:

- how wide the prior p(z | s) is at those states: its std per dimension (a mixture's overall std),
  a mixture's component weights, sorted, and their effective number exp(H(w));
- what z carries there: for the windows that start at a branch point, grouped by the subtask the
  episode completes next, the posterior's KL(q ‖ N(0, I)) in nats, the spread of the posterior means
  around their centroid, the centroid's distance to the prior's nearest mode, −log p(μ_q | s), and
  the share of prior samples whose nearest centroid is that group's (which skill the prior proposes;
  only groups of at least MIN_GROUP windows are candidates, so a lone window's centroid claims nothing).

Then `--episodes` prior rollouts: mean subtasks, first-subtask shares and the commonest first pairs.

Prior rollouts cannot do better than the decoder executes the data's own skills, so `--replays N`
measures that ceiling on the first N general and N expert episodes, each from the env's reset: the
subtasks the episode completed in the data; its recorded actions replayed open loop (how far the env itself
reproduces it); and the posterior means of its H-step windows decoded closed loop (the skills the
data shows, executed by the decoder, with no prior involved).
Needs a kitchen checkpoint and its dataset (episodes recording `step_task_completions`) locally.

    python benchmarks/prior_quality.py runs/kitchen-scripted/prior --episodes 100
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from _report import report

from skillplan.data.catalog import resolve
from skillplan.data.loading import dataset_exists, open_dataset
from skillplan.evaluation import evaluate_prior, make_vector_env
from skillplan.models.distributions import sample
from skillplan.models.skill_model import SkillModel

RESULTS = Path(__file__).parent / "results" / "prior_quality"
PRIOR_SAMPLES = 256  # per branch state, for the nearest-centroid shares
MIN_GROUP = 5


def branch_points(completions: dict[str, np.ndarray]) -> list[tuple[int, str, str]]:
    """(t, branch, next subtask) for each branch point of one episode.

    `completions` holds, per subtask, whether it completed at each step (T+1 entries, as the
    observations); the state after a completion at entry t is observation t.
    """
    done_at = sorted((int(np.flatnonzero(done)[0]), name) for name, done in completions.items() if done.any())
    points, branch, start = [], "reset", 0
    for t, name in done_at:
        points.append((start, branch, name))
        branch, start = f"after {name}", t
    return points


def collect_windows(model: SkillModel, dataset: str) -> dict[str, dict[str, list]]:
    """{branch: {"states": [...], "next": [...], "windows": [(obs, act), ...], "kinds": [...]}}."""
    spec, horizon = resolve(dataset), model.config.model.horizon
    branches: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for kind, dataset_id in zip(("general", "expert"), spec.ids, strict=False):
        if not dataset_exists(dataset_id):
            raise SystemExit(f"Dataset '{dataset_id}' is not in MINARI_DATASETS_PATH; generate it first.")
        for episode in open_dataset(dataset_id, spec, download=False).iterate_episodes():
            flat = model.layout.flatten(episode.observations)
            for t, branch, nxt in branch_points(episode.infos["step_task_completions"]):
                if t + horizon > len(episode.actions):
                    continue
                row = branches[branch]
                row["states"].append(flat[t])
                row["windows"].append((flat[t:t + horizon], episode.actions[t:t + horizon]))
                row["next"].append(nxt)
                row["kinds"].append(kind)
    return branches


def prior_width(prior: torch.distributions.Distribution) -> dict[str, float | list[float]]:
    """Std per dimension (a mixture's overall std); a mixture's sorted weights. Means over the states."""
    width: dict[str, float | list[float]] = {"std": prior.stddev.mean().item(),
                                             "mean_norm": prior.mean.norm(dim=-1).mean().item()}
    if isinstance(prior, torch.distributions.MixtureSameFamily):
        weights = prior.mixture_distribution.probs
        width["weights"] = [round(w, 3) for w in weights.sort(-1, descending=True).values.mean(0).tolist()]
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1)
        width["effective_components"] = entropy.exp().mean().item()
        width["component_std"] = prior.component_distribution.base_dist.scale.mean().item()
    return width


def prior_modes(prior: torch.distributions.Distribution) -> torch.Tensor:
    """(states, modes, z_dim): a Gaussian's mean, or a mixture's component means."""
    if isinstance(prior, torch.distributions.MixtureSameFamily):
        return prior.component_distribution.base_dist.loc
    return prior.mean.unsqueeze(1)


@torch.no_grad()
def branch_report(model: SkillModel, rows: dict[str, list], generator: torch.Generator) -> dict:
    states = np.stack(rows["states"])
    prior = model.prior_dist(states)
    obs_seq = np.stack([w[0] for w in rows["windows"]])
    act_seq = np.stack([w[1] for w in rows["windows"]])
    posterior = model.encode_skill(obs_seq, act_seq)
    nll = -prior.log_prob(posterior.mean)
    nll = nll.sum(-1) if isinstance(prior, torch.distributions.Normal) else nll
    kl = torch.distributions.kl_divergence(
        posterior, torch.distributions.Normal(torch.zeros_like(posterior.mean), 1.0)).sum(-1)
    nexts, experts = np.array(rows["next"]), np.array(rows["kinds"]) == "expert"
    groups = sorted({str(n) for n in nexts}, key=lambda n: -np.sum(nexts == n))
    centroids = torch.stack([posterior.mean[torch.as_tensor(nexts == n)].mean(0) for n in groups])
    draws = torch.stack([sample(prior, generator) for _ in range(PRIOR_SAMPLES)])  # (samples, states, z)
    candidate = torch.tensor([np.sum(nexts == n) >= MIN_GROUP for n in groups])
    distances = torch.cdist(draws.reshape(-1, draws.shape[-1]), centroids)
    nearest = distances.masked_fill(~candidate, torch.inf).argmin(-1)
    modes = prior_modes(prior)
    table = {}
    for i, name in enumerate(groups):
        mask = torch.as_tensor(nexts == name)
        means = posterior.mean[mask]
        to_mode = (modes[mask] - centroids[i]).norm(dim=-1).min(-1).values.mean()
        table[name] = {
            "episodes": int(mask.sum()), "expert": int(experts[mask.numpy()].sum()),
            "share": float(mask.float().mean()), "kl_nats": kl[mask].mean().item(),
            "spread": (means - centroids[i]).norm(dim=-1).mean().item(), "to_prior_mode": to_mode.item(),
            "prior_nll": nll[mask].mean().item(),
            "prior_samples_nearest": (nearest == i).float().mean().item() if candidate[i] else None,
        }
    return {"states": len(states), **prior_width(prior), "next": table}


def rollout_report(model: SkillModel, episodes: int, workers: int, seed: int) -> dict:
    rollouts = evaluate_prior(model, episodes, workers=workers, seed=seed)
    pairs = Counter(" -> ".join(order[:2]) for order in rollouts.orders if len(order) >= 2)
    return {**rollouts.summary(), "subtask_counts": rollouts.distribution(),
            "first_subtask_shares": {k: v / episodes for k, v in rollouts.first_subtask_counts().items()},
            "first_pairs": {k: v / episodes for k, v in pairs.most_common(6)}}


@torch.no_grad()
def replay_report(model: SkillModel, dataset: str, episodes: int) -> dict:
    """Mean subtasks of the first `episodes` general and expert episodes: in the data, replayed and
    re-decoded."""
    spec, horizon = resolve(dataset), model.config.model.horizon
    env = make_vector_env(model, 1, None)
    report = {}
    try:
        for kind, dataset_id in zip(("general", "expert"), spec.ids, strict=False):
            counts: dict[str, list[int]] = {"data": [], "actions_open_loop": [], "posterior_closed_loop": []}
            source = open_dataset(dataset_id, spec, download=False).iterate_episodes()
            for i, episode in zip(range(episodes), source, strict=False):
                flat = model.layout.flatten(episode.observations)
                n = len(episode.actions) // horizon * horizon
                windows = (flat[:n].reshape(-1, horizon, flat.shape[-1]),
                           episode.actions[:n].reshape(-1, horizon, episode.actions.shape[-1]))
                z = model.encode_skill(*windows).mean
                done = episode.infos["step_task_completions"]
                counts["data"].append(sum(bool(np.any(v)) for v in done.values()))
                for mode in ("actions_open_loop", "posterior_closed_loop"):
                    obs, _ = env.reset(seed=[i])
                    for t in range(n):
                        action = (episode.actions[t][None] if mode == "actions_open_loop" else
                                  model.decode_action(obs, z[t // horizon][None], t % horizon).cpu().numpy())
                        obs, _, terminated, truncated, info = env.step(action)
                        if terminated[0] or truncated[0]:
                            break
                    counts[mode].append(len(info["episode_task_completions"][0]))
            means = {k: float(np.mean(v)) for k, v in counts.items()}
            report[kind] = {"episodes": len(counts["data"]), **means}
    finally:
        env.close()
    return report


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--dataset", default=None, help="short name (default: the checkpoint's)")
    parser.add_argument("--episodes", type=int, default=100, help="prior rollouts (0: skip them)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replays", type=int, default=0,
                        help="general and expert episodes to replay (0: skip)")
    parser.add_argument("--min-windows", type=int, default=10, help="branch points with fewer are left out")
    parser.add_argument("--out", type=Path, help="JSON file (default: results/prior_quality/NAME.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = SkillModel.load(args.checkpoint)
    dataset = args.dataset or model.metadata.dataset
    generator = torch.Generator().manual_seed(args.seed)
    windows = collect_windows(model, dataset)
    branches = {name: branch_report(model, rows, generator)
                for name, rows in windows.items() if len(rows["states"]) >= args.min_windows}
    order = sorted(branches, key=lambda b: (b != "reset", -branches[b]["states"]))
    for name in order:
        b = branches[name]
        mix = f", weights {b['weights']} ({b['effective_components']:.2f} eff.)" if "weights" in b else ""
        print(f"\n{name}: {b['states']} windows; prior std {b['std']:.3f}, |mean| {b['mean_norm']:.2f}{mix}")
        print("| next | n | expert | KL(q‖N) | spread | to prior mode | −log p(μ_q) | prior samples near |")
        print("|---|---|---|---|---|---|---|---|")
        for nxt, g in b["next"].items():
            print(f"| {nxt} | {g['episodes']} | {g['expert']} | {g['kl_nats']:.2f} | {g['spread']:.2f} | "
                  f"{g['to_prior_mode']:.2f} | {g['prior_nll']:.1f} | {_share(g['prior_samples_nearest'])} |")
    result = {"checkpoint": str(args.checkpoint), "dataset": dataset, "prior": model.config.model.prior,
              "preset": model.config.preset, "pretrain_steps": model.metadata.step,
              "branches": {name: branches[name] for name in order}}
    if args.episodes:
        result["rollouts"] = rollout_report(model, args.episodes, args.workers, args.seed)
    if args.replays:
        result["replays"] = replay_report(model, dataset, args.replays)
        for kind, row in result["replays"].items():
            print(f"\nmean subtasks over the first {row['episodes']} {kind} episodes: data "
                  f"{row['data']:.2f}, actions replayed {row['actions_open_loop']:.2f}, posterior skills "
                  f"decoded {row['posterior_closed_loop']:.2f}")
    name = f"{model.config.preset}_{model.config.model.prior}_seed{model.config.pretrain.seed}"
    report(result, args.out or RESULTS / f"{name}.json")


if __name__ == "__main__":
    main()
