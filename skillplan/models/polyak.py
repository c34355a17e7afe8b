"""The one EMA (polyak) update of target networks."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Move every parameter of `target` a step `tau` toward `online`'s: θ' ← θ' + τ (θ − θ')."""
    # One fused kernel over all parameters, as torch's own EMA (swa_utils.get_ema_multi_avg_fn) does.
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)
