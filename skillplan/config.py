"""Run configuration: pydantic sections (data, model, pretrain) with defaults, presets and YAML loading.

A resolved config is built in layers, later ones winning: the preset's values, then a YAML file,
then explicit CLI options. Every section, here and in the agents' configs, rejects unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from skillplan.device import Precision
from skillplan.errors import ConfigError

PresetName = Literal["spirl", "skimo", "serla", "skillplan"]
Activation = Literal["elu", "relu"]
PriorFamily = Literal["gaussian", "mixture"]


M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """A config section: unknown keys are errors, and a nested section given as a mapping is merged
    key by key onto that field's default, so a partial section keeps the defaults it does not name."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _merge_onto_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            given = merged.get(name)
            if isinstance(given, dict) and isinstance(field.default, BaseModel):
                merged[name] = _merge(field.default.model_dump(), given)
        return merged


class DataConfig(Section):
    """Which offline data to learn from and how batches mix it."""

    dataset: str = "kitchen-scripted"
    expert_dataset: str | None = Field(None, description="Minari id of expert data; default: the catalog's")
    holdout_fraction: float = Field(0.1, gt=0, lt=1)
    expert_fraction: float = Field(0.25, ge=0, lt=1, description="share of each batch drawn from expert data")
    obs_dims: list[int] | None = Field(
        None, description="indices of the flattened observation to keep, as a list or a string like "
        "'0-8,18-38'; 'positions': the dataset's position dims (FrankaKitchen: robot and object "
        "positions, no velocities); None keeps all"
    )

    @field_validator("obs_dims", mode="before")
    @classmethod
    def _parse_obs_dims(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip() == "positions":
            return _position_dims(info.data.get("dataset"))
        return _index_ranges(value)

    @field_validator("obs_dims")
    @classmethod
    def _check_obs_dims(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise PydanticCustomError("obs_dims", "keep at least one dimension, or leave it unset for all")
        repeated = sorted({index for index in value if value.count(index) > 1})
        if repeated or min(value) < 0:
            bad = f"{repeated[0]} is listed twice" if repeated else f"{min(value)} is negative"
            raise PydanticCustomError("obs_dims", f"dimension {bad}; list each kept index (0 or more) once")
        return sorted(value)


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
    free_nats: float = Field(
        0.0, ge=0, description="KL per skill, in nats (batch mean), below which β stops pressing: z keeps "
        "at least this much information"
    )
    bc_weight: float = Field(1.0, ge=0, description="λ_BC: weight of the action reconstruction MSE")
    prior_weight: float = Field(1.0, ge=0)
    consistency_weight: float = Field(2.0, ge=0)
    obs_weight: float = Field(1.0, ge=0, description="weight of the observation decoder's MSE")
    rho: float = Field(0.5, gt=0, le=1, description="ρ: discount of the i-th skill's consistency loss")
    target_tau: float = Field(0.005, gt=0, le=1, description="EMA step of the target state encoder")
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="decay of an exponential moving average of all weights, which the "
        "checkpoint exports and validation reads; training itself is unchanged (0: the last weights)"
    )
    pu_weight: float = Field(0.1, ge=0, description="λ_PU: gradient-reversal weight of the PU loss")
    class_prior: float = Field(0.3, gt=0, lt=1, description="π: expert-like share of the general data")
    pu_logit_penalty: float = Field(
        1e-3, ge=0, description="L2 penalty on the logits of both PU networks (classifier, discriminator): "
        "keeps them off the sigmoid's flat tails"
    )
    sde_eta: float = Field(0.1, ge=0, description="η: scale of the SDE latent noise")
    precision: Precision = Field(
        "auto", description="bf16 autocast for the loss; auto: bf16 where the device has bf16 units, "
        "else fp32"
    )
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
    "skillplan": {
        "model": {"depth": 5, "activation": "relu", "prior": "mixture"},
        "pretrain": {"beta": 5e-3, "ema_decay": 0.999},
    },
}


@dataclass(frozen=True)
class Source:
    """Where a preset value comes from: `key` ('section.field') is `value` in `presets`.

    No presets: the field's default, which every preset that does not set the key keeps.
    The evidence behind each skillplan choice is in docs/presets.md.
    """

    key: str
    value: Any
    source: str
    presets: tuple[str, ...] = ()


ALL_SKILL = ("spirl", "skimo", "serla", "skillplan")
PROVENANCE: tuple[Source, ...] = (
    Source("model.horizon", 10, "SPiRL kitchen `n_rollout_steps=10`; SkiMo `skill_horizon: 10`"),
    Source("model.z_dim", 10, "SPiRL `nz_vae=10`; SkiMo `skill_dim: 10`"),
    Source("model.hidden", 128, "SPiRL kitchen `nz_mid=128`; SkiMo kitchen `num_units: 128`"),
    Source("model.decoder", "closed", "SPiRL's closed-loop variant (`hierarchical_cl`), its authors' pick"),
    Source("model.depth", 5, "SPiRL kitchen `n_processing_layers=5`", ("spirl", "skillplan")),
    Source("model.depth", 4, "SkiMo kitchen `num_layers: 4`", ("skimo",)),
    Source("model.depth", 2, "skillplan choice for CPU speed", ("serla",)),
    Source("model.activation", "elu", "SkiMo `dense_act: elu` (SPiRL: LeakyReLU)",
           ("spirl", "skimo", "serla")),
    Source("model.activation", "relu", "skillplan choice: faster on CPU, better prior rollouts at depth 5",
           ("skillplan",)),
    Source("model.latent_dim", 256, "SkiMo kitchen `state_dim: 256`", ("skimo",)),
    Source("model.latent_dim", 128, "skillplan choice for CPU throughput", ("skillplan",)),
    Source("model.dynamics", True, "SkiMo's jointly trained skill dynamics", ("skimo", "skillplan")),
    Source("model.dynamics", False, "SPiRL and SeRLA learn no skill dynamics", ("spirl", "serla")),
    Source("model.pu", True, "SeRLA's adversarial PU discriminator", ("serla", "skillplan")),
    Source("model.pu", False, "SPiRL and SkiMo learn from unlabeled data only", ("spirl", "skimo")),
    Source("model.sde", True, "SeRLA's skill-level data enhancement", ("serla", "skillplan")),
    Source("model.sde", False, "not part of SPiRL or SkiMo", ("spirl", "skimo")),
    Source("model.pu_prior", True, "skillplan choice: the prior leans toward expert-like windows",
           ("skillplan",)),
    Source("model.pu_prior", False, "the published methods fit the prior to all data",
           ("spirl", "skimo", "serla")),
    Source("pretrain.beta", 5e-4, "SPiRL kitchen `kl_div_weight=5e-4`", ("spirl", "serla")),
    Source("pretrain.beta", 1e-4, "SkiMo `scalars.encoder_kl: 1e-4`", ("skimo",)),
    Source("pretrain.beta", 5e-3, "skillplan choice: keeps z small enough for the prior to match",
           ("skillplan",)),
    Source("pretrain.free_nats", 0.0, "no floor, as the papers' β-VAE; a floor broke the skillplan "
           "preset's prior (docs/results.md)"),
    Source("pretrain.lr", 1e-3, "SPiRL (Adam, lr 1e-3); SkiMo `joint_lr: 1e-3`", ALL_SKILL),
    Source("pretrain.n_skills", 1, "one skill per window: no dynamics to roll out", ("spirl", "serla")),
    Source("pretrain.n_skills", 10, "SkiMo `n_skill: 10`", ("skimo",)),
    Source("pretrain.n_skills", 5, "skillplan choice: the 5-skill-ahead check at half SkiMo's cost",
           ("skillplan",)),
    Source("pretrain.bc_weight", 2.0, "SkiMo kitchen `scalars.ll_actor: 2`", ("skimo",)),
    Source("pretrain.bc_weight", 1.0, "SPiRL's unweighted reconstruction", ("spirl", "serla", "skillplan")),
    Source("pretrain.consistency_weight", 2.0, "SkiMo `scalars.consistency: 2`", ("skimo", "skillplan")),
    Source("pretrain.obs_weight", 1.0, "SkiMo `scalars.hl_model: 1`", ("skimo", "skillplan")),
    Source("pretrain.rho", 0.5, "SkiMo `scalars.rho: 0.5`", ("skimo", "skillplan")),
    Source("pretrain.target_tau", 0.005, "SkiMo `target_update_tau: 0.99` every `target_update_freq: 2`",
           ("skimo", "skillplan")),
    Source("pretrain.ema_decay", 0.0, "the papers export their last weights", ("spirl", "skimo", "serla")),
    Source("pretrain.ema_decay", 0.999, "skillplan choice: single checkpoints' prior rollouts swing by "
           "2 subtasks, their EMA's do not (docs/results.md)", ("skillplan",)),
    Source("pretrain.grad_clip", 100.0, "SkiMo `grad_clip: 100.0`", ALL_SKILL),
    Source("pretrain.prior_weight", 1.0, "SPiRL (prior KL weight 1); SkiMo `scalars.hl_prior: 1`"),
    Source("pretrain.pu_weight", 0.1, "skillplan choice (SeRLA's text gives no value we could find)"),
    Source("pretrain.class_prior", 0.3, "skillplan choice: the expert-like share of the general data"),
    Source("pretrain.sde_eta", 0.1, "skillplan choice (SeRLA's text gives no value we could find)"),
    Source("pretrain.pu_logit_penalty", 1e-3, "skillplan choice: keeps both PU networks' logits off "
           "the sigmoid's flat tails"),
    Source("pretrain.batch_size", 256, "skillplan default for every preset (SkiMo kitchen: 512)"),
    Source("model.prior", "gaussian", "SPiRL, SkiMo and SeRLA's diagonal Gaussian",
           ("spirl", "skimo", "serla")),
    Source("model.prior", "mixture", "skillplan choice: better prior rollouts on the D4RL-structured "
           "kitchen data (docs/prior.md)", ("skillplan",)),
)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path, holds: str = "the sections data, model and pretrain") -> dict[str, Any]:
    """A YAML config file as a non-empty mapping, or a `ConfigError` saying why it can't be used.

    `holds` describes what the file should contain, for the message.
    """
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file '{path}' cannot be read: {exc}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if loaded is None:
        raise ConfigError(f"Config file '{path}' is empty. It should hold a mapping of {holds}; "
                          "leave out --config to use the defaults.")
    if not isinstance(loaded, dict):
        raise ConfigError(f"Config file '{path}' holds a {type(loaded).__name__}, not a mapping. It should "
                          f"hold a mapping of {holds}.")
    return loaded


def validated(cls: type[M], data: dict[str, Any], *, name: str, source: Path | None = None) -> M:
    """`data` as a `cls`, or one `ConfigError` naming every unknown key and bad value with its section.

    `name` names the top level in messages (e.g. 'ssac'); `source` is the file the values came from.
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(cls, name, err) for err in exc.errors())
        origin = f" in '{source}'" if source is not None else ""
        raise ConfigError(f"Invalid {name} configuration{origin}: {problems}.") from None


def _describe(cls: type[BaseModel], name: str, err: Any) -> str:
    """One validation error in words, e.g. "unknown key 'lrr' in section 'sac' (its keys: hidden, ...)"."""
    loc = [str(part) for part in err["loc"]]
    if err["type"] == "extra_forbidden":
        section = f"in section '{'.'.join(loc[:-1])}'" if len(loc) > 1 else "at the top level"
        keys = ", ".join(_section_keys(cls, loc[:-1]))
        return f"unknown key '{loc[-1]}' {section} (its keys: {keys})"
    value = repr(err["input"])
    value = value if len(value) <= 60 else value[:57] + "..."
    where = ".".join(loc) or name
    return f"{where}: {err['msg']} (got {value})" if loc else f"{where}: {err['msg']}"


def _section_keys(cls: type[BaseModel], path: list[str]) -> list[str]:
    """The keys of the section at `path` inside `cls` (nested pydantic models)."""
    for part in path:
        annotation = cls.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        cls = annotation
    return list(cls.model_fields)


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
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'. Presets: {', '.join(PRESETS)}.")
    layered = _merge(_merge(PRESETS[name], from_yaml), overrides or {})
    layered["preset"] = name
    return validated(RunConfig, layered, name="run", source=yaml_path)


def _index_ranges(text: str) -> list[int]:
    """'0-8,18-38,40' -> [0, ..., 8, 18, ..., 38, 40]: comma-separated indices and inclusive ranges."""
    indices: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not (first.isdecimal() and (not dash or last.isdecimal())) or (dash and int(last) < int(first)):
            raise PydanticCustomError(
                "obs_dims", f"'{part.strip()}' is not an index or an ascending range of indices; write "
                "comma-separated indices and ranges, e.g. '0-8,18-38'"
            )
        indices.extend(range(int(first), int(last if dash else first) + 1))
    return indices


def _position_dims(dataset: str | None) -> list[int]:
    """The catalog's position dimensions of `dataset`, for `obs_dims: positions`."""
    from skillplan.data.catalog import resolve

    spec = resolve(dataset) if dataset is not None else None
    if spec is None or spec.position_dims is None:
        raise PydanticCustomError(
            "obs_dims", f"'positions' is known only for the kitchen datasets of the catalog, not for "
            f"'{dataset}'; give the indices to keep instead, e.g. '0-8,18-38'"
        )
    return list(spec.position_dims)


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
