"""Worked solutions of the checked exercises (``fcam_nb.course.exercises``), one function per
exercise, written as a student would in the notebook's cell. Teachers: ``SOLUTIONS[name]``;
``tests/test_exercises.py`` runs each through its checker."""

from __future__ import annotations

import numpy as np
import torch


def cam(features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """01.cam: M_y = sum_c w_{y,c} F_c, per image for its own label."""
    return (weight[labels][:, :, None, None] * features).sum(1)


def normalize(cams: torch.Tensor) -> torch.Tensor:
    """01.normalize: per-map min-max to [0, 1]; constant maps -> 0."""
    flat = cams.flatten(1)
    lo = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - lo
    scaled = (flat - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return scaled.view_as(cams)


def my_otsu(u8: np.ndarray) -> int:
    """02.otsu: maximize the between-class variance over thresholds min <= t < max."""
    counts = np.bincount(u8.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    w0 = np.cumsum(counts)  # pixels <= t
    w1 = w0[-1] - w0  # pixels > t
    s0 = np.cumsum(counts * levels)
    mu0 = s0 / np.maximum(w0, 1)
    mu1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    lo, hi = int(u8.min()), int(u8.max())
    if lo == hi:
        return lo
    return lo + int(np.argmax(between[lo:hi]))


def lowest_region(cams: torch.Tensor, n_bg: float) -> torch.Tensor:
    """02.background: pixels <= the k-th lowest value of their map (ties included)."""
    flat = cams.flatten(1)
    k = max(1, int(n_bg * flat.shape[1]))
    kth = flat.kthvalue(k, dim=1, keepdim=True).values
    return (flat <= kth).view_as(cams)


def partial_ce(logits: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """03.partial_ce: mean cross-entropy over the batch's seed pixels."""
    labelled = seeds != -255
    log_probs = logits.log_softmax(1)  # (B, 2, H, W)
    picked = log_probs.gather(1, seeds.clamp(min=0)[:, None])[:, 0]  # (B, H, W)
    return -(picked * labelled).sum() / labelled.sum().clamp_min(1)


def elb(f: torch.Tensor, t: float) -> torch.Tensor:
    """03.elb: -log(-f)/t up to -1/t^2, then its tangent."""
    edge = -1.0 / t**2
    barrier = -torch.log(-torch.clamp(f, max=edge)) / t
    tangent = t * f - np.log(1.0 / t**2) / t + 1.0 / t
    return torch.where(f <= edge, barrier, tangent)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """04.iou: pairwise IoU with inclusive pixel areas."""
    a, b = a[:, None, :].astype(np.float64), b[None, :, :].astype(np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1, 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1, 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def max_box_acc_v2(best_iou: np.ndarray) -> float:
    """04.max_box_acc_v2: best threshold per IoU level, then the mean over the levels."""
    return float(np.mean([100 * (best_iou >= delta).mean(axis=1).max()
                          for delta in (0.3, 0.5, 0.7)]))


def within_share(curve: np.ndarray, frac: float) -> float:
    """05.within: share of thresholds at or above frac x the best."""
    return float(np.mean(curve >= frac * curve.max()))


def fg_bg_histograms(maps: np.ndarray, masks: np.ndarray, bins: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """05.histograms: densities over equal bins of [0, 1]; ignore pixels dropped."""
    edges = np.linspace(0, 1, bins + 1)
    fg = np.histogram(maps[masks == 1], bins=edges, density=True)[0]
    bg = np.histogram(maps[masks == 0], bins=edges, density=True)[0]
    return fg, bg


def precision_recall(flagged: np.ndarray, failures: np.ndarray) -> tuple[float, float]:
    """06.precision_recall: percentages; an empty flag has precision 0."""
    hits = np.sum(flagged & failures)
    return 100 * hits / max(flagged.sum(), 1), 100 * hits / max(failures.sum(), 1)


def both_top(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    """06.both_top: in the k largest of a AND in the k largest of b."""
    k = round(share * len(a))
    return (a >= np.sort(a)[-k]) & (b >= np.sort(b)[-k])


def ms_per_image(seconds: list[float], batch: int) -> float:
    """07.ms_per_image: median call, in ms, per image."""
    return 1000 * float(np.median(seconds)) / batch


def ratios(ms: dict[str, float], reference: str) -> dict[str, float]:
    """07.ratios: each time over the reference's."""
    return {name: t / ms[reference] for name, t in ms.items()}


SOLUTIONS = {
    "01.cam": cam, "01.normalize": normalize, "02.otsu": my_otsu,
    "02.background": lowest_region, "03.partial_ce": partial_ce, "03.elb": elb,
    "04.iou": box_iou, "04.max_box_acc_v2": max_box_acc_v2, "05.within": within_share,
    "05.histograms": fg_bg_histograms, "06.precision_recall": precision_recall,
    "06.both_top": both_top, "07.ms_per_image": ms_per_image, "07.ratios": ratios,
}

__all__ = ["SOLUTIONS", *(f.__name__ for f in SOLUTIONS.values())]
