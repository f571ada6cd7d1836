"""Profiles and shared steps for the notebook series.

``FCAM_PROFILE=ci`` (default): the synthetic set, the tiny backbone, minutes on a CPU (on the GPU
when there is one). ``FCAM_PROFILE=full``: CUB (or OpenImages) with ImageNet weights on a GPU and
the paper's settings; set ``FCAM_DATASET`` (CUB | OpenImages) and ``FCAM_DATA_ROOT`` (the image
folder; ``FCAM_METADATA_ROOT`` defaults to the official splits shipped in the package). Without
CUDA the full profile stops with the estimated cost, unless ``FCAM_ALLOW_CPU=1``.
``FCAM_REHEARSAL=1`` rehearses the full profile on the CPU: a subset of the official metadata,
rendered placeholder images, the paper configuration shrunk to one short epoch (CI runs every
notebook this way for both datasets). All notebooks share one run folder (``FCAM_RUNS``,
default ``runs/nb``): a checkpoint written by one notebook is reused by the next, and missing
ones are trained.

Example (a notebook's first cells):
    >>> profile = nb.start(FCAM_PROFILE)
    >>> clf = nb.classifier(profile)
    >>> model = nb.fcam(profile, Variant("cam", crf=True, asc=False), clf=clf)
    >>> nb.score_fcam(profile, model)["max_box_acc"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from fcam_nb.cams import BASELINES
from fcam_nb.config import ABLATION, RunConfig, Variant
from fcam_nb.data import SyntheticConfig, WSOLDataset, make_loader
from fcam_nb.data.specs import DATASETS, dataset_spec, paper_datasets
from fcam_nb.data.synthetic import seed_folder
from fcam_nb.evaluate import cam_predictor, evaluate_split, fcam_predictor
from fcam_nb.models import FCAM, WSOLClassifier
from fcam_nb.presets import CPURefused, resolve_run
from fcam_nb.search import PAPER_GRID
from fcam_nb.train import train_classifier, train_fcam

__all__ = ["ABLATION", "Profile", "SyntheticConfig", "Variant", "classifier", "fcam", "first_batch",
           "get_profile", "part_masks", "prepare_data", "runs_on_drive", "score", "score_cam", "score_fcam",
           "split", "start"]


CI_METHODS = ("cam", "gradcampp", "layercam")  # the ci profile's methods (notebook 04), each with
# its own classifier


@dataclass(frozen=True)
class Profile:
    """A resolved profile: its name (``ci`` or ``full``), dataset, run folder and base run
    configuration (CAM seeds, all terms); ``rehearsal`` when the full profile is rehearsed on
    the CPU."""

    name: str
    runs: Path
    base: RunConfig
    dataset: str = "synthetic"
    rehearsal: bool = False

    @property
    def has_boxes(self) -> bool:
        """Whether the evaluation splits have boxes (synthetic, CUB): the dataset's spec."""
        return dataset_spec(self.dataset).has_boxes

    @property
    def has_masks(self) -> bool:
        """Whether the evaluation splits have masks (synthetic, OpenImages): the dataset's spec."""
        return dataset_spec(self.dataset).has_masks

    @property
    def compared_methods(self) -> tuple[str, ...]:
        """The CAM methods notebook 04 compares (each with its own F-CAM decoder): all six in the
        full profile, three in ``ci``, two (one activation-based, one gradient-based) in a CPU
        rehearsal, where each decoder costs a 224-px ResNet50 epoch."""
        if self.name == "ci":
            return CI_METHODS
        return ("cam", "gradcampp") if self.rehearsal else BASELINES

    @property
    def classifiers(self) -> str:
        """Which stage-1 classifier each CAM method uses, in words."""
        s1 = self.base.stage1
        key = {"loc": "localization", "loc_v2": "MaxBoxAccV2", "pxap": "PxAP",
               "cls": "accuracy"}[s1.select_by]
        if s1.shared:
            return (f"one classifier shared by every CAM method, selected by "
                    f"{s1.select_methods[0]}'s validation {key}")
        return (f"one classifier per CAM method, each selected by its own validation {key} "
                f"(one training run, {len(s1.select_methods)} selections)")

    @property
    def search_grid(self) -> tuple[dict, int | None]:
        """(grid, epochs per point) of notebook 03's validation search: the paper's n- in
        0.1..0.7 x alpha in {1, 0.1} (14 decoders, the schedule's epochs) on the full profile;
        n- 0.3/0.6 x alpha 1/0.1 for 1 epoch in ``ci``; n- 0.6/0.7 in a rehearsal."""
        if self.name == "ci":
            return {"n_bg": (0.3, 0.6), "pce_weight": (1.0, 0.1)}, 1
        if self.rehearsal:
            return {"n_bg": (0.6, 0.7)}, None
        return dict(PAPER_GRID), None

    def config(self, variant: Variant | None = None) -> RunConfig:
        """The run configuration of this profile for one stage-2 variant."""
        return self.base.with_variant(variant or Variant())


TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_flag(name: str, env: dict | None = None) -> bool:
    """A boolean environment variable: 1/true/yes/on or 0/false/no/off (any case; unset: off).
    Anything else raises ``ValueError`` naming the variable and the accepted values."""
    raw = (os.environ if env is None else env).get(name, "")
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _dataset_problems(dataset: str) -> list[str]:
    """What keeps ``dataset`` from the full profile: unregistered, the synthetic set (the ci
    profile's), a rehearsal of a dataset without official metadata, or no metadata at all."""
    try:
        rehearsal = env_flag("FCAM_REHEARSAL")
    except ValueError:  # reported by check_settings
        rehearsal = False
    try:
        spec = dataset_spec(dataset)
    except ValueError:
        return [f"FCAM_DATASET must be a registered dataset other than synthetic "
                f"({', '.join(n for n in DATASETS if n != 'synthetic')}), got {dataset!r}"]
    if spec.name == "synthetic":
        return ["FCAM_DATASET 'synthetic' is the ci profile's: set FCAM_PROFILE=ci"]
    if spec.split_sizes is None and rehearsal:
        return [f"FCAM_REHEARSAL rehearses the datasets with official metadata "
                f"({' or '.join(paper_datasets())}), not {spec.name}"]
    if spec.split_sizes is None and not os.environ.get("FCAM_METADATA_ROOT"):
        return [f"{spec.name} has no official metadata in the package: set FCAM_METADATA_ROOT "
                f"(a wsol-format folder with train/ val/ test/)"]
    return []


def check_settings(name: str | None = None, dataset: str | None = None,
                   schedule: str | None = None, runs: str | os.PathLike | None = None) -> None:
    """Check every notebook setting (the arguments, else the ``FCAM_*`` environment) before any
    download or training; raises ``ValueError`` listing each problem with the accepted values."""
    from fcam_nb.presets import SCHEDULES

    env = os.environ
    problems = []
    name = name or env.get("FCAM_PROFILE", "ci")
    if name not in ("ci", "full"):
        problems.append(f"FCAM_PROFILE must be 'ci' or 'full', got {name!r}")
    if name == "full":  # the ci profile ignores the dataset and the schedule
        problems += _dataset_problems(dataset or env.get("FCAM_DATASET", "CUB"))
        schedule = schedule or env.get("FCAM_SCHEDULE", "colab")
        if schedule not in SCHEDULES:
            problems.append(f"FCAM_SCHEDULE must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    for flag in ("FCAM_REHEARSAL", "FCAM_ALLOW_CPU"):
        try:
            env_flag(flag)
        except ValueError as e:
            problems.append(str(e))
    runs = Path(runs or env.get("FCAM_RUNS", "runs/nb"))
    if runs.exists() and not runs.is_dir():
        problems.append(f"FCAM_RUNS {runs} is a file: give a folder for the run checkpoints")
    if problems:
        raise ValueError("these settings cannot work:\n  - " + "\n  - ".join(problems))


def get_profile(name: str | None = None, seed: int = 0, dataset: str | None = None,
                data_root: str | None = None, runs: str | None = None,
                schedule: str | None = None, synthetic: SyntheticConfig | None = None) -> Profile:
    """Resolve a profile once from the argument or the environment (``FCAM_PROFILE``,
    ``FCAM_RUNS``, ``FCAM_DATASET``, ``FCAM_DATA_ROOT``, ``FCAM_METADATA_ROOT``,
    ``FCAM_REHEARSAL``, ``FCAM_ALLOW_CPU``, ``FCAM_SCHEDULE``: ``colab`` (default) or ``paper``);
    ``dataset``, ``data_root``, ``runs`` and ``schedule`` given here
    (a notebook's parameters cell) win over the environment. ``synthetic``: the ``ci`` profile's
    dataset settings (default ``SyntheticConfig(seed=seed)``; exercises change them, in their own
    ``runs`` folder). Prints nothing, changes nothing.

    Raises:
        ValueError: unknown profile or dataset; ``full`` without ``FCAM_DATA_ROOT``.
        RuntimeError: ``full`` without CUDA (the message gives the estimated cost per step).
    """
    check_settings(name, dataset, schedule, runs)
    env = os.environ
    name = name or env.get("FCAM_PROFILE", "ci")
    runs = Path(runs or env.get("FCAM_RUNS", "runs/nb"))
    if name == "ci":
        # one set per seed (never rewritten under a job); a classifier each for notebook 04
        base = resolve_run("synthetic", runs / "run", seed=seed,
                           data=seed_folder(runs / "data", seed), synthetic=synthetic,
                           select_methods=CI_METHODS)
        return Profile("ci", runs, base.override(progress=False))
    dataset = dataset_spec(dataset or env.get("FCAM_DATASET", "CUB")).name
    schedule = schedule or env.get("FCAM_SCHEDULE", "colab")
    if env_flag("FCAM_REHEARSAL"):
        base = resolve_run(dataset, runs / f"run_{dataset}", seed=seed, schedule=schedule,
                           rehearsal=True, data=runs / f"rehearsal_data_{dataset}")
        return Profile("full", runs, base, dataset=dataset, rehearsal=True)
    data_root = data_root or env.get("FCAM_DATA_ROOT")
    if not data_root:
        raise ValueError("the full profile needs FCAM_DATA_ROOT (the image folder; run the data "
                         "cell), or FCAM_REHEARSAL=1 for a CPU rehearsal")
    try:
        base = resolve_run(dataset, runs / f"run_{dataset}_{schedule}", seed=seed,
                           data_root=data_root, metadata_root=env.get("FCAM_METADATA_ROOT"),
                           schedule=schedule, allow_cpu=env_flag("FCAM_ALLOW_CPU"),
                           switches=("FCAM_REHEARSAL=1", "FCAM_ALLOW_CPU=1"))
    except CPURefused as e:
        raise RuntimeError(str(e)) from None
    return Profile("full", runs, base, dataset=dataset)


def start(name: str | None = None, seed: int = 0, dataset: str | None = None,
          data_root: str | None = None, runs: str | None = None,
          schedule: str | None = None, synthetic: SyntheticConfig | None = None) -> Profile:
    """``get_profile``, then pin the CPU threads (2: the numbers depend on the thread count) and
    print what runs where."""
    profile = get_profile(name, seed, dataset, data_root, runs, schedule, synthetic)
    if profile.base.torch_device().type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    cfg = profile.base
    what = "rehearsal (CPU, placeholder images)" if profile.rehearsal else cfg.torch_device().type
    print(f"profile: {profile.name} | dataset: {profile.dataset} | {cfg.backbone} at "
          f"{cfg.data.input_size} px | epochs {cfg.stage1.epochs} + {cfg.stage2.epochs}, CRF scale "
          f"{cfg.stage2.crf_scale} | {what} | threads: {torch.get_num_threads()} | "
          f"run folder: {profile.runs}")
    if not profile.has_masks:
        print("this dataset has boxes only: PxAP and pixel-level analyses are not available")
    if not profile.has_boxes:
        print("this dataset has masks only: MaxBoxAcc, MaxBoxAccV2 and top-k loc are not available")
    return profile


def classifier(profile: Profile, method: str = "cam") -> WSOLClassifier:
    """The stage-1 classifier of CAM method ``method`` (``Profile.classifiers`` says whether
    each method has its own): loaded when trained already, else trained now."""
    return train_classifier(profile.config(Variant(method)))


def fcam(profile: Profile, variant: Variant | None = None, clf: WSOLClassifier | None = None
         ) -> FCAM:
    """Stage-2 F-CAM of one variant (CAM method + loss terms; default CAM, all terms) on
    ``clf`` (default: the variant's method's classifier): loaded when trained already, else
    trained now."""
    variant = variant or Variant()
    cfg = profile.config(variant)
    return train_fcam(cfg, clf if clf is not None else classifier(profile, variant.method))


def split(profile: Profile, name: str = "test") -> WSOLDataset:
    """A split of the profile's dataset at evaluation size."""
    return profile.base.data.dataset(name, train=False)


def score(profile: Profile, predictor, name: str = "test", keep_maps: bool = False) -> dict:
    """WSOL metrics of a predictor on a split (see ``fcam_nb.evaluate.evaluate``)."""
    return evaluate_split(profile.base, predictor, name, keep_maps=keep_maps)


def score_cam(profile: Profile, clf: WSOLClassifier, method: str, **kw) -> dict:
    return score(profile, cam_predictor(clf, method, **profile.base.cam_kwargs(method)), **kw)


def score_fcam(profile: Profile, model: FCAM, **kw) -> dict:
    return score(profile, fcam_predictor(model), **kw)


def part_masks(profile: Profile, name: str = "val") -> torch.Tensor | None:
    """The discriminative part (the synthetic bird's class mark) of each image of a split, bool
    (N, S, S) at the evaluation size; None on CUB / OpenImages (no part annotations)."""
    if profile.name != "ci":
        return None
    from fcam_nb.data.synthetic import part_masks as synthetic_parts

    data = profile.base.data
    return synthetic_parts(Path(data.data_root).parent, name, data.input_size)


def first_batch(profile: Profile, n: int = 8, name: str = "test") -> dict:
    """The first ``n`` images of a split as a batch dict (images in [0, 1])."""
    return next(iter(make_loader(split(profile, name), n)))


def runs_on_drive(runs: str, use_drive: bool) -> str:
    """On Colab with ``use_drive``: mount Google Drive and put the run folder there, so
    checkpoints survive a disconnected runtime (training resumes from them). Else ``runs``."""
    import sys

    if not use_drive or "google.colab" not in sys.modules:
        return runs
    from google.colab import drive  # Colab only

    drive.mount("/content/drive")
    path = Path("/content/drive/MyDrive/fcam-nb") / runs
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def prepare_data(profile_name: str, dataset: str, data_root: str) -> str:
    """The data cell: for the full profile (not a rehearsal), make sure ``dataset`` is prepared
    under ``data_root``'s parent (CUB: downloaded, checksummed, extracted; OpenImages: its two
    archives, downloaded by hand from the wsolevaluation README, must lie there). Skipped when
    done; a dataset registered by the user is left as it is. Returns the image folder to pass to
    the profile."""
    from fcam_nb.data import prepare

    check_settings(profile_name, dataset)  # every setting before a download starts
    if profile_name != "full" or env_flag("FCAM_REHEARSAL"):
        return data_root
    name = dataset_spec(dataset).name
    if name not in ("CUB", "OpenImages"):  # a dataset registered by the user: prepared by them
        return data_root
    root = Path(data_root)
    if name == "CUB":
        prepare.prepare_cub(root.parent)
        return str(root.parent / "images")
    archives = [root / "OpenImages_images.zip", root / "OpenImages_annotations.zip"]
    missing = [str(a) for a in archives if not a.is_file()]
    if missing and not (root / ".oi_images.done").is_file():
        raise FileNotFoundError(f"put the OpenImages30k archives from the wsolevaluation README "
                                f"here first: {missing}")
    prepare.prepare_openimages(root, *archives)
    return str(root)
