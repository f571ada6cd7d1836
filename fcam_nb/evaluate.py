"""Evaluation of localization maps with the WSOL metrics, batch by batch on the model's device.

A *predictor* maps a batch of network inputs (B, 3, S, S) and GT labels to
``(maps (B, S, S) in [0, 1], logits (B, K))``. ``cam_predictor`` wraps a CAM method (GT-class
CAM, upsampled and min-max normalized, as in the protocol); ``fcam_predictor`` the F-CAM decoder.
A *joint predictor* returns ``{name: (maps, logits)}`` for several at once: ``cam_predictors``
computes several CAM methods from one forward/backward, and ``evaluate_many`` scores each name
in one pass over the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch

from fcam_nb.cams import build_cam_method, maps_from_one_pass, upsample_maps
from fcam_nb.data.loader import make_loader
from fcam_nb.data.transforms import normalize
from fcam_nb.data.wsol import WSOLDataset
from fcam_nb.metric_specs import METRIC_NAMES, table_keys
from fcam_nb.metrics import (
    BoxAccumulator,
    PxAPAccumulator,
    max_box_acc_v1,
    max_box_acc_v2,
    update_v1_v2,
)
from fcam_nb.models import FCAM, WSOLClassifier

if TYPE_CHECKING:
    from fcam_nb.config import RunConfig

Predictor = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
JointPredictor = Callable[[torch.Tensor, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]


def cam_predictor(classifier: WSOLClassifier, method: str, **method_kwargs) -> Predictor:
    """GT-class CAM of ``method`` upsampled to the input size and normalized per map."""
    cam = build_cam_method(method, classifier, **method_kwargs)

    def predict(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cam.full_resolution(inputs, labels), cam.last_logits

    return predict


def cam_predictors(classifier: WSOLClassifier, methods: tuple[str, ...] | list[str],
                   options: Callable[[str], dict] | None = None) -> JointPredictor:
    """``{method: cam_predictor(classifier, method, **options(method))(...)}`` for several
    methods with one forward (and one backward) of the classifier per batch
    (``fcam_nb.cams.maps_from_one_pass``): the same maps, what validation after each stage-1
    epoch needs. ``options``: a method's keyword options (e.g. ``RunConfig.cam_kwargs``)."""
    built = [build_cam_method(m, classifier, **(options(m) if options else {})) for m in methods]

    def predict(inputs: torch.Tensor, labels: torch.Tensor
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        maps = maps_from_one_pass(built, inputs, labels)
        return {m: (upsample_maps(low, inputs.shape[-2:]), cam.last_logits)
                for m, cam, low in zip(methods, built, maps, strict=True)}

    return predict


def joint(predictors: dict[str, Predictor]) -> JointPredictor:
    """Several predictors called one after the other as one joint predictor."""

    def predict(inputs: torch.Tensor, labels: torch.Tensor
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {name: p(inputs, labels) for name, p in predictors.items()}

    return predict


def fcam_predictor(model: FCAM) -> Predictor:
    """Foreground probability of the F-CAM decoder (softmax channel 1, no min-max)."""

    def predict(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            logits, seg = model(inputs)
        return seg.float().softmax(dim=1)[:, 1], logits

    return predict


def center_prior_predictor(classifier: WSOLClassifier, sigma: float = 0.5) -> Predictor:
    """A reference that looks at no pixel: the same centred isotropic Gaussian for every image
    (std ``sigma`` x the image side, min-max normalized), with ``classifier``'s logits for the
    classification and top-k columns. A localization method should beat it.

    Any ``sigma`` thresholds into the same family of centred discs (the map is monotone in the
    distance to the centre); 0.5 keeps the uint8 levels of the protocol spread over the image
    (corners at exp(-1) before normalization)."""

    def predict(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = inputs.shape
        ys = (torch.arange(h, device=inputs.device, dtype=torch.float32) - (h - 1) / 2) / h
        xs = (torch.arange(w, device=inputs.device, dtype=torch.float32) - (w - 1) / 2) / w
        g = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))
        g = (g - g.min()) / (g.max() - g.min())
        return g.expand(b, h, w), classifier(inputs)

    return predict


class LocalizationEvaluator:
    """MaxBoxAcc, MaxBoxAccV2, PxAP (when masks are given), top-1/5 loc and classification acc."""

    def __init__(self, size: int, step: float = 0.001, with_boxes: bool = True,
                 with_masks: bool = False) -> None:
        self.v1: BoxAccumulator | None = max_box_acc_v1(step=step, size=size) if with_boxes else None
        self.v2: BoxAccumulator | None = max_box_acc_v2(step=step, size=size) if with_boxes else None
        self.pxap = PxAPAccumulator(step=step, size=size) if with_masks else None
        self.correct_cls = 0
        self.count = 0

    def update(self, maps: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
               boxes: list | None = None, masks: torch.Tensor | None = None) -> None:
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        self.correct_cls += int((top[:, 0] == labels.to(top.device)).sum())
        self.count += labels.shape[0]
        if self.v1 is not None:
            top_np, labels_np = top.cpu().numpy(), labels.cpu().numpy()
            update_v1_v2(self.v1, self.v2, maps, boxes, labels_np, top_np)
        if self.pxap is not None:
            self.pxap.update(maps, masks.to(maps.device))

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {"cls_acc": 100.0 * self.correct_cls / max(self.count, 1)}
        if self.v1 is not None:
            v1, v2 = self.v1.compute(), self.v2.compute()
            out.update(
                max_box_acc=v1["max_box_acc"],
                best_tau=v1["best_tau@50"],
                max_box_acc_v2=v2["max_box_acc"],
                top1_loc=v1["top1_loc"],
                top5_loc=v1["top5_loc"],
                **{f"v2_box_acc@{d}": v2[f"box_acc@{d}"] for d in (30, 50, 70)},
            )
        if self.pxap is not None:
            out["pxap"] = self.pxap.compute()
        return out


@torch.no_grad()
def evaluate_many(
    predictor: JointPredictor,
    batches: Iterable[dict],
    size: int,
    device: torch.device | str = "cpu",
    step: float = 0.001,
    keep_maps: bool = False,
) -> dict[str, dict]:
    """``evaluate`` for each name of a joint predictor, in one pass over ``batches`` (each batch
    loaded and moved once). Returns ``{name: scores}`` in the predictor's order."""
    evaluators: dict[str, LocalizationEvaluator] = {}
    kept: dict[str, list] = {}
    for batch in batches:
        images = batch["image"].to(device)
        if images.shape[-1] != size:
            raise ValueError(f"evaluation batches must be {size}x{size}, got {images.shape[-1]}")
        labels = batch["label"].to(device)
        for name, (maps, logits) in predictor(normalize(images), labels).items():
            if name not in evaluators:
                evaluators[name] = LocalizationEvaluator(size, step, with_boxes="boxes" in batch,
                                                         with_masks="mask" in batch)
            evaluators[name].update(maps, logits, labels, batch.get("boxes"), batch.get("mask"))
            if keep_maps:
                kept.setdefault(name, []).append(maps.half().cpu().numpy())
    if not evaluators:
        raise ValueError("no batch to evaluate")
    out = {name: ev.compute() for name, ev in evaluators.items()}
    for name, chunks in kept.items():
        out[name]["maps"] = np.concatenate(chunks)
    return out


def evaluate(
    predictor: Predictor,
    batches: Iterable[dict],
    size: int,
    device: torch.device | str = "cpu",
    step: float = 0.001,
    keep_maps: bool = False,
) -> dict:
    """Run ``predictor`` over ``batches`` (dicts from ``fcam_nb.data.collate``) and score it.

    Args:
        predictor: (normalized inputs (B, 3, S, S), labels (B,)) -> (maps (B, S, S) in [0, 1],
            logits (B, K)); see ``cam_predictor`` / ``fcam_predictor``.
        batches: evaluation batches of ``size`` x ``size`` images in [0, 1].
        size: the evaluation resolution S (224 in the protocol).
        device: where the predictor runs.
        step: threshold step of the metrics (``numpy.arange(0, 1, step)``).
        keep_maps: also return the maps.
    Returns:
        ``cls_acc``; with boxes ``max_box_acc``, ``best_tau``, ``max_box_acc_v2``, ``top1_loc``,
        ``top5_loc``, ``v2_box_acc@{30,50,70}``; with masks ``pxap``; with ``keep_maps`` also
        ``maps`` (N, S, S) float16 numpy. All metrics in percent.
    """
    return evaluate_many(joint({"": predictor}), batches, size, device, step, keep_maps)[""]


def evaluate_split(cfg: RunConfig, predictor: Predictor, split: str = "test",
                   keep_maps: bool = False, batch_size: int = 64,
                   dataset: WSOLDataset | None = None) -> dict:
    """Score ``predictor`` on a split of ``cfg``'s dataset at the evaluation size (see
    ``evaluate`` for what it returns) with thresholds every ``cfg.eval_step``
    (``cfg.val_eval_step`` on the validation split when set). ``dataset`` reuses an already
    opened split.

    Example:
        >>> scores = evaluate_split(cfg, cam_predictor(classifier, "cam"), "test")
        >>> scores["max_box_acc"], scores.get("pxap")
    """
    return evaluate_split_many(cfg, joint({"": predictor}), split, keep_maps, batch_size,
                               dataset)[""]


def evaluate_split_many(cfg: RunConfig, predictor: JointPredictor, split: str = "test",
                        keep_maps: bool = False, batch_size: int = 64,
                        dataset: WSOLDataset | None = None) -> dict[str, dict]:
    """``evaluate_split`` for each name of a joint predictor, in one pass over the split."""
    dataset = dataset if dataset is not None else cfg.data.dataset(split, train=False)
    loader = make_loader(dataset, batch_size, workers=cfg.data.workers)
    step = cfg.val_eval_step if split == "val" and cfg.val_eval_step else cfg.eval_step
    return evaluate_many(predictor, loader, cfg.data.input_size, cfg.torch_device(), step,
                         keep_maps=keep_maps)


def unavailable_metrics(scores: dict) -> str:
    """One line naming the metrics a split cannot give (CUB: no masks -> no PxAP; OpenImages: no
    boxes -> no MaxBoxAcc / V2 / top-k loc), or "" when all are there."""
    missing = []
    if "max_box_acc" not in scores:
        missing.append("MaxBoxAcc, MaxBoxAccV2, top-1/top-5 loc (this split has no boxes)")
    if "pxap" not in scores:
        missing.append("PxAP and pixel curves (this split has no masks)")
    return ("not available: " + "; ".join(missing)) if missing else ""


def primary_metric(scores: dict) -> str:
    """The protocol's localization metric of a split: MaxBoxAcc with boxes, PxAP with masks only."""
    if "max_box_acc" in scores:
        return "max_box_acc"
    if "pxap" in scores:
        return "pxap"
    raise KeyError("scores hold neither max_box_acc nor pxap")


def score_table(rows: dict[str, dict], keys: tuple[str, ...] | None = None) -> str:
    """Fixed-width text table of ``rows`` (name -> scores) over the metrics they all have
    (``keys``; default: every registered table metric)."""
    cols = [k for k in (keys or table_keys()) if all(k in r for r in rows.values())]
    width = max([len(n) for n in rows] + [8]) + 2
    lines = [" " * width + "".join(f"{METRIC_NAMES.get(k, k):>13s}" for k in cols)]
    for name, r in rows.items():
        lines.append(f"{name:{width}s}" + "".join(f"{r[k]:13.1f}" for k in cols))
    return "\n".join(lines)


def object_regions(dataset: WSOLDataset) -> torch.Tensor:
    """GT object pixels of every image of an evaluation split, bool (N, S, S): the instance
    masks (== 1) where the split has masks, else the union of the filled GT boxes (CUB)."""
    items = [dataset[i] for i in range(len(dataset))]
    if "mask" in items[0]:
        return torch.stack([it["mask"] == 1 for it in items])
    size = dataset.size
    out = torch.zeros(len(items), size, size, dtype=torch.bool)
    for i, it in enumerate(items):
        for x0, y0, x1, y1 in it["boxes"].tolist():
            out[i, y0 : y1 + 1, x0 : x1 + 1] = True
    return out


def part_and_body_coverage(maps: torch.Tensor, objects: torch.Tensor, parts: torch.Tensor
                           ) -> dict[str, float]:
    """Where a map's Otsu foreground falls on an object made of a discriminative part and the
    rest (the synthetic bird: the class mark's disc and the rest of the bird).

    Args:
        maps: (N, H, W) in [0, 1]; objects, parts: bool (N, H, W), each part inside its object.
    Returns:
        Means over images, in percent: ``object_covered`` (share of the object inside the map's
        Otsu region, as F-CAM's foreground seeds see it before erosion), ``part_covered``,
        ``rest_covered`` (the object minus its part), ``region_on_object`` (share of the region on
        the object); and the mean map value on the ``part``, the ``rest`` and the ``background``.
    """
    from fcam_nb.sampling import foreground_region

    if not (maps.shape == objects.shape == parts.shape):
        raise ValueError(f"maps {tuple(maps.shape)}, objects {tuple(objects.shape)} and parts "
                         f"{tuple(parts.shape)} must have one shape")
    if bool((parts & ~objects).any()):
        raise ValueError("a part lies outside its object")
    region = foreground_region(maps.float(), erode_ksz=1)
    rest = objects & ~parts

    def share(inside: torch.Tensor, of: torch.Tensor) -> float:
        return 100 * float(((inside & of).flatten(1).sum(1)
                            / of.flatten(1).sum(1).clamp_min(1)).mean())

    def mean_value(where: torch.Tensor) -> float:
        return float((maps * where).flatten(1).sum(1).div(where.flatten(1).sum(1).clamp_min(1))
                     .mean())

    return {"object_covered": share(region, objects), "part_covered": share(region, parts),
            "rest_covered": share(region, rest), "region_on_object": share(objects, region),
            "part": mean_value(parts), "rest": mean_value(rest),
            "background": mean_value(~objects)}
