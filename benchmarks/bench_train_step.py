"""Time one training step of each stage and one evaluation batch at the paper's settings.

    python benchmarks/bench_train_step.py                      # GPU: the three WSOL backbones
    python benchmarks/bench_train_step.py --backbones tiny --batch 2 --size 64   # a CPU smoke run

Each row is a step exactly as ``fcam_nb.train`` takes it (autocast on CUDA, the CAM of the frozen
classifier, fresh seeds, the F-CAM objective of ``presets.paper_run("CUB")`` with the CRF at the
given scale, backward, SGD), on random weights and random images (the cost does not depend on
them). Timing: warm-up steps, then the median of ``--repeat`` steps, each ended by
``torch.cuda.synchronize()``. The JSON written with ``--json`` is rewritten after every row, so an
interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fcam_nb.cams import build_cam_method, upsample_maps
from fcam_nb.data.transforms import denormalize_255
from fcam_nb.engine import amp_dtype, autocast
from fcam_nb.losses import FCAMObjective, crf_triton
from fcam_nb.models import FCAM, build_classifier, build_decoder
from fcam_nb.presets import paper_run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, device: torch.device, warmup: int, repeat: int) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` calls (synchronized)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_backbone(backbone: str, batch: int, size: int, scales: list[float], device: torch.device,
                   warmup: int, repeat: int, emit) -> None:
    cfg = paper_run("CUB", "unused", "unused", "unused", backbone=backbone)
    cfg = cfg.override(data={"input_size": size})
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    y = torch.randint(0, cfg.data.num_classes, (batch,), generator=gen).to(device)
    torch.manual_seed(0)
    classifier = build_classifier(backbone, cfg.data.num_classes).to(device)
    opt1 = torch.optim.SGD(classifier.parameters(), lr=1e-4, momentum=0.9)

    def stage1_step():
        with autocast(cfg, device):
            loss = F.cross_entropy(classifier(x), y)
        opt1.zero_grad(set_to_none=True)
        loss.backward()
        opt1.step()

    emit(backbone, "stage 1 step", None, median_seconds(stage1_step, device, warmup, repeat), batch)

    model = FCAM(classifier, build_decoder(classifier.encoder)).to(device)
    model.freeze_classifier()
    model.train()
    cam = build_cam_method("cam", model.classifier)
    opt2 = torch.optim.SGD(model.decoder.parameters(), lr=1e-4, momentum=0.9)
    images_255 = denormalize_255(x)
    for scale in scales:
        objective = FCAMObjective.from_config(cfg.override(stage2={"crf_scale": scale}).stage2)

        def stage2_step(objective=objective):
            with autocast(cfg, device):
                feats, _, seg = model(x, with_features=True)
            low = cam.from_features(x, feats[-1].float(), model.classifier.pool_and_classify, y)
            cams = upsample_maps(low, x.shape[-2:])
            loss = objective(seg, cams, images_255, gen, 0)["total"]
            opt2.zero_grad(set_to_none=True)
            loss.backward()
            opt2.step()

        emit(backbone, "stage 2 step", scale, median_seconds(stage2_step, device, warmup, repeat),
             batch)

    model.eval()

    def evaluate_batch():
        with torch.no_grad(), autocast(cfg, device):
            model.localization_map(x)

    emit(backbone, "F-CAM eval batch", None, median_seconds(evaluate_batch, device, warmup, repeat),
         batch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbones", nargs="+", default=["resnet50", "vgg16", "inceptionv3"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--crf-scales", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--crf-reduction", choices=crf_triton.REDUCTIONS,
                   help="the Triton kernel's reduction strategy (default: the device's)")
    p.add_argument("--json", help="write the rows here (rewritten after each row)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    dtype = amp_dtype(paper_run("CUB", "u", "u", "u"), device)
    header = {"device": name, "torch": torch.__version__, "amp": str(dtype), "batch": args.batch,
              "size": args.size, "crf_reduction": args.crf_reduction or "default", "rows": []}
    print(f"{name}, torch {torch.__version__}, autocast {dtype}, batch {args.batch}, "
          f"{args.size}x{args.size}, CRF kernel reduction {args.crf_reduction or 'default'}")
    print(f"{'backbone':12s} {'what':18s} {'CRF scale':>9s} {'s/step':>8s} {'img/s':>8s}")

    def emit(backbone, what, scale, seconds, batch):
        header["rows"].append({"backbone": backbone, "what": what, "crf_scale": scale,
                               "seconds": seconds, "images_per_s": batch / seconds})
        shown = "" if scale is None else f"{scale:g}"
        print(f"{backbone:12s} {what:18s} {shown:>9s} {seconds:8.3f} {batch / seconds:8.1f}",
              flush=True)
        if args.json:
            path = Path(args.json)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(header, indent=1))
            tmp.replace(path)

    with crf_triton.reduction_override(args.crf_reduction):
        for backbone in args.backbones:
            bench_backbone(backbone, args.batch, args.size, args.crf_scales, device, args.warmup,
                           args.repeat, emit)


if __name__ == "__main__":
    main()
