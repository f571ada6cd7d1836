"""Profiles and shared steps for the notebook series.

``FCAM_PROFILE=ci`` (default without a GPU or dataset): the synthetic set, the tiny backbone, CPU,
minutes. ``FCAM_PROFILE=full``: CUB (or OpenImages) with ImageNet weights on a GPU and the
paper's settings; set ``FCAM_DATASET`` (CUB | OpenImages), ``FCAM_DATA_ROOT`` and
``FCAM_METADATA_ROOT``. All notebooks share one run folder (``FCAM_RUNS``, default ``runs/nb``):
a checkpoint written by one notebook is reused by the next, and missing ones are trained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from fcam_nb.data import SyntheticConfig
from fcam_nb.evaluate import cam_predictor, evaluate, fcam_predictor
from fcam_nb.models import FCAM, WSOLClassifier
from fcam_nb.presets import paper_run, synthetic_run
from fcam_nb.train import RunConfig, _batches, train_classifier, train_fcam, variant_tag

ABLATION = {"SR": (False, False), "SR+CRF": (True, False), "SR+CRF+ASC": (True, True)}

# The paper's reference numbers (Belharbi et al., WACV 2022, Tables 1-3; arXiv 2109.07069) are
# not transcribed here: they could not be checked against the paper offline, and a mistyped
# reference is worse than a pointer. Notebook 04 prints where to find them.
PAPER_TABLES = "Belharbi et al., F-CAM, WACV 2022: Table 1 (CUB, OpenImages), Table 3 (ablation)"


@dataclass
class Profile:
    name: str
    runs: Path
    seed: int = 0

    def config(self, cam_method: str = "cam", use_crf: bool = True, use_size: bool = True
               ) -> RunConfig:
        """The run configuration of this profile for one stage-2 variant."""
        if self.name == "ci":
            cfg = synthetic_run(self.runs / "data", self.runs / "run", SyntheticConfig(seed=self.seed),
                                cam_method=cam_method, seed=self.seed, use_crf=use_crf,
                                use_size=use_size)
            cfg.progress = False
            return cfg
        cfg = paper_run(os.environ.get("FCAM_DATASET", "CUB"), os.environ["FCAM_DATA_ROOT"],
                        os.environ["FCAM_METADATA_ROOT"], self.runs / "run",
                        cam_method=cam_method, seed=self.seed)
        cfg.stage2.use_crf, cfg.stage2.use_size = use_crf, use_size
        return cfg


def get_profile(name: str | None = None) -> Profile:
    """Profile from the argument or ``FCAM_PROFILE``; ``full`` needs CUDA and the data paths."""
    name = name or os.environ.get("FCAM_PROFILE", "ci")
    if name not in ("ci", "full"):
        raise ValueError(f"FCAM_PROFILE must be 'ci' or 'full', got {name!r}")
    if name == "full":
        missing = [v for v in ("FCAM_DATA_ROOT", "FCAM_METADATA_ROOT") if v not in os.environ]
        if missing or not torch.cuda.is_available():
            print(f"full profile unavailable (GPU: {torch.cuda.is_available()}, "
                  f"missing: {missing}); using the ci profile")
            name = "ci"
    if name == "ci":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    return Profile(name=name, runs=Path(os.environ.get("FCAM_RUNS", "runs/nb")))


def classifier(profile: Profile) -> WSOLClassifier:
    """Stage-1 classifier: loaded when trained already, else trained now."""
    return train_classifier(profile.config())


def fcam(profile: Profile, cam_method: str = "cam", use_crf: bool = True, use_size: bool = True,
         clf: WSOLClassifier | None = None) -> FCAM:
    """Stage-2 F-CAM for one CAM method and loss set: loaded when trained already, else trained."""
    cfg = profile.config(cam_method, use_crf, use_size)
    return train_fcam(cfg, clf if clf is not None else classifier(profile),
                      tag=variant_tag(cam_method, use_crf, use_size))


def split(profile: Profile, name: str = "test"):
    """A split of the profile's dataset at evaluation size."""
    return profile.config().data.dataset(name, train=False)


def batches(profile: Profile, name: str = "test", batch_size: int = 64):
    return _batches(split(profile, name), batch_size, None, 0, shard=False)


def score(profile: Profile, predictor, name: str = "test", keep_maps: bool = False) -> dict:
    """WSOL metrics of a predictor on a split (see ``fcam_nb.evaluate``)."""
    cfg = profile.config()
    return evaluate(predictor, batches(profile, name), cfg.data.size, cfg.torch_device(),
                    cfg.eval_step, keep_maps=keep_maps)


def score_cam(profile: Profile, clf: WSOLClassifier, method: str, **kw) -> dict:
    return score(profile, cam_predictor(clf, method), **kw)


def score_fcam(profile: Profile, model: FCAM, **kw) -> dict:
    return score(profile, fcam_predictor(model), **kw)


def first_batch(profile: Profile, n: int = 8, name: str = "test") -> dict:
    """The first ``n`` images of a split as a batch dict (images in [0, 1])."""
    return next(iter(_batches(split(profile, name), n, None, 0, shard=False)))
