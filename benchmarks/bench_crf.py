"""Dense CRF ``W S`` cost: the exact chunked torch product, and the Triton kernel when CUDA is there.

    python benchmarks/bench_crf.py                 # CPU rows (and CUDA rows on a GPU machine)
    python benchmarks/bench_crf.py --cuda-only     # on a GPU: Triton and torch on the same GPU

On CUDA each row also gives the largest difference between the Triton kernel and the torch
product on the same inputs, relative to the largest value of ``W S``.
"""

import argparse
import time

import torch

from fcam_nb.losses.crf import crf_features, crf_ws_torch
from fcam_nb.losses.crf_triton import REDUCTIONS

CPU_SIZES = ((32, 16), (32, 32), (8, 64))
CUDA_SIZES = ((32, 16), (32, 32), (32, 64), (32, 112), (32, 224))
TORCH_CUDA_MAX_SIDE = 64


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
    if any(side > TORCH_CUDA_MAX_SIDE for _, side in CUDA_SIZES):
        print(f"* relative to triton {args.reductions[0]} (torch on the GPU is too slow there)")


if __name__ == "__main__":
    main()
