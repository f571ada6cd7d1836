"""Wall-clock cost of building localization maps (paper Table A.2), on the running machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch

from fcam_nb.cams import build_cam_method
from fcam_nb.models import FCAM, WSOLClassifier


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_maps(
    classifier: WSOLClassifier,
    fcam: FCAM | None,
    inputs: torch.Tensor,
    methods: Sequence[str],
    repeats: int = 3,
) -> dict[str, float]:
    """Milliseconds per image to get a full-resolution map: each CAM method (forward, backward
    when needed, upsampling) and F-CAM's single forward. inputs: normalized (B, 3, H, W).

    The pattern: one warm-up call (kernels selected, memory allocated), then ``repeats`` timed
    calls, each between two device synchronizations (CUDA runs asynchronously: without them the
    clock measures the launch, not the work); the median of the calls, per image."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = inputs.device
    labels = torch.zeros(inputs.shape[0], dtype=torch.long, device=device)
    jobs = {m: (lambda m=m: build_cam_method(m, classifier).full_resolution(inputs, labels))
            for m in methods}
    if fcam is not None:
        jobs["fcam"] = lambda: fcam.localization_map(inputs)
    out = {}
    for name, job in jobs.items():
        job()  # warm-up
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            job()
            _sync(device)
            times.append(time.perf_counter() - t0)
        out[name] = 1000 * statistics.median(times) / inputs.shape[0]
    return out
