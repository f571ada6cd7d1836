"""Triton kernel for the exact dense-CRF product ``W S`` (flash-attention style tiling).

For each image, a program owns ``BLOCK_M`` query pixels and streams all key pixels in tiles of
``BLOCK_N``: it builds the Gaussian affinities ``W_ij = exp(-|f_i - f_j|^2 / 2)`` on the fly from
the 5-D features (x, y scaled by 1/sigma_xy; R, G, B by 1/sigma_rgb), with fp32 differences
(no tensor-core dot for the distances), and accumulates ``sum_j W_ij S_kj`` for the K channels
(K = 2 is fused into two FMAs per pair). Memory is O(N); nothing of size N^2 is stored.

Runs on CUDA, or on CPU tensors under ``TRITON_INTERPRET=1`` (tests). Set the variable before this
module is imported (or reload it).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover - triton ships with torch's CUDA wheels
    HAS_TRITON = False

if HAS_TRITON:

    @triton.jit
    def _crf_ws_kernel(
        feat_ptr,  # (B, 5, N) float32
        prob_ptr,  # (B, K, N) float32
        out_ptr,  # (B, K, N) float32
        N,
        K: tl.constexpr,
        KP: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        b = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        mask_m = offs_m < N
        fb = feat_ptr + b * 5 * N
        q0 = tl.load(fb + offs_m, mask=mask_m, other=0.0)
        q1 = tl.load(fb + N + offs_m, mask=mask_m, other=0.0)
        q2 = tl.load(fb + 2 * N + offs_m, mask=mask_m, other=0.0)
        q3 = tl.load(fb + 3 * N + offs_m, mask=mask_m, other=0.0)
        q4 = tl.load(fb + 4 * N + offs_m, mask=mask_m, other=0.0)
        offs_k = tl.arange(0, KP)
        mask_k = offs_k < K
        pb = prob_ptr + b * K * N
        acc = tl.zeros((BLOCK_M, KP), dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            mask_n = offs_n < N
            d = q0[:, None] - tl.load(fb + offs_n, mask=mask_n, other=0.0)[None, :]
            dist = d * d
            d = q1[:, None] - tl.load(fb + N + offs_n, mask=mask_n, other=0.0)[None, :]
            dist += d * d
            d = q2[:, None] - tl.load(fb + 2 * N + offs_n, mask=mask_n, other=0.0)[None, :]
            dist += d * d
            d = q3[:, None] - tl.load(fb + 3 * N + offs_n, mask=mask_n, other=0.0)[None, :]
            dist += d * d
            d = q4[:, None] - tl.load(fb + 4 * N + offs_n, mask=mask_n, other=0.0)[None, :]
            dist += d * d
            w = tl.exp(-0.5 * dist)
            w = tl.where(mask_n[None, :], w, 0.0)
            s = tl.load(
                pb + offs_k[None, :] * N + offs_n[:, None],
                mask=mask_n[:, None] & mask_k[None, :],
                other=0.0,
            )  # (BLOCK_N, KP)
            acc += tl.sum(w[:, :, None] * s[None, :, :], axis=1)
        tl.store(
            out_ptr + b * K * N + offs_k[None, :] * N + offs_m[:, None],
            acc,
            mask=mask_m[:, None] & mask_k[None, :],
        )


def crf_ws_triton(features: torch.Tensor, probs: torch.Tensor, block_m: int = 64,
                  block_n: int = 64) -> torch.Tensor:
    """``W S`` with the Triton kernel. features (B, 5, N), probs (B, K, N) -> (B, K, N) fp32."""
    if not HAS_TRITON:
        raise RuntimeError("triton is not installed")
    features = features.float().contiguous()
    probs = probs.float().contiguous()
    b, k, n = probs.shape
    out = torch.empty_like(probs)
    kp = triton.next_power_of_2(k)
    grid = (triton.cdiv(n, block_m), b)
    _crf_ws_kernel[grid](features, probs, out, n, K=k, KP=kp, BLOCK_M=block_m, BLOCK_N=block_n)
    return out
