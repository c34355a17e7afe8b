"""How every network sees a state: standardised by the data's statistics and clipped."""

from __future__ import annotations

import torch

# Standardised states are clipped to ±OBS_CLIP (as Stable-Baselines3's VecNormalize clips at 10). A
# dimension the data never moved (an untouched object) has its std at the 1e-3 floor, so an agent
# that knocks the object would otherwise feed the networks values of ±800 and wreck every latent.
OBS_CLIP = 10.0


def standardize_obs(obs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(obs − mean) / std, clipped to ±OBS_CLIP: the one way every network sees a state."""
    return ((obs - mean) / std).clamp(-OBS_CLIP, OBS_CLIP)
