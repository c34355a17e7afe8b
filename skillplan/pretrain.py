"""Joint skill pretraining: the VAE, prior, skill dynamics and PU terms of `SkillModel`, in one loss.

`joint_loss` is the objective, term by term; `JointTrainer` makes one optimizer step of it;
`pretrain` is the whole run (data, validation, checkpoints, logs) behind `skillplan pretrain`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from einops import rearrange
from minari.serialization import serialize_space
from rich.console import Console
from rich.progress import TextColumn
from torch.optim.swa_utils import AveragedModel

import skillplan
from skillplan.checkpoint import (
    REQUIRED_FILES,
    TRAINING,
    SkillMetadata,
    read_checkpoint,
    read_training_state,
)
from skillplan.config import RunConfig, config_differences
from skillplan.data.loading import Episodes, NormStats, OfflineData, load_offline_data
from skillplan.data.sampler import SkillWindows, WindowSampler
from skillplan.device import bf16_autocast, resolve_device
from skillplan.errors import CheckpointError, ConfigError, DatasetError, TrainingDivergedError
from skillplan.interrupt import StopRequest
from skillplan.io import atomic_write_text
from skillplan.models.distributions import DiagGaussian
from skillplan.models.pu import nnpu_loss, nnpu_risk, reverse_gradient
from skillplan.models.skill_model import SkillModel
from skillplan.models.standardize import OBS_CLIP
from skillplan.progress import progress_bar
from skillplan.runlog import RunLog
from skillplan.validation import HeldOutWindows, validate
from skillplan.versions import candidates, newest_readable

PRIOR_DIR = "prior"
LIVE = "live."  # prefix of the trained (not averaged) weights in a checkpoint's training state
# Settings that may change when a run is resumed: they don't change what is being trained.
RESUMABLE_CHANGES = (
    "pretrain.steps", "pretrain.log_every", "pretrain.eval_every", "pretrain.checkpoint_every",
    "pretrain.eval_windows", "pretrain.threads", "pretrain.ema_decay",
)


def joint_loss(
    model: SkillModel, obs: torch.Tensor, act: torch.Tensor, n_expert: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The joint objective on a batch of normalised windows; returns (total, unweighted terms).

    obs (B, N·H+1, obs_dim) and act (B, N·H, act_dim) hold N consecutive skills per window; the
    last `n_expert` windows are expert data (PU positives), the others general data (unlabeled).
    """
    m, p = model.config.model, model.config.pretrain
    horizon, n_skills = m.horizon, obs.shape[1] // m.horizon
    skill_obs = rearrange(obs[:, :-1], "b (n h) s -> b n h s", h=horizon)
    skill_act = rearrange(act, "b (n h) a -> b n h a", h=horizon)
    terms: dict[str, torch.Tensor] = {}

    # Skill VAE. Every skill is encoded (the dynamics needs them all); the decoder reconstructs one
    # skill per window at a uniformly drawn position, a one-sample estimate of SkiMo's loss over all
    # N skills at 1/N of the decoding cost. Always the first would never decode an episode's last
    # N·H − H steps, where a window can't start (docs/results.md, "The decoder's blind tail").
    posterior = model.skill_encoder(skill_obs, skill_act)
    z = posterior.rsample()
    rows = torch.arange(len(z), device=z.device)  # no draw at N = 1: one-skill presets keep their RNG stream
    picked = torch.randint(n_skills, rows.shape, device=z.device) if n_skills > 1 else torch.zeros_like(rows)
    decoded_obs, decoded_act, decoded_z = skill_obs[rows, picked], skill_act[rows, picked], z[rows, picked]
    terms["bc"] = F.mse_loss(model.decoder.skill(decoded_obs, decoded_z).float(), decoded_act)
    terms["kl"] = posterior.kl_standard().float().mean()
    # Free nats (Kingma et al. 2016; Dreamer): below the floor β no longer squeezes z's information.
    pressed_kl = terms["kl"].clamp_min(p.free_nats / m.z_dim)
    loss = p.bc_weight * terms["bc"] + p.beta * pressed_kl

    if m.sde:  # skill-level data enhancement: a nearby latent must decode to the same actions
        noisy_z = decoded_z + p.sde_eta * torch.randn_like(decoded_z)
        terms["sde"] = F.mse_loss(model.decoder.skill(decoded_obs, noisy_z).float(), decoded_act)
        loss = loss + p.bc_weight * terms["sde"]

    # Skill prior p(z | s_0) toward the stop-gradient posterior, optionally PU-weighted.
    start_obs = skill_obs[:, :, 0]
    prior = model.prior(start_obs)
    if isinstance(prior, DiagGaussian):
        prior_kl = posterior.detach().kl(prior).float().mean(-1)  # (B, N)
    else:
        # A posterior sample's NLL less q's entropy is an unbiased one-sample estimate of the same
        # KL(q ‖ p), per dimension as above; the sample is the one the decoder used.
        prior_kl = (prior.nll(z.detach()) - posterior.entropy().detach().float()) / m.z_dim
    if model.classifier is not None:
        logits = model.classifier(start_obs, skill_act).float()
        terms["pu_cls"] = nnpu_loss(logits[-n_expert:], logits[:-n_expert], p.class_prior)
        expert_prob = torch.sigmoid(logits.detach())
        terms["prior"] = (expert_prob * prior_kl).sum() / expert_prob.sum().clamp_min(1e-6)
        # Nothing else bounds the logits: unpenalised they can run to ±1000, where the sigmoid loss has no
        # gradient to correct a confident mistake and the prior's weights become arbitrary 0s and 1s.
        loss = loss + terms["pu_cls"] + p.pu_logit_penalty * logits.square().mean()
    else:
        terms["prior"] = prior_kl.mean()
    loss = loss + p.prior_weight * terms["prior"]

    if model.discriminator is not None:
        # Adversarial PU: the discriminator minimises the nnPU risk of its expert-vs-general call on
        # skill embeddings; through the reversed gradient the encoder maximises it. (The risk, not
        # Kiryo's overfitting step: reversing that step would push the embeddings apart.)
        logits = model.discriminator(reverse_gradient(posterior.mean, p.pu_weight)).float()
        terms["pu_adv"] = nnpu_risk(logits[-n_expert:], logits[:-n_expert], p.class_prior)
        # While z is still uninformative "all general" is the risk's optimum, and unbounded logits run
        # to −∞ where the sigmoid has no gradient left to find the split once z carries one. The
        # penalty sees detached embeddings: it bounds the discriminator, not what the encoder does.
        penalty = model.discriminator(posterior.mean.detach()).float().square().mean()
        loss = loss + terms["pu_adv"] + p.pu_logit_penalty * penalty

    if model.dynamics is not None:  # SkiMo: latent consistency over N skills, ρ^i-discounted
        dyn = model.dynamics
        boundary_obs = obs[:, ::horizon]  # s_0, s_H, ..., s_{NH}
        latent = dyn.encoder(boundary_obs)
        with torch.no_grad():
            target = dyn.target_encoder(boundary_obs[:, 1:]).float()
        terms["obs"] = F.mse_loss(dyn.obs_decoder(latent).float(), boundary_obs)
        predicted = dyn.rollout(latent[:, 0], z).float()
        error_per_skill = (predicted - target).square().mean(dim=(0, 2))
        discount = p.rho ** torch.arange(n_skills, dtype=torch.float32, device=error_per_skill.device)
        terms["consistency"] = (discount * error_per_skill).sum()
        loss = loss + (p.obs_weight * terms["obs"] + p.consistency_weight * terms["consistency"]) / n_skills
    return loss, terms


class JointTrainer:
    """One Adam step of `joint_loss` at a time, plus the target-encoder EMA and divergence checks."""

    def __init__(self, model: SkillModel) -> None:
        self.model, self.device = model, model.obs_mean.device
        self.config = model.config.pretrain
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=self.config.lr, fused=True)
        self.loss = torch.compile(joint_loss, dynamic=False) if self.config.compile else joint_loss
        self.step_count = 0

    def step(self, batch: SkillWindows, n_expert: int) -> dict[str, torch.Tensor]:
        """Update on one batch; returns the detached loss terms (and `loss`, `grad_norm`)."""
        model = self.model.train()
        with bf16_autocast(self.device, self.config.precision):
            loss, terms = self.loss(model, batch.observations, batch.actions, n_expert)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip, foreach=True)
        terms = {"loss": loss, **terms, "grad_norm": grad_norm}
        terms = {k: v.detach() for k, v in terms.items()}
        self._check_finite(terms)
        self.optimizer.step()
        if model.dynamics is not None:
            model.dynamics.update_target(self.config.target_tau)
        self.step_count += 1
        return terms

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        values = torch.stack([v.float() for v in terms.values()])
        if bool(torch.isfinite(values).all()):
            return
        bad = [name for name, v in terms.items() if name not in ("loss", "grad_norm") and not v.isfinite()]
        what = f"{', '.join(bad)} became NaN or infinite" if bad else "the gradients overflowed"
        raise TrainingDivergedError(
            f"Training diverged at step {self.step_count + 1}: {what}. The update was not applied."
        )

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer state and step as flat tensors (safetensors holds no nested objects)."""
        tensors = {"step": torch.tensor(self.step_count, dtype=torch.int64)}
        for index, state in self.optimizer.state_dict()["state"].items():
            for name, value in state.items():
                tensors[f"adam.{index}.{name}"] = torch.as_tensor(value)
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("adam."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        template = self.optimizer.state_dict()
        self.optimizer.load_state_dict({"state": state, "param_groups": template["param_groups"]})
        self.step_count = int(tensors["step"])


class BatchSource:
    """Mixed batches: general windows first, then a fixed share of expert windows (PU positives)."""

    def __init__(
        self, general: Episodes, expert: Episodes | None, horizon: int, n_skills: int,
        batch_size: int, expert_fraction: float, seed: int,
    ) -> None:
        self.n_expert = 0 if expert is None else max(1, round(batch_size * expert_fraction))
        self.n_general = batch_size - self.n_expert
        self.general = WindowSampler(general, horizon, n_skills, seed=seed)
        self.expert = WindowSampler(expert, horizon, n_skills, seed=seed + 1) if self.n_expert else None

    def generator_states(self) -> dict[str, torch.Tensor]:
        """The samplers' generator states, for checkpoints."""
        states = {"rng.general": self.general.generator.get_state()}
        if self.expert is not None:
            states["rng.expert"] = self.expert.generator.get_state()
        return states

    def restore_generators(self, states: dict[str, torch.Tensor]) -> None:
        self.general.generator.set_state(states["rng.general"])
        if self.expert is not None:
            self.expert.generator.set_state(states["rng.expert"])

    def sample(self) -> SkillWindows:
        general = self.general.sample(self.n_general)
        if self.expert is None:
            return general
        expert = self.expert.sample(self.n_expert)
        return SkillWindows(
            torch.cat([general.observations, expert.observations]),
            torch.cat([general.actions, expert.actions]),
        )


def normalize_episodes(episodes: Episodes, meta: SkillMetadata) -> Episodes:
    """The episodes with states standardised and actions mapped to the model's normalised scale."""
    def scaled(x: np.ndarray, center: list[float], scale: list[float]) -> np.ndarray:
        return ((x - np.asarray(center, np.float32)) / np.asarray(scale, np.float32)).astype(np.float32)

    return Episodes(
        np.clip(scaled(episodes.observations, meta.obs_mean, meta.obs_std), -OBS_CLIP, OBS_CLIP),
        scaled(episodes.actions, meta.act_center, meta.act_scale),
        episodes.lengths,
    )


def metadata_for(data: OfflineData, config: RunConfig) -> SkillMetadata:
    """Metadata of a model trained on `data`: ids, spaces, env, observation layout, normalisation.

    Actions with finite bounds are normalised to [-1, 1] by them; unbounded ones by their mean/std.
    """
    low, high = data.action_space.low.astype(np.float64), data.action_space.high.astype(np.float64)
    bounded = bool(np.isfinite(low).all() and np.isfinite(high).all())
    if bounded:
        center, scale = (high + low) / 2, np.maximum((high - low) / 2, 1e-6)
    else:
        actions = [data.general.actions] + ([data.expert.actions] if data.expert is not None else [])
        stats = NormStats.of(*actions)
        center, scale = stats.mean, stats.std
    episodes = [data.general] + ([data.expert] if data.expert is not None else [])
    starts = NormStats.of(*(e.observations[e.obs_offsets] for e in episodes))
    return SkillMetadata(
        dataset=data.spec.name,
        dataset_ids=list(data.spec.ids),
        fingerprint=data.fingerprint,
        env_id=data.env_id,
        env_kwargs=dict(data.env_kwargs),
        observation_space=json.loads(serialize_space(data.observation_space)),
        action_space=json.loads(serialize_space(data.action_space)),
        obs_keys=list(data.layout.keys),
        obs_dim=data.layout.dim,
        obs_dims=list(data.layout.dims) or None,
        act_dim=int(np.prod(data.action_space.shape)),
        horizon=config.model.horizon,
        z_dim=config.model.z_dim,
        obs_mean=data.stats.mean.tolist(),
        obs_std=data.stats.std.tolist(),
        start_mean=starts.mean.tolist(),
        start_std=starts.std.tolist(),
        act_center=[float(v) for v in center],
        act_scale=[float(v) for v in scale],
        act_bounded=bounded,
        version=skillplan.__version__,
    )


@dataclass(frozen=True)
class PretrainResult:
    checkpoint: Path
    step: int
    validation: dict[str, float]
    windows_per_s: float
    stopped: bool = False  # ended early on a stop request (the checkpoint holds the step reached)


def load_training_data(config: RunConfig) -> OfflineData:
    """The run's dataset pair, checked against what the switched-on terms need."""
    needs_expert = config.model.pu or config.model.pu_prior
    data = load_offline_data(
        config.data.dataset, expert_id=config.data.expert_dataset, obs_dims=config.data.obs_dims
    )
    if needs_expert and data.expert is None:
        raise DatasetError(
            f"The PU terms need expert (positive) data, and dataset '{config.data.dataset}' has none. "
            "Pass --no-pu to train without them, or use a dataset with expert data "
            "(e.g. kitchen-scripted; see `skillplan datasets list`)."
        )
    if needs_expert and config.data.expert_fraction == 0:
        raise ConfigError(
            "The PU terms need expert windows in every batch, but data.expert_fraction is 0. "
            "Set it above 0 (default 0.25), or pass --no-pu."
        )
    return data


def pretrain(
    config: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    data: OfflineData | None = None,
    on_step: Callable[[int], None] | None = None,
    loggers: Sequence[str] = ("csv",),
    device: torch.device | str = "cpu",
    stop: StopRequest | None = None,
) -> PretrainResult:
    """Run (or resume) joint pretraining; the checkpoint goes to `out/prior`, logs into `out`.

    `on_step(step)` is called after every gradient step (the benchmark suite's progress display).
    `loggers`: csv, and any of tensorboard and wandb (see `skillplan.runlog`).
    The model and its batches live on `device` (batches are drawn on the CPU, seeded, and moved).
    When `stop` is requested the loop finishes the step, checkpoints and returns (`result.stopped`).
    A checkpoint holds the torch and batch samplers' generator states: a resumed run draws the
    batches and noise the uninterrupted run would have.
    """
    device = resolve_device(device)
    console = console or Console()
    out = Path(out)
    prior_dir = out / PRIOR_DIR
    torch.set_num_threads(config.pretrain.threads)
    data = data or load_training_data(config)
    if resume:
        model, trainer_state = _resume(config, prior_dir, data, console)
    else:
        if os.path.lexists(prior_dir):
            raise ConfigError(
                f"'{out}' already holds a pretraining run ({prior_dir}). Pass --resume to continue it, "
                "or choose another --out."
            )
        torch.manual_seed(config.pretrain.seed)
        model, trainer_state = SkillModel(config, metadata_for(data, config)), None

    model.to(device)
    # The saved weights are what the checkpoint exports; under an EMA the live ones travel beside them.
    live = live_weights(trainer_state or {})
    ema = exported_average(model, config.pretrain.ema_decay, trainer_state if live else None)
    if live:
        model.load_state_dict(live)
    exported = model if ema is None else ema.module
    trainer = JointTrainer(model)
    if trainer_state is not None:
        trainer.load_state_tensors(trainer_state)
    start = trainer.step_count
    p, meta = config.pretrain, model.metadata
    # Overridden below by a checkpoint's saved states; an earlier release's checkpoint has none.
    torch.manual_seed(p.seed * 1_000_003 + start)
    general_train, general_held = data.general.split(config.data.holdout_fraction, p.seed)
    expert_train = expert_held = None
    if data.expert is not None:
        expert_train, expert_held = data.expert.split(config.data.holdout_fraction, p.seed)
    n_skills = p.n_skills if config.model.dynamics else 1
    use_expert = data.expert is not None and config.data.expert_fraction > 0
    batches = BatchSource(
        normalize_episodes(general_train, meta),
        normalize_episodes(expert_train, meta) if use_expert else None,
        config.model.horizon, n_skills, p.batch_size, config.data.expert_fraction, p.seed + start,
    )
    if trainer_state is not None and "rng.torch" in trainer_state:
        torch.set_rng_state(trainer_state["rng.torch"])
        batches.restore_generators(trainer_state)
    held_out = HeldOutWindows.sample(
        normalize_episodes(general_held, meta),
        normalize_episodes(expert_held, meta) if expert_held is not None else None,
        config.model.horizon, n_skills, p.eval_windows, seed=p.seed,
    )
    held_out = replace(held_out, observations=held_out.observations.to(device),
                       actions=held_out.actions.to(device))

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config.model_dump(), sort_keys=False))
    log = RunLog(out, resume_step=start, loggers=loggers, config=config.model_dump(mode="json"))
    losses = TextColumn("{task.fields[losses]}")
    validation: dict[str, float] = {}
    started, windows = time.perf_counter(), 0

    def checkpoint() -> None:
        log.flush()  # the rows up to the checkpoint's step are on disk before it is
        exported.metadata.step = trainer.step_count
        generators = {"rng.torch": torch.get_rng_state(), **batches.generator_states()}
        training = {**trainer.state_tensors(), **generators}
        if ema is not None:
            training |= {f"{LIVE}{k}": v for k, v in model.state_dict().items()}
            training["ema.n_averaged"] = ema.n_averaged
        exported.save(prior_dir, training=training)

    with progress_bar(console, losses) as progress:
        task = progress.add_task("pretrain", total=p.steps, completed=start, losses="")
        for step in range(start + 1, p.steps + 1):
            try:
                batch = SkillWindows(*(t.to(device, non_blocking=True) for t in batches.sample()))
                terms = trainer.step(batch, batches.n_expert)
                if ema is not None:
                    ema.update_parameters(model)
            except TrainingDivergedError as exc:
                log.flush()
                raise TrainingDivergedError(f"{exc} {_kept(prior_dir)}") from None
            windows += p.batch_size
            if step % p.log_every == 0 or step == p.steps:
                elapsed = time.perf_counter() - started
                row = {k: float(v) for k, v in terms.items()}
                row["windows_per_s"] = windows / max(elapsed, 1e-9)
                log.log(step, row)
                progress.update(task, losses=_summary_line(row))
            if step % p.eval_every == 0 or step == p.steps:
                validation = validate(exported, held_out)
                log.log(step, validation)
                log.flush()
            stopping = stop is not None and stop.requested
            if step % p.checkpoint_every == 0 or step == p.steps or stopping:
                checkpoint()
            progress.update(task, completed=step)
            if on_step is not None:
                on_step(step)
            if stopping:
                log.flush()
                return PretrainResult(prior_dir, trainer.step_count, validation, 0.0, stopped=True)
    if not validation:  # resumed a finished run: nothing trained, still report
        validation = validate(exported, held_out)
    log.close()
    log.plot(out / "curves.png")
    atomic_write_text(out / "summary.json", json.dumps({"step": trainer.step_count, **validation}, indent=2))
    rate = windows / max(time.perf_counter() - started, 1e-9)
    return PretrainResult(prior_dir, trainer.step_count, validation, rate if windows else 0.0)


def live_weights(training: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trained (not averaged) weights kept in a checkpoint's training state; {} without an EMA."""
    return {k.removeprefix(LIVE): v for k, v in training.items() if k.startswith(LIVE)}


def exported_average(
    model: SkillModel, decay: float, saved: dict[str, torch.Tensor] | None
) -> AveragedModel | None:
    """An EMA of `model`'s weights (Polyak averaging), starting from them, or None when `decay` is 0.

    The decay ramps up as (1 + n) / (10 + n) over the n updates averaged so far, as TensorFlow's
    `ExponentialMovingAverage(num_updates=...)` does, so a short run's average is not its first
    weights. `saved`: a checkpoint's training state whose model weights were such an average, so that
    the average goes on counting its updates from there.
    """
    if decay == 0:
        return None

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        weight = 1 - min(decay, (1 + float(n)) / (10 + float(n)))
        for a, c in zip(averaged, current, strict=True):
            a.lerp_(c, weight)

    ema = AveragedModel(model, multi_avg_fn=update)
    if saved is not None and "ema.n_averaged" in saved:
        ema.n_averaged.fill_(int(saved["ema.n_averaged"]))
    return ema


def _resume(
    config: RunConfig, prior_dir: Path, data: OfflineData, console: Console
) -> tuple[SkillModel, dict[str, torch.Tensor]]:
    """The newest readable saved model and training state, after checking the run's config and data
    still match; an unreadable newest version falls back to the one before, and says so."""
    found = candidates(prior_dir, (*REQUIRED_FILES, TRAINING))
    if not found:
        raise CheckpointError(
            f"Nothing to resume: '{prior_dir}' does not exist. Drop --resume to start a new run there."
        )

    def load(path: Path) -> tuple[SkillModel, dict[str, torch.Tensor]]:
        _, saved_config, saved_meta = read_checkpoint(path)
        _check_resumable(saved_config, saved_meta, config, data, path)
        return SkillModel.load(path), read_training_state(path)

    path, (model, training), failures = newest_readable(prior_dir, found, load)
    if failures:
        console.print(f"[yellow]Newer checkpoint versions could not be read ({'; '.join(failures)}). "
                      f"Resuming from {path} (step {model.metadata.step:,}).[/yellow]")
    model.config = config  # same training settings; may carry a longer --steps
    return model, training

def _check_resumable(
    saved_config: dict, saved_meta: SkillMetadata, config: RunConfig, data: OfflineData, path: Path
) -> None:
    differences = _config_changes(saved_config, config, path)
    if saved_meta.fingerprint != data.fingerprint:
        differences.append(f"dataset fingerprint: {saved_meta.fingerprint} -> {data.fingerprint}")
    if differences:
        raise ConfigError(
            f"Can't resume '{path}': its config differs from this one in "
            + "; ".join(differences)
            + ". Pass the same options (only --steps and logging cadence may change), "
            "or drop --resume and use a new --out."
        )


def config_changes(prior_dir: Path, config: RunConfig) -> list[str]:
    """How `config` differs from the one the checkpoint in `prior_dir` was trained with, leaving out
    the settings a resumed run may change."""
    return _config_changes(read_checkpoint(prior_dir)[1], config, prior_dir)


def _config_changes(saved_config: dict, config: RunConfig, prior_dir: Path) -> list[str]:
    try:
        saved = RunConfig.model_validate(saved_config)
    except ValueError:
        raise CheckpointError(f"'{prior_dir}/config.json' is not a valid skillplan config.") from None
    return config_differences(saved, config, ignore=RESUMABLE_CHANGES)


def _kept(prior_dir: Path) -> str:
    if (prior_dir / TRAINING).is_file():
        step = json.loads((prior_dir / "metadata.json").read_text()).get("step", "?")
        return (
            f"The last good checkpoint ({prior_dir}, step {step}) is kept. Lower the learning rate "
            "(pretrain.lr in a --config file) or the term's weight, then start again in a new --out."
        )
    return "No checkpoint had been written yet. Lower the learning rate (pretrain.lr) or the term's weight."


def _summary_line(row: dict[str, float]) -> str:
    shown = ("loss", "bc", "prior", "consistency", "pu_adv", "pu_cls")
    return "  ".join(f"{k} {row[k]:.4g}" for k in shown if k in row) + f"  {row['windows_per_s']:,.0f} win/s"
