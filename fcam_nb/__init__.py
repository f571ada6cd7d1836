"""fcam-nb: weakly-supervised object localization with CAMs and F-CAM (Belharbi et al., WACV 2022).

The public API, importable from the top level (loaded on first use)::

    from fcam_nb import synthetic_run, train_classifier, train_fcam, evaluate_split

Runs: ``RunConfig``, ``Variant``, ``synthetic_run``, ``paper_run``, ``rehearsal_run``.
Training: ``train_classifier``, ``train_fcam``, ``load_classifier``, ``load_fcam``.
CAMs and models: ``build_cam_method``, ``METHODS``, ``build_classifier``, ``FCAM``.
Evaluation: ``evaluate_split``, ``cam_predictor``, ``fcam_predictor``,
``center_prior_predictor``, ``LocalizationEvaluator``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fcam-nb")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "fcam_nb.config",
    "Variant": "fcam_nb.config",
    "ConfigError": "fcam_nb.config",
    "synthetic_run": "fcam_nb.presets",
    "paper_run": "fcam_nb.presets",
    "rehearsal_run": "fcam_nb.course.rehearsal",
    "train_classifier": "fcam_nb.train",
    "train_fcam": "fcam_nb.train",
    "load_classifier": "fcam_nb.train",
    "load_fcam": "fcam_nb.train",
    "build_cam_method": "fcam_nb.cams",
    "METHODS": "fcam_nb.cams",
    "build_classifier": "fcam_nb.models",
    "FCAM": "fcam_nb.models",
    "evaluate_split": "fcam_nb.evaluate",
    "cam_predictor": "fcam_nb.evaluate",
    "fcam_predictor": "fcam_nb.evaluate",
    "center_prior_predictor": "fcam_nb.evaluate",
    "LocalizationEvaluator": "fcam_nb.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fcam_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
