"""The contract of a stage-2 loss term (as the official code's composable losses).

A term is an ``nn.Module`` with a ``name`` (its key in the logs: ``loss_<name>``), a weight it
applies itself, the epochs in which it is active (``start_epoch <= epoch < end_epoch``), a
``term(inputs)`` that reads what it needs from ``TermInputs``, and ``from_config`` that builds it
from the stage-2 settings (``None`` when the settings switch it off). ``FCAMObjective`` sums the
active terms of ``fcam_nb.losses.objective.TERMS`` in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass
class TermInputs:
    """What the stage-2 terms see for one batch.

    logits (B, 2, H, W) decoder output; probs (B, 2, H, W) their softmax in fp32; seeds int64
    (B, H, W) with 1 / 0 / ``IGNORE``; images_255 (B, 3, H, W) RGB in [0, 255].
    """

    logits: torch.Tensor
    probs: torch.Tensor
    seeds: torch.Tensor
    images_255: torch.Tensor


class LossTerm(nn.Module):
    """Base class of the stage-2 loss terms: subclasses set ``name`` and implement ``term`` and
    ``from_config``."""

    name: ClassVar[str] = ""

    def __init__(self, start_epoch: int = 0, end_epoch: int | None = None) -> None:
        super().__init__()
        self.start_epoch, self.end_epoch = start_epoch, end_epoch

    def is_active(self, epoch: int) -> bool:
        return epoch >= self.start_epoch and (self.end_epoch is None or epoch < self.end_epoch)

    def term(self, inputs: TermInputs) -> torch.Tensor:
        """The weighted scalar loss of this term on a batch."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, cfg) -> LossTerm | None:
        """This term from a ``Stage2Config``, or None when the settings switch it off."""
        raise NotImplementedError

    def step_epoch(self) -> None:
        """Called after every epoch (schedules such as the log-barrier's ``t``)."""
