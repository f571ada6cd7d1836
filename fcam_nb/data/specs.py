"""What a dataset is to the rest of the package: one registration per dataset.

The CLI's ``--dataset`` choices, the notebooks' profiles (which split has boxes, which masks),
the paper presets (classes, n⁻, the epochs of each schedule, the validation threshold step) and
the official metadata all read ``DATASETS``. Adding a dataset in the wsol format is one
``register_dataset(DatasetSpec(...))``; its images and metadata folders are given at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fcam_nb.registry import add_entry


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's facts.

    ``schedules``: per schedule name (``paper``, ``colab``), (stage-1 epochs, stage-2 epochs,
    CRF scale). ``split_sizes``: images per split of the official metadata (``None``: not
    shipped). ``n_bg``: the paper's background fraction n⁻ for it (its Fig. 8).
    ``val_eval_step``: the validation threshold step (``None``: the test's)."""

    name: str
    has_boxes: bool
    has_masks: bool
    num_classes: int | None = None  # None: set by the data (the synthetic generator)
    n_bg: float = 0.3
    schedules: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    split_sizes: dict[str, int] | None = None
    val_eval_step: float | None = None

    def __post_init__(self) -> None:
        if not (self.has_boxes or self.has_masks):
            raise ValueError(f"dataset {self.name!r} needs boxes or masks to evaluate on")
        if not 0 < self.n_bg < 1:
            raise ValueError(f"dataset {self.name!r}: n_bg must be in (0, 1), got {self.n_bg}")


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` under its name; a name taken (in any casing) is refused unless ``replace``."""
    add_entry(DATASETS, spec.name, spec, "dataset", replace, casefold=True)
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name`` in any casing; ValueError naming the registered datasets."""
    for key, spec in DATASETS.items():
        if key.lower() == name.lower():
            return spec
    raise ValueError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}")


def paper_datasets() -> tuple[str, ...]:
    """The datasets with official metadata shipped in the package (CUB, OpenImages)."""
    return tuple(n for n, s in DATASETS.items() if s.split_sizes is not None)


register_dataset(DatasetSpec("synthetic", has_boxes=True, has_masks=True))
# CUB-200-2011 (Wah et al.) with the wsolevaluation splits (Choe et al., CVPR 2020): boxes only;
# the official code validates it with thresholds every 0.004 (dlib/configure/constants.py:241,
# dlib/learning/train_wsol.py:505-509), tests every 0.001
register_dataset(DatasetSpec(
    "CUB", has_boxes=True, has_masks=False, num_classes=200, n_bg=0.7,
    schedules={"paper": (50, 50, 1.0), "colab": (10, 3, 0.5)},
    split_sizes={"train": 5994, "val": 1000, "test": 5794}, val_eval_step=0.004))
# OpenImages30k (Choe et al.): masks only (with ignore pixels)
register_dataset(DatasetSpec(
    "OpenImages", has_boxes=False, has_masks=True, num_classes=100, n_bg=0.1,
    schedules={"paper": (10, 10, 1.0), "colab": (3, 1, 0.5)},
    split_sizes={"train": 29819, "val": 2500, "test": 5000}))
