"""`SkillModel`: one model holding the skill VAE, the prior, the skill dynamics and the PU networks.

Its public methods take raw observations and actions (flat or dict observations) and normalise
inside; the submodules work on normalised tensors and are what pretraining optimises.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skillplan.checkpoint import SkillMetadata, read_checkpoint, write_checkpoint
from skillplan.config import RunConfig
from skillplan.data.flatten import ObservationLayout
from skillplan.errors import CheckpointError
from skillplan.models.distributions import SkillDistribution
from skillplan.models.dynamics import SkillDynamics
from skillplan.models.numpy_decoder import ClosedLoopNumpyDecoder
from skillplan.models.prior import SkillPrior, dominant_head
from skillplan.models.pu import SkillDiscriminator, WindowClassifier
from skillplan.models.skill_vae import DECODERS, ClosedLoopDecoder, SkillEncoder
from skillplan.models.standardize import standardize_obs

ArrayLike = torch.Tensor | np.ndarray

class SkillModel(nn.Module):
    """Skills z of H steps: encoder q(z|window), decoder, prior p(z|s), and the optional terms.

    `dynamics`, `discriminator` and `classifier` are None when the config switches them off.
    """

    def __init__(self, config: RunConfig, metadata: SkillMetadata):
        super().__init__()
        self.config, self.metadata = config, metadata
        m = config.model
        obs, act, shape = metadata.obs_dim, metadata.act_dim, (m.hidden, m.depth, m.activation)
        self.skill_encoder = SkillEncoder(obs, act, m.horizon, m.z_dim, *shape)
        self.decoder = DECODERS[m.decoder](obs, act, m.horizon, m.z_dim, *shape)
        self.prior = SkillPrior(obs, m.z_dim, *shape, family=m.prior, components=m.prior_components)
        self.dynamics = SkillDynamics(obs, m.z_dim, m.latent_dim, *shape) if m.dynamics else None
        self.discriminator = SkillDiscriminator(m.z_dim, *shape) if m.pu else None
        self.classifier = WindowClassifier(obs, act, m.horizon, *shape) if m.pu_prior else None
        # Normalisation comes from the metadata (single source), so these buffers are not saved.
        for name in ("obs_mean", "obs_std", "act_center", "act_scale"):
            values = torch.tensor(getattr(metadata, name), dtype=torch.float32)
            self.register_buffer(name, values, persistent=False)

    # ---- normalisation -------------------------------------------------------------------------
    @property
    def layout(self) -> ObservationLayout:
        """How raw (possibly dict) observations flatten into the model's state vector."""
        meta = self.metadata
        return ObservationLayout(tuple(meta.obs_keys), meta.obs_dim, tuple(meta.obs_dims or ()))

    def normalize_obs(self, obs: ArrayLike | Mapping[str, np.ndarray]) -> torch.Tensor:
        if isinstance(obs, Mapping):
            obs = self.layout.flatten(obs)
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.obs_mean.device)
        return standardize_obs(obs, self.obs_mean, self.obs_std)

    def normalize_action(self, action: ArrayLike) -> torch.Tensor:
        action = torch.as_tensor(action, dtype=torch.float32, device=self.act_center.device)
        return (action - self.act_center) / self.act_scale

    def denormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.metadata.act_bounded:
            action = action.clamp(-1.0, 1.0)
        return action * self.act_scale + self.act_center

    # ---- the public API used by agents -----------------------------------------------------------
    def prior_dist(self, obs: ArrayLike | Mapping[str, np.ndarray]) -> SkillDistribution:
        """p(z | s) for raw states (..., obs_dim): per-dimension Normals, or a mixture over z vectors."""
        return self.prior_from_params(self.prior_params(obs))

    def prior_params(self, obs: ArrayLike | Mapping[str, np.ndarray]) -> torch.Tensor:
        """The prior network's output for raw states: `prior_dist` in one tensor, for caching."""
        return self.prior.net(self.normalize_obs(obs))

    def prior_from_params(self, params: torch.Tensor) -> SkillDistribution:
        """p(z | s) from `prior_params(s)`."""
        return self.prior.distribution(params).to_torch()

    def encode_skill(self, obs_seq: ArrayLike, act_seq: ArrayLike) -> torch.distributions.Normal:
        """q(z | s_0..s_{H-1}, a_0..a_{H-1}) of raw states and actions, (..., H, dim) each."""
        return self.skill_encoder(self.normalize_obs(obs_seq), self.normalize_action(act_seq)).to_torch()

    def decode_action(
        self, obs: ArrayLike | Mapping[str, np.ndarray], z: ArrayLike, step: int = 0
    ) -> torch.Tensor:
        """The raw action skill z takes at raw state `obs`, `step` steps into the skill.

        The closed-loop decoder reads the state; the open-loop one reads `step` (0..H-1).
        """
        z = torch.as_tensor(z, dtype=torch.float32, device=self.obs_mean.device)
        return self.denormalize_action(self.decoder.action(self.normalize_obs(obs), z, step))

    def encode_state(self, obs: ArrayLike | Mapping[str, np.ndarray]) -> torch.Tensor:
        """Latent state h = E(s) of the skill dynamics."""
        return self._require_dynamics().encoder(self.normalize_obs(obs))

    def predict_latent(self, h: torch.Tensor, z: ArrayLike) -> torch.Tensor:
        """ĥ: the latent state after executing skill z (H low-level steps) from h."""
        return self._require_dynamics().predict(h, torch.as_tensor(z, dtype=torch.float32))

    def decode_state(self, h: torch.Tensor) -> torch.Tensor:
        """The raw state O(h) a latent state stands for."""
        return self._require_dynamics().obs_decoder(h) * self.obs_std + self.obs_mean

    # ---- what agents and the skill wrapper build from the model -------------------------------------
    @property
    def has_dynamics(self) -> bool:
        """Whether the model was pretrained with skill dynamics (what CEM plans through)."""
        return self.dynamics is not None

    @property
    def decodes_closed_loop(self) -> bool:
        """Whether the decoder reads the state at every step (else it plans all H actions from z)."""
        return isinstance(self.decoder, ClosedLoopDecoder)

    def decode_plan(self, z: ArrayLike) -> torch.Tensor:
        """An open-loop skill's raw actions (..., H, act_dim) for skills z (..., z_dim)."""
        if self.decodes_closed_loop:
            raise CheckpointError("A closed-loop decoder has no plan: its actions depend on the states met.")
        z = torch.as_tensor(z, dtype=torch.float32, device=self.obs_mean.device)
        return self.denormalize_action(self.decoder.sequence(z))

    def numpy_decoder(self) -> ClosedLoopNumpyDecoder:
        """The closed-loop decoder in NumPy: (raw states, z) -> raw actions, for one state or a batch."""
        if not self.decodes_closed_loop:
            raise CheckpointError("An open-loop decoder has no state-reading NumPy form: use `decode_plan`.")
        return ClosedLoopNumpyDecoder(self)

    def finetunable_dynamics(self) -> SkillDynamics:
        """A trainable copy of the skill dynamics (E, D, O): finetuning it leaves this model as it was."""
        return copy.deepcopy(self._require_dynamics()).requires_grad_(True)

    def prior_policy(self) -> nn.Sequential:
        """A trainable copy of the prior network, then the head that turns its output into one Gaussian's
        [means | log-stds] over z: the policy starts as the prior (a mixture: its dominant component).
        It reads standardised states (`standardize_obs`).
        """
        return nn.Sequential(copy.deepcopy(self.prior.net), dominant_head(self.prior)).requires_grad_(True)

    def _require_dynamics(self) -> SkillDynamics:
        if self.dynamics is None:
            raise CheckpointError(
                f"This skill model was trained without skill dynamics (preset '{self.config.preset}'); "
                "pretrain with `--preset skimo` or `--preset skillplan` to get one."
            )
        return self.dynamics

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: Path, training: dict[str, torch.Tensor] | None = None) -> None:
        """Write the checkpoint directory `path` atomically (weights, config.json, metadata.json)."""
        weights = {k: v.cpu() for k, v in self.state_dict().items()}  # loads onto any device
        training = None if training is None else {k: v.cpu() for k, v in training.items()}
        write_checkpoint(Path(path), weights, self.config.model_dump(), self.metadata, training)

    @classmethod
    def load(cls, path: Path) -> SkillModel:
        """A model from a checkpoint directory, without its dataset; in eval mode."""
        weights, config, metadata = read_checkpoint(Path(path))
        try:
            model = cls(RunConfig.model_validate(config), metadata)
            model.load_state_dict(weights)
        except (ValueError, RuntimeError, KeyError) as exc:  # config/weights mismatch
            raise CheckpointError(
                f"'{path}' does not hold a consistent skillplan checkpoint: {str(exc).splitlines()[0]}. "
                "Its weights.safetensors, config.json and metadata.json must come from one "
                "`skillplan pretrain` run."
            ) from None
        return model.eval()

    def extra_repr(self) -> str:
        n_params = sum(p.numel() for p in self.parameters())
        return f"preset={self.config.preset}, params={n_params:,}"

