"""Sampling regions and seed pixels from CAMs (F-CAM, Sec. 3), batched on the maps' device.

Per image and training step (fresh randomness each call):

1. ``u8 = uint8(cam * 255)``; Otsu threshold on ``u8`` (equal to skimage's ``threshold_otsu``),
   clamped to [1, 254]; foreground region = ``u8 > thr`` eroded with an 11x11 square once
   (reverted when the erosion empties it);
2. background region = the ``n_bg`` fraction of pixels with the lowest CAM;
3. ``n_fg_seeds`` / ``n_bg_seeds`` random pixels drawn in each region, dilated by ``ksz``;
4. labels 1 (foreground), 0 (background), ``IGNORE`` elsewhere and where both overlap.

A constant CAM gives an all-ignore label map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fcam_nb.checks import check_maps

IGNORE = -255


def otsu_threshold_uint8(u8: torch.Tensor) -> torch.Tensor:
    """Batched Otsu threshold of uint8 images (B, H, W) -> (B,) int64.

    Same arithmetic as ``skimage.filters.threshold_otsu`` on an integer image: histogram over
    the integer values min..max, between-class variance ``w1 w2 (m1 - m2)^2`` in float64, first
    argmax. A constant image returns its value.
    """
    b = u8.shape[0]
    flat = u8.reshape(b, -1).long()
    counts = torch.zeros(b, 256, dtype=torch.int64, device=u8.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    centers = torch.arange(256, device=u8.device, dtype=torch.int64)
    w1 = counts.cumsum(1)
    w2 = counts.flip(1).cumsum(1).flip(1)
    s1 = (counts * centers).cumsum(1)
    s2 = (counts * centers).flip(1).cumsum(1).flip(1)
    m1 = s1 / w1.clamp_min(1)  # int64 / int64 -> float64 division, as numpy
    m2 = s2 / w2.clamp_min(1)
    lo = flat.min(dim=1).values
    hi = flat.max(dim=1).values
    # threshold candidate t pairs class 1 = values <= t with class 2 = values > t
    var = (w1[:, :-1] * w2[:, 1:]).double() * (m1[:, :-1] - m2[:, 1:]) ** 2
    t = centers[:-1]
    valid = (t[None, :] >= lo[:, None]) & (t[None, :] < hi[:, None])
    var = torch.where(valid, var, torch.full_like(var, -1.0))
    thr = var.argmax(dim=1)
    return torch.where(hi > lo, thr, lo)


def _erode(mask: torch.Tensor, ksz: int) -> torch.Tensor:
    """Binary erosion with a ksz x ksz square; outside the image counts as foreground (cv2)."""
    inv = (~mask).float()[:, None]
    return ~(F.max_pool2d(inv, ksz, stride=1, padding=ksz // 2)[:, 0] > 0)


def _dilate(mask: torch.Tensor, ksz: int) -> torch.Tensor:
    return F.max_pool2d(mask.float()[:, None], ksz, stride=1, padding=ksz // 2)[:, 0] > 0


def foreground_region(cams: torch.Tensor, erode_ksz: int = 11) -> torch.Tensor:
    """Otsu foreground of normalized CAMs (B, H, W) in [0, 1] -> bool (B, H, W)."""
    u8 = (cams * 255).to(torch.uint8)
    thr = otsu_threshold_uint8(u8).clamp(1, 254)
    roi = u8.long() > thr[:, None, None]
    if erode_ksz > 1:
        eroded = _erode(roi, erode_ksz)
        empty = eroded.flatten(1).sum(1) == 0
        roi = torch.where(empty[:, None, None], roi, eroded)
    return roi


def background_region(cams: torch.Tensor, n_bg: float) -> torch.Tensor:
    """The ``n_bg`` fraction of lowest-CAM pixels of each map -> bool (B, H, W).

    Pixels tied with the k-th lowest value are all included (ReLU'd CAMs have many zeros; an
    index-ordered tie break would put every seed in the image's top rows).
    """
    if not 0 < n_bg < 1:
        raise ValueError(f"n_bg must be in (0, 1), got {n_bg}")
    b = cams.shape[0]
    flat = cams.reshape(b, -1)
    k = max(1, int(n_bg * flat.shape[1]))
    kth = flat.kthvalue(k, dim=1, keepdim=True).values
    return (flat <= kth).view_as(cams)


def sample_pixels(region: torch.Tensor, k: int, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Pick ``k`` distinct random pixels per map inside ``region`` (B, H, W) -> bool (B, H, W).

    Uniform without replacement (random keys, top-k); fewer when the region is smaller.
    """
    b = region.shape[0]
    flat = region.reshape(b, -1)
    keys = torch.rand(flat.shape, generator=generator).to(region.device)
    keys = torch.where(flat, keys, torch.full_like(keys, -1.0))
    top = keys.topk(min(k, flat.shape[1]), dim=1)
    out = torch.zeros_like(flat)
    out.scatter_(1, top.indices, top.values >= 0)
    return out.view_as(region)


def seed_labels(
    cams: torch.Tensor,
    n_bg: float = 0.3,
    n_fg_seeds: int = 1,
    n_bg_seeds: int = 1,
    dilate_ksz: int = 3,
    erode_ksz: int = 11,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Seed label map from normalized CAMs: steps 1-4 of the module docstring.

    Args:
        cams: (B, H, W) in [0, 1] at the input resolution (fp32; no NaN / inf).
        n_bg: fraction of lowest-CAM pixels forming the background region (n-).
        n_fg_seeds / n_bg_seeds: pixels drawn per image and step in each region.
        dilate_ksz: each seed pixel grows to a ksz x ksz square.
        erode_ksz: erosion of the Otsu foreground region.
        generator: CPU generator of the random draws (None: the global one).
    Returns:
        int64 (B, H, W): 1 foreground seed, 0 background seed, ``IGNORE`` (-255) elsewhere.
    Example:
        >>> seeds = seed_labels(cams, n_bg=0.6, erode_ksz=15, generator=torch.Generator().manual_seed(0))
    """
    check_maps(cams, "cams")
    flat = cams.flatten(1)
    constant = flat.max(dim=1).values == flat.min(dim=1).values
    fg = sample_pixels(foreground_region(cams, erode_ksz), n_fg_seeds, generator)
    bg = sample_pixels(background_region(cams, n_bg), n_bg_seeds, generator)
    if dilate_ksz > 1:
        fg, bg = _dilate(fg, dilate_ksz), _dilate(bg, dilate_ksz)
    labels = torch.full(cams.shape, IGNORE, dtype=torch.int64, device=cams.device)
    labels[fg & ~bg] = 1
    labels[bg & ~fg] = 0
    labels[constant] = IGNORE
    return labels
