"""Failure analysis without labels: scores that flag suspect F-CAM maps, and how well they do.

At test time neither boxes nor masks are known. Each score here is computed from the maps alone
(higher = more suspect); ``flag_scores`` measures a flag against the real failures (IoU < 0.5)
with precision, recall and the chance precision (the failure rate), and ``failure_modes`` sorts
the real failures by cause with the labels, for the analysis.

Example:
    >>> score = cam_fcam_disagreement(cam_maps, fcam_maps)
    >>> flagged = score >= np.quantile(score, 0.9)
    >>> flag_scores(flagged, iou < 0.5)["precision"]
"""

from __future__ import annotations

import numpy as np
import torch

from fcam_nb.sampling import foreground_region


def _tensor(maps) -> torch.Tensor:
    return torch.as_tensor(np.asarray(maps, dtype=np.float32))


def foreground_area(maps) -> np.ndarray:
    """Share of each map at or above 0.5, (N,) in [0, 1]; maps (N, H, W) in [0, 1]."""
    return (_tensor(maps) >= 0.5).flatten(1).float().mean(1).numpy()


def cam_fcam_disagreement(cam_maps, fcam_maps) -> np.ndarray:
    """1 - IoU between the CAM's Otsu region and F-CAM's foreground (p >= 0.5), (N,) in [0, 1]:
    high when the decoder's mask went where its own seeds' source did not."""
    cam_region = foreground_region(_tensor(cam_maps), erode_ksz=1)
    fcam_region = _tensor(fcam_maps) >= 0.5
    inter = (cam_region & fcam_region).flatten(1).sum(1).float()
    union = (cam_region | fcam_region).flatten(1).sum(1).float().clamp_min(1)
    return (1 - inter / union).numpy()


def uncertainty(maps) -> np.ndarray:
    """Mean binary entropy of each map (bits), (N,) in [0, 1]: a decoder unsure where the object
    ends leaves many pixels near 0.5."""
    p = _tensor(maps).clamp(1e-6, 1 - 1e-6)
    entropy = -(p * p.log2() + (1 - p) * (1 - p).log2())
    return entropy.flatten(1).mean(1).numpy()


def flag_scores(flagged: np.ndarray, failures: np.ndarray) -> dict[str, float]:
    """Precision and recall (percent) of a boolean flag against boolean failures, both (N,),
    with the chance precision (the failure rate: what a flag blind to the failures gets)."""
    flagged, failures = np.asarray(flagged, bool), np.asarray(failures, bool)
    if flagged.shape != failures.shape or flagged.ndim != 1:
        raise ValueError(f"flagged {flagged.shape} and failures {failures.shape} must be (N,)")
    hits = int((flagged & failures).sum())
    return {"flagged": int(flagged.sum()), "failures": int(failures.sum()),
            "precision": 100 * hits / max(int(flagged.sum()), 1),
            "recall": 100 * hits / max(int(failures.sum()), 1),
            "chance_precision": 100 * float(failures.mean())}


def failure_modes(failures: np.ndarray, seed_precision: np.ndarray, predicted_area: np.ndarray,
                  object_area: np.ndarray) -> dict[str, int]:
    """Count the failures by cause (with labels): ``cam_misled`` (less than half of the CAM's
    foreground region on the object: the seeds were wrong), else ``too_large`` (the predicted
    region over 1.5x the object: a halo) or ``too_small`` (under 2/3 of it: a missed part), else
    ``misplaced``. All inputs (N,); areas in pixels or shares, the same for both."""
    failures = np.asarray(failures, bool)
    ratio = np.asarray(predicted_area, float) / np.maximum(np.asarray(object_area, float), 1e-9)
    misled = failures & (np.asarray(seed_precision) < 0.5)
    rest = failures & ~misled
    return {"cam_misled": int(misled.sum()), "too_large": int((rest & (ratio > 1.5)).sum()),
            "too_small": int((rest & (ratio < 2 / 3)).sum()),
            "misplaced": int((rest & (ratio >= 2 / 3) & (ratio <= 1.5)).sum())}
