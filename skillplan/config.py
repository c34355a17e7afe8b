"""Run configuration: pydantic sections (data, model, pretrain) with defaults, presets and YAML loading.

A resolved config is built in layers, later ones winning: the preset's values, then a YAML file,
then explicit CLI options. Later issues add their own sections (ssac, cem) next to these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skillplan.errors import ConfigError

PresetName = Literal["spirl", "skimo", "serla", "skillplan"]
Activation = Literal["elu", "relu"]
PriorFamily = Literal["gaussian", "mixture"]


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo in a YAML file can't pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    """Which offline data to learn from and how batches mix it."""

    dataset: str = "kitchen-scripted"
    expert_dataset: str | None = Field(None, description="Minari id of expert data; default: the catalog's")
    holdout_fraction: float = Field(0.1, gt=0, lt=1)
    expert_fraction: float = Field(0.25, ge=0, lt=1, description="share of each batch drawn from expert data")


class ModelConfig(Section):
    """The shape of `SkillModel` and which of its terms exist."""

    horizon: int = Field(10, ge=1, description="H: low-level steps per skill")
    z_dim: int = Field(10, ge=1)
    hidden: int = Field(128, ge=8, description="width of every MLP")
    depth: int = Field(2, ge=1, description="hidden layers per MLP")
    activation: Activation = Field("elu", description="elu (SkiMo) | relu (faster on CPU)")
    latent_dim: int = Field(128, ge=4, description="size of the skill dynamics' latent state h")
    decoder: Literal["closed", "open"] = "closed"
    dynamics: bool = True
    pu: bool = True
    pu_prior: bool = Field(True, description="weight the prior loss by a PU classifier's expert probability")
    sde: bool = True
    prior: PriorFamily = Field(
        "gaussian", description="gaussian (SPiRL, SkiMo) | mixture: K diagonal Gaussians, for states with "
        "several distinct skills"
    )
    prior_components: int = Field(5, ge=2, le=64, description="K: components of a mixture prior")


class PretrainConfig(Section):
    """The joint objective's weights and the training loop's settings."""

    steps: int = Field(20_000, ge=1)
    batch_size: int = Field(256, ge=2)
    n_skills: int = Field(5, ge=1, description="N: consecutive skills per window (latent consistency)")
    lr: float = Field(1e-3, gt=0)
    grad_clip: float = Field(100.0, gt=0)
    seed: int = 0
    beta: float = Field(5e-4, ge=0, description="weight of KL(q(z|skill) ‖ N(0, I))")
    bc_weight: float = Field(1.0, ge=0, description="λ_BC: weight of the action reconstruction MSE")
    prior_weight: float = Field(1.0, ge=0)
    consistency_weight: float = Field(2.0, ge=0)
    obs_weight: float = Field(1.0, ge=0, description="weight of the observation decoder's MSE")
    rho: float = Field(0.5, gt=0, le=1, description="ρ: discount of the i-th skill's consistency loss")
    target_tau: float = Field(0.005, gt=0, le=1, description="EMA step of the target state encoder")
    pu_weight: float = Field(0.1, ge=0, description="λ_PU: gradient-reversal weight of the PU loss")
    class_prior: float = Field(0.3, gt=0, lt=1, description="π: expert-like share of the general data")
    pu_logit_penalty: float = Field(
        1e-3, ge=0, description="L2 penalty on the PU classifier's logits: keeps them off the flat tails"
    )
    sde_eta: float = Field(0.1, ge=0, description="η: scale of the SDE latent noise")
    precision: Literal["fp32", "bf16"] = "bf16"
    compile: bool = Field(False, description="torch.compile the joint loss (slow first step)")
    threads: int = Field(2, ge=1)
    log_every: int = Field(50, ge=1)
    eval_every: int = Field(2_000, ge=1)
    checkpoint_every: int = Field(2_000, ge=1)
    eval_windows: int = Field(2_048, ge=16)


class RunConfig(Section):
    """Everything one `skillplan pretrain` run is defined by."""

    preset: PresetName = "skillplan"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()


# Each preset switches terms and sets the values its paper or code uses; PROVENANCE says where each
# comes from. Anything not named here keeps the skillplan default above.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "spirl": {
        "model": {"dynamics": False, "pu": False, "pu_prior": False, "sde": False, "depth": 5},
        "pretrain": {"beta": 5e-4, "lr": 1e-3, "n_skills": 1},
    },
    "skimo": {
        "model": {"dynamics": True, "pu": False, "pu_prior": False, "sde": False, "depth": 4,
                  "latent_dim": 256},
        "pretrain": {"beta": 1e-4, "lr": 1e-3, "n_skills": 10, "bc_weight": 2.0, "consistency_weight": 2.0,
                     "obs_weight": 1.0, "rho": 0.5, "target_tau": 0.005, "grad_clip": 100.0},
    },
    "serla": {
        "model": {"dynamics": False, "pu": True, "pu_prior": False, "sde": True},
        "pretrain": {"beta": 5e-4, "n_skills": 1},
    },
    "skillplan": {"model": {"depth": 5, "activation": "relu"}, "pretrain": {"beta": 5e-3}},
}

PROVENANCE: dict[str, str] = {
    "model.horizon = 10": "SPiRL kitchen `n_rollout_steps=10`; SkiMo `skill_horizon: 10`",
    "model.z_dim = 10": "SPiRL (nz_vae 10); SkiMo `skill_dim: 10`",
    "model.hidden = 128": "SPiRL kitchen `nz_mid=128`; SkiMo kitchen `num_units: 128`",
    "spirl: model.depth = 5": "SPiRL kitchen `n_processing_layers=5`",
    "model.activation = elu": "SkiMo `dense_act: elu` (SPiRL: LeakyReLU); relu trains faster on CPU",
    "spirl: model.decoder = closed": "SPiRL's closed-loop variant (`hierarchical_cl`), its maintainers' pick",
    "spirl/serla: pretrain.beta = 5e-4": "SPiRL kitchen `kl_div_weight=5e-4`",
    "skillplan: pretrain.beta = 5e-3": "skillplan choice: at 5e-4 the dynamics and PU terms fill z and prior "
                                       "rollouts drop (1.10 vs 1.80 subtasks)",
    "pretrain.lr = 1e-3": "SPiRL (Adam, lr 1e-3); SkiMo `joint_lr: 1e-3`",
    "skimo: model.depth = 4": "SkiMo kitchen `num_layers: 4`",
    "skimo: model.latent_dim = 256": "SkiMo kitchen `state_dim: 256`",
    "skimo: pretrain.n_skills = 10": "SkiMo `n_skill: 10`",
    "skimo: pretrain.beta = 1e-4": "SkiMo `scalars.encoder_kl: 1e-4`",
    "skimo: pretrain.bc_weight = 2": "SkiMo kitchen `scalars.ll_actor: 2`",
    "pretrain.consistency_weight = 2": "SkiMo `scalars.consistency: 2`",
    "pretrain.obs_weight = 1": "SkiMo `scalars.hl_model: 1`",
    "pretrain.rho = 0.5": "SkiMo `scalars.rho: 0.5`",
    "pretrain.target_tau = 0.005": "SkiMo `target_update_tau: 0.99` every `target_update_freq: 2` updates",
    "pretrain.grad_clip = 100": "SkiMo `grad_clip: 100.0`",
    "pretrain.prior_weight = 1": "SPiRL (prior KL weight 1); SkiMo `scalars.hl_prior: 1`",
    "pretrain.pu_weight = 0.1": "skillplan choice (SeRLA's text gives no value we could find)",
    "pretrain.class_prior = 0.3": "skillplan choice (fraction of expert-like skills in general data)",
    "pretrain.sde_eta = 0.1": "skillplan choice (SeRLA's text gives no value we could find)",
    "skillplan: pretrain.n_skills = 5": "skillplan choice: the 5-skill-ahead check at half SkiMo's cost",
    "skillplan: model.depth = 5": "SPiRL's depth: at depth 2 prior rollouts fell from 1.7 to 0.8 subtasks",
    "skillplan: model.activation = relu": "skillplan choice: ELU's bf16 kernels cost 1.24x the training time",
    "skillplan: model.latent_dim = 128": "skillplan choice for CPU throughput (SkiMo: 256)",
    "pretrain.pu_logit_penalty = 1e-3": "skillplan choice: without it the kitchen classifier's logits hit "
                                        "±1000 and its prior opened with the microwave in 1 of 100 rollouts; "
                                        "with it, 27 (no PU-weighted prior: 14; the data: 22%)",
    "pretrain.batch_size = 256": "skillplan default for all presets (SkiMo kitchen pretrains at 512)",
    "model.prior = gaussian": "SPiRL, SkiMo and SeRLA's diagonal Gaussian; the mixture is opt-in until "
                              "measured at full length (docs/prior.md)",
}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML config file as a dict, or a `ConfigError` saying why it can't be used."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping with sections data, model, pretrain.")
    return loaded


def resolve_config(
    preset: str | None = None,
    yaml_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Build a run config: preset values, then the YAML file, then `overrides` (nested dicts).

    The preset comes from `preset`, else from the YAML file's `preset` key, else 'skillplan'.
    """
    from_yaml = read_yaml(yaml_path) if yaml_path is not None else {}
    name = preset or from_yaml.get("preset") or "skillplan"
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'. Presets: {', '.join(PRESETS)}.")
    layered = _merge(_merge(PRESETS[name], from_yaml), overrides or {})
    layered["preset"] = name
    try:
        return RunConfig.model_validate(layered)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = f" (from {yaml_path})" if yaml_path else ""
        raise ConfigError(f"Invalid configuration{source}: {problems}.") from None


def config_differences(old: RunConfig, new: RunConfig, ignore: tuple[str, ...] = ()) -> list[str]:
    """'section.key: old -> new' for every setting that differs, except the dotted keys in `ignore`."""
    old_flat, new_flat = _flatten(old.model_dump()), _flatten(new.model_dump())
    return [
        f"{key}: {old_flat.get(key)!r} -> {new_flat.get(key)!r}"
        for key in sorted(set(old_flat) | set(new_flat))
        if key not in ignore and old_flat.get(key) != new_flat.get(key)
    ]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
