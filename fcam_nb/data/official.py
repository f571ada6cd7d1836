"""The official WSOL splits (wsolevaluation metadata, MIT) shipped inside the package.

``official_metadata("CUB")`` is a folder with ``train/``, ``val/``, ``test/`` in the wsol format;
point ``metadata_root`` at it and ``data_root`` at the images. See ``wsol_metadata/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from fcam_nb.data.specs import dataset_spec, paper_datasets

ROOT = Path(__file__).with_name("wsol_metadata")

# images per split and classes of the official splits (Choe et al., CVPR 2020), from the
# dataset registry (fcam_nb.data.specs)
SPLIT_SIZES = {name: dict(dataset_spec(name).split_sizes) for name in paper_datasets()}
NUM_CLASSES = {name: dataset_spec(name).num_classes for name in paper_datasets()}


def canonical_name(dataset: str) -> str:
    """The registered name (``CUB``, ``OpenImages``) of a dataset with official metadata, from
    any casing; ValueError otherwise."""
    try:
        spec = dataset_spec(dataset)
    except ValueError:
        spec = None
    if spec is None or spec.split_sizes is None:
        raise ValueError(f"dataset must be one of {' or '.join(paper_datasets())}, got {dataset!r}")
    return spec.name


def official_metadata(dataset: str) -> Path:
    """The shipped metadata folder of ``CUB`` or ``OpenImages`` (holds the split folders)."""
    path = ROOT / canonical_name(dataset)
    if not path.is_dir():
        raise FileNotFoundError(f"official metadata missing from the package: {path}")
    return path
