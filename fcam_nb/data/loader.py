"""Deterministic batch loading: the order comes from a generator, so a resumed run is identical."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from fcam_nb import distributed
from fcam_nb.data.transforms import normalize, random_crop_flip
from fcam_nb.data.wsol import collate


def make_loader(dataset: Dataset, batch_size: int, generator: torch.Generator | None = None,
                workers: int = 0, shard: bool = False) -> DataLoader:
    """Batches of ``dataset`` as dicts (``fcam_nb.data.collate``).

    Args:
        dataset: e.g. a ``WSOLDataset`` split.
        batch_size: images per batch (per process when sharded).
        generator: shuffles with ``randperm`` from it; None keeps the dataset order. Every
            image is used, a last short batch included (as the official ``DataLoader``).
        workers: DataLoader worker processes.
        shard: keep only this process's share (``rank::world_size``) under DDP, the order padded
            to a multiple of the world size so that every process runs as many batches.
    Example:
        >>> for batch in make_loader(cfg.data.dataset("test", train=False), 64):
        ...     images, labels = batch["image"], batch["label"]
    """
    n = len(dataset)
    order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
    if shard and distributed.world_size() > 1:
        # every process gets as many images, hence batches (a process with one batch more would
        # wait forever in the gradient all-reduce): pad with the first ones, as DistributedSampler
        world = distributed.world_size()
        order += order[: (-len(order)) % world]
        order = order[distributed.rank() :: world]
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return DataLoader(dataset, batch_sampler=groups, collate_fn=collate, num_workers=workers)


def augmented_batches(loader: DataLoader, input_size: int, generator: torch.Generator,
                      device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalized random ``input_size`` crop + flip (B, 3, S, S), labels (B,)) on ``device``."""
    for batch in loader:
        x = normalize(random_crop_flip(batch["image"].to(device), input_size, generator))
        yield x, batch["label"].to(device)
