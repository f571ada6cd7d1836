"""WSOL classifier: encoder + global average pooling + linear layer (the CAM architecture)."""

from __future__ import annotations

import torch
from torch import nn

from fcam_nb.models.backbones import WeightsArg, WSOLEncoder, build_encoder


class WSOLClassifier(nn.Module):
    """Encoder, GAP and ``Linear(C, K)`` (xavier-uniform, zero bias: the official F-CAM head,
    ``dlib/base/initialization.py:23-28``; an encoder whose ``head_init`` is ``"torch"`` keeps
    PyTorch's default, as the tiny CPU net does).

    ``forward(x)`` -> logits (B, K); ``forward_features(x)`` -> (features list, logits) where
    ``features[-1]`` (B, C, h, w) is the CAM layer. ``fc`` holds the CAM weights and
    ``cam_layer`` is the module CAM methods hook.
    """

    def __init__(self, encoder: WSOLEncoder, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.encoder = encoder
        self.fc = nn.Linear(encoder.feature_info.out_channels, num_classes)
        if getattr(encoder, "head_init", "xavier") == "xavier":  # the official initialize_head
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)
        self.num_classes = num_classes

    @property
    def cam_layer(self) -> nn.Module:
        return self.encoder.cam_layer

    def pool_and_classify(self, acts: torch.Tensor) -> torch.Tensor:
        """CAM-layer activations (B, C, h, w) -> logits (B, K): global average pooling + fc."""
        return self.fc(acts.mean(dim=(2, 3)))

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = self.encoder(x)
        return feats, self.pool_and_classify(feats[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def build_classifier(backbone: str, num_classes: int, weights: WeightsArg = None) -> WSOLClassifier:
    """A WSOL classifier on ``backbone`` (see ``build_encoder``) with ``num_classes`` outputs.

    Example:
        >>> clf = build_classifier("tiny", num_classes=4)
        >>> clf(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 4])
    """
    return WSOLClassifier(build_encoder(backbone, weights), num_classes)
