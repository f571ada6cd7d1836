"""Absolute size constraint with the extended log-barrier (Kervadec et al. 2019), as in F-CAM.

For each image and class c in {background, foreground}: ``f_c = -sum_pixels S_c`` must be
< 0 (neither region empty). ``psi_t(f) = -(1/t) log(-f)`` if ``f <= -1/t^2`` else
``t f - (1/t) log(1/t^2) + 1/t``. Loss = ``lambda / 2 * (psi_bg + psi_fg)`` averaged over the
batch. t starts at 1, is multiplied by 1.01 after every epoch and capped at 10.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def extended_log_barrier(f: torch.Tensor, t: float) -> torch.Tensor:
    """psi_t(f), element-wise; smooth and defined for any f (linear beyond -1/t^2)."""
    if t <= 0:
        raise ValueError(f"t must be > 0, got {t}")
    threshold = -1.0 / (t * t)
    inside = -torch.log(-f.clamp(max=threshold)) / t
    outside = t * f - math.log(1.0 / (t * t)) / t + 1.0 / t
    return torch.where(f <= threshold, inside, outside)


class SizeConstraint(nn.Module):
    """ELB size loss on softmax maps (B, 2, H, W) -> scalar. ``t`` follows ``step_epoch``."""

    def __init__(self, weight: float = 0.1, t0: float = 1.0, growth: float = 1.01,
                 t_max: float = 10.0) -> None:
        super().__init__()
        self.weight, self.growth, self.t_max = weight, growth, t_max
        self.t = t0

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.ndim != 4 or probs.shape[1] != 2:
            raise ValueError(f"probs must be (B, 2, H, W), got {tuple(probs.shape)}")
        f = -probs.flatten(2).sum(dim=2)  # (B, 2)
        psi = extended_log_barrier(f, self.t)
        return self.weight / 2 * psi.sum(dim=1).mean()

    def step_epoch(self) -> None:
        """Grow t after an epoch: t <- min(t * growth, t_max)."""
        self.t = min(self.t * self.growth, self.t_max)

    def state_dict(self, *args, **kwargs):  # noqa: D102 - t is checkpointed
        return {"t": self.t}

    def load_state_dict(self, state, strict: bool = True):  # noqa: D102
        self.t = float(state["t"])
