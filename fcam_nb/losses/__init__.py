"""Stage-2 losses: partial CE on seeds, dense CRF (torch + Triton), size constraint (ELB), and
the objective that samples the seeds and sums the active terms."""

from fcam_nb.losses.base import LOSS_TERMS, LossTerm, TermInputs, register_loss_term
from fcam_nb.losses.crf import DenseCRFLoss, dense_crf_loss, dense_crf_loss_reference
from fcam_nb.losses.objective import PAPER_TERMS, FCAMObjective
from fcam_nb.losses.partial_ce import PartialCELoss, partial_cross_entropy
from fcam_nb.losses.size import SizeConstraint, extended_log_barrier

__all__ = [
    "LOSS_TERMS",
    "PAPER_TERMS",
    "DenseCRFLoss",
    "FCAMObjective",
    "LossTerm",
    "PartialCELoss",
    "SizeConstraint",
    "TermInputs",
    "dense_crf_loss",
    "dense_crf_loss_reference",
    "extended_log_barrier",
    "partial_cross_entropy",
    "register_loss_term",
]
