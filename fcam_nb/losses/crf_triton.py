"""Triton kernel for the exact dense-CRF product ``W S`` (flash-attention style tiling).

For each image, a program owns ``BLOCK_M`` query pixels and streams all key pixels in tiles of
``BLOCK_N``: it builds the Gaussian affinities ``W_ij = exp(-|f_i - f_j|^2 / 2)`` on the fly from
the 5-D features (x, y scaled by 1/sigma_xy; R, G, B by 1/sigma_rgb), with fp32 differences
(no tensor-core dot for the distances: |a|^2 + |b|^2 - 2ab loses the small distances), and
accumulates ``sum_j W_ij S_kj`` for the K channels: for F-CAM's K = 2 in one 2-D tile of FMAs per
channel (``fma``, the default), for more channels as a tensor-core product of the affinity tile
with S (see ``crf_ws_triton``). Memory is O(N); nothing of size N^2 is stored.

Runs on CUDA, or on CPU tensors under ``TRITON_INTERPRET=1`` (tests). Set the variable before this
module is imported (or reload it).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover - triton ships with torch's CUDA wheels
    HAS_TRITON = False

REDUCTIONS = ("tile", "deferred", "dot", "fma")
LOG2E = 1.4426950408889634
_REDUCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("crf_reduction",
                                                                        default=None)


@contextlib.contextmanager
def reduction_override(reduction: str | None) -> Iterator[None]:
    """Within the block, ``crf_ws_triton`` calls without ``reduction`` use this one (``None``:
    each device's default); for benchmarks that compare the strategies through the loss."""
    if reduction is not None and reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    token = _REDUCTION.set(reduction)
    try:
        yield
    finally:
        _REDUCTION.reset(token)


def default_reduction(device: torch.device, k: int = 2) -> str:
    """``fma`` for K <= 2 channels (F-CAM's background/foreground) on every device: 52 ms against
    ``dot``'s 128 ms at 32 x 224x224 on an H200, 2.5x the cost of the exps alone. For K > 2:
    ``dot`` where tensor cores take TF32 (compute capability 8.0 and newer: A100, L4, H100), else
    ``deferred`` (T4, V100: plain FMAs); CPU tensors (the interpreter): ``dot``. The strategies are
    compared by ``benchmarks/bench_crf.py``."""
    if k <= 2:
        return "fma"
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        return "deferred"
    return "dot"


if HAS_TRITON:

    @triton.jit
    def _query_features(fb, N, offs_m, mask_m):
        """The 5 features (x, y, R, G, B, scaled) of the query pixels ``offs_m`` of one image
        (``fb``: its (5, N) features), each (BLOCK_M,); 0 past N."""
        return (tl.load(fb + offs_m, mask=mask_m, other=0.0),
                tl.load(fb + N + offs_m, mask=mask_m, other=0.0),
                tl.load(fb + 2 * N + offs_m, mask=mask_m, other=0.0),
                tl.load(fb + 3 * N + offs_m, mask=mask_m, other=0.0),
                tl.load(fb + 4 * N + offs_m, mask=mask_m, other=0.0))

    @triton.jit
    def _squared_distances(fb, N, q0, q1, q2, q3, q4, offs_n, mask_n):
        """|f_i - f_j|^2 between the query pixels (rows) and the key tile ``offs_n`` (columns),
        (BLOCK_M, BLOCK_N), from fp32 differences (|a|^2 + |b|^2 - 2ab loses small distances)."""
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
        return dist

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
        REDUCE: tl.constexpr,  # 0 tile, 1 deferred, 2 dot
    ):
        pid_m = tl.program_id(0)
        b = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        mask_m = offs_m < N
        fb = feat_ptr + b * 5 * N
        q0, q1, q2, q3, q4 = _query_features(fb, N, offs_m, mask_m)
        offs_k = tl.arange(0, KP)
        mask_k = offs_k < K
        pb = prob_ptr + b * K * N
        if REDUCE == 1:
            acc3 = tl.zeros((BLOCK_M, BLOCK_N, KP), dtype=tl.float32)
        else:
            acc = tl.zeros((BLOCK_M, KP), dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            mask_n = offs_n < N
            dist = _squared_distances(fb, N, q0, q1, q2, q3, q4, offs_n, mask_n)
            w = tl.exp(-0.5 * dist)
            w = tl.where(mask_n[None, :], w, 0.0)
            s = tl.load(
                pb + offs_k[None, :] * N + offs_n[:, None],
                mask=mask_n[:, None] & mask_k[None, :],
                other=0.0,
            )  # (BLOCK_N, KP)
            if REDUCE == 0:  # reduce over the key tile at every step
                acc += tl.sum(w[:, :, None] * s[None, :, :], axis=1)
            elif REDUCE == 1:  # elementwise FMAs; one reduction after the loop
                acc3 += w[:, :, None] * s[None, :, :]
            else:  # tensor cores, three TF32 products (about fp32 accuracy)
                acc = tl.dot(w, s, acc, input_precision="tf32x3")
        if REDUCE == 1:
            acc = tl.sum(acc3, axis=1)
        tl.store(
            out_ptr + b * K * N + offs_k[None, :] * N + offs_m[:, None],
            acc,
            mask=mask_m[:, None] & mask_k[None, :],
        )


    @triton.jit
    def _crf_ws_fma_kernel(
        feat_ptr,  # (B, 5, N) float32, pre-scaled by sqrt(log2(e) / 2)
        prob_ptr,  # (B, K, N) float32, K in {1, 2}
        out_ptr,  # (B, K, N) float32
        N,
        K: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """K <= 2 channels, each a 2-D accumulator of FMAs, one reduction after the loop; with
        the features pre-scaled, ``W_ij = exp2(-|f_i - f_j|^2)``: 5 subtractions, 5 FMAs, one
        ex2 and K FMAs per pixel pair, no layout change inside the loop. Keys past N load S = 0,
        so they add nothing (their affinity is finite) and need no mask."""
        pid_m = tl.program_id(0)
        b = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        mask_m = offs_m < N
        fb = feat_ptr + b * 5 * N
        q0, q1, q2, q3, q4 = _query_features(fb, N, offs_m, mask_m)
        pb = prob_ptr + b * K * N
        acc0 = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if K == 2:
            acc1 = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            mask_n = offs_n < N
            dist = _squared_distances(fb, N, q0, q1, q2, q3, q4, offs_n, mask_n)
            w = tl.exp2(-dist)
            acc0 += w * tl.load(pb + offs_n, mask=mask_n, other=0.0)[None, :]
            if K == 2:
                acc1 += w * tl.load(pb + N + offs_n, mask=mask_n, other=0.0)[None, :]
        ob = out_ptr + b * K * N
        tl.store(ob + offs_m, tl.sum(acc0, axis=1), mask=mask_m)
        if K == 2:
            tl.store(ob + N + offs_m, tl.sum(acc1, axis=1), mask=mask_m)


def crf_ws_triton(features: torch.Tensor, probs: torch.Tensor, block_m: int | None = None,
                  block_n: int = 64, reduction: str | None = None,
                  num_warps: int | None = None) -> torch.Tensor:
    """``W S`` with the Triton kernel. features (B, 5, N), probs (B, K, N) -> (B, K, N) fp32.

    ``reduction``: how the sum over key pixels is taken — ``tile`` (per key tile), ``deferred``
    (elementwise accumulation, one reduction at the end), ``dot`` (tensor-core product of the
    affinity tile with S, K padded to 16, three TF32 products: relative error ~6e-7 of fp32's
    ``tile``) or ``fma`` (K <= 2: one 2-D accumulator per channel, affinities as ``exp2`` of
    pre-scaled features). Default: the one of an enclosing ``reduction_override``, else
    ``default_reduction`` of the tensors' device and K. ``block_m`` query and ``block_n`` key
    pixels per tile (default 32 x 64 for ``fma``, the fastest of 18 shapes and warp counts timed
    on an H200; 64 x 64 for the others); ``num_warps``: Triton's (default 4).
    """
    if not HAS_TRITON:
        raise RuntimeError("triton is not installed")
    b, k, n = probs.shape
    reduction = reduction or _REDUCTION.get() or default_reduction(probs.device, k)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    features = features.float().contiguous()
    probs = probs.float().contiguous()
    out = torch.empty_like(probs)
    block_m = block_m or (32 if reduction == "fma" else 64)
    launch = {} if num_warps is None else {"num_warps": num_warps}
    if reduction == "fma":
        if k > 2:
            raise ValueError(f"reduction 'fma' takes K <= 2 channels, got K = {k}")
        scaled = (features * math.sqrt(0.5 * LOG2E)).contiguous()  # exp(-d^2/2) = exp2(-d'^2)
        _crf_ws_fma_kernel[(triton.cdiv(n, block_m), b)](
            scaled, probs, out, n, K=k, BLOCK_M=block_m, BLOCK_N=block_n, **launch)
        return out
    kp = triton.next_power_of_2(k)
    if reduction == "dot":
        kp, block_m, block_n = max(kp, 16), max(block_m, 16), max(block_n, 16)
    _crf_ws_kernel[(triton.cdiv(n, block_m), b)](
        features, probs, out, n, K=k, KP=kp, BLOCK_M=block_m, BLOCK_N=block_n,
        REDUCE=REDUCTIONS.index(reduction), **launch)
    return out
