"""Partial cross-entropy on seed pixels (labels 1 / 0 / IGNORE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fcam_nb.losses.base import LossTerm, TermInputs
from fcam_nb.sampling import IGNORE


def partial_cross_entropy(logits: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled pixels. logits (B, 2, H, W), seeds int64 (B, H, W).

    ``L = -1/|Omega| sum_{p in Omega} log S_{y_p}(p)`` over the seed pixels Omega.
    Returns 0 (with a graph) when no pixel is labelled.
    """
    if logits.shape[0] != seeds.shape[0] or logits.shape[-2:] != seeds.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and seeds {tuple(seeds.shape)} differ")
    count = (seeds != IGNORE).sum().clamp_min(1)  # no host sync
    total = F.cross_entropy(logits.float(), seeds, ignore_index=IGNORE, reduction="sum")
    return total / count


class PartialCELoss(LossTerm):
    """``weight * partial_cross_entropy`` (the paper's alpha; always on)."""

    name = "pce"

    def __init__(self, weight: float = 1.0, **activity) -> None:
        super().__init__(**activity)
        self.weight = weight

    def term(self, inputs: TermInputs) -> torch.Tensor:
        return self.weight * partial_cross_entropy(inputs.logits, inputs.seeds)

    @classmethod
    def from_config(cls, cfg) -> PartialCELoss:
        return cls(weight=cfg.pce_weight)
