"""Ready-made run configurations: the synthetic CPU profile and the paper's CUB/OpenImages ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fcam_nb.cams.methods import BASELINES
from fcam_nb.config import DataConfig, RunConfig, Stage1Config, Stage2Config, Variant
from fcam_nb.data.synthetic import SyntheticConfig, generate


def synthetic_run(
    data_root: str | Path,
    out_dir: str | Path,
    synthetic: SyntheticConfig | None = None,
    variant: Variant | None = None,
    seed: int = 0,
    select_methods: tuple[str, ...] | None = None,
) -> RunConfig:
    """The course's default run: the synthetic set (generated if missing), the tiny backbone,
    64 px inputs, minutes on a CPU (on the GPU with ``device="cuda"``; default ``auto``).

    The paper's 224 px settings scaled to 64 px: sigma_xy 28.6 (100 at 224), the CRF on 32x32
    maps (``crf_scale`` 0.5 with area pooling: N = 1024 pixels, the exact O(N^2) product stays
    cheap on a CPU) with weight 7.5e-5, the size constraint's weight 1.0 (the official code's
    default; its README's example command, and the paper path here, use 0.1: with 2.5e-5 and 0.1
    one run in ten stopped at a disc around the class mark), erosion 15 and n- 0.6 (the
    seeds keep off the CAM's low-resolution overshoot around the mark); stage 2 lr 0.005 with a
    cosine decay over 7 epochs. How these were chosen, and what they give over seeds and thread
    counts: ``docs/synthetic.md`` and ``docs/results.md``.

    Stage 2 keeps the epoch of the best validation PxAP: on this set MaxBoxAcc reaches 100 on
    the 100 validation images within an epoch or two on most runs and then ties (the earliest
    would win), while PxAP still ranks the epochs.

    Stage 1 keeps a classifier per CAM method of ``select_methods`` (default: the six
    baselines), each selected by its own validation PxAP (the set has masks; on the earlier
    head-mark set box scores could not rank the epochs of a CAM confined to the head, PxAP did:
    docs/synthetic.md).

    Example:
        >>> cfg = synthetic_run("data/synthetic", "runs/demo", variant=Variant("layercam"))
        >>> cfg = cfg.override(stage1={"epochs": 4})   # any other change
    """
    variant = variant or Variant()
    synthetic = synthetic or SyntheticConfig(seed=seed)
    root = generate(data_root, synthetic)
    data = DataConfig(
        data_root=str(root / "images"),
        metadata_root=str(root / "metadata"),
        num_classes=synthetic.num_classes,
        mask_root=str(root / "masks"),
        mask_metadata_root=str(root / "metadata_masks"),
        resize=72,
        input_size=64,
        cache=True,
    )
    stage2 = Stage2Config(epochs=7, lr=0.005, lr_schedule="cosine", batch_size=32, n_bg=0.6,
                          erode_ksz=15, crf_scale=0.5, crf_map_mode="area", crf_weight=7.5e-5,
                          sigma_xy=28.6, sigma_rgb=15.0, asc_weight=1.0,
                          select_by="pxap")
    return RunConfig(
        data=data,
        out_dir=str(out_dir),
        backbone="tiny",
        stage1=Stage1Config(epochs=16, lr=0.05, batch_size=32, lr_schedule="cosine",
                            nesterov=False, select_methods=select_methods or BASELINES,
                            select_by="pxap"),
        stage2=stage2,
        seed=seed,
        device="auto",
        eval_step=0.01,
    ).with_variant(variant)


# Our exact dense-CRF product W S is stronger than the official permutohedral-lattice one at the
# same lambda: S^T (A S)_lattice / S^T (W S)_exact = 0.59 on natural images at 224 px (0.56-0.61
# over four photographs; 0.55-0.61 at 112 px; 0.63-0.65 on the earlier, textured synthetic
# images), measured by benchmarks/crf_calibration.py against a transcription of the lattice the
# official loss calls.
# The paper schedules use lambda = 2e-9 x this ratio, so the term weighs what the paper's did.
CRF_LATTICE_RATIO = 0.59
PAPER_CRF_WEIGHT = 2e-9  # the paper's lambda (Sec. 3.1), for the lattice product


@dataclass(frozen=True)
class Stage1Recipe:
    """A published stage-1 recipe: SGD with Nesterov momentum 0.9, the head's lr x10 (the
    official ``dlib/configure/config.py:144-161``), step decay x ``gamma`` every ``step_size``
    epochs, ``epochs`` epochs of batches of 32, and where the numbers come from."""

    lr: float
    step_size: int
    gamma: float
    weight_decay: float
    epochs: int
    source: str


_FCAM_README = "sbelharbi/fcam-wsol README.md:59-75 (CUB, ResNet50, CAM)"
_WSOLEVAL_README = "clovaai/wsolevaluation README.md:536-552 (OpenImages, VGG16, CAM)"
_ASSUMED = ("assumed: the only {} recipe published with code ({}); the paper's own per-backbone "
            "and per-method values are not published")

# Stage-1 recipes per (dataset, backbone, CAM method); "*" matches any, the most specific row
# wins (``stage1_recipe``). Each CAM method's classifier is selected by that method on the
# validation split (``Stage1Config.select_methods``) whatever its recipe row.
STAGE1_RECIPES: dict[tuple[str, str, str], Stage1Recipe] = {
    ("cub", "resnet50", "cam"): Stage1Recipe(0.0017, 15, 0.1, 1e-4, 50, _FCAM_README),
    ("cub", "*", "*"): Stage1Recipe(0.0017, 15, 0.1, 1e-4, 50,
                                    _ASSUMED.format("CUB", _FCAM_README)),
    ("openimages", "vgg16", "cam"): Stage1Recipe(0.00227913316, 3, 0.1, 5e-4, 10,
                                                 _WSOLEVAL_README),
    ("openimages", "*", "*"): Stage1Recipe(0.00227913316, 3, 0.1, 5e-4, 10,
                                           _ASSUMED.format("OpenImages", _WSOLEVAL_README)),
}


def stage1_recipe(dataset: str, backbone: str, method: str = "cam") -> Stage1Recipe:
    """The row of ``STAGE1_RECIPES`` for (dataset, backbone, method): exact, then
    (dataset, backbone, *), then (dataset, *, *)."""
    key = dataset.lower()
    for row in ((key, backbone, method), (key, backbone, "*"), (key, "*", "*")):
        if row in STAGE1_RECIPES:
            return STAGE1_RECIPES[row]
    raise KeyError(f"no stage-1 recipe for {dataset!r}; datasets: "
                   f"{sorted({k[0] for k in STAGE1_RECIPES})}")


# Epochs (stage 1, stage 2), CRF scale and stage-1 selection per schedule and dataset. "paper":
# the paper's epochs, the CRF at full resolution, one classifier per CAM method (each selected by
# its own validation localization). "colab": the whole notebook series (the three ablation
# decoders and the decoders notebook 04 compares, 8 in all) in about 1-1.5 h of a T4 by the
# estimate of benchmarks/cost_table.py (not measured on a GPU): far fewer epochs (the step decay
# shrunk in proportion), the CRF at half resolution (112x112, 1/16 of the pixel pairs), and one
# classifier shared by every method (selected by CAM: one CAM pass per validation epoch).
# per schedule: whether the CAM methods share one classifier; the epochs and the CRF scale of each
# dataset are in its spec (``fcam_nb.data.specs``: paper 50 + 50 on CUB, 10 + 10 on OpenImages,
# CRF at full resolution; colab 10 + 3 and 3 + 1, CRF at half resolution)
SCHEDULES = {"paper": {"shared": False}, "colab": {"shared": True}}


def _numbers(recipe: Stage1Recipe) -> tuple:
    return recipe.lr, recipe.step_size, recipe.gamma, recipe.weight_decay, recipe.epochs


def paper_run(dataset: str, data_root: str | Path, metadata_root: str | Path, out_dir: str | Path,
              backbone: str = "resnet50", variant: Variant | None = None, seed: int = 0,
              schedule: str = "paper") -> RunConfig:
    """The paper's settings for ``CUB`` (200 classes, n- large, boxes) or ``OpenImages``
    (100 classes, n- small, masks); ImageNet weights; GPU; the stage-1 recipe of
    ``STAGE1_RECIPES``; the CRF weight calibrated to the official lattice
    (``CRF_LATTICE_RATIO``). ``schedule``: ``paper`` (50 / 10 epochs per stage, CRF at full
    resolution, a classifier per CAM method) or ``colab`` (see ``SCHEDULES``).

    Example:
        >>> cfg = paper_run("CUB", "data/CUB/images", "data/CUB/metadata", "runs/cub")
    """
    from fcam_nb.data.specs import dataset_spec, paper_datasets

    spec = dataset_spec(dataset)
    if spec.num_classes is None or not spec.schedules:
        raise ValueError(f"dataset must be one of {' or '.join(paper_datasets())} (a dataset with "
                         f"classes and schedules in its spec), got {dataset!r}")
    key = spec.name.lower()  # STAGE1_RECIPES' key
    num_classes, n_bg = spec.num_classes, spec.n_bg
    masks = str(data_root) if spec.has_masks else None
    if schedule not in SCHEDULES or schedule not in spec.schedules:
        known = sorted(set(SCHEDULES) & set(spec.schedules))
        raise ValueError(f"schedule must be one of {known} for {spec.name}, got {schedule!r}")
    epochs1, epochs2, crf_scale = spec.schedules[schedule]
    shared = SCHEDULES[schedule]["shared"]
    select = ("cam",) if shared else BASELINES
    recipe = stage1_recipe(key, backbone, select[0])
    if len({_numbers(stage1_recipe(key, backbone, m)) for m in select}) > 1:
        raise ValueError(f"the CAM methods {select} have different stage-1 recipes for "
                         f"{dataset}/{backbone}: they need one run (out_dir) each")
    step = max(1, round(recipe.step_size * epochs1 / recipe.epochs))
    data = DataConfig(data_root=str(data_root), metadata_root=str(metadata_root),
                      num_classes=num_classes, mask_root=masks, resize=256, input_size=224,
                      workers=8)
    return RunConfig(
        data=data, out_dir=str(out_dir), backbone=backbone, weights="imagenet",
        stage1=Stage1Config(epochs=epochs1, lr=recipe.lr, weight_decay=recipe.weight_decay,
                            lr_schedule="step", step_size=step, gamma=recipe.gamma,
                            select_methods=select, shared=shared),
        stage2=Stage2Config(epochs=epochs2, lr=0.01, n_bg=n_bg, crf_scale=crf_scale,
                            crf_weight=PAPER_CRF_WEIGHT * CRF_LATTICE_RATIO),
        seed=seed, device="auto", smooth_activations="last_noisy",  # the official's map
        val_eval_step=spec.val_eval_step,  # CUB: 0.004, as the official code (see its spec)
    ).with_variant(variant or Variant())


class CPURefused(RuntimeError):
    """The paper settings asked on a machine without CUDA (the message gives the cost)."""


def resolve_run(dataset: str, out_dir: str | Path, *, seed: int = 0, method: str = "cam",
                data: str | Path | None = None, synthetic: SyntheticConfig | None = None,
                select_methods: tuple[str, ...] | None = None,
                data_root: str | Path | None = None, metadata_root: str | Path | None = None,
                backbone: str = "resnet50", schedule: str = "paper", rehearsal: bool = False,
                device: str | None = None, allow_cpu: bool = False,
                switches: tuple[str, str] = ("--rehearsal", "--allow-cpu")) -> RunConfig:
    """The one place that turns "which dataset, how" into a run: the main job and the notebooks
    call it with their own defaults for ``out_dir``, ``data`` and ``schedule``.

    Args:
        dataset: ``synthetic``, ``CUB`` or ``OpenImages``.
        method: the CAM method whose seeds train F-CAM (the run's variant: all loss terms).
        data: the synthetic set's folder (default ``data/synthetic/seed<seed>``), or the
            rehearsal data's (default ``<out_dir>/rehearsal_data``).
        synthetic, select_methods: the synthetic set's generator settings and the CAM methods
            that select stage-1 classifiers (default: ``(method,)``).
        data_root, metadata_root, backbone, schedule: CUB / OpenImages (``SCHEDULES``);
            ``metadata_root`` defaults to the official splits shipped in the package.
        rehearsal: rehearse the paper path on generated data (``rehearsal_run``; the CPU unless
            ``device`` says otherwise).
        device: ``auto`` (default: the GPU when there is one), ``cpu`` or ``cuda``.
        allow_cpu: run the paper settings without CUDA (else ``CPURefused``, naming
            ``switches``: how the caller rehearses or allows the CPU).
    """
    from fcam_nb.course.rehearsal import rehearsal_run
    from fcam_nb.data.official import canonical_name, official_metadata
    from fcam_nb.data.specs import dataset_spec
    from fcam_nb.data.synthetic import seed_folder

    variant = Variant(method)
    if dataset == "synthetic":
        cfg = synthetic_run(data or seed_folder("data/synthetic", seed), out_dir,
                            synthetic or SyntheticConfig(seed=seed), variant=variant, seed=seed,
                            select_methods=select_methods or (method,))
        return cfg.override(device=device or "auto")
    if rehearsal:  # the rehearsal reads the official metadata shipped in the package
        dataset = canonical_name(dataset)
        return rehearsal_run(dataset, data or Path(out_dir) / "rehearsal_data", out_dir,
                             backbone=backbone, variant=variant, seed=seed, schedule=schedule,
                             device=device or "cpu")
    spec = dataset_spec(dataset)
    dataset = spec.name
    if not data_root:
        raise ValueError(f"{dataset} needs its image folder (data_root), or a rehearsal")
    if metadata_root is None:
        if spec.split_sizes is None:
            raise ValueError(f"{dataset}: no official metadata is shipped for it; give "
                             "metadata_root (a wsol-format folder with train/ val/ test/)")
        metadata_root = official_metadata(dataset)
    cfg = paper_run(dataset, data_root, metadata_root, out_dir,
                    backbone=backbone, variant=variant, seed=seed, schedule=schedule)
    cfg = cfg.override(device=device or "auto")
    if cfg.torch_device().type == "cpu":
        if not allow_cpu:
            from fcam_nb.course.cost import cpu_refusal

            raise CPURefused(cpu_refusal(cfg, *switches))
        cfg = cfg.override(device="cpu")
    return cfg
