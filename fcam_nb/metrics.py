"""WSOL metrics reproducing the protocol of Choe et al. (CVPR 2020, "Evaluating WSOL right").

All quirks of the published ``wsolevaluation`` code are kept on purpose:

* scores become ``uint8`` by truncation of ``score * 255`` (in the map's own float dtype);
* the contour threshold at tau is ``int(tau * q.max())`` and the foreground is ``q > theta``;
* ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` - hole contours count as contours;
* single-contour mode keeps the contour with the largest *polygon* area (``cv2.contourArea``);
* boxes are ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]`` from ``cv2.boundingRect``;
* no contour gives the box ``[0, 0, 0, 0]`` (area 1 with the inclusive IoU);
* IoU uses inclusive areas ``(x1 - x0 + 1) * (y1 - y0 + 1)``; a denominator <= 0 gives 0;
* PxAP bins scores with edges ``arange(0, 1, step) + [1, 2, 3]`` pooled over the dataset.

Speed: only about 255 distinct thresholds ``theta`` exist per map and ``q > theta`` only changes
at values present in ``q``, so each distinct binary mask is traced once (exact), on the crop of
its bounding box. ``reference_*`` functions are the literal per-threshold loop, kept for tests and
``benchmarks/bench_metrics.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def threshold_list(step: float = 0.001) -> np.ndarray:
    """CAM thresholds tau = ``np.arange(0, 1, step)`` (1 excluded), float64."""
    if not 0 < step < 1:
        raise ValueError(f"threshold step must be in (0, 1), got {step}")
    return np.arange(0, 1, step)


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A numpy view of a numpy array or (detached, CPU) torch tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_scoremaps(maps: ArrayLike, size: int | tuple[int, int] | None = None) -> None:
    """Validate score maps: float, (H, W) or (B, H, W), values in [0, 1], no NaN.

    Raises ValueError naming the problem (the protocol's ``check_scoremap_validity``).
    """
    is_tensor = isinstance(maps, torch.Tensor)
    if not is_tensor and not isinstance(maps, np.ndarray):
        raise TypeError(f"score maps must be a numpy array or torch tensor, got {type(maps)}")
    floating = maps.is_floating_point() if is_tensor else np.issubdtype(maps.dtype, np.floating)
    if not floating:
        raise ValueError(f"score maps must be floating point, got dtype {maps.dtype}")
    if maps.ndim not in (2, 3):
        raise ValueError(f"score maps must have shape (H, W) or (B, H, W), got {tuple(maps.shape)}")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(maps.shape[-2:]) != hw:
            raise ValueError(f"score maps must be {hw[0]}x{hw[1]}, got {tuple(maps.shape[-2:])}")
    if maps.numel() if is_tensor else maps.size:
        bad = torch.isnan(maps).any().item() if is_tensor else np.isnan(maps).any()
        if bad:
            raise ValueError("score maps contain NaN")
        lo = float(maps.min())
        hi = float(maps.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"score maps must lie in [0, 1], got min {lo:.4g} max {hi:.4g}")


def scoremaps_to_uint8(maps: ArrayLike) -> np.ndarray:
    """``(score * 255).astype(uint8)`` computed in the maps' own dtype (exact on any device)."""
    if isinstance(maps, torch.Tensor):
        return (maps.detach() * 255).to(torch.uint8).cpu().numpy()
    return (maps * 255).astype(np.uint8)


def multiple_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``boxes_a`` (A, 4) with every box in ``boxes_b`` (B, 4), x0y0x1y1.

    Inclusive pixel areas; a non-positive union gives IoU 0. Returns float64 (A, B).
    """
    a = np.asarray(boxes_a)[:, None, :]
    b = np.asarray(boxes_b)[None, :, :]
    min_x = np.maximum(a[..., 0], b[..., 0])
    min_y = np.maximum(a[..., 1], b[..., 1])
    max_x = np.minimum(a[..., 2], b[..., 2])
    max_y = np.minimum(a[..., 3], b[..., 3])
    inter = np.maximum(0, max_x - min_x + 1) * np.maximum(0, max_y - min_y + 1)
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    denom = area_a + area_b - inter
    degenerate = denom <= 0
    denom = np.where(degenerate, 1, denom)
    ious = inter / denom
    ious[degenerate] = 0
    return ious


_NO_BOX = np.zeros((1, 4), dtype=np.int64)


def _distinct_levels(q: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct masks among ``q > int(tau * q.max())``: their thresholds theta (K,) and, per
    tau, the index of its mask (``q > theta`` only changes at values present in ``q``)."""
    thetas = (taus * q.max()).astype(np.int64)  # same float64 product as int(tau * max)
    keys = np.searchsorted(np.unique(q), thetas, side="right")
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return thetas[first], inverse.reshape(-1)


def _mask_extents(q: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Inclusive pixel extent ``y0, y1, x0, x1`` (K, 4) of each non-empty mask ``q > theta``."""
    rows = q.max(axis=1)[None, :] > thetas[:, None]  # (K, H)
    cols = q.max(axis=0)[None, :] > thetas[:, None]  # (K, W)
    h, w = q.shape
    return np.stack([rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1),
                     cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)], axis=1)


def _box_bound(extents: np.ndarray, gt_boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per mask, an upper bound of the IoU of any of its contour boxes with any GT box (K,).

    Every contour of a mask traces pixels of that mask, so each of its boxes lies inside the
    mask's own box ``B = [x0, y0, min(x1 + 1, W - 1), min(y1 + 1, H - 1)]`` (the protocol's
    ``x + w`` quirk), and ``IoU(b, g) = |b & g| / |b | g| <= |B & g| / |g|`` (inclusive areas;
    correctly rounded division is monotone, so the float bound holds too)."""
    big = np.stack([extents[:, 2], extents[:, 0], np.minimum(extents[:, 3] + 1, width - 1),
                    np.minimum(extents[:, 1] + 1, height - 1)], axis=1)[:, None, :]
    g = gt_boxes[None, :, :]
    iw = np.maximum(0, np.minimum(big[..., 2], g[..., 2]) - np.maximum(big[..., 0], g[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(big[..., 3], g[..., 3]) - np.maximum(big[..., 1], g[..., 1]) + 1)
    area_g = (g[..., 2] - g[..., 0] + 1) * (g[..., 3] - g[..., 1] + 1)
    return (iw * ih / area_g).max(axis=1)


def _trace_levels(q: np.ndarray, thetas: np.ndarray, extents: np.ndarray, holes: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All contours of the masks ``q > theta`` (non-empty) in ONE ``cv2.findContours`` call.

    Each mask's bounding-box crop becomes a tile, framed by zeros, of a tall mosaic (tiles
    cannot touch, and the zero frame is what the function assumes beyond an image's border), so
    every tile yields exactly the contours of its mask, in the same relative order.

    Returns the mask index of each contour (n,), its protocol box ``[x, y, min(x + w, W - 1),
    min(y + h, H - 1)]`` of ``cv2.boundingRect`` (n, 4) and twice its polygon area
    (``2 * cv2.contourArea``, exact on integer points) (n,), contours grouped by mask in the
    function's order.
    """
    height, width = q.shape
    hs = extents[:, 1] - extents[:, 0] + 1
    ws = extents[:, 3] - extents[:, 2] + 1
    tops = np.concatenate([[0], np.cumsum(hs + 1)[:-1]])  # one zero row between tiles
    mosaic = np.zeros((int(tops[-1] + hs[-1] + 2), int(ws.max()) + 2), dtype=np.uint8)
    for k, (y0, y1, x0, x1) in enumerate(extents.tolist()):
        r = int(tops[k]) + 1  # q > theta written as 1 in place (cv2: ~1.3x numpy's compare)
        cv2.threshold(q[y0 : y1 + 1, x0 : x1 + 1], int(thetas[k]), 1, cv2.THRESH_BINARY,
                      dst=mosaic[r : r + y1 - y0 + 1, 1 : x1 - x0 + 2])
    mode = cv2.RETR_TREE if holes else cv2.RETR_EXTERNAL
    contours = cv2.findContours(mosaic, mode, cv2.CHAIN_APPROX_SIMPLE)[0]
    lengths = np.fromiter((len(c) for c in contours), dtype=np.int64, count=len(contours))
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    x, y = pts[:, 0], pts[:, 1]
    nxt = np.arange(1, len(pts) + 1)
    nxt[starts + lengths - 1] = starts  # close each polygon
    area2 = np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, starts))
    ymin = np.minimum.reduceat(y, starts)
    level = np.searchsorted(tops, ymin, side="right") - 1
    dx = extents[level, 2] - 1
    dy = extents[level, 0] - 1 - tops[level]
    boxes = np.stack([np.minimum.reduceat(x, starts) + dx, ymin + dy,
                      np.minimum(np.maximum.reduceat(x, starts) + dx + 1, width - 1),
                      np.minimum(np.maximum.reduceat(y, starts) + dy + 1, height - 1)], axis=1)
    order = np.argsort(level, kind="stable")
    return level[order], boxes[order], area2[order]


def _level_best_ious(q: np.ndarray, gt_boxes: np.ndarray, thetas: np.ndarray,
                     floors: dict[bool, float]) -> dict[bool, np.ndarray]:
    """Per distinct mask, the best IoU with the GT boxes of its largest contour (key False) and
    of any contour (key True). Masks whose bound (``_box_bound``) is below ``floors[mode]`` are
    not traced for that mode: their value is the bound, which is below the floor."""
    height, width = q.shape
    empty = thetas >= int(q.max())  # no pixel above theta: no contour, box [0, 0, 0, 0]
    out = {mode: np.full(len(thetas), multiple_iou(_NO_BOX, gt_boxes).max()) for mode in floors}
    live = np.flatnonzero(~empty)
    if len(live) == 0:
        return out
    extents = _mask_extents(q, thetas[live])
    bound = _box_bound(extents, gt_boxes, width, height)
    need = np.zeros(len(live), dtype=bool)
    for mode, floor in floors.items():
        out[mode][live] = bound
        need |= bound >= floor
    traced = np.flatnonzero(need)
    if len(traced) == 0:
        return out
    level, boxes, area2 = _trace_levels(q, thetas[live[traced]], extents[traced], True in floors)
    ious = multiple_iou(boxes, gt_boxes).max(axis=1)
    firsts = np.flatnonzero(np.diff(level, prepend=-1))  # contours are grouped by level
    targets = live[traced[level[firsts]]]
    if True in floors:
        keep = bound[traced[level[firsts]]] >= floors[True]
        out[True][targets[keep]] = np.maximum.reduceat(ious, firsts)[keep]
    if False in floors:  # the largest polygon area, the first one on ties (as ``max``)
        largest = np.maximum.reduceat(area2, firsts)
        is_max = np.flatnonzero(area2 == largest[np.searchsorted(firsts, np.arange(len(level)),
                                                                   side="right") - 1])
        _, first_max = np.unique(level[is_max], return_index=True)
        keep = bound[traced[level[firsts]]] >= floors[False]
        out[False][targets[keep]] = ious[is_max[first_max]][keep]
    return out


def best_ious_at_thresholds(
    q: np.ndarray, gt_boxes: np.ndarray, taus: np.ndarray, multi_contour: bool,
    floor: float = 0.0,
) -> np.ndarray:
    """Per tau, the best IoU between the predicted box(es) of one uint8 map ``q`` (H, W) and any
    GT box (n, 4): float64 (T,), equal to the literal per-threshold loop. With ``floor`` > 0,
    a value below ``floor`` may be an upper bound of the IoU instead (masks that cannot reach
    ``floor`` are not traced): ``best >= d`` is exact for every ``d >= floor``."""
    thetas, inverse = _distinct_levels(q, taus)
    return _level_best_ious(q, gt_boxes, thetas, {multi_contour: floor})[multi_contour][inverse]


def best_ious_v1_v2(q: np.ndarray, gt_boxes: np.ndarray, taus: np.ndarray,
                    floor_v1: float = 0.0, floor_v2: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``best_ious_at_thresholds`` of the largest contour (MaxBoxAcc) and of all contours
    (MaxBoxAccV2) from one trace of each mask."""
    thetas, inverse = _distinct_levels(q, taus)
    out = _level_best_ious(q, gt_boxes, thetas, {False: floor_v1, True: floor_v2})
    return out[False][inverse], out[True][inverse]


def boxes_at_thresholds(
    q: np.ndarray, taus: np.ndarray, multi_contour: bool
) -> list[np.ndarray]:
    """Predicted boxes (n_i, 4) for each tau of one uint8 map ``q`` (H, W) - exact."""
    thetas, inverse = _distinct_levels(q, taus)
    empty = thetas >= int(q.max())
    per_level = [_NO_BOX] * len(thetas)
    live = np.flatnonzero(~empty)
    if len(live):
        extents = _mask_extents(q, thetas[live])
        level, boxes, area2 = _trace_levels(q, thetas[live], extents)
        for k in range(len(live)):
            sel = np.flatnonzero(level == k)
            if not multi_contour:
                sel = sel[[int(np.argmax(area2[sel]))]]
            per_level[live[k]] = boxes[sel]
    return [per_level[k] for k in inverse.tolist()]


def map_per_image(fn: Callable, maps: np.ndarray, gt_boxes: Sequence[np.ndarray],
                  workers: int | None = None) -> list:
    """``[fn(q, gt) for q, gt in zip(maps, gt_boxes)]`` on ``workers`` threads (default: torch's
    CPU thread count, the job's ``--threads``), results in input order. The tracing releases the
    GIL (OpenCV), and evaluation runs while torch's threads are idle; each map's result depends
    on that map alone, so the counts are the same for any number of workers."""
    if len(maps) != len(gt_boxes):
        raise ValueError(f"{len(maps)} maps but {len(gt_boxes)} GT box arrays (one per map)")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (None: torch's thread count), got {workers}")
    workers = min(workers or torch.get_num_threads(), len(maps))
    if workers <= 1:
        return [fn(q, gt) for q, gt in zip(maps, gt_boxes, strict=True)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, maps, gt_boxes))


def check_gt_boxes(boxes: ArrayLike, size: int, name: str = "gt_boxes") -> np.ndarray:
    """GT boxes of one image as int64 (n, 4) x0y0x1y1 with 0 <= x0 <= x1 <= size (same for y);
    a single (4,) box is accepted. Raises ``ValueError`` naming ``name`` otherwise (a (1, 8)
    array is not two boxes, an inverted or out-of-frame box is an error)."""
    arr = np.asarray(to_numpy(boxes))
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be (n, 4) x0y0x1y1 boxes, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no box (every evaluated image needs one)")
    if not np.isfinite(arr.astype(np.float64)).all():
        raise ValueError(f"{name} has NaN or inf coordinates")
    x0, y0, x1, y1 = arr.T
    if ((x1 < x0) | (y1 < y0)).any():
        raise ValueError(f"{name} has an inverted box (needs x0 <= x1, y0 <= y1): "
                         f"{arr[(x1 < x0) | (y1 < y0)][0].tolist()}")
    if (arr < 0).any() or (arr > size).any():
        raise ValueError(f"{name} has a box outside the {size}x{size} frame (boxes must be "
                         f"resized to the map size first, see resize_box): {arr.tolist()}")
    return arr.astype(np.int64)


def _check_topk(labels: ArrayLike | None, topk_preds: ArrayLike | None, batch: int
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    if (labels is None) != (topk_preds is None):
        raise ValueError("labels and topk_preds go together (top-k localization needs both)")
    if labels is None:
        return None, None
    labels_np, preds_np = np.asarray(to_numpy(labels)), np.asarray(to_numpy(topk_preds))
    if labels_np.shape != (batch,):
        raise ValueError(f"labels must be ({batch},) for {batch} maps, got {labels_np.shape}")
    if preds_np.ndim != 2 or preds_np.shape[0] != batch or preds_np.shape[1] < 1:
        raise ValueError(f"topk_preds must be ({batch}, k) classes ranked best first, got "
                         f"{preds_np.shape}")
    return labels_np, preds_np


class BoxAccumulator:
    """MaxBoxAcc (V1: largest contour, IoU 50) and MaxBoxAccV2 (all contours, IoU 30/50/70).

    ``update(maps, gt_boxes, labels=None, topk_preds=None)`` batch by batch, then ``compute()``.
    Also counts top-1 / top-5 localization when ``labels`` and ``topk_preds`` are given.
    """

    def __init__(
        self,
        multi_contour: bool = False,
        iou_thresholds: Sequence[int] = (50,),
        step: float = 0.001,
        size: int = 224,
    ) -> None:
        self.multi_contour = multi_contour
        self.iou_thresholds = tuple(int(d) for d in iou_thresholds)
        self.taus = threshold_list(step)
        self.size = size
        self.count = 0
        n = len(self.taus)
        self.correct = {d: np.zeros(n, dtype=np.int64) for d in self.iou_thresholds}
        self.correct_top1 = {d: np.zeros(n, dtype=np.int64) for d in self.iou_thresholds}
        self.correct_top5 = {d: np.zeros(n, dtype=np.int64) for d in self.iou_thresholds}

    def _checked(self, maps: ArrayLike, gt_boxes: Sequence[ArrayLike], labels, topk_preds
                 ) -> tuple[np.ndarray, list[np.ndarray], list[tuple[bool, bool]]]:
        """uint8 maps (B, S, S), checked GT boxes and (top-1 hit, top-5 hit) per map."""
        if isinstance(maps, np.ndarray | torch.Tensor) and maps.ndim == 2:
            maps = maps[None]
        check_scoremaps(maps, self.size)
        if len(gt_boxes) != maps.shape[0]:
            raise ValueError(f"got {maps.shape[0]} maps but {len(gt_boxes)} GT box sets")
        gts = [check_gt_boxes(b, self.size, f"gt_boxes[{i}]") for i, b in enumerate(gt_boxes)]
        labels_np, preds_np = _check_topk(labels, topk_preds, maps.shape[0])
        hits = [(False, False)] * maps.shape[0]
        if labels_np is not None and preds_np is not None:
            hits = [(bool(preds_np[i, 0] == labels_np[i]), bool((preds_np[i, :5] == labels_np[i]).any()))
                    for i in range(maps.shape[0])]
        return scoremaps_to_uint8(maps), gts, hits

    @property
    def floor(self) -> float:
        """The smallest IoU threshold: masks whose boxes cannot reach it need no tracing."""
        return min(self.iou_thresholds, default=0) / 100

    def add(self, best: np.ndarray, hit1: bool = False, hit5: bool = False) -> None:
        """Count one map from its best IoU per tau (exact at and above ``floor``)."""
        for d in self.iou_thresholds:
            ok = best >= (d / 100)
            self.correct[d] += ok
            if hit1:
                self.correct_top1[d] += ok
            if hit5:
                self.correct_top5[d] += ok
        self.count += 1

    def update(
        self,
        maps: ArrayLike,
        gt_boxes: Sequence[ArrayLike],
        labels: ArrayLike | None = None,
        topk_preds: ArrayLike | None = None,
    ) -> None:
        """Add a batch.

        maps: (B, S, S) float scores in [0, 1] (S = ``size``), numpy or torch on any device.
        gt_boxes: B arrays (n_i, 4) of x0y0x1y1 boxes already in the S x S frame.
        labels: (B,) GT classes; topk_preds: (B, >=5) predicted classes, best first.
        """
        q_all, gts, hits = self._checked(maps, gt_boxes, labels, topk_preds)
        bests = map_per_image(lambda q, gt: best_ious_at_thresholds(
            q, gt, self.taus, self.multi_contour, self.floor), q_all, gts)
        for best, (hit1, hit5) in zip(bests, hits, strict=True):
            self.add(best, hit1, hit5)

    def curves(self) -> dict[int, np.ndarray]:
        """Box accuracy (%) per tau for each IoU threshold delta."""
        self._check_nonempty()
        return {d: self.correct[d] * 100.0 / float(self.count) for d in self.iou_thresholds}

    def _check_nonempty(self) -> None:
        if self.count == 0:
            raise RuntimeError("no sample was accumulated")

    def compute(self) -> dict[str, float]:
        """``max_box_acc`` (mean over deltas of the per-delta max), per-delta values, best taus."""
        curves = self.curves()
        per_delta = {d: float(c.max()) for d, c in curves.items()}
        out = {f"box_acc@{d}": v for d, v in per_delta.items()}
        out.update({f"best_tau@{d}": float(self.taus[c.argmax()]) for d, c in curves.items()})
        out["max_box_acc"] = float(np.mean(list(per_delta.values())))
        for name, table in (("top1_loc", self.correct_top1), ("top5_loc", self.correct_top5)):
            vals = [table[d].max() * 100.0 / float(self.count) for d in self.iou_thresholds]
            out[name] = float(np.mean(vals))
        return out


def max_box_acc_v1(**kwargs) -> BoxAccumulator:
    """MaxBoxAcc (CAM-style): largest contour, IoU >= 0.5."""
    return BoxAccumulator(multi_contour=False, iou_thresholds=(50,), **kwargs)


def max_box_acc_v2(**kwargs) -> BoxAccumulator:
    """MaxBoxAccV2: all contours, mean over IoU in {0.3, 0.5, 0.7}."""
    return BoxAccumulator(multi_contour=True, iou_thresholds=(30, 50, 70), **kwargs)


def update_v1_v2(v1: BoxAccumulator, v2: BoxAccumulator, maps: ArrayLike,
                 gt_boxes: Sequence[ArrayLike], labels: ArrayLike | None = None,
                 topk_preds: ArrayLike | None = None) -> None:
    """``v1.update(...)`` and ``v2.update(...)`` (largest contour / all contours, same thresholds
    and size) from one contour trace per distinct mask: the same counts, about half the work."""
    if v1.multi_contour or not v2.multi_contour or v1.size != v2.size \
            or not np.array_equal(v1.taus, v2.taus):
        raise ValueError("update_v1_v2 takes a largest-contour and an all-contours accumulator "
                         "with the same thresholds and size")
    q_all, gts, hits = v1._checked(maps, gt_boxes, labels, topk_preds)
    bests = map_per_image(lambda q, gt: best_ious_v1_v2(q, gt, v1.taus, v1.floor, v2.floor),
                          q_all, gts)
    for (best1, best2), (hit1, hit5) in zip(bests, hits, strict=True):
        v1.add(best1, hit1, hit5)
        v2.add(best2, hit1, hit5)


def check_mask_values(masks: torch.Tensor) -> None:
    """GT masks hold 0 (background), 1 (foreground) and 255 (ignore) only, and a batch with
    ignore pixels has foreground (one host sync per batch). Raises ``ValueError`` otherwise: a
    0/255 mask would otherwise count its object as ignored."""
    valid = (masks == 0) | (masks == 1) | (masks == 255)
    if not bool(valid.all()):
        raise ValueError(f"masks must hold 0 (background), 1 (foreground) or 255 (ignore); got "
                         f"{masks[~valid].unique()[:5].tolist()}")
    if bool((masks == 255).any()) and not bool((masks == 1).any()):
        raise ValueError("masks have ignore pixels (255) but no foreground (1): a 0/255 "
                         "object mask? Convert it with (mask > 127) before evaluating")


class PxAPAccumulator:
    """Pixel average precision (PxAP) over score histograms pooled on the dataset.

    ``update(maps, masks)`` with masks (B, S, S) of 1 = foreground, 0 = background,
    255 = ignore (see ``fcam_nb.data.wsol.load_gt_mask``), then ``compute()``.
    Histograms are integer counts on the maps' device; no per-sample host sync.
    """

    def __init__(self, step: float = 0.001, size: int = 224) -> None:
        self.taus = threshold_list(step)
        self.edges = np.append(self.taus, [1.0, 2.0, 3.0])
        self.size = size
        self.fg_hist = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self.bg_hist = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self._dev_hist: dict[str, torch.Tensor] = {}

    def _bins(self, scores: torch.Tensor) -> torch.Tensor:
        edges = torch.as_tensor(self.edges, dtype=torch.float64, device=scores.device)
        # bin i holds edges[i] <= s < edges[i + 1] (np.histogram; scores <= 1 < last edge)
        return torch.bucketize(scores.double(), edges, right=True) - 1

    def update(self, maps: ArrayLike, masks: ArrayLike) -> None:
        """maps: (B, S, S) float in [0, 1]; masks: (B, S, S) uint8 in {0, 1, 255}."""
        if isinstance(maps, np.ndarray | torch.Tensor) and maps.ndim == 2:
            maps = maps[None]
            masks = masks[None]
        check_scoremaps(maps, self.size)
        maps_t = torch.as_tensor(maps)
        masks_t = torch.as_tensor(masks, device=maps_t.device)
        if masks_t.shape != maps_t.shape:
            raise ValueError(f"masks {tuple(masks_t.shape)} do not match maps {tuple(maps_t.shape)}")
        check_mask_values(masks_t)
        nbins = len(self.edges) - 1
        for name, sel in (("fg", masks_t == 1), ("bg", masks_t == 0)):
            counts = torch.bincount(self._bins(maps_t[sel]), minlength=nbins)
            prev = self._dev_hist.get(name)
            self._dev_hist[name] = counts if prev is None else prev + counts

    def _sync(self) -> None:
        for name, counts in self._dev_hist.items():
            hist = self.fg_hist if name == "fg" else self.bg_hist
            hist += counts.cpu().numpy().astype(np.int64)
        self._dev_hist = {}

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Precision and recall for thresholds from high to low (the protocol's arrays)."""
        self._sync()
        fg = self.fg_hist.astype(np.float64)
        bg = self.bg_hist.astype(np.float64)
        num_fg = fg.sum()
        tp = fg[::-1].cumsum()
        fn = num_fg - tp
        fp = bg[::-1].cumsum()
        if ((tp + fn) <= 0).all():
            raise ValueError("PxAP needs foreground pixels: no GT foreground in the evaluated set")
        if ((tp + fp) <= 0).all():
            raise ValueError("PxAP: no positive prediction in the evaluated set")
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
        return precision, recall

    def compute(self) -> float:
        """PxAP in percent: ``100 * sum_k P_k (R_k - R_{k-1})`` over bins with TP + FP > 0."""
        precision, recall = self.curve()
        tp_fp = self.fg_hist[::-1].cumsum() + self.bg_hist[::-1].cumsum()
        nonzero = tp_fp != 0
        auc = (precision[1:] * np.diff(recall))[nonzero[1:]].sum()
        return float(auc * 100)


def activation_histograms(
    maps: ArrayLike, masks: ArrayLike, bins: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalized histograms of scores on foreground and background pixels (paper Fig. 6).

    Returns (edges (bins+1,), fg density (bins,), bg density (bins,)); ignore pixels are dropped.
    """
    maps_np = to_numpy(maps)
    masks_np = to_numpy(masks)
    edges = np.linspace(0.0, 1.0, bins + 1)
    fg, _ = np.histogram(maps_np[masks_np == 1], bins=edges, density=True)
    bg, _ = np.histogram(maps_np[masks_np == 0], bins=edges, density=True)
    return edges, fg, bg


# ----------------------------------------------------------------------------------------------
# Literal re-statement of the published per-threshold loop (reference for tests and benchmarks).
# ----------------------------------------------------------------------------------------------


def reference_boxes(
    scoremap: np.ndarray, taus: np.ndarray, multi_contour: bool
) -> tuple[list[np.ndarray], list[int]]:
    """``compute_bboxes_from_scoremaps`` of wsolevaluation: one findContours per threshold."""
    height, width = scoremap.shape
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    all_boxes, counts = [], []
    for tau in taus:
        _, binary = cv2.threshold(
            image, thresh=int(tau * np.max(image)), maxval=255, type=cv2.THRESH_BINARY
        )
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            all_boxes.append(np.asarray([[0, 0, 0, 0]]))
            counts.append(1)
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        all_boxes.append(np.asarray(boxes))
        counts.append(len(contours))
    return all_boxes, counts


def reference_box_correct(
    scoremap: np.ndarray,
    gt_boxes: np.ndarray,
    taus: np.ndarray,
    multi_contour: bool,
    iou_thresholds: Sequence[int],
) -> dict[int, np.ndarray]:
    """Per-threshold correctness of one map, following ``BoxEvaluator.accumulate`` literally."""
    boxes, counts = reference_boxes(scoremap, taus, multi_contour)
    ious = multiple_iou(np.concatenate(boxes, axis=0), np.asarray(gt_boxes))
    best, idx = [], 0
    for n in counts:
        best.append(max(ious.max(1)[idx : idx + n]))
        idx += n
    out = {}
    for d in iou_thresholds:
        ok = np.zeros(len(taus), dtype=np.int64)
        ok[np.where(np.asarray(best) >= (d / 100))[0]] += 1
        out[d] = ok
    return out
