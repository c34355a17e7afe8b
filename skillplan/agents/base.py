"""The agent API every downstream agent shares (Stable-Baselines3's shape) and its training loop.

`Agent(env, config).learn(total_env_steps)`, `.predict(obs)`, `.save(dir)`, `Agent.load(dir)`.
Env steps are low-level steps: a skill env reports how many each skill took (`low_level_steps`).

A run is a function of its seed: episode k resets the env with a seed drawn from (seed, k), and a
checkpoint holds every random generator's state plus the actions of the unfinished episode. A
resumed run replays those actions from the episode's reset (the envs are deterministic given
their seed) and goes on exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, model_validator
from rich.console import Console
from rich.progress import TextColumn
from safetensors.torch import load_file, save_file

import skillplan
from skillplan.config import Section
from skillplan.device import resolve_device
from skillplan.errors import CheckpointError, ConfigError, TrainingDivergedError
from skillplan.interrupt import StopRequest
from skillplan.io import save_figure
from skillplan.progress import progress_bar
from skillplan.runlog import RunLog
from skillplan.versions import candidates, newest_readable, resolve, write_version

AGENT_DIR = "agent"
STATE, CONFIG, METADATA = "state.safetensors", "config.json", "metadata.json"


class LoopConfig(Section):
    """How the shared loop collects data, evaluates and checkpoints (counts are env steps)."""

    learning_starts: int = 5_000
    updates_per_step: int = 1
    # Agent steps between rounds of `updates_per_step` updates. SkiMo trains its kitchen agent 10
    # times every 500 env steps: once per 5 skills.
    update_every: int = Field(1, ge=1)
    seed_updates: int = Field(0, ge=0, description="updates made at once when learning starts, on the "
                              "data collected so far, before the regular cadence (TD-MPC2 pretrains "
                              "on its seed data: one update per seed step); 0: none")
    buffer_size: int = 1_000_000
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 10_000
    seed: int = 0
    threads: int = 2
    offline_data: bool = Field(False, description="skill agents: seed the replay with the pretraining "
                               "data's windows as skill transitions paid the task's reward (kitchen)")
    offline_share: float | None = Field(None, ge=0, le=1, description="with offline_data: the share of "
                                        "each batch drawn from the offline transitions (RLPD: 0.5); "
                                        "None: one uniform draw over all")

    @model_validator(mode="after")
    def _share_needs_offline_data(self) -> LoopConfig:
        if self.offline_share is not None and not self.offline_data:
            raise ValueError("offline_share is the share of each batch drawn from the offline data, so it "
                             "needs offline_data: true (or leave offline_share out)")
        return self


def episode_seed(seed: int, episode: int) -> int:
    """The env's reset seed for episode `episode` of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


@dataclass
class LoopState:
    """Where the training loop stands, beyond the agent's tensors: saved in every checkpoint."""

    episode: int = 0  # index of the current episode (its reset seed is `episode_seed(seed, episode)`)
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)  # taken so far in the current episode
    episode_return: float = 0.0
    since_update: int = 0
    losses: dict[str, float] = dataclasses.field(default_factory=dict)  # the last update's, for evaluations
    next_eval: int | None = None
    next_ckpt: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"episode": self.episode, "episode_return": self.episode_return,
                "since_update": self.since_update, "losses": self.losses,
                "next_eval": self.next_eval, "next_ckpt": self.next_ckpt}


def episode_metrics(returns: list[float], infos: list[dict[str, Any]]) -> dict[str, float]:
    """Mean return, plus mean subtasks completed (kitchen) and success rate where reported."""
    metrics = {"return": float(np.mean(returns))}
    if infos and "subtasks_completed" in infos[0]:
        metrics["subtasks"] = float(np.mean([i["subtasks_completed"] for i in infos]))
    if infos and "success" in infos[0]:
        metrics["success"] = float(np.mean([bool(i["success"]) for i in infos]))
    return metrics


class Agent(ABC):
    """Base class: subclasses implement acting, storing, updating and their tensors' state."""

    name: ClassVar[str]
    config_class: ClassVar[type[LoopConfig]]

    def __init__(self, env: gym.Env, config: LoopConfig | None = None,
                 device: torch.device | str = "cpu") -> None:
        """`device` holds the networks, the replay buffer and the planner; the env stays on the CPU."""
        self.env = env
        self.config = config or self.config_class()
        self.device = resolve_device(device)
        self.env_steps = 0
        torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed)
        self.rng = np.random.default_rng(self.config.seed)
        self.loop = LoopState()
        self.stopped = False  # the last `learn` ended early, on a stop request
        self.last_evaluation: dict[str, float] | None = None  # the last one `learn` made, at its step

    # ---- what each agent implements ------------------------------------------------------------
    @abstractmethod
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """The action for one observation (exploring during training, greedy in evaluation)."""

    @abstractmethod
    def observe(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
                terminated: bool, truncated: bool) -> None:
        """Store one transition."""

    @abstractmethod
    def update(self) -> dict[str, float]:
        """One learning step; returns losses to log."""

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume: weights, optimizer state, replay contents."""

    @abstractmethod
    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None: ...

    def episode_start(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called at every reset (planners drop their warm start here)."""

    # ---- the public API ------------------------------------------------------------------------
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.act(obs, explore=not deterministic)

    def evaluate(self, episodes: int, env: gym.Env | None = None, seed: int = 10_000) -> dict[str, float]:
        """Greedy episodes on `env` (default: a fresh copy of the training env)."""
        env = env or _fresh_copy(self.env)
        returns, infos = [], []
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            self.episode_start()
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(self.act(obs, explore=False))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            infos.append(info)
        return episode_metrics(returns, infos)

    def learn(self, total_env_steps: int, run_dir: Path | None = None, *, resume: bool = False,
              console: Console | None = None, show_progress: bool = True,
              on_step: Callable[[int], None] | None = None, loggers: Sequence[str] = ("csv",),
              stop: StopRequest | None = None) -> Agent:
        """Train until `total_env_steps` low-level env steps, evaluating and checkpointing into `run_dir`.

        `on_step(env_steps)` is called after every env step (the benchmark suite's progress display).
        `loggers`: csv, and any of tensorboard and wandb (see `skillplan.runlog`).
        When `stop` is requested the loop finishes the step, checkpoints and returns (`self.stopped`).
        """
        cfg = self.config
        if run_dir is not None:
            run_dir = Path(run_dir)
            if resume:
                self._resume(run_dir, console or Console(stderr=True))
            elif os.path.lexists(run_dir / AGENT_DIR):
                raise ConfigError(f"'{run_dir}' already holds a training run. Pass --resume to continue "
                                  "it, or choose another --out.")
            run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.offline_data and self.env_steps == 0:
            self._seed_replay(console or Console(stderr=True))
        log = None
        if run_dir is not None:
            log = RunLog(run_dir, self.env_steps, loggers, self._run_config(total_env_steps))
        eval_env = _fresh_copy(self.env)
        loop, self.stopped = self.loop, False
        if loop.next_eval is None or loop.next_ckpt is None:
            loop.next_eval = (self.env_steps // cfg.eval_every + 1) * cfg.eval_every
            loop.next_ckpt = (self.env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        obs = self._enter_episode()
        last = "—"
        started, steps_at_start = time.perf_counter(), self.env_steps  # a resumed run's rate: its own steps
        status = TextColumn("{task.fields[status]}")
        with progress_bar(console, status, disable=not show_progress) as progress:
            task = progress.add_task(f"train {self.name}", total=total_env_steps,
                                     completed=self.env_steps, status="")
            while self.env_steps < total_env_steps:
                action = self.act(obs, explore=True)
                next_obs, reward, terminated, truncated, info = self.env.step(action)
                loop.actions.append(np.array(action, copy=True))
                self.observe(obs, action, float(reward), next_obs, terminated, truncated)
                step_size = int(info.get("low_level_steps", 1))
                self.env_steps += step_size
                loop.episode_return += float(reward)
                obs = next_obs
                if terminated or truncated:
                    train_row = {"train/return": loop.episode_return, **{
                        f"train/{k}": v for k, v in episode_metrics([loop.episode_return], [info]).items()
                        if k != "return"}}
                    if log is not None:
                        log.log(self.env_steps, train_row)
                    loop.episode, loop.actions, loop.episode_return = loop.episode + 1, [], 0.0
                    obs, _ = self.env.reset(seed=episode_seed(cfg.seed, loop.episode))
                    self.episode_start()
                if self.env_steps >= cfg.learning_starts:
                    if self.env_steps - step_size < cfg.learning_starts and cfg.seed_updates:
                        for _ in range(cfg.seed_updates):  # the step that starts learning
                            loop.losses = self.update()
                        self._check_finite(loop.losses, run_dir)
                    loop.since_update += 1
                    if loop.since_update == cfg.update_every:
                        loop.since_update = 0
                        for _ in range(cfg.updates_per_step):
                            loop.losses = self.update()
                        self._check_finite(loop.losses, run_dir)
                if self.env_steps >= loop.next_eval or self.env_steps >= total_env_steps:
                    result = self.last_evaluation = self.evaluate(cfg.eval_episodes, eval_env)
                    last = ", ".join(f"{k} {v:.2f}" for k, v in result.items())
                    if log is not None:
                        sps = (self.env_steps - steps_at_start) / max(time.perf_counter() - started, 1e-9)
                        log.log(self.env_steps, {**{f"eval/{k}": v for k, v in result.items()},
                                                 **loop.losses, "env_steps_per_s": sps})
                        log.flush()  # metrics.csv shows every evaluation as it happens
                    loop.next_eval += cfg.eval_every
                checkpoint_due = self.env_steps >= loop.next_ckpt or self.env_steps >= total_env_steps
                if checkpoint_due:
                    loop.next_ckpt += cfg.checkpoint_every
                # read once: a request arriving between two reads would stop the run past its checkpoint
                stopping = stop is not None and stop.requested
                if run_dir is not None and (checkpoint_due or stopping):
                    log.flush()  # the rows up to the checkpoint's step are on disk before it is
                    self.save(run_dir / AGENT_DIR)
                progress.update(task, completed=min(self.env_steps, total_env_steps), status=f"eval: {last}")
                if on_step is not None:
                    on_step(self.env_steps)
                if stopping:
                    self.stopped = True
                    break
        if log is not None:
            log.close()
            if not self.stopped:
                plot_learning_curve(log, run_dir / "learning_curve.png", self.name)
        return self

    def _seed_replay(self, console: Console) -> None:
        """Put the offline data's skill transitions in the replay before the first env step."""
        from skillplan.agents.offline_replay import offline_skill_transitions

        model = getattr(self, "skill_model", None)
        if model is None:
            raise ConfigError(f"offline_data seeds the replay with skill transitions; {self.name} acts on "
                              "low-level actions. Use it with --agent ssac or cem.")
        data = offline_skill_transitions(self.env, model)
        for i in range(len(data)):
            terminated = bool(data.terminated[i])
            self.observe(data.obs[i], data.z[i], float(data.reward[i]), data.next_obs[i], terminated,
                         bool(data.episode_end[i]) and not terminated)
        if self.config.offline_share is not None:
            self.replay.pin(self.config.offline_share)
        paid = int((data.reward > 0).sum())
        console.print(f"replay seeded with {len(data):,} offline skill transitions ({paid:,} paid, "
                      f"{int(data.terminated.sum()):,} complete the task)")

    def _run_config(self, total_env_steps: int) -> dict[str, Any]:
        """What a training run is, for the loggers' hyperparameters: agent, env, budget and settings."""
        spec = self.env.spec
        return {"agent": self.name, "env": spec and spec.id, "env_kwargs": spec.kwargs if spec else {},
                "steps": total_env_steps, "config": self.config.model_dump(mode="json")}

    def _enter_episode(self) -> np.ndarray:
        """Reset the env for the current episode and replay the actions it already took."""
        seed = episode_seed(self.config.seed, self.loop.episode)
        obs, _ = self.env.reset(seed=seed)
        if self.env_steps == 0 and self.loop.episode == 0 and not self.loop.actions:
            self.episode_start()
        for action in self.loop.actions:
            obs, *_ = self.env.step(action)
        return obs

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write a version of the agent checkpoint `path` (state tensors, loop and random generator
        states, config, metadata); `path` then leads to it (see `skillplan.versions`)."""
        state = {**self.state_tensors(), "rng.torch": torch.get_rng_state()}
        if self.loop.actions:
            state["loop.actions"] = torch.from_numpy(np.stack(self.loop.actions))
        spec = self.env.spec.to_json() if self.env.spec is not None else None
        meta = {"agent": self.name, "env_steps": self.env_steps, "env_spec": spec,
                "version": skillplan.__version__,
                "loop": {**self.loop.to_json(), "numpy_rng": self.rng.bit_generator.state}}

        def write(staging: Path) -> None:
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(staging / STATE))
            (staging / CONFIG).write_text(self.config.model_dump_json(indent=2))
            (staging / METADATA).write_text(json.dumps(meta, indent=2))

        write_version(Path(path), self.env_steps, write)

    @classmethod
    def load(cls, path: Path, env: gym.Env | None = None, device: torch.device | str = "cpu") -> Agent:
        """An agent from `save`'s directory, onto `device`; the env is re-made from its saved spec unless
        given."""
        path = resolve(Path(path))
        config, meta = read_agent_files(path)
        if meta["agent"] != cls.name:
            raise CheckpointError(f"'{path}' holds a '{meta['agent']}' agent, not '{cls.name}'.")
        if env is None:
            if meta["env_spec"] is None:
                raise CheckpointError(f"'{path}' was saved from an env without a spec; pass env=...")
            env = gym.make(gym.envs.registration.EnvSpec.from_json(meta["env_spec"]))
        agent = cls(env, cls.config_class.model_validate(config), device)
        agent._load_state(path, meta)
        return agent

    def _resume(self, run_dir: Path, console: Console) -> None:
        """Load the newest readable version of the run's checkpoint; say so when it had to fall back."""
        link = run_dir / AGENT_DIR
        found = candidates(link, (STATE, CONFIG, METADATA))
        if not found:
            raise CheckpointError(f"Nothing to resume: '{link}' does not exist. Drop --resume to start a "
                                  "new run there.")

        def load(path: Path) -> None:
            config, meta = read_agent_files(path)
            self._check_same_config(config, run_dir)
            self._load_state(path, meta)

        path, _, failures = newest_readable(link, found, load)
        if failures:
            console.print(f"[yellow]Newer checkpoint versions could not be read ({'; '.join(failures)}). "
                          f"Resuming from {path} (env step {self.env_steps:,}).[/yellow]")

    def _check_same_config(self, config: dict[str, Any], run_dir: Path) -> None:
        saved = self.config_class.model_validate(config)
        if saved != self.config:
            diffs = [f"{k}: {getattr(saved, k)} → {getattr(self.config, k)}"
                     for k in type(self.config).model_fields if getattr(saved, k) != getattr(self.config, k)]
            raise ConfigError(f"--resume on '{run_dir}' with a different config: {'; '.join(diffs)}. "
                              "Resume with the original options, or start a new --out.")

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        """The agent's tensors, its step, and (in checkpoints that hold them) loop and generator states."""
        try:
            state = load_file(str(path / STATE))
            self.load_state_tensors(state)
        except Exception as exc:
            raise CheckpointError(f"'{path / STATE}' is corrupt or from another agent setup: {exc}") from None
        self.env_steps = int(meta["env_steps"])
        saved = meta.get("loop")
        if saved is None:  # an earlier release's checkpoint: the run goes on from a fresh episode
            self.loop = LoopState()
            return
        actions = state.get("loop.actions")
        self.loop = LoopState(
            episode=saved["episode"], actions=list(actions.numpy()) if actions is not None else [],
            episode_return=saved["episode_return"], since_update=saved["since_update"],
            losses=saved["losses"], next_eval=saved["next_eval"], next_ckpt=saved["next_ckpt"],
        )
        self.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(state["rng.torch"])

    def _check_finite(self, losses: dict[str, float], run_dir: Path | None) -> None:
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            kept = (f"The last good checkpoint is kept in {run_dir / AGENT_DIR}." if run_dir is not None
                    and os.path.lexists(run_dir / AGENT_DIR) else "No checkpoint had been written yet.")
            raise TrainingDivergedError(
                f"Training diverged at env step {self.env_steps}: {', '.join(bad)} became NaN or inf. "
                f"{kept} Lower the learning rate or check the rewards."
            )


def frozen_skill_model(env: gym.Env, agent: str):
    """The skill env's pretrained `SkillModel`, frozen; a clear error on an env without one."""
    try:
        return env.get_wrapper_attr("skill_model").requires_grad_(False)
    except AttributeError:
        raise ConfigError(
            f"{agent} acts in skill space: it needs a skill environment, e.g. "
            "gym.make('SkillKitchen-v0', prior=DIR); this env has no skill model. "
            "Use --agent sac for the low-level env."
        ) from None


def on_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` itself on the CPU, else a copy on `device`: the env keeps decoding with the original."""
    return model if device.type == "cpu" else copy.deepcopy(model).to(device)


def optimizer_tensors(optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
    """Optimizer states (Adam moments, step counts) as flat `name.param.field` tensors for safetensors."""
    out = {}
    for name, optimizer in optimizers.items():
        for i, entry in optimizer.state_dict()["state"].items():
            for field, value in entry.items():
                out[f"{name}.{i}.{field}"] = torch.as_tensor(value)
    return out


def load_optimizer_tensors(
    optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor]
) -> None:
    """Inverse of `optimizer_tensors`; keys of other prefixes are ignored."""
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        for key, value in tensors.items():
            prefix, _, rest = key.partition(".")
            if prefix == name:
                i, field = rest.split(".", 1)
                state["state"].setdefault(int(i), {})[field] = value
        optimizer.load_state_dict(state)


def read_agent_files(path: Path) -> tuple[dict, dict]:
    """An agent directory's config and metadata; a clear error when it is not one."""
    missing = [f for f in (STATE, CONFIG, METADATA) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"'{path}' is not an agent checkpoint: {', '.join(missing)} missing. An agent "
                              f"directory holds {STATE}, {CONFIG} and {METADATA}, as written by "
                              "`skillplan train`.")
    try:
        return json.loads((path / CONFIG).read_text()), json.loads((path / METADATA).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"'{path}' has corrupt JSON files ({exc}).") from None


def _fresh_copy(env: gym.Env) -> gym.Env:
    """A second instance of `env` for evaluation, re-made from its spec when it has one.

    Making it draws no numbers from the run's torch generator (a skill env builds a model).
    """
    if env.spec is None:
        return env
    with torch.random.fork_rng():
        return gym.make(env.spec)


def plot_learning_curve(log: RunLog, path: Path, title: str) -> None:
    """Evaluation return (and subtasks / success) against env steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c for c in log.columns() if c.startswith("eval/")]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        ax.plot(*log.series(name), marker="o")
        ax.set_title(f"{title}: {name}")
        ax.set_xlabel("env steps")
    save_figure(fig, path)
