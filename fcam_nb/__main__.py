"""Main job: ``python -m fcam_nb`` (or the ``fcam-nb`` console script).

Synthetic profile (default, CPU, no download): generate the dataset, train the classifier
(stage 1), train F-CAM on one CAM method's seeds (stage 2), evaluate the CAM baseline and F-CAM
on the test split, and write ``results.json`` and figures to ``--out``.

Full profile: ``--dataset CUB|OpenImages --data-root ... --metadata-root ...`` uses the paper's
settings (ImageNet weights, GPU). Runs resume from their checkpoints when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from fcam_nb.cams import METHODS  # noqa: E402
from fcam_nb.checkpoint import CheckpointError, write_atomic, write_text_atomic  # noqa: E402
from fcam_nb.config import ConfigError, RunConfig  # noqa: E402
from fcam_nb.course.viz import show_localization  # noqa: E402
from fcam_nb.data import SyntheticConfig  # noqa: E402
from fcam_nb.data.specs import DATASETS  # noqa: E402
from fcam_nb.data.synthetic import DataInUseError, data_lock, is_generated  # noqa: E402
from fcam_nb.evaluate import (  # noqa: E402
    cam_predictor,
    center_prior_predictor,
    evaluate_split,
    fcam_predictor,
    unavailable_metrics,
)
from fcam_nb.models.backbones import ENCODERS  # noqa: E402
from fcam_nb.presets import SCHEDULES, CPURefused, resolve_run  # noqa: E402
from fcam_nb.train import train_classifier, train_fcam  # noqa: E402


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


DESCRIPTION = ("Train a WSOL classifier (stage 1) and F-CAM on one CAM method's seeds (stage 2), "
               "then evaluate both on the test split. Default: the built-in synthetic set on the "
               "CPU (no download); --dataset CUB|OpenImages: the paper's settings on a GPU, or "
               "--rehearsal on the CPU.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` where there is a default worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fcam-nb", description=DESCRIPTION,
                                formatter_class=_HelpFormatter)
    p.add_argument("--out", default="runs/main", help="output folder (checkpoints, results)")
    p.add_argument("--method", default="cam", choices=list(METHODS),
                   help="CAM method whose seeds train F-CAM")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the "
                   "batches (synthetic: also of the generated set)")
    p.add_argument("--data", help="synthetic dataset folder (default: data/synthetic/seed<SEED>, "
                                  "one per seed)")
    p.add_argument("--dataset", choices=list(DATASETS), default="synthetic",
                   help="which dataset")
    p.add_argument("--data-root", help="CUB/OpenImages: image folder")
    p.add_argument("--metadata-root",
                   help="CUB/OpenImages: metadata folder with split subfolders (default: the "
                        "official wsolevaluation splits shipped in the package)")
    p.add_argument("--backbone", choices=sorted(set(ENCODERS) - {"tiny"}),
                   help="CUB/OpenImages backbone (default resnet50); the synthetic set always "
                        "uses the tiny backbone")
    p.add_argument("--schedule", choices=list(SCHEDULES), default="paper",
                   help="CUB/OpenImages: the paper's epochs (50/50 CUB, 10/10 OpenImages, CRF at "
                        "full resolution) or the short colab schedule (10/3 CUB, 3/1 OpenImages, "
                        "CRF at 1/2)")
    p.add_argument("--rehearsal", action="store_true",
                   help="CUB/OpenImages: rehearse the paper path with a subset of the official "
                        "metadata and rendered placeholder images (no download), on the CPU "
                        "unless --device cuda")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="where to run (default: auto, the GPU when there is one; a --rehearsal "
                        "runs on the CPU unless --device names the GPU)")
    p.add_argument("--allow-cpu", action="store_true",
                   help="CUB/OpenImages: run the paper settings on the CPU anyway (very slow)")
    p.add_argument("--threads", type=_positive, default=2,
                   help="CPU threads (results depend on the thread count)")
    p.add_argument("--stage1-epochs", type=_positive,
                   help="stage-1 epochs (default: 16 synthetic, schedule's for CUB/OpenImages)")
    p.add_argument("--stage2-epochs", type=_positive,
                   help="stage-2 epochs (default: 7 synthetic, schedule's for CUB/OpenImages)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.dataset == "synthetic" and args.backbone is not None:
        p.error("--backbone applies to CUB/OpenImages; the synthetic set uses the tiny backbone")
    for name in ("out", "data"):
        if getattr(args, name) is not None and Path(getattr(args, name)).is_file():
            p.error(f"--{name} {getattr(args, name)} is a file; give a folder")
    args.backbone = args.backbone or "resnet50"
    return args


def build_config(args: argparse.Namespace) -> RunConfig:
    """The run of these options (``presets.resolve_run``); CUB/OpenImages on a machine without
    CUDA stop with the cost unless ``--allow-cpu``."""
    if args.dataset != "synthetic" and not args.rehearsal and not args.data_root:
        raise SystemExit("--data-root is required for CUB/OpenImages (or use --rehearsal)")
    try:
        cfg = resolve_run(args.dataset, args.out, seed=args.seed, method=args.method,
                          data=args.data, synthetic=SyntheticConfig(seed=args.seed),
                          data_root=args.data_root,
                          metadata_root=args.metadata_root, backbone=args.backbone,
                          schedule=args.schedule, rehearsal=args.rehearsal, device=args.device,
                          allow_cpu=args.allow_cpu)
    except CPURefused as e:
        raise SystemExit(str(e)) from None
    if args.rehearsal and args.dataset != "synthetic":
        where = "the CPU" if cfg.torch_device().type == "cpu" else "the GPU"
        print(f"rehearsal of the {args.dataset} paper path ({args.schedule} schedule) on {where}: "
              f"{cfg.backbone} at {cfg.data.input_size} px, {cfg.data.num_classes} classes, CRF "
              f"at scale {cfg.stage2.crf_scale} "
              f"({int(cfg.data.input_size * cfg.stage2.crf_scale)} px maps), "
              f"weights: {cfg.weights or 'random'}")
    epochs1 = {"epochs": args.stage1_epochs} if args.stage1_epochs is not None else None
    epochs2 = {"epochs": args.stage2_epochs} if args.stage2_epochs is not None else None
    return cfg.override(stage1=epochs1, stage2=epochs2, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        cfg = build_config(args).check(splits=("train", "val", "test"))
    except (ConfigError, CheckpointError, DataInUseError, OSError) as e:
        raise SystemExit(f"fcam-nb: {e}") from None
    # a synthetic set is read under a shared lock: no other job regenerates it meanwhile
    in_use = (data_lock(Path(cfg.data.data_root).parent, exclusive=False)
              if args.dataset == "synthetic" else contextlib.nullcontext())
    try:
        with in_use:
            root = Path(cfg.data.data_root).parent
            if args.dataset == "synthetic" and not is_generated(root, SyntheticConfig(seed=args.seed)):
                raise DataInUseError(f"the synthetic set {root} was replaced by another job after "
                                     f"it was generated here: give this run its own --data")
            return _run(args, cfg)
    except (ConfigError, CheckpointError, DataInUseError) as e:
        raise SystemExit(f"fcam-nb: {e}") from None


# the registered metrics (fcam_nb.metric_specs) the main job prints; top-5 loc is left out: with
# the synthetic set's 4 classes it equals MaxBoxAcc
RESULT_KEYS = ("max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "cls_acc")


def results_table(results: dict) -> str:
    """The table the main job prints: the rows ``center_prior``, ``baseline`` and ``fcam`` of
    ``results`` (name -> metric -> value) over the metrics F-CAM has."""
    lines = [f"{'':12s}" + "".join(f"{k:>16s}" for k in RESULT_KEYS if k in results["fcam"])]
    for name in ("center_prior", "baseline", "fcam"):
        row = results[name]
        lines.append(f"{name:12s}" + "".join(f"{row[k]:16.2f}" for k in RESULT_KEYS if k in row))
    return "\n".join(lines)


def _run(args: argparse.Namespace, cfg: RunConfig) -> dict:
    """Train (or resume) both stages, evaluate on the test split, write the results."""
    out = Path(cfg.out_dir)
    t0 = time.time()
    classifier = train_classifier(cfg)
    model = train_fcam(cfg, classifier)
    test = cfg.data.dataset("test", train=False)
    cam = cam_predictor(classifier, args.method, **cfg.cam_kwargs(args.method))
    baseline = evaluate_split(cfg, cam, "test", keep_maps=True, dataset=test)
    fcam = evaluate_split(cfg, fcam_predictor(model), "test", keep_maps=True, dataset=test)
    prior = evaluate_split(cfg, center_prior_predictor(classifier), "test", dataset=test)
    results = {
        "dataset": args.dataset,
        "method": args.method,
        "center_prior": prior,  # a centred Gaussian: the score of looking at no pixel
        "baseline": {k: v for k, v in baseline.items() if k != "maps"},
        "fcam": {k: v for k, v in fcam.items() if k != "maps"},
        "seconds": time.time() - t0,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=1))
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
    write_atomic(out / "localization.png", lambda f: fig.savefig(f, dpi=100, format="png"))
    print(results_table(results))
    if note := unavailable_metrics(results["fcam"]):
        print(note)
    print(f"wrote {out / 'results.json'} and {out / 'localization.png'} "
          f"({results['seconds']:.0f} s, {torch.get_num_threads()} CPU threads)")
    return results


if __name__ == "__main__":
    main()
