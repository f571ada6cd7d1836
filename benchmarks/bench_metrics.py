"""MaxBoxAcc speed: the package's exact path vs the literal per-threshold findContours loop.

Both run the 1000 thresholds of the protocol on the same 224x224 CAM-like maps (28x28 maps with
noise, bilinearly upsampled, as CAMs are) and must give identical per-threshold correctness;
prints ms per map and the speed-up for V1 (largest contour, IoU 50), V2 (all contours, IoU
30/50/70) and both from one trace, one map after the other on one thread; then what evaluation
runs (``update_v1_v2`` on the batch, the maps shared among ``--workers`` threads; 1 = serial).

Each time is the best of ``--repeat`` runs (a shared machine's noise only ever adds time).

    python benchmarks/bench_metrics.py --maps 50 --workers 1 2 --repeat 3
"""

import argparse
import time

import cv2
import numpy as np
import torch

from fcam_nb.metrics import (
    best_ious_at_thresholds,
    best_ious_v1_v2,
    max_box_acc_v1,
    max_box_acc_v2,
    reference_box_correct,
    scoremaps_to_uint8,
    threshold_list,
    update_v1_v2,
)


def cam_like_maps(n: int, size: int = 224, low: int = 28, seed: int = 0) -> np.ndarray:
    """CAM-like maps: random blobs plus noise on a low x low grid, bilinearly upsampled to
    size x size (as CAMs are), min-max normalized, float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:low, :low]
    maps = np.zeros((n, size, size), np.float32)
    for i in range(n):
        m = rng.uniform(0, 0.15, (low, low))
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0, low, 2)
            s = rng.uniform(1, low / 4)
            m += rng.uniform(0.2, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        up = cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        maps[i] = (up - up.min()) / (up.max() - up.min())
    return maps


def best_time(fn, repeat: int):
    """(smallest wall time of ``repeat`` calls of ``fn``, its last result)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", type=int, default=50)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="threads sharing the maps in the evaluation path")
    p.add_argument("--repeat", type=int, default=3, help="runs per timing (the best is kept)")
    a = p.parse_args()
    maps = cam_like_maps(a.maps)
    gt = np.array([[40, 50, 180, 200]])
    taus = threshold_list(0.001)
    qs = scoremaps_to_uint8(maps)
    ref_time, ref_ok = {}, {}
    for multi, deltas, name in ((False, (50,), "MaxBoxAcc (V1)"),
                                (True, (30, 50, 70), "MaxBoxAccV2")):
        ref_time[multi], ref = best_time(
            lambda multi=multi, deltas=deltas: [reference_box_correct(m, gt, taus, multi, deltas)
                                               for m in maps], a.repeat)
        ref_ok[multi] = ref
        t_fast, fast = best_time(
            lambda multi=multi, deltas=deltas: [
                best_ious_at_thresholds(q, gt, taus, multi, min(deltas) / 100) for q in qs],
            a.repeat)
        for r, f in zip(ref, fast, strict=True):
            for d in deltas:
                assert np.array_equal((f >= d / 100).astype(np.int64), r[d]), "mismatch"
        print(f"{name}: reference loop {1000 * ref_time[multi] / len(maps):.1f} ms/map, "
              f"fast {1000 * t_fast / len(maps):.1f} ms/map, x{ref_time[multi] / t_fast:.1f}, "
              f"identical")
    t_both, both = best_time(lambda: [best_ious_v1_v2(q, gt, taus, 0.5, 0.3) for q in qs],
                             a.repeat)
    for (b1, b2), r1, r2 in zip(both, ref_ok[False], ref_ok[True], strict=True):
        assert np.array_equal((b1 >= 0.5).astype(np.int64), r1[50]), "mismatch"
        for d in (30, 50, 70):
            assert np.array_equal((b2 >= d / 100).astype(np.int64), r2[d]), "mismatch"
    t_ref = ref_time[False] + ref_time[True]
    print(f"V1 + V2 from one trace: reference loops {1000 * t_ref / len(maps):.1f} ms/map, "
          f"fast {1000 * t_both / len(maps):.1f} ms/map, x{t_ref / t_both:.1f}, identical")
    for workers in a.workers:
        torch.set_num_threads(workers)  # the evaluation path shares a batch among this many

        def run():
            v1, v2 = max_box_acc_v1(), max_box_acc_v2()
            update_v1_v2(v1, v2, maps, [gt] * len(maps))
            return v1, v2

        t_eval, (v1, v2) = best_time(run, a.repeat)
        assert np.array_equal(v1.correct[50], sum(r[50] for r in ref_ok[False])), "mismatch"
        for d in (30, 50, 70):
            assert np.array_equal(v2.correct[d], sum(r[d] for r in ref_ok[True])), "mismatch"
        print(f"evaluation path (update_v1_v2, {workers} thread{'s' * (workers > 1)}): "
              f"V1 + V2 {1000 * t_eval / len(maps):.1f} ms/map, x{t_ref / t_eval:.1f} the two "
              f"reference loops, identical")


if __name__ == "__main__":
    main()
