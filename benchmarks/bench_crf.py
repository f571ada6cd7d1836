"""Dense CRF ``W S`` cost: the exact chunked torch product, and the Triton kernel when CUDA is there.

    python benchmarks/bench_crf.py                 # CPU rows (and CUDA rows on a GPU machine)
    python benchmarks/bench_crf.py --cuda-only     # on a GPU: Triton and torch on the same GPU
    python benchmarks/bench_crf.py --paper-map     # + one 224x224 map on the CPU (cost.py's figure)

On CUDA each row also gives the largest difference between the Triton kernel and the torch
product on the same inputs, relative to the largest value of ``W S``. Two more CUDA rows per size:
``exp bound``, a kernel that computes one exp2 per pixel pair and sums them (the cost of the
special-function units alone, the floor of any exact kernel), and ``sdpa peer``, ``W S`` through
PyTorch's fused memory-efficient attention in fp32 (logits ``-|f_i - f_j|^2 / 2`` from augmented
q/k, row sums from its log-sum-exp). ``--sweep`` times the ``fma`` kernel's block shapes and warp
counts at the largest size.
"""

import argparse
import time

import torch

from fcam_nb.losses.crf import crf_features, crf_ws_torch
from fcam_nb.losses.crf_triton import HAS_TRITON, REDUCTIONS

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _exp_bound_kernel(x_ptr, out_ptr, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        """out_i = sum_j exp2(x_i - x_j): one ex2 and two adds per pair, per image."""
        pid_m = tl.program_id(0)
        b = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        q = tl.load(x_ptr + b * N + offs_m, mask=offs_m < N, other=0.0)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            k = tl.load(x_ptr + b * N + offs_n, mask=offs_n < N, other=0.0)
            acc += tl.exp2(q[:, None] - k[None, :])
        tl.store(out_ptr + b * N + offs_m, tl.sum(acc, axis=1), mask=offs_m < N)


def exp_bound(x: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, N): one exp per pixel pair, nothing else (the floor of an exact ``W S``)."""
    out = torch.empty_like(x)
    _exp_bound_kernel[(triton.cdiv(x.shape[1], 64), x.shape[0])](x, out, x.shape[1], BLOCK_M=64,
                                                                 BLOCK_N=64)
    return out


def crf_ws_sdpa(features: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """``W S`` through fused memory-efficient attention (CUDA, fp32). features (B, 5, N), probs
    (B, K, N) -> (B, K, N). ``q_i . k_j = f_i . f_j - |f_i|^2 / 2 - |f_j|^2 / 2 = -|f_i - f_j|^2 / 2``
    with ``q = [f, -|f|^2 / 2, 1]`` and ``k = [f, 1, -|f|^2 / 2]``; the attention returns
    ``W S / rowsum(W)`` and ``log rowsum(W)``."""
    f = features.float().transpose(1, 2)  # (B, N, 5)
    half_sq = (f * f).sum(-1, keepdim=True) / 2
    ones, pad = torch.ones_like(half_sq), torch.zeros_like(half_sq)
    q = torch.cat([f, -half_sq, ones, pad], -1)[:, None].contiguous()  # head dim 8
    k = torch.cat([f, ones, -half_sq, pad], -1)[:, None].contiguous()
    kk = probs.shape[1]
    v = torch.zeros_like(q)
    v[:, 0, :, :kk] = probs.float().transpose(1, 2)
    out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True,
                                                                      scale=1.0)[:2]
    n = probs.shape[2]
    return (out[:, 0, :, :kk] * lse[:, 0, :n, None].exp()).transpose(1, 2)

CPU_SIZES = ((32, 16), (32, 32), (8, 64))
CUDA_SIZES = ((32, 16), (32, 32), (32, 64), (32, 112), (32, 224))
TORCH_CUDA_MAX_SIDE = 64
SWEEP = ((32, 64, 4), (32, 64, 2), (32, 128, 4), (32, 128, 2), (32, 256, 4), (32, 256, 8),
         (16, 128, 2), (16, 256, 4), (64, 64, 4), (64, 64, 2), (64, 32, 2), (64, 128, 4),
         (64, 128, 8), (128, 32, 4), (128, 64, 4), (128, 64, 8), (128, 128, 8), (256, 64, 8))


def timed(fn, cuda: bool, repeat: int = 3) -> float:
    fn()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def inputs(b: int, side: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(side)
    images = torch.randint(0, 256, (b, 3, side, side), generator=gen).float()
    feats = crf_features(images, 100.0 * side / 224, 15.0)
    probs = torch.rand(b, 2, side * side, generator=gen)
    return feats.to(device), probs.to(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cuda-only", action="store_true", help="skip the CPU rows")
    p.add_argument("--reductions", nargs="+", default=list(REDUCTIONS), choices=REDUCTIONS,
                   help="the Triton kernel's reduction strategies to time")
    p.add_argument("--sweep", action="store_true",
                   help="time the fma kernel's block shapes and warp counts at the largest size")
    p.add_argument("--paper-map", action="store_true",
                   help="also one 224x224 map on the CPU (a warm-up and a timed run, ~30 s): the "
                        "figure behind "
                        "fcam_nb.course.cost.CPU_CRF_NS_PER_PAIR")
    args = p.parse_args()
    print(f"{'backend':16s} {'batch':>5s} {'map':>7s} {'ms':>9s} {'ns/pair':>8s} {'vs torch':>9s}")

    def row(name: str, b: int, side: int, t: float, diff: str = "") -> None:
        n = side * side
        print(f"{name:16s} {b:5d} {side:3d}x{side:<3d} {1000 * t:9.1f} {t / (b * n * n) * 1e9:8.3f}"
              f" {diff:>9s}", flush=True)

    if not args.cuda_only:
        for b, side in CPU_SIZES:
            feats, probs = inputs(b, side, "cpu")
            row("torch cpu", b, side, timed(lambda f=feats, p=probs: crf_ws_torch(f, p), False))
        if args.paper_map:
            feats, probs = inputs(1, 224, "cpu")
            row("torch cpu", 1, 224, timed(lambda f=feats, p=probs: crf_ws_torch(f, p), False,
                                           repeat=1))
    if not torch.cuda.is_available():
        return
    from fcam_nb.losses.crf_triton import crf_ws_triton

    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    for b, side in CUDA_SIZES:
        feats, probs = inputs(b, side, "cuda")
        if side <= TORCH_CUDA_MAX_SIDE:  # the chunked torch product is too slow beyond
            expected, against = crf_ws_torch(feats, probs), ""
            row("torch cuda", b, side, timed(lambda f=feats, p=probs: crf_ws_torch(f, p), True))
        else:
            expected, against = crf_ws_triton(feats, probs, reduction=args.reductions[0]), " *"
        for reduction in args.reductions:
            got = crf_ws_triton(feats, probs, reduction=reduction)
            diff = f"{((got - expected).abs().max() / expected.abs().max()).item():.1e}{against}"
            row(f"triton {reduction}", b, side,
                timed(lambda f=feats, p=probs, r=reduction: crf_ws_triton(f, p, reduction=r), True,
                      repeat=5), diff)
        x = feats[:, 2].contiguous()
        row("exp bound", b, side, timed(lambda x=x: exp_bound(x), True, repeat=5))
        try:
            got = crf_ws_sdpa(feats, probs)
            diff = f"{((got - expected).abs().max() / expected.abs().max()).item():.1e}{against}"
            row("sdpa peer", b, side, timed(lambda f=feats, p=probs: crf_ws_sdpa(f, p), True,
                                            repeat=3), diff)
        except RuntimeError as err:  # an attention backend this torch lacks
            print(f"sdpa peer failed: {str(err).splitlines()[0]}")
    if args.sweep:
        b, side = CUDA_SIZES[-1]
        feats, probs = inputs(b, side, "cuda")
        print(f"fma kernel at {b} x {side}x{side}: block_m block_n warps -> ms")
        for bm, bn, warps in SWEEP:
            t = timed(lambda f=feats, p=probs, bm=bm, bn=bn, w=warps: crf_ws_triton(
                f, p, block_m=bm, block_n=bn, reduction="fma", num_warps=w), True, repeat=5)
            print(f"  {bm:4d} {bn:4d} {warps:3d} -> {1000 * t:7.1f}", flush=True)
    if any(side > TORCH_CUDA_MAX_SIDE for _, side in CUDA_SIZES):
        print(f"* relative to triton {args.reductions[0]} (torch on the GPU is too slow there)")


if __name__ == "__main__":
    main()
