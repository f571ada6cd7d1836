"""Exact dense CRF loss (Tang et al., ECCV 2018) as used by F-CAM.

``L = -lambda / B * sum_b sum_k S_bk^T W_b S_bk`` with the fully connected Gaussian kernel
``W_ij = exp(-|p_i - p_j|^2 / (2 sxy^2) - |I_i - I_j|^2 / (2 srgb^2))`` (self term included),
image RGB in [0, 255], S the softmax maps. Gradient: ``-2 lambda W S_k / B`` (W symmetric).

The original code uses a permutohedral-lattice approximation of ``W S`` (values about 0.5-0.6x
the exact product); here ``W S`` is exact:

* CUDA: the Triton kernel of ``crf_triton`` (O(N) memory, fp32 differences);
* CPU: exact chunked torch (``crf_ws_torch``). Cost O(B N^2) time, O(chunk N) memory (the
  cost per pixel pair: ``fcam_nb.course.cost.CPU_CRF_NS_PER_PAIR``, ``benchmarks/bench_crf.py``); use
  ``scale_factor`` < 1 on CPU.

``scale_factor`` downsamples the image (nearest) and the maps (bilinear) and scales sxy, as in
the reference implementation. Below 0.5, bilinear downsampling skips pixels (at 0.25 it reads
2 of every 4 rows and columns, which then get no CRF gradient): use ``map_mode="area"`` there.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from fcam_nb.losses import crf_triton
from fcam_nb.losses.base import LossTerm, TermInputs


def crf_features(images: torch.Tensor, sigma_xy: float, sigma_rgb: float) -> torch.Tensor:
    """5-D scaled features (B, 5, N): x / sxy, y / sxy, R / srgb, G / srgb, B / srgb.

    images: (B, 3, H, W) RGB in [0, 255].
    """
    b, c, h, w = images.shape
    if c != 3:
        raise ValueError(f"images must be RGB (B, 3, H, W), got {tuple(images.shape)}")
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device, dtype=torch.float32),
        torch.arange(w, device=images.device, dtype=torch.float32),
        indexing="ij",
    )
    pos = torch.stack([xs, ys]).reshape(1, 2, -1).expand(b, 2, h * w) / sigma_xy
    rgb = images.float().reshape(b, 3, -1) / sigma_rgb
    return torch.cat([pos, rgb], dim=1)


def crf_ws_torch(features: torch.Tensor, probs: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Exact ``W S`` in chunks of query pixels. features (B, 5, N), probs (B, K, N) -> (B, K, N).

    Distances from explicit differences (``torch.cdist`` without the matrix-product shortcut,
    which loses precision), then exp and a batched product with S. Memory O(B chunk N): small
    chunks, and the affinities built in place, keep the buffers below the size that the CPU
    allocator maps afresh (and page-faults) at every call. Affinities are floored at
    ``exp_floor(dtype)`` (3e-38 in fp32): an exp whose result is subnormal or underflows runs
    10-25x slower on x86, and most pairs of a CRF are that far apart. The floor moves a sum of N
    affinities by at most N x 3e-38, below fp32's resolution of any sum that holds the pixel's own
    term (W_ii = 1). Together 2.5x faster on 2 cores at 32x32 maps.
    """
    feats = features.transpose(1, 2).contiguous()  # (B, N, 5)
    probs = probs.to(feats.dtype)
    floor = math.log(exp_floor(feats.dtype))
    out = torch.empty(probs.shape, dtype=feats.dtype, device=feats.device)
    for start in range(0, feats.shape[1], chunk):
        dist = torch.cdist(feats[:, start : start + chunk], feats,
                           compute_mode="donot_use_mm_for_euclid_dist")  # (B, C, N)
        w = torch.mul(dist, -0.5).mul_(dist).clamp_(min=floor).exp_()  # exp(-dist^2 / 2)
        out[:, :, start : start + chunk] = torch.bmm(probs, w.transpose(1, 2))
    return out


def exp_floor(dtype: torch.dtype) -> float:
    """The smallest affinity ``crf_ws_torch`` computes: e times the smallest normal number of
    ``dtype`` (3.2e-38 in fp32), so that no exp lands in the slow subnormal range."""
    return math.e * torch.finfo(dtype).tiny


def crf_ws(features: torch.Tensor, probs: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """``W S`` by the best available backend: ``auto`` (Triton on CUDA, torch on CPU),
    ``triton`` (CUDA, or CPU under ``TRITON_INTERPRET=1``) or ``torch``."""
    if backend == "auto":
        backend = "triton" if probs.is_cuda and crf_triton.HAS_TRITON else "torch"
    if backend == "triton":
        if not probs.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("the Triton CRF kernel needs CUDA tensors or TRITON_INTERPRET=1")
        return crf_triton.crf_ws_triton(features, probs)
    if backend == "torch":
        return crf_ws_torch(features, probs)
    raise ValueError(f"unknown CRF backend {backend!r}")


class _DenseCRFFunction(torch.autograd.Function):
    """loss = -sum(S * WS) / B; backward reuses WS: dL/dS = -2 WS / B."""

    @staticmethod
    def forward(ctx, features, probs, backend):
        b = probs.shape[0]
        flat = probs.reshape(b, probs.shape[1], -1)
        ws = crf_ws(features, flat.detach(), backend).to(probs.dtype)
        ctx.save_for_backward(ws)
        ctx.shape = probs.shape
        return -(flat * ws).sum() / b

    @staticmethod
    def backward(ctx, grad_out):
        (ws,) = ctx.saved_tensors
        b = ctx.shape[0]
        grad = (-2.0 / b) * grad_out * ws
        return None, grad.reshape(ctx.shape), None


def dense_crf_loss(
    images: torch.Tensor,
    probs: torch.Tensor,
    sigma_xy: float = 100.0,
    sigma_rgb: float = 15.0,
    weight: float = 2e-9,
    scale_factor: float = 1.0,
    backend: str = "auto",
    map_mode: str = "bilinear",
) -> torch.Tensor:
    """Dense CRF loss. images (B, 3, H, W) RGB in [0, 255]; probs (B, K, H, W) softmax maps.

    Returns a scalar: ``weight * (-1/B) sum_k S_k^T W S_k`` at ``scale_factor`` resolution.
    """
    if images.shape[0] != probs.shape[0] or images.shape[-2:] != probs.shape[-2:]:
        raise ValueError(
            f"images {tuple(images.shape)} and probs {tuple(probs.shape)} must share B, H, W"
        )
    if scale_factor != 1.0:
        images = F.interpolate(images, scale_factor=scale_factor, mode="nearest")
        if map_mode == "bilinear":
            probs = F.interpolate(probs, scale_factor=scale_factor, mode="bilinear",
                                  align_corners=False)
        elif map_mode == "area":
            probs = F.interpolate(probs, scale_factor=scale_factor, mode="area")
        else:
            raise ValueError(f"map_mode must be 'bilinear' or 'area', got {map_mode!r}")
    feats = crf_features(images, sigma_xy * scale_factor, sigma_rgb)
    return weight * _DenseCRFFunction.apply(feats.to(probs.dtype), probs, backend)


def dense_crf_loss_reference(images, probs, sigma_xy=100.0, sigma_rgb=15.0, weight=2e-9):
    """Brute force with the full N x N matrix (tiny inputs only; plain autograd)."""
    b, k = probs.shape[:2]
    f = crf_features(images, sigma_xy, sigma_rgb).to(probs.dtype)  # (B, 5, N)
    d2 = ((f[:, :, :, None] - f[:, :, None, :]) ** 2).sum(1)  # (B, N, N)
    w = torch.exp(-0.5 * d2)
    s = probs.reshape(b, k, -1)
    return -weight * torch.einsum("bkn,bnm,bkm->", s, w, s) / b


class DenseCRFLoss(LossTerm):
    """The dense CRF term (defaults: sxy 100, srgb 15, weight 2e-9): ``module(images, probs)``
    or, as a stage-2 term, ``module.term(inputs)``."""

    name = "crf"

    def __init__(self, weight: float = 2e-9, sigma_xy: float = 100.0, sigma_rgb: float = 15.0,
                 scale_factor: float = 1.0, backend: str = "auto",
                 map_mode: str = "bilinear", **activity) -> None:
        super().__init__(**activity)
        self.weight, self.sigma_xy, self.sigma_rgb = weight, sigma_xy, sigma_rgb
        self.scale_factor, self.backend, self.map_mode = scale_factor, backend, map_mode

    def forward(self, images: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return dense_crf_loss(images, probs, self.sigma_xy, self.sigma_rgb, self.weight,
                              self.scale_factor, self.backend, self.map_mode)

    def term(self, inputs: TermInputs) -> torch.Tensor:
        return self(inputs.images_255, inputs.probs)

    @classmethod
    def from_config(cls, cfg) -> DenseCRFLoss | None:
        if not cfg.use_crf:
            return None
        return cls(weight=cfg.crf_weight, sigma_xy=cfg.sigma_xy, sigma_rgb=cfg.sigma_rgb,
                   scale_factor=cfg.crf_scale, map_mode=cfg.crf_map_mode)
