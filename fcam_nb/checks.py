"""Input checks shared by the CAM methods, the sampling regions and the metrics' callers."""

from __future__ import annotations

import torch


def check_maps(maps: torch.Tensor, name: str = "maps", ndim: int = 3) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``maps`` has ``ndim`` dims and no NaN / inf."""
    if maps.ndim != ndim:
        dims = "(B, h, w)" if ndim == 3 else f"{ndim}-D"
        raise ValueError(f"{name} must be {dims}, got shape {tuple(maps.shape)}")
    if torch.isnan(maps).any():
        raise ValueError(f"{name} contain NaN")
    if torch.isinf(maps).any():
        raise ValueError(f"{name} contain inf")
