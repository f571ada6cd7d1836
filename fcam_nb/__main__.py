"""Main job: ``python -m fcam_nb`` (or the ``fcam-nb`` console script).

Synthetic profile (default, CPU, no download): generate the dataset, train the classifier
(stage 1), train F-CAM on one CAM method's seeds (stage 2), evaluate the CAM baseline and F-CAM
on the test split, and write ``results.json`` and figures to ``--out``.

Full profile: ``--dataset CUB|OpenImages --data-root ... --metadata-root ...`` uses the paper's
settings (ImageNet weights, GPU). Runs resume from their checkpoints when interrupted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from fcam_nb.config import RunConfig, Variant  # noqa: E402
from fcam_nb.cost import cpu_refusal  # noqa: E402
from fcam_nb.data import SyntheticConfig, official_metadata  # noqa: E402
from fcam_nb.evaluate import (  # noqa: E402
    cam_predictor,
    evaluate_split,
    fcam_predictor,
    unavailable_metrics,
)
from fcam_nb.models.backbones import ENCODERS  # noqa: E402
from fcam_nb.presets import paper_run, synthetic_run  # noqa: E402
from fcam_nb.rehearsal import rehearsal_run  # noqa: E402
from fcam_nb.train import train_classifier, train_fcam  # noqa: E402
from fcam_nb.viz import show_localization  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fcam-nb", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/main", help="output folder (checkpoints, results)")
    p.add_argument("--method", default="cam", help="CAM method whose seeds train F-CAM")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="data/synthetic", help="synthetic dataset folder")
    p.add_argument("--dataset", choices=["synthetic", "CUB", "OpenImages"], default="synthetic")
    p.add_argument("--data-root", help="CUB/OpenImages: image folder")
    p.add_argument("--metadata-root",
                   help="CUB/OpenImages: metadata folder with split subfolders (default: the "
                        "official wsolevaluation splits shipped in the package)")
    p.add_argument("--backbone", default="resnet50", choices=sorted(ENCODERS),
                   help="CUB/OpenImages backbone")
    p.add_argument("--schedule", choices=["paper", "colab"], default="paper",
                   help="CUB/OpenImages: the paper's epochs (50/50 CUB, 10/10 OpenImages, CRF at "
                        "full resolution) or the short colab schedule (10/3 CUB, 3/1 OpenImages, "
                        "CRF at 1/2)")
    p.add_argument("--rehearsal", action="store_true",
                   help="CUB/OpenImages: rehearse the paper path on the CPU with a subset of the "
                        "official metadata and rendered placeholder images (no download)")
    p.add_argument("--allow-cpu", action="store_true",
                   help="CUB/OpenImages: run the paper settings on the CPU anyway (very slow)")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads (results depend on the thread count)")
    p.add_argument("--stage1-epochs", type=int, help="override stage-1 epochs")
    p.add_argument("--stage2-epochs", type=int, help="override stage-2 epochs")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> RunConfig:
    variant = Variant(args.method)  # one stage-2 checkpoint per method (fcam_<method>)
    if args.dataset == "synthetic":
        cfg = synthetic_run(args.data, args.out, SyntheticConfig(seed=args.seed), variant=variant,
                            seed=args.seed)
    elif args.rehearsal:
        cfg = rehearsal_run(args.dataset, Path(args.out) / "rehearsal_data", args.out,
                            backbone=args.backbone, variant=variant, seed=args.seed)
        print(f"rehearsal of the {args.dataset} paper path on the CPU: {cfg.backbone} at "
              f"{cfg.data.input_size} px, {cfg.data.num_classes} classes, CRF at scale "
              f"{cfg.stage2.crf_scale} ({int(cfg.data.input_size * cfg.stage2.crf_scale)} px maps), "
              f"weights: {cfg.weights or 'random'}")
    else:
        if not args.data_root:
            raise SystemExit("--data-root is required for CUB/OpenImages (or use --rehearsal)")
        metadata = args.metadata_root or official_metadata(args.dataset)
        cfg = paper_run(args.dataset, args.data_root, metadata, args.out,
                        backbone=args.backbone, variant=variant, seed=args.seed,
                        schedule=args.schedule)
        if cfg.torch_device().type == "cpu" and not args.allow_cpu:
            raise SystemExit(cpu_refusal(cfg))
    epochs1 = {"epochs": args.stage1_epochs} if args.stage1_epochs is not None else None
    epochs2 = {"epochs": args.stage2_epochs} if args.stage2_epochs is not None else None
    return cfg.override(stage1=epochs1, stage2=epochs2, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = build_config(args)
    out = Path(cfg.out_dir)
    t0 = time.time()
    classifier = train_classifier(cfg)
    model = train_fcam(cfg, classifier)
    test = cfg.data.dataset("test", train=False)
    baseline = evaluate_split(cfg, cam_predictor(classifier, args.method), "test", keep_maps=True,
                              dataset=test)
    fcam = evaluate_split(cfg, fcam_predictor(model), "test", keep_maps=True, dataset=test)
    results = {
        "dataset": args.dataset,
        "method": args.method,
        "baseline": {k: v for k, v in baseline.items() if k != "maps"},
        "fcam": {k: v for k, v in fcam.items() if k != "maps"},
        "seconds": time.time() - t0,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    n = min(6, len(test))
    items = [test[i] for i in range(n)]
    fig = show_localization(
        [it["image"] for it in items],
        [baseline["maps"][:n].astype("float32"), fcam["maps"][:n].astype("float32")],
        [args.method.upper(), "F-CAM"],
        gt_boxes=[it["boxes"] for it in items] if "boxes" in items[0] else None,
        masks=[it["mask"] for it in items] if "mask" in items[0] else None,
        tau=[baseline["best_tau"], fcam["best_tau"]] if "best_tau" in baseline else 0.5,
    )
    fig.savefig(out / "localization.png", dpi=100)
    keys = ("max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "cls_acc")
    print(f"{'':10s}" + "".join(f"{k:>16s}" for k in keys if k in results["fcam"]))
    for name in ("baseline", "fcam"):
        row = results[name]
        print(f"{name:10s}" + "".join(f"{row[k]:16.2f}" for k in keys if k in row))
    if note := unavailable_metrics(results["fcam"]):
        print(note)
    print(f"wrote {out / 'results.json'} and {out / 'localization.png'} "
          f"({results['seconds']:.0f} s, {torch.get_num_threads()} CPU threads)")
    return results


if __name__ == "__main__":
    main()
