"""Absolute size constraint with the extended log-barrier (Kervadec et al. 2019), as in F-CAM.

For each image and class c in {background, foreground}: ``f_c = -sum_pixels S_c`` must be
< 0 (neither region empty). ``psi_t(f) = -(1/t) log(-f)`` if ``f <= -1/t^2`` else
``t f - (1/t) log(1/t^2) + 1/t``. Loss = ``lambda / 2 * (psi_bg + psi_fg)`` averaged over the
batch. t starts at 1, is multiplied by 1.01 after every epoch and capped at 10.

Inside the barrier the gradient is ``d psi / d f = -1 / (t f)``: each pixel is pulled towards
class c with a force ``1 / (t sum S_c)``, so the smaller region is pulled harder.
"""

from __future__ import annotations

import math

import torch

from fcam_nb.losses.base import LossTerm, TermInputs


def extended_log_barrier(f: torch.Tensor, t: float) -> torch.Tensor:
    """psi_t(f), element-wise; smooth and defined for any f (linear beyond -1/t^2)."""
    if t <= 0:
        raise ValueError(f"t must be > 0, got {t}")
    threshold = -1.0 / (t * t)
    inside = -torch.log(-f.clamp(max=threshold)) / t
    outside = t * f - math.log(1.0 / (t * t)) / t + 1.0 / t
    return torch.where(f <= threshold, inside, outside)


class SizeConstraint(LossTerm):
    """ELB size loss on softmax maps (B, 2, H, W) -> scalar. ``t`` follows ``step_epoch`` and is
    saved in the module's ``state_dict`` (extra state), also when nested in another module."""

    name = "asc"

    def __init__(self, weight: float = 0.1, t0: float = 1.0, growth: float = 1.01,
                 t_max: float = 10.0, **activity) -> None:
        super().__init__(**activity)
        self.weight, self.growth, self.t_max = weight, growth, t_max
        self.t = t0

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.ndim != 4 or probs.shape[1] != 2:
            raise ValueError(f"probs must be (B, 2, H, W), got {tuple(probs.shape)}")
        f = -probs.flatten(2).sum(dim=2)  # (B, 2)
        psi = extended_log_barrier(f, self.t)
        return self.weight / 2 * psi.sum(dim=1).mean()

    def term(self, inputs: TermInputs) -> torch.Tensor:
        return self(inputs.probs)

    @classmethod
    def from_config(cls, cfg) -> SizeConstraint | None:
        return cls(weight=cfg.asc_weight) if cfg.use_asc else None

    def step_epoch(self) -> None:
        """Grow t after an epoch: t <- min(t * growth, t_max)."""
        self.t = min(self.t * self.growth, self.t_max)

    def get_extra_state(self) -> dict:
        return {"t": self.t}

    def set_extra_state(self, state: dict) -> None:
        self.t = float(state["t"])
