"""Dense CRF ``W S`` cost: exact chunked torch on CPU (and the Triton kernel when CUDA is there).

    python benchmarks/bench_crf.py
"""

import time

import torch

from fcam_nb.losses.crf import crf_features, crf_ws_torch


def timed(fn, repeat: int = 3) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for b, side in ((32, 16), (32, 32), (8, 64)):
        n = side * side
        images = torch.randint(0, 256, (b, 3, side, side)).float()
        feats = crf_features(images, 100.0 * side / 224, 15.0)
        probs = torch.rand(b, 2, n)
        t = timed(lambda f=feats, p=probs: crf_ws_torch(f, p))
        rows.append(("torch cpu", b, side, t, t / (b * n * n) * 1e9))
        if torch.cuda.is_available():
            from fcam_nb.losses.crf_triton import crf_ws_triton

            fc, pc = feats.cuda(), probs.cuda()
            t = timed(lambda f=fc, p=pc: crf_ws_triton(f, p), repeat=10)
            rows.append(("triton cuda", b, side, t, t / (b * n * n) * 1e9))
    print(f"{'backend':12s} {'batch':>5s} {'map':>7s} {'ms':>9s} {'ns/pair':>8s}")
    for name, b, side, t, ns in rows:
        print(f"{name:12s} {b:5d} {side:3d}x{side:<3d} {1000 * t:9.1f} {ns:8.2f}")


if __name__ == "__main__":
    main()
