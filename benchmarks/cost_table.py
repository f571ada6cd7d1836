"""Cost per image of each stage (FLOPs counted here on the CPU) and the GPU time of the notebook
series they imply: ESTIMATES, NOT MEASURED ON A GPU.

    python benchmarks/cost_table.py

The series = one stage-1 run + 8 stage-2 decoders (the 3 ablation variants on CAM seeds and the 6
methods of notebook 04, CAM's counted once) + the test evaluations. Stage 1 validates after every
epoch with each CAM method that selects a classifier: CAM only in the ``colab`` schedule (shared
classifier), all six in ``paper`` (a gradient method costs a forward and a backward,
Smooth-GradCAM++ four of them after the clean forward). GPU throughputs below are
assumptions (effective, not peak): mixed-precision convolution training of ResNet-scale nets
(T4 ~ 250 img/s on a standard ResNet50, A100 ~ 2500), and the fp32 CRF kernel at about a third
of peak. Data loading on Colab's 2 CPU cores (~200-300 JPEG/s) can bound the T4 further.
"""

from __future__ import annotations

import torch

from fcam_nb.cams import BASELINES
from fcam_nb.course.cost import CRF_FLOPS_PER_PAIR, per_image_costs
from fcam_nb.data.official import SPLIT_SIZES
from fcam_nb.data.specs import dataset_spec
from fcam_nb.presets import SCHEDULES

GPUS = {"T4": {"conv": 7e12, "crf": 2.5e12}, "A100": {"conv": 60e12, "crf": 8e12}}  # FLOP/s
DECODERS = 8


def selection_cost(costs: dict, shared: bool) -> float:
    """FLOPs per validation image of stage 1's model selection: CAM alone when the classifier is
    shared, else every baseline (forward + backward for the gradient methods; Smooth-GradCAM++:
    the clean forward and 4 noisy forward + backward passes)."""
    if shared:
        return costs["eval"]
    backward_pass = costs["stage1_train"]  # forward + backward of the classifier
    per_method = {"cam": costs["eval"], "smoothgradcampp": costs["eval"] + 4 * backward_pass}
    return sum(per_method.get(m, backward_pass) for m in BASELINES)


def series_flops(costs: dict, dataset: str, schedule: str, crf_pairs: float) -> tuple[float, float]:
    """(convolution FLOPs, CRF FLOPs) of the whole series."""
    n = SPLIT_SIZES[dataset]
    e1, e2, _ = dataset_spec(dataset).schedules[schedule]
    stage1 = e1 * (n["train"] * costs["stage1_train"]
                   + n["val"] * selection_cost(costs, SCHEDULES[schedule]["shared"]))
    stage2 = DECODERS * e2 * (n["train"] * costs["stage2_train"] + n["val"] * costs["stage2_eval"])
    test = n["test"] * (DECODERS * costs["stage2_eval"] + 6 * costs["eval"])
    crf = DECODERS * e2 * n["train"] * crf_pairs * CRF_FLOPS_PER_PAIR
    return stage1 + stage2 + test, crf


def main() -> None:
    torch.set_num_threads(2)
    print("| backbone | encoder fwd | decoder fwd | stage 1 train | stage 2 train | eval (F-CAM) |")
    print("|---|---|---|---|---|---|")
    table = {}
    for backbone in ("resnet50", "vgg16", "inceptionv3"):
        c = per_image_costs(backbone)
        table[backbone] = c
        g = {k: v / 1e9 for k, v in c.items()}
        print(f"| {backbone} | {g['encoder_fwd']:.1f} | {g['decoder_fwd']:.1f} | "
              f"{g['stage1_train']:.1f} | {g['stage2_train']:.1f} | {g['stage2_eval']:.1f} |")
    print("\nGFLOPs per 224 px image (2 per multiply-add; backward = 2x forward).")
    print("CRF pixel pairs per image: scale 1: 2.52 G; scale 0.5: 0.16 G.\n")
    print("| schedule | dataset | epochs (stage 1 / 2) | CRF scale | T4 hours | A100 hours |")
    print("|---|---|---|---|---|---|")
    for schedule in ("colab", "paper"):
        for dataset in ("CUB", "OpenImages"):
            e1, e2, scale = dataset_spec(dataset).schedules[schedule]
            pairs = (224 * scale) ** 4
            conv, crf = series_flops(table["resnet50"], dataset, schedule, pairs)
            hours = {gpu: (conv / t["conv"] + crf / t["crf"]) / 3600 for gpu, t in GPUS.items()}
            print(f"| {schedule} | {dataset} | {e1} / {e2} | {scale} | {hours['T4']:.1f} | "
                  f"{hours['A100']:.2f} |")
    print("\nResNet50, the whole notebook series; ESTIMATES from the FLOPs above, not measured on a GPU.")


if __name__ == "__main__":
    main()
