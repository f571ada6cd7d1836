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
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fcam_nb.data.wsol import WSOLDataset


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


@dataclass(frozen=True)
class Stage1Config:
    """Classifier training (SGD; the layers new to the WSOL net learn ``new_layers_lr_mult`` x
    faster when the backbone is pretrained, as in Choe et al.)."""

    epochs: int = 50
    lr: float = 0.01
    new_layers_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    select_method: str = "cam"  # CAM method used for validation model selection
    select_by: str = "loc"  # "loc" (MaxBoxAcc / PxAP of select_method, the protocol) or "cls"
    cosine: bool = True  # cosine learning-rate decay over the epochs


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
    cosine: bool = False

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
    progress: bool = True

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


_UNTRACKED = ("out_dir", "progress", "device", "amp")  # where and how a run executes, not what
_UNTRACKED_DATA = ("data_root", "metadata_root", "mask_root", "mask_metadata_root", "cache",
                   "workers")  # paths: their content is hashed instead


def run_fingerprint(cfg: RunConfig, stage: int) -> str:
    """16 hex digits naming what a stage's checkpoints are trained on.

    Hashes the settings (stage 1's for stage 1; stage 1's and 2's for stage 2; not paths, device,
    progress bars or epoch counts, so a run can move or be extended), the train/val metadata files
    and, for the synthetic set, the generator's ``config.json`` beside the images folder.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _UNTRACKED}
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in _UNTRACKED_DATA}
    settings["stage1"].pop("epochs")
    settings["stage2"].pop("epochs")
    if stage == 1:
        del settings["stage2"]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    files = [Path(cfg.data.data_root).parent / "config.json"]
    for split in ("train", "val"):
        files += sorted((Path(cfg.data.metadata_root) / split).glob("*.txt"))
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
