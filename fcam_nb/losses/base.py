"""The contract of a stage-2 loss term (as the official code's composable losses).

A term is an ``nn.Module`` with a ``name`` (its key in the logs: ``loss_<name>``), a weight it
applies itself, the epochs in which it is active (``start_epoch <= epoch < end_epoch``), a
``term(inputs)`` that reads what it needs from ``TermInputs``, and ``from_config`` that builds it
from the stage-2 settings (``None`` when the settings switch it off). By default a term is built
from ``Stage2Config.terms[name]`` (its constructor's keyword arguments; absent: off), so a new
term is one ``@register_loss_term`` class; the paper's three read their named settings
(``use_crf``, ``asc_weight``, ...). ``FCAMObjective`` sums the active terms of ``LOSS_TERMS`` in
registration order (partial CE, CRF, size constraint, then the terms registered after them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from fcam_nb.registry import add_entry


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
        """This term from a ``Stage2Config``, or None when the settings switch it off: here
        ``cls(**cfg.terms[name])``, None when ``cfg.terms`` has no entry for it."""
        settings = cfg.terms.get(cls.name)
        return None if settings is None else cls(**settings)

    def step_epoch(self) -> None:
        """Called after every epoch (schedules such as the log-barrier's ``t``)."""


LOSS_TERMS: dict[str, type[LossTerm]] = {}  # name -> class, in the order they are summed


def register_loss_term(cls: type[LossTerm] | None = None, *, replace: bool = False):
    """Class decorator: add a ``LossTerm`` subclass to ``LOSS_TERMS`` under its ``name`` (the
    stage-2 objective builds it from the settings, ``RunConfig.check`` knows it, the logs call it
    ``loss_<name>``). A name already taken raises ``ValueError`` unless ``replace=True``.

    Example:
        >>> @register_loss_term
        ... class Area(LossTerm):
        ...     name = "area"
        ...     def __init__(self, weight, **activity):
        ...         super().__init__(**activity)
        ...         self.weight = weight
        ...     def term(self, x): return self.weight * x.probs[:, 1].mean()
        >>> cfg = Stage2Config(terms={"area": {"weight": 0.1}})  # then train as usual
    """

    def add(term: type[LossTerm]) -> type[LossTerm]:
        if not (isinstance(term, type) and issubclass(term, LossTerm)):
            raise TypeError(f"{term!r} is not a LossTerm subclass")
        if not term.name or not term.name.isidentifier() or term.name == "total":
            raise ValueError(f"{term.__name__} needs a `name` of its own (an identifier, not "
                             f"'total'), got {term.name!r}")
        add_entry(LOSS_TERMS, term.name, term, "loss term", replace)
        return term

    return add if cls is None else add(cls)
