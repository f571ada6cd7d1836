"""Wall-clock cost of building localization maps (paper Table A.2), on the running machine."""

from __future__ import annotations

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
    when needed, upsampling) and F-CAM's single forward. inputs: normalized (B, 3, H, W)."""
    device = inputs.device
    labels = torch.zeros(inputs.shape[0], dtype=torch.long, device=device)
    jobs = {m: (lambda m=m: build_cam_method(m, classifier).full_resolution(inputs, labels))
            for m in methods}
    if fcam is not None:
        jobs["fcam"] = lambda: fcam.localization_map(inputs)
    out = {}
    for name, job in jobs.items():
        job()  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            job()
        _sync(device)
        out[name] = 1000 * (time.perf_counter() - t0) / (repeats * inputs.shape[0])
    return out
