"""Backbones, WSOL classifier, F-CAM decoder."""

from fcam_nb.models.backbones import build_encoder
from fcam_nb.models.classifier import WSOLClassifier, build_classifier
from fcam_nb.models.decoder import (
    FCAM,
    UNetDecoder,
    build_decoder,
    count_parameters,
    decoder_parameter_table,
)

__all__ = [
    "FCAM",
    "UNetDecoder",
    "WSOLClassifier",
    "build_classifier",
    "build_decoder",
    "build_encoder",
    "count_parameters",
    "decoder_parameter_table",
]
