"""Batched image transforms on the tensor's device (no per-sample Python loop).

Images are float (B, 3, H, W) in [0, 1] before ``normalize``.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (RGB in [0, 1])
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> ImageNet-normalized network input."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def denormalize_255(inputs: torch.Tensor) -> torch.Tensor:
    """Network input -> RGB in [0, 255] (what the dense CRF loss compares)."""
    mean = inputs.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = inputs.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((inputs * std + mean) * 255.0).clamp(0, 255)


def random_crop_flip(
    images: torch.Tensor, size: int, generator: torch.Generator | None = None, flip: bool = True
) -> torch.Tensor:
    """Random ``size`` x ``size`` crop per sample plus horizontal flip with p = 0.5.

    images: (B, C, R, R) with R >= size. One gather for the whole batch. The random draws
    come from ``generator`` (CPU) so a run is reproducible whatever the device.
    """
    b, _, h, w = images.shape
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from {h}x{w} images")
    oy = torch.randint(0, h - size + 1, (b,), generator=generator)
    ox = torch.randint(0, w - size + 1, (b,), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    ar = torch.arange(size)
    ys = oy[:, None] + ar[None, :]
    xs = ox[:, None] + torch.where(flips[:, None], size - 1 - ar[None, :], ar[None, :])
    dev = images.device
    bidx = torch.arange(b, device=dev)[:, None, None]
    out = images[bidx, :, ys.to(dev)[:, :, None], xs.to(dev)[:, None, :]]  # (B, S, S, C)
    return out.permute(0, 3, 1, 2).contiguous()
