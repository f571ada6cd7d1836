"""Partial cross-entropy on seed pixels (labels 1 / 0 / IGNORE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fcam_nb.sampling import IGNORE


def partial_cross_entropy(logits: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled pixels. logits (B, 2, H, W), seeds int64 (B, H, W).

    Returns 0 (with a graph) when no pixel is labelled.
    """
    if logits.shape[0] != seeds.shape[0] or logits.shape[-2:] != seeds.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and seeds {tuple(seeds.shape)} differ")
    count = (seeds != IGNORE).sum().clamp_min(1)  # no host sync
    total = F.cross_entropy(logits.float(), seeds, ignore_index=IGNORE, reduction="sum")
    return total / count
