"""The F-CAM stage-2 objective: seeds from the CAMs, then the sum of the active loss terms.

``total = sum_{active terms} term`` with, in the paper's notation,
``alpha * PCE(seeds) + lambda_crf * CRF(S, image) + lambda_asc/2 * (psi_t(-sum S_bg) +
psi_t(-sum S_fg))``. The seeds are drawn fresh every step (``fcam_nb.sampling.seed_labels``).
"""

from __future__ import annotations

import torch
from torch import nn

from fcam_nb.losses.base import LOSS_TERMS, LossTerm, TermInputs, register_loss_term
from fcam_nb.losses.crf import DenseCRFLoss
from fcam_nb.losses.partial_ce import PartialCELoss
from fcam_nb.losses.size import SizeConstraint
from fcam_nb.sampling import seed_labels

_PAPER_TERM_CLASSES = (PartialCELoss, DenseCRFLoss, SizeConstraint)  # the paper's, summed first
for _paper_term in _PAPER_TERM_CLASSES:
    register_loss_term(_paper_term)
# set by their own Stage2Config fields, not ``terms``
PAPER_TERMS = tuple(term.name for term in _PAPER_TERM_CLASSES)


class FCAMObjective(nn.Module):
    """Seeds + loss terms. ``state_dict()`` carries the terms' state (the barrier's ``t``).

    Example:
        >>> objective = FCAMObjective.from_config(cfg.stage2)
        >>> terms = objective(seg_logits, cams, images_255, generator, epoch=0)
        >>> terms["total"].backward()
    """

    def __init__(self, terms: list[LossTerm], n_bg: float = 0.3, n_fg_seeds: int = 1,
                 n_bg_seeds: int = 1, dilate_ksz: int = 3, erode_ksz: int = 11) -> None:
        super().__init__()
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate loss terms: {names}")
        self.terms = nn.ModuleDict({t.name: t for t in terms})
        self.n_bg, self.n_fg_seeds, self.n_bg_seeds = n_bg, n_fg_seeds, n_bg_seeds
        self.dilate_ksz, self.erode_ksz = dilate_ksz, erode_ksz

    @classmethod
    def from_config(cls, cfg) -> FCAMObjective:
        """The objective of a ``Stage2Config``: every registered term (``LOSS_TERMS``) its
        settings switch on, in registration order."""
        unknown = sorted(set(cfg.terms) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"Stage2Config.terms names unregistered loss terms {unknown}; "
                             f"registered: {list(LOSS_TERMS)}")
        terms = [t for t in (term.from_config(cfg) for term in LOSS_TERMS.values())
                 if t is not None]
        return cls(terms, cfg.n_bg, cfg.n_fg_seeds, cfg.n_bg_seeds, cfg.dilate_ksz, cfg.erode_ksz)

    def seeds(self, cams: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Seed labels (B, H, W) from normalized CAMs (B, H, W) in [0, 1]."""
        return seed_labels(cams, self.n_bg, self.n_fg_seeds, self.n_bg_seeds, self.dilate_ksz,
                           self.erode_ksz, generator)

    def forward(self, logits: torch.Tensor, cams: torch.Tensor, images_255: torch.Tensor,
                generator: torch.Generator | None = None, epoch: int = 0
                ) -> dict[str, torch.Tensor]:
        """The named terms on a batch and their sum under ``total``.

        Args:
            logits: (B, 2, H, W) decoder output.
            cams: (B, H, W) normalized CAMs at the input size, in [0, 1].
            images_255: (B, 3, H, W) RGB in [0, 255].
            generator: randomness of the seed pixels (CPU generator).
            epoch: selects the terms active in this epoch.
        Returns:
            ``{name: scalar}`` for each active term, plus ``total``.
        """
        inputs = TermInputs(logits, logits.float().softmax(dim=1), self.seeds(cams, generator),
                            images_255)
        out = {name: term.term(inputs) for name, term in self.terms.items() if term.is_active(epoch)}
        out["total"] = sum(out.values())
        return out

    def step_epoch(self) -> None:
        for term in self.terms.values():
            term.step_epoch()
