"""Profiles and shared steps for the notebook series.

``FCAM_PROFILE=ci`` (default without a GPU or dataset): the synthetic set, the tiny backbone, CPU,
minutes. ``FCAM_PROFILE=full``: CUB (or OpenImages) with ImageNet weights on a GPU and the
paper's settings; set ``FCAM_DATASET`` (CUB | OpenImages), ``FCAM_DATA_ROOT`` and
``FCAM_METADATA_ROOT``. All notebooks share one run folder (``FCAM_RUNS``, default ``runs/nb``):
a checkpoint written by one notebook is reused by the next, and missing ones are trained.

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

from fcam_nb.config import ABLATION, RunConfig, Variant
from fcam_nb.data import SyntheticConfig, WSOLDataset, make_loader
from fcam_nb.evaluate import cam_predictor, evaluate_split, fcam_predictor
from fcam_nb.models import FCAM, WSOLClassifier
from fcam_nb.presets import paper_run, synthetic_run
from fcam_nb.train import train_classifier, train_fcam

__all__ = ["ABLATION", "PAPER_TABLES", "Profile", "Variant", "classifier", "fcam", "first_batch",
           "get_profile", "score", "score_cam", "score_fcam", "split", "start"]

# The paper's reference numbers (Belharbi et al., WACV 2022, Tables 1-3; arXiv 2109.07069) are
# not transcribed here yet; notebook 04 prints where to find them.
PAPER_TABLES = "Belharbi et al., F-CAM, WACV 2022: Table 1 (CUB, OpenImages), Table 3 (ablation)"


@dataclass(frozen=True)
class Profile:
    """A resolved profile: its name, run folder and base run configuration (CAM seeds, all
    terms); ``note`` says why a requested profile fell back to ``ci``."""

    name: str
    runs: Path
    base: RunConfig
    note: str = ""

    def config(self, variant: Variant | None = None) -> RunConfig:
        """The run configuration of this profile for one stage-2 variant."""
        return self.base.with_variant(variant or Variant())


def get_profile(name: str | None = None, seed: int = 0) -> Profile:
    """Resolve a profile once from the argument or the environment (``FCAM_PROFILE``,
    ``FCAM_RUNS``, ``FCAM_DATASET``, ``FCAM_DATA_ROOT``, ``FCAM_METADATA_ROOT``).

    ``full`` needs CUDA and the data paths; without them it falls back to ``ci`` (see ``note``).
    Prints nothing and changes no global state (``start`` does).
    """
    name = name or os.environ.get("FCAM_PROFILE", "ci")
    if name not in ("ci", "full"):
        raise ValueError(f"FCAM_PROFILE must be 'ci' or 'full', got {name!r}")
    runs = Path(os.environ.get("FCAM_RUNS", "runs/nb"))
    note = ""
    if name == "full":
        missing = [v for v in ("FCAM_DATA_ROOT", "FCAM_METADATA_ROOT") if v not in os.environ]
        if missing or not torch.cuda.is_available():
            note = (f"full profile unavailable (GPU: {torch.cuda.is_available()}, "
                    f"missing: {missing}); using the ci profile")
            name = "ci"
    if name == "ci":
        base = synthetic_run(runs / "data", runs / "run", SyntheticConfig(seed=seed), seed=seed)
        base = base.override(progress=False)
    else:
        base = paper_run(os.environ.get("FCAM_DATASET", "CUB"), os.environ["FCAM_DATA_ROOT"],
                         os.environ["FCAM_METADATA_ROOT"], runs / "run", seed=seed)
    return Profile(name=name, runs=runs, base=base, note=note)


def start(name: str | None = None, seed: int = 0) -> Profile:
    """``get_profile``, then pin the CPU threads of the ci profile (2: its numbers depend on the
    thread count) and print what runs where."""
    profile = get_profile(name, seed)
    if profile.note:
        print(profile.note)
    if profile.name == "ci":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    print("profile:", profile.name, "| run folder:", profile.runs,
          "| threads:", torch.get_num_threads())
    return profile


def classifier(profile: Profile) -> WSOLClassifier:
    """Stage-1 classifier: loaded when trained already, else trained now."""
    return train_classifier(profile.config())


def fcam(profile: Profile, variant: Variant | None = None, clf: WSOLClassifier | None = None
         ) -> FCAM:
    """Stage-2 F-CAM of one variant (CAM method + loss terms; default CAM, all terms): loaded
    when trained already, else trained now."""
    cfg = profile.config(variant)
    return train_fcam(cfg, clf if clf is not None else classifier(profile))


def split(profile: Profile, name: str = "test") -> WSOLDataset:
    """A split of the profile's dataset at evaluation size."""
    return profile.base.data.dataset(name, train=False)


def score(profile: Profile, predictor, name: str = "test", keep_maps: bool = False) -> dict:
    """WSOL metrics of a predictor on a split (see ``fcam_nb.evaluate.evaluate``)."""
    return evaluate_split(profile.base, predictor, name, keep_maps=keep_maps)


def score_cam(profile: Profile, clf: WSOLClassifier, method: str, **kw) -> dict:
    return score(profile, cam_predictor(clf, method), **kw)


def score_fcam(profile: Profile, model: FCAM, **kw) -> dict:
    return score(profile, fcam_predictor(model), **kw)


def first_batch(profile: Profile, n: int = 8, name: str = "test") -> dict:
    """The first ``n`` images of a split as a batch dict (images in [0, 1])."""
    return next(iter(make_loader(split(profile, name), n)))
