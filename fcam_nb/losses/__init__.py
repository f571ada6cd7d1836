"""Stage-2 losses: partial CE on seeds, dense CRF (torch + Triton), size constraint (ELB)."""

from fcam_nb.losses.crf import DenseCRFLoss, dense_crf_loss, dense_crf_loss_reference
from fcam_nb.losses.partial_ce import partial_cross_entropy
from fcam_nb.losses.size import SizeConstraint, extended_log_barrier

__all__ = [
    "DenseCRFLoss",
    "SizeConstraint",
    "dense_crf_loss",
    "dense_crf_loss_reference",
    "extended_log_barrier",
    "partial_cross_entropy",
]
