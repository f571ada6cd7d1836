"""How strong is our exact dense CRF term next to the official permutohedral one?

The official loss filters with a permutohedral lattice (``benchmarks/crf_lattice.py``, a
transcription of the code it calls); we compute ``W S`` exactly. At one lambda the two terms
differ by the ratio ``R = S^T (A S)_lattice / S^T (W S)_exact``. This script measures R on
natural images (scikit-image's sample photographs) and on the synthetic set's images, at 224 px
(sxy 100) and at the official ``scale_factor`` 0.5 (112 px, sxy 50), with decoder-like maps (a
soft blob plus noise), and prints the calibrated weight ``2e-9 * R`` that makes our term as
strong as the official one. Writes ``benchmarks/crf_calibration.json``.

    python benchmarks/crf_calibration.py            # ~5 min on 2 CPU cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as samples

sys.path.insert(0, str(Path(__file__).parent))
from crf_lattice import lattice_ws  # noqa: E402

from fcam_nb.data import SyntheticConfig  # noqa: E402
from fcam_nb.data.synthetic import generate  # noqa: E402
from fcam_nb.losses.crf import crf_features, crf_ws_torch  # noqa: E402

PAPER_LAMBDA = 2e-9
NATURAL = ("astronaut", "chelsea", "coffee", "rocket")


def _resized(rgb: np.ndarray, side: int) -> np.ndarray:
    """(3, side, side) float32 in [0, 255], PIL antialiased bilinear like the data loader."""
    image = Image.fromarray(rgb).convert("RGB").resize((side, side), Image.BILINEAR)
    return np.asarray(image, np.float32).transpose(2, 0, 1).copy()


def _maps(side: int, rng: np.random.Generator) -> np.ndarray:
    """(2, side, side) background/foreground probabilities: a soft elliptic blob plus noise."""
    ys, xs = np.mgrid[0:side, 0:side] / side
    cy, cx, ry, rx = rng.uniform(0.35, 0.65, 2).tolist() + rng.uniform(0.15, 0.35, 2).tolist()
    logit = 6 * (1 - ((ys - cy) / ry) ** 2 - ((xs - cx) / rx) ** 2) + rng.normal(0, 1, ys.shape)
    fg = 1 / (1 + np.exp(-logit))
    return np.stack([1 - fg, fg]).astype(np.float32)


def ratio(image: np.ndarray, probs: np.ndarray, sigma_xy: float, sigma_rgb: float = 15.0
          ) -> tuple[float, float, float]:
    """(R over the image, 5th and 95th percentile of the per-pixel ratio)."""
    lattice = lattice_ws(image, probs, sigma_xy, sigma_rgb)
    feats = crf_features(torch.from_numpy(image)[None], sigma_xy, sigma_rgb)
    exact = crf_ws_torch(feats, torch.from_numpy(probs).reshape(1, 2, -1))[0].numpy()
    exact = exact.reshape(probs.shape)
    per_pixel = (probs * lattice).sum(0) / (probs * exact).sum(0)
    total = float((probs * lattice).sum() / (probs * exact).sum())
    return total, float(np.percentile(per_pixel, 5)), float(np.percentile(per_pixel, 95))


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    images = {name: getattr(samples, name)() for name in NATURAL}
    synthetic = generate("runs/crf_calibration_data", SyntheticConfig(seed=0))
    for k, path in enumerate(sorted((synthetic / "images" / "test").rglob("*.png"))[:4]):
        images[f"synthetic {k}"] = np.asarray(Image.open(path).convert("RGB"))
    rows = []
    for side, sigma_xy in ((224, 100.0), (112, 50.0)):
        for name, rgb in images.items():
            total, p5, p95 = ratio(_resized(rgb, side), _maps(side, rng), sigma_xy)
            rows.append({"image": name, "side": side, "sigma_xy": sigma_xy, "ratio": total,
                         "pixel_p5": p5, "pixel_p95": p95})
            print(f"{name:12s} {side:4d} px  R = {total:.3f}  per pixel 5-95%: {p5:.2f}-{p95:.2f}",
                  flush=True)
    natural = [r["ratio"] for r in rows if r["side"] == 224 and not r["image"].startswith("syn")]
    mean = float(np.mean(natural))
    summary = {"rows": rows, "natural_224_mean_ratio": mean,
               "calibrated_crf_weight": PAPER_LAMBDA * mean}
    print(f"natural images at 224 px: R = {mean:.3f} (min {min(natural):.3f}, max "
          f"{max(natural):.3f}); calibrated weight = {PAPER_LAMBDA:g} x R = "
          f"{PAPER_LAMBDA * mean:.3g}")
    Path(__file__).with_name("crf_calibration.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
