"""Table 1 / Table 3 style results on the synthetic set, measured on CPU.

For each seed: generate the dataset (seeded), train the classifier (stage 1; one selected per
CAM method on validation), evaluate the CAM baselines (CAM, GradCAM++, LayerCAM) on the test
split, train F-CAM on each baseline's seeds
(SR + CRF + ASC), and the ablation on CAM seeds (SR, SR + CRF); the centred-Gaussian prior that
looks at no pixel; and, on the validation split, where CAM and F-CAM (CAM seeds) fall on the
bird's head, the rest of the bird and the background (``part_and_body_coverage``). Model
selection uses the validation split only. Writes benchmarks/results_synthetic.json and prints
Markdown tables.

    python benchmarks/results_synthetic.py --seeds 0 1 2 --out runs/bench
    python benchmarks/results_synthetic.py --methods cam --no-ablation   # CAM and F-CAM only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fcam_nb.config import ABLATION, Variant
from fcam_nb.data import SyntheticConfig
from fcam_nb.data.synthetic import part_masks
from fcam_nb.evaluate import (
    cam_predictor,
    center_prior_predictor,
    evaluate_split,
    fcam_predictor,
    object_regions,
    part_and_body_coverage,
)
from fcam_nb.presets import synthetic_run
from fcam_nb.train import train_classifier, train_fcam

METHODS = ("cam", "gradcampp", "layercam")
KEYS = ("max_box_acc", "max_box_acc_v2", "pxap", "top1_loc")


def _test(cfg, predictor) -> dict:
    out = evaluate_split(cfg, predictor, "test")
    return {k: out[k] for k in KEYS}


def _coverage(cfg, predictor, data_root: Path) -> dict:
    val = cfg.data.dataset("val", train=False)
    maps = torch.from_numpy(evaluate_split(cfg, predictor, "val", keep_maps=True,
                                           dataset=val)["maps"].astype("float32"))
    parts = part_masks(data_root, "val", cfg.data.input_size)
    return part_and_body_coverage(maps, object_regions(val), parts)


def run_seed(seed: int, out: Path, methods: tuple[str, ...] = METHODS,
             ablation: bool = True) -> dict:
    rows: dict[str, dict] = {}
    cfg = synthetic_run(out / f"data_seed{seed}", out / f"run_seed{seed}",
                        SyntheticConfig(seed=seed), seed=seed,
                        select_methods=METHODS).override(progress=False)
    t0 = time.time()
    clf = train_classifier(cfg)  # CAM's
    rows["center_prior"] = _test(cfg, center_prior_predictor(clf))
    for method in methods:
        cfg_m = cfg.with_variant(Variant(method))  # SR + CRF + ASC
        clf_m = train_classifier(cfg_m)  # the classifier this method selected (loaded)
        rows[method] = _test(cfg, cam_predictor(clf_m, method))
        rows[f"{method}+fcam"] = _test(cfg_m, fcam_predictor(train_fcam(cfg_m, clf_m)))
    # on CAM seeds; the full variant is cam+fcam above (same checkpoint)
    for variant in ABLATION if ablation else ():
        cfg_a = cfg.with_variant(variant)
        rows[f"ablation {variant.label}"] = _test(cfg_a, fcam_predictor(train_fcam(cfg_a, clf)))
    rows["_coverage_val"] = {
        "cam": _coverage(cfg, cam_predictor(clf, "cam"), out / f"data_seed{seed}"),
        "cam+fcam": _coverage(cfg, fcam_predictor(train_fcam(cfg, clf)), out / f"data_seed{seed}")}
    rows["_seconds"] = time.time() - t0
    return rows


def summarize(per_seed: list[dict]) -> dict:
    names = [k for k in per_seed[0] if not k.startswith("_")]
    return {
        name: {k: (float(np.mean([s[name][k] for s in per_seed])),
                   float(np.std([s[name][k] for s in per_seed]))) for k in KEYS}
        for name in names
    }


def markdown(summary: dict) -> str:
    head = "| method | MaxBoxAcc | MaxBoxAccV2 | PxAP | Top-1 Loc |\n|---|---|---|---|---|\n"
    lines = []
    for name, vals in summary.items():
        cells = " | ".join(f"{vals[k][0]:.1f} ± {vals[k][1]:.1f}" for k in KEYS)
        lines.append(f"| {name} | {cells} |")
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--no-ablation", dest="ablation", action="store_false",
                        help="skip the SR and SR + CRF decoders (Table 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    per_seed = [run_seed(s, out, tuple(args.methods), args.ablation) for s in args.seeds]
    summary = summarize(per_seed)
    result = {"seeds": args.seeds, "methods": args.methods, "ablation": args.ablation,
              "per_seed": per_seed, "summary": summary,
              "seconds": time.time() - t0, "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    path = Path(__file__).with_name("results_synthetic.json")
    path.write_text(json.dumps(result, indent=1))
    print(markdown(summary))
    print(f"\ntotal {result['seconds']:.0f} s on {args.threads} CPU threads; wrote {path}")


if __name__ == "__main__":
    main()
