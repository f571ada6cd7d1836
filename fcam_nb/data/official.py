"""The official WSOL splits (wsolevaluation metadata, MIT) shipped inside the package.

``official_metadata("CUB")`` is a folder with ``train/``, ``val/``, ``test/`` in the wsol format;
point ``metadata_root`` at it and ``data_root`` at the images. See ``wsol_metadata/README.md``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).with_name("wsol_metadata")

# images per split and classes of the official splits (Choe et al., CVPR 2020)
SPLIT_SIZES = {
    "CUB": {"train": 5994, "val": 1000, "test": 5794},
    "OpenImages": {"train": 29819, "val": 2500, "test": 5000},
}
NUM_CLASSES = {"CUB": 200, "OpenImages": 100}


def canonical_name(dataset: str) -> str:
    """``CUB`` or ``OpenImages`` from any casing; ValueError otherwise."""
    for name in SPLIT_SIZES:
        if dataset.lower() == name.lower():
            return name
    raise ValueError(f"dataset must be CUB or OpenImages, got {dataset!r}")


def official_metadata(dataset: str) -> Path:
    """The shipped metadata folder of ``CUB`` or ``OpenImages`` (holds the split folders)."""
    path = ROOT / canonical_name(dataset)
    if not path.is_dir():
        raise FileNotFoundError(f"official metadata missing from the package: {path}")
    return path
