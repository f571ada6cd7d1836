"""Run settings: what data, which stage-1 and stage-2 recipe, where to write, and their fingerprint.

Settings are frozen dataclasses; change them with ``dataclasses.replace`` or
``RunConfig.override`` (an unknown field is a ``TypeError`` by construction), never in place.

Example:
    >>> cfg = synthetic_run("data/synthetic", "runs/demo")          # fcam_nb.presets
    >>> cfg = cfg.override(stage1={"epochs": 2}, seed=1)
    >>> cfg.with_variant(Variant("layercam", crf=True, asc=False)).stage2.variant.tag
    'fcam_layercam_noasc'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fcam_nb.data.wsol import WSOLDataset
from fcam_nb.metric_specs import select_by_names


class ConfigError(ValueError):
    """Run settings that cannot work (raised before any training)."""


def _unwritable(folder: Path) -> list[str]:
    """Why ``folder`` cannot hold a run's files (empty when it can): created if missing, then a
    probe file is written and removed."""
    if folder.exists() and not folder.is_dir():
        return [f"output folder {folder} is a file"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_probe_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return [f"output folder {folder} cannot be written ({e.strerror or e})"]
    return []


@dataclass(frozen=True)
class DataConfig:
    """Where a wsol-format dataset lives (see ``fcam_nb.data.synthetic.split_paths``).

    Training images are resized to ``resize`` then randomly cropped to ``input_size``;
    evaluation images are resized to ``input_size`` (the protocol's 224 at paper scale).
    """

    data_root: str
    metadata_root: str  # holds <split>/ folders
    num_classes: int
    mask_root: str | None = None
    mask_metadata_root: str | None = None
    resize: int = 256
    input_size: int = 224
    cache: bool = False
    workers: int = 0

    def dataset(self, split: str, train: bool) -> WSOLDataset:
        """The ``split`` of this dataset, at training (``resize``) or evaluation size."""
        return WSOLDataset(
            self.data_root,
            Path(self.metadata_root) / split,
            resize=self.resize if train else self.input_size,
            size=self.input_size,
            num_classes=self.num_classes,
            mask_root=self.mask_root,
            mask_metadata_dir=(
                Path(self.mask_metadata_root) / split if self.mask_metadata_root else None
            ),
            cache=self.cache,
        )


LR_SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class Stage1Config:
    """Classifier training: SGD (Nesterov by default, as the official code); the layers new to
    the WSOL net learn ``new_layers_lr_mult`` x faster when the backbone is pretrained (Choe et
    al.). ``lr_schedule``: ``step`` (x ``gamma`` every ``step_size`` epochs, the official),
    ``cosine`` or ``constant``.

    Model selection: one training run, evaluated on the validation split after each epoch by each
    CAM method of ``select_methods``; each keeps its own best epoch (``stage1_best_<method>.pt``),
    as the paper's separate per-method runs with one recipe would (Table A.3's accuracies differ by
    method for this reason). ``shared``: every CAM method uses the classifier selected by
    ``select_methods[0]`` instead. ``select_by``: ``loc`` (MaxBoxAcc, PxAP on mask-only splits),
    ``loc_v2`` (MaxBoxAccV2, the paper's Table A.1), ``pxap`` (PxAP, the mask protocol's metric,
    on splits with masks) or ``cls`` (accuracy). Ties keep the earlier
    epoch, as the official code (``PerformanceMeter``: ``list.index`` of the best value).
    """

    epochs: int = 50
    lr: float = 0.01
    new_layers_lr_mult: float = 10.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    batch_size: int = 32
    lr_schedule: str = "step"
    step_size: int = 15
    gamma: float = 0.1
    select_methods: tuple[str, ...] = ("cam",)
    shared: bool = False
    select_by: str = "loc"

    def selector(self, method: str) -> str:
        """The CAM method whose validation localization selected ``method``'s classifier."""
        return self.select_methods[0] if self.shared else method


@dataclass(frozen=True)
class Variant:
    """One stage-2 model: the CAM method whose seeds train it and the loss terms beside the
    partial CE (``crf``: dense CRF, ``asc``: absolute size constraint)."""

    method: str = "cam"
    crf: bool = True
    asc: bool = True

    @property
    def tag(self) -> str:
        """Checkpoint name: ``fcam_<method>[_nocrf][_noasc]``."""
        return f"fcam_{self.method}" + ("" if self.crf else "_nocrf") + ("" if self.asc else "_noasc")

    @property
    def label(self) -> str:
        """The paper's ablation name of the loss set: ``SR``, ``SR+CRF``, ``SR+CRF+ASC``..."""
        return "SR" + ("+CRF" if self.crf else "") + ("+ASC" if self.asc else "")


ABLATION = (Variant("cam", crf=False, asc=False), Variant("cam", crf=True, asc=False),
            Variant("cam", crf=True, asc=True))  # the paper's Table 3 rows, on CAM seeds


@dataclass(frozen=True)
class Stage2Config:
    """Decoder training: seeds from ``cam_method`` and the loss terms (``fcam_nb.losses``)."""

    epochs: int = 20
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True  # the official (dlib/configure/config.py:144)
    weight_decay: float = 1e-4
    batch_size: int = 32
    cam_method: str = "cam"
    # sampling regions and seeds
    n_bg: float = 0.3
    n_fg_seeds: int = 1
    n_bg_seeds: int = 1
    dilate_ksz: int = 3
    erode_ksz: int = 11
    # partial cross-entropy on the seeds
    pce_weight: float = 1.0
    # dense CRF
    use_crf: bool = True
    crf_weight: float = 2e-9
    sigma_xy: float = 100.0
    sigma_rgb: float = 15.0
    crf_scale: float = 1.0
    crf_map_mode: str = "bilinear"  # "area" for crf_scale < 0.5
    # absolute size constraint (extended log-barrier)
    use_asc: bool = True
    asc_weight: float = 0.1
    # registered loss terms beyond the paper's three, by name -> their keyword arguments, e.g.
    # {"tv": {"weight": 0.5}} (fcam_nb.losses.register_loss_term); a term not named here is off
    terms: dict[str, dict] = field(default_factory=dict)
    lr_schedule: str = "constant"  # the official's step 1000 never decays in 50 epochs
    step_size: int = 15
    gamma: float = 0.1
    select_by: str = "loc"

    @property
    def variant(self) -> Variant:
        return Variant(self.cam_method, self.use_crf, self.use_asc)


@dataclass(frozen=True)
class RunConfig:
    """Everything a two-stage run needs. ``out_dir`` holds checkpoints and ``log.jsonl``."""

    data: DataConfig
    out_dir: str
    backbone: str = "tiny"
    weights: str | None = None
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    eval_step: float = 0.001
    val_eval_step: float | None = None  # threshold step on the validation split (None: eval_step)
    progress: bool = True
    # Smooth-GradCAM++'s map from the "clean" input's activations (the paper) or the "last_noisy"
    # sample's (the official code in effect; the paper presets): see SmoothGradCAMpp
    smooth_activations: str = "clean"

    def cam_kwargs(self, method: str) -> dict:
        """The options this run gives CAM method ``method`` (``build_cam_method(**...)``)."""
        return {"activations": self.smooth_activations} if method == "smoothgradcampp" else {}

    def check(self, splits: tuple[str, ...] = ("train", "val")) -> RunConfig:
        """Raise ``ConfigError`` listing every setting that cannot work, before any download or
        training: names (backbone, CAM methods, weights), ranges (epochs, batch sizes, rates,
        n-, CRF scale), the data and metadata folders (``splits`` must exist) and an output
        folder that can be written. Returns ``self``."""
        from fcam_nb.cams.methods import METHODS
        from fcam_nb.models.backbones import ENCODERS

        problems = []
        if self.backbone not in ENCODERS:
            problems.append(f"backbone {self.backbone!r} unknown; choose from {sorted(ENCODERS)}")
        if self.weights is not None and str(self.weights).lower() != "imagenet" \
                and not Path(self.weights).is_file():  # the three forms build_encoder takes
            problems.append(f"weights must be None, 'imagenet' or a state-dict file; "
                            f"{self.weights!r} is no file")
        from fcam_nb.cams.methods import SmoothGradCAMpp

        if self.smooth_activations not in SmoothGradCAMpp.ACTIVATIONS:
            problems.append(f"smooth_activations must be one of {SmoothGradCAMpp.ACTIVATIONS}, "
                            f"got {self.smooth_activations!r}")
        if self.stage2.cam_method not in METHODS:
            problems.append(f"stage2.cam_method {self.stage2.cam_method!r} unknown; choose from "
                            f"{list(METHODS)} (or register_cam_method your own)")
        s1 = self.stage1
        unknown = [m for m in s1.select_methods if m not in METHODS]
        if not s1.select_methods or unknown:
            problems.append(f"stage1.select_methods must name CAM methods from {list(METHODS)}, "
                            f"got {s1.select_methods!r}")
        elif s1.selector(self.stage2.cam_method) not in s1.select_methods:
            problems.append(f"stage2.cam_method {self.stage2.cam_method!r} has no classifier of "
                            f"its own: add it to stage1.select_methods {s1.select_methods} or set "
                            f"stage1.shared=True (one classifier for every method)")
        for name, stage in (("stage1", s1), ("stage2", self.stage2)):
            if stage.lr_schedule not in LR_SCHEDULES:
                problems.append(f"{name}.lr_schedule must be one of {LR_SCHEDULES}, got "
                                f"{stage.lr_schedule!r}")
            if not (isinstance(stage.step_size, int) and stage.step_size >= 1) \
                    or not 0 < stage.gamma <= 1:
                problems.append(f"{name}: step_size must be a positive integer and gamma in "
                                f"(0, 1], got {stage.step_size!r}, {stage.gamma!r}")
            if stage.select_by not in select_by_names():
                problems.append(f"{name}.select_by must be one of {select_by_names()}, got "
                                f"{stage.select_by!r}")
            elif stage.select_by == "pxap" and self.data.mask_root is None:
                problems.append(f"{name}.select_by 'pxap' needs masks on the validation split "
                                f"(data.mask_root is not set): use 'loc'")
        for name, value in (("stage1.epochs", self.stage1.epochs),
                            ("stage2.epochs", self.stage2.epochs),
                            ("stage1.batch_size", self.stage1.batch_size),
                            ("stage2.batch_size", self.stage2.batch_size)):
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("stage1.lr", self.stage1.lr), ("stage2.lr", self.stage2.lr)):
            if not value > 0:
                problems.append(f"{name} must be > 0, got {value!r}")
        problems += _term_problems(self.stage2)
        if not 0 < self.stage2.n_bg < 1:
            problems.append(f"stage2.n_bg (n-) must lie in (0, 1), got {self.stage2.n_bg}")
        if not 0 < self.stage2.crf_scale <= 1:
            problems.append(f"stage2.crf_scale must lie in (0, 1], got {self.stage2.crf_scale}")
        if self.stage2.crf_map_mode not in ("bilinear", "area"):
            problems.append(f"stage2.crf_map_mode must be 'bilinear' or 'area', got "
                            f"{self.stage2.crf_map_mode!r}")
        if self.data.resize < self.data.input_size:
            problems.append(f"data.resize ({self.data.resize}) must be >= data.input_size "
                            f"({self.data.input_size}): training crops input_size from it")
        if not Path(self.data.data_root).is_dir():
            problems.append(f"data folder not found: {self.data.data_root}")
        for split in splits:
            if not (Path(self.data.metadata_root) / split).is_dir():
                problems.append(f"metadata split folder not found: "
                                f"{Path(self.data.metadata_root) / split}")
        problems += _unwritable(Path(self.out_dir))
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {self.device!r}")
        elif self.device.startswith("cuda") and not torch.cuda.is_available():
            problems.append(f"device {self.device!r} asked for but CUDA is not available")
        if problems:
            raise ConfigError("this run cannot start:\n  - " + "\n  - ".join(problems))
        return self

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def override(self, data: dict | None = None, stage1: dict | None = None,
                 stage2: dict | None = None, **fields) -> RunConfig:
        """A copy with some settings changed, e.g. ``override(stage2={"epochs": 1}, seed=3)``.

        Unknown names raise ``TypeError`` (``dataclasses.replace``)."""
        parts = {name: dataclasses.replace(getattr(self, name), **changes)
                 for name, changes in (("data", data), ("stage1", stage1), ("stage2", stage2))
                 if changes}
        return dataclasses.replace(self, **parts, **fields)

    def with_variant(self, variant: Variant) -> RunConfig:
        """This run with the stage-2 model ``variant`` (CAM method and loss terms)."""
        return self.override(stage2={"cam_method": variant.method, "use_crf": variant.crf,
                                     "use_asc": variant.asc})


def _term_problems(stage2: Stage2Config) -> list[str]:
    """What is wrong with ``stage2.terms``: names not registered, the paper's own terms (set by
    their fields), settings a term's constructor refuses."""
    from fcam_nb.losses import LOSS_TERMS, PAPER_TERMS

    problems = []
    for name, settings in stage2.terms.items():
        if name in PAPER_TERMS:
            problems.append(f"stage2.terms: {name!r} is set by its own fields (pce_weight, "
                            f"use_crf / crf_weight, use_asc / asc_weight), not by terms")
        elif name not in LOSS_TERMS:
            problems.append(f"stage2.terms names {name!r}, no registered loss term; registered: "
                            f"{list(LOSS_TERMS)} (or register_loss_term your own)")
        elif not isinstance(settings, dict):
            problems.append(f"stage2.terms[{name!r}] must be a dict of keyword arguments, got "
                            f"{settings!r}")
        else:
            try:
                LOSS_TERMS[name](**settings)
            except (TypeError, ValueError) as e:
                problems.append(f"stage2.terms[{name!r}] = {settings!r}: {e}")
    return problems


_UNTRACKED = ("out_dir", "progress", "device", "amp")  # where and how a run executes, not what
_UNTRACKED_DATA = ("data_root", "metadata_root", "mask_root", "mask_metadata_root", "cache",
                   "workers")  # paths: their content is hashed instead


def run_fingerprint(cfg: RunConfig, stage: int) -> str:
    """16 hex digits naming what a stage's checkpoints are trained on.

    Hashes the settings (stage 1's for stage 1; stage 1's and 2's for stage 2; not paths, device,
    progress bars or epoch counts, so a run can move or be extended; stage 1 not
    ``stage1.shared``), the train/val metadata files, the train/val images themselves
    (``images_digest``: changed images are refused, not silently reused) and, for the synthetic
    set, the generator's ``config.json`` beside the images folder.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _UNTRACKED}
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in _UNTRACKED_DATA}
    settings["stage1"].pop("epochs")
    settings["stage2"].pop("epochs")
    if not settings["stage2"]["terms"]:  # runs without extra terms keep their fingerprints
        del settings["stage2"]["terms"]
    if stage == 1:  # which method uses which selected classifier is stage 2's business
        del settings["stage2"]
        settings["stage1"].pop("shared")
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    files = [Path(cfg.data.data_root).parent / "config.json"]
    for split in ("train", "val"):
        files += sorted((Path(cfg.data.metadata_root) / split).glob("*.txt"))
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    digest.update(images_digest(cfg.data.data_root, cfg.data.metadata_root, ("train", "val")))
    return digest.hexdigest()[:16]


_SAMPLE = 4096


@functools.lru_cache(maxsize=1 << 17)
def _file_sample(path: str, size: int, mtime_ns: int) -> bytes:
    """sha1 of a file's size, first and last 4 KiB (cached per size and mtime)."""
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_SAMPLE))
        if size > _SAMPLE:
            f.seek(max(size - _SAMPLE, _SAMPLE))
            h.update(f.read(_SAMPLE))
    return h.digest()


def images_digest(data_root: str | os.PathLike, metadata_root: str | os.PathLike,
                  splits: tuple[str, ...]) -> bytes:
    """A digest of the image files the splits list: each one's id, size and first and last
    4 KiB (an edited, swapped or replaced image changes it; moving the folder or copying the
    files does not). Missing files are skipped here (the dataset reports them)."""
    h = hashlib.sha256()
    for split in splits:
        ids = Path(metadata_root) / split / "image_ids.txt"
        if not ids.is_file():
            continue
        for image_id in ids.read_text(encoding="utf-8", errors="replace").split():
            path = Path(data_root) / image_id
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(image_id.encode() + _file_sample(str(path), st.st_size, st.st_mtime_ns))
    return h.digest()
