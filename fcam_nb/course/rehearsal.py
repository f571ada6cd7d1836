"""A rehearsal of the paper path on the CPU, with the real metadata and the real configuration.

``make_rehearsal_data("CUB" | "OpenImages", root)`` takes a small subset of the OFFICIAL
metadata shipped in the package (the first ``classes`` classes, a few images per class and
split, the metadata lines verbatim) and renders placeholder images at the declared paths and
sizes: a coloured object inside the declared box on a noisy background (CUB), or an object whose
instance masks and ignore masks are written at the declared mask paths (OpenImages, whose
metadata declares no image size: sizes are drawn). ``rehearsal_run`` then gives the paper's
configuration (224 px, WSOL backbone, the paper's stage-2 settings) shrunk only where the CPU
needs it: one short epoch per stage, small batches, random weights unless ImageNet weights are
already in torch's cache, and the CRF at a reduced scale (printed by the main job).

So every code path a Colab user takes on CUB or OpenImages (metadata quirks, JPEG decoding,
box rescaling, masks and ignore regions, box-only and mask-only evaluation) runs in CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from fcam_nb.config import RunConfig, Variant
from fcam_nb.data.official import NUM_CLASSES, canonical_name, official_metadata
from fcam_nb.data.synthetic import write_image
from fcam_nb.data.wsol import METADATA_FILES, read_metadata
from fcam_nb.presets import paper_run

SPLITS = ("train", "val", "test")
REHEARSAL_CRF_SCALE = 0.125  # the exact CRF on 28x28 maps: 0.6 M pixel pairs per image


def _subset_ids(meta, classes: int, per_class: int) -> list[str]:
    taken: dict[int, int] = {}
    ids = []
    for image_id in meta.image_ids:
        label = meta.labels[image_id]
        if label < classes and taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            ids.append(image_id)
    return ids


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.integers(60, 200, size=3)
    noise = rng.normal(0, 25, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _ellipse_mask(h: int, w: int, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros((h, w), np.uint8)
    center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
    axes = (max(1, int((x1 - x0) / 2)), max(1, int((y1 - y0) / 2)))
    cv2.ellipse(mask, center, axes, 0, 0, 360, 255, -1)
    return mask


def _paint(image: np.ndarray, mask: np.ndarray, label: int) -> None:
    hue = (37 * label) % 180
    color = cv2.cvtColor(np.uint8([[[hue, 200, 220]]]), cv2.COLOR_HSV2RGB)[0, 0]
    image[mask > 0] = color


def make_rehearsal_data(dataset: str, root: str | os.PathLike, classes: int = 2,
                        per_class: tuple[int, int, int] = (3, 2, 2), seed: int = 0) -> Path:
    """Write ``root/images`` and ``root/metadata/<split>`` for a rehearsal of ``dataset``.

    Args:
        dataset: ``CUB`` or ``OpenImages``.
        root: output folder (reused when already complete for the same arguments).
        classes: the first ``classes`` official classes are kept (labels stay 0..classes-1).
        per_class: images per class in train, val and test.
    Returns:
        ``root``; images and masks are under ``root/images``, metadata under ``root/metadata``.
    """
    name = canonical_name(dataset)
    root = Path(root)
    stamp = f"{name} classes={classes} per_class={per_class} seed={seed}\n"
    done = root / ".complete"
    if done.is_file() and done.read_text() == stamp:
        return root
    rng = np.random.default_rng(seed)
    source = official_metadata(name)
    for split, n in zip(SPLITS, per_class, strict=True):
        meta = read_metadata(source / split, NUM_CLASSES[name])
        keep = set(_subset_ids(meta, classes, n))
        out = root / "metadata" / split
        out.mkdir(parents=True, exist_ok=True)
        for fname in METADATA_FILES:  # the official lines, verbatim, for the kept images
            lines = (source / split / fname).read_text().splitlines()
            kept = [line for line in lines if line.split(",")[0] in keep]
            (out / fname).write_text("".join(f"{line}\n" for line in kept))
        for image_id in (i for i in meta.image_ids if i in keep):
            w, h = meta.sizes.get(image_id, (int(rng.integers(96, 257)), int(rng.integers(96, 257))))
            image = _background(rng, h, w)
            label = meta.labels[image_id]
            if meta.has_boxes:
                for box in meta.boxes[image_id]:
                    _paint(image, _ellipse_mask(h, w, box), label)
            else:  # OpenImages: one object per instance mask, plus the ignore mask
                union = np.zeros((h, w), np.uint8)
                for k, mask_path in enumerate(meta.mask_paths.get(image_id, [])):
                    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
                    rw, rh = rng.uniform(0.12, 0.3) * w, rng.uniform(0.12, 0.3) * h
                    mask = _ellipse_mask(h, w, (cx - rw, cy - rh, cx + rw, cy + rh))
                    _paint(image, mask, label + k)
                    write_image(root / "images" / mask_path, mask)
                    union |= mask
                ignore = meta.ignore_paths.get(image_id, "")
                if ignore:
                    band = cv2.dilate(union, np.ones((7, 7), np.uint8)) & ~union
                    write_image(root / "images" / ignore, band)
            write_image(root / "images" / image_id, image)
    done.write_text(stamp)
    return root


def imagenet_weights_cached(backbone: str) -> bool:
    """Whether torchvision's ImageNet weights of ``backbone`` are already in torch's hub cache
    (then they load without a download)."""
    from fcam_nb.models.backbones import imagenet_weights

    weights = imagenet_weights(backbone)
    if weights is None:
        return False
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    return cached.is_file()


def rehearsal_run(dataset: str, root: str | os.PathLike, out_dir: str | os.PathLike,
                  backbone: str = "resnet50", variant: Variant | None = None, seed: int = 0,
                  classes: int = 2, per_class: tuple[int, int, int] = (2, 1, 1),
                  device: str = "cpu", schedule: str = "paper") -> RunConfig:
    """The paper configuration of ``dataset`` on rehearsal data (made when missing): one epoch
    per stage, batches of 4. On the CPU (default) in fp32 with the CRF at
    ``REHEARSAL_CRF_SCALE``; on ``device="cuda"`` (or ``"auto"``) with autocast and the CRF at the
    paper's scale, so a GPU session rehearses the code its real run takes (Triton kernel,
    mixed precision). ``schedule``: the ``paper_run`` schedule rehearsed (``colab``: one
    classifier shared by the CAM methods, as the notebooks run on Colab)."""
    data_root = make_rehearsal_data(dataset, root, classes=classes, per_class=per_class, seed=seed)
    cfg = paper_run(dataset, data_root / "images", data_root / "metadata", out_dir,
                    backbone=backbone, variant=variant, seed=seed, schedule=schedule)
    weights = "imagenet" if imagenet_weights_cached(backbone) else None
    cpu = cfg.override(device=device).torch_device().type == "cpu"
    stage2 = {"epochs": 1, "batch_size": 4}
    if cpu:
        stage2.update(crf_scale=REHEARSAL_CRF_SCALE, crf_map_mode="area")
    return cfg.override(
        data={"num_classes": classes, "workers": 0}, stage1={"epochs": 1, "batch_size": 4},
        stage2=stage2, weights=weights, device=device, amp=not cpu, progress=False,
    )
