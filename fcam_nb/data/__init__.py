"""Datasets: wsol-format reader, synthetic generator, batched transforms."""

from fcam_nb.data.loader import augmented_batches, make_loader
from fcam_nb.data.official import NUM_CLASSES, SPLIT_SIZES, official_metadata
from fcam_nb.data.synthetic import SyntheticConfig, generate, split_paths
from fcam_nb.data.transforms import denormalize_255, normalize, random_crop_flip
from fcam_nb.data.wsol import MetadataError, WSOLDataset, collate, read_metadata

__all__ = [
    "NUM_CLASSES",
    "SPLIT_SIZES",
    "MetadataError",
    "SyntheticConfig",
    "WSOLDataset",
    "augmented_batches",
    "collate",
    "denormalize_255",
    "generate",
    "make_loader",
    "normalize",
    "official_metadata",
    "random_crop_flip",
    "read_metadata",
    "split_paths",
]
