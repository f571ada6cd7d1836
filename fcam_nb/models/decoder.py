"""F-CAM decoder: a U-Net on the frozen classifier's features, 2-channel map at input size.

Block: nearest upsample x2, bilinear resize to the skip if sizes differ, concat the skip,
2 x [Conv3x3 (no bias), BN, ReLU]. Final Conv3x3 -> 2 channels (0 = background,
1 = foreground), resized to the input size when the last block does not land on it.
The decoder does not take the CAM as input. Initialization as the official F-CAM
(``dlib/base/initialization.py:4-28``): decoder convs kaiming-uniform (fan-in, ReLU) with zero
bias, BN weight 1 and bias 0, the segmentation head (``out_conv``) xavier-uniform, zero bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fcam_nb.models.backbones import ENCODERS, WSOLEncoder, build_encoder, conv_bn_relu
from fcam_nb.models.classifier import WSOLClassifier


class DecoderBlock(nn.Module):
    """Upsample, align to the skip, concat, two conv-BN-ReLU."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetDecoder(nn.Module):
    """U-Net decoder over encoder features (shallow -> deep, last = deepest).

    ``center=True`` adds two conv-BN-ReLU at the deepest width first (used for VGG16 as in the
    segmentation-models U-Net that F-CAM builds on).
    """

    def __init__(
        self,
        skip_channels: tuple[int, ...],
        in_channels: int,
        widths: tuple[int, ...],
        center: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) < len(skip_channels):
            raise ValueError("need at least one decoder block per skip")
        self.center = (
            nn.Sequential(conv_bn_relu(in_channels, in_channels),
                          conv_bn_relu(in_channels, in_channels))
            if center
            else nn.Identity()
        )
        skips = list(reversed(skip_channels)) + [0] * (len(widths) - len(skip_channels))
        cins = [in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(
            DecoderBlock(cin, s, cout) for cin, s, cout in zip(cins, skips, widths, strict=True)
        )
        self.out_conv = nn.Conv2d(widths[-1], 2, 3, padding=1)
        initialize_official(self)

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """features from the encoder -> logits (B, 2, *size)."""
        x = self.center(features[-1])
        skips = list(reversed(features[:-1]))
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        x = self.out_conv(x)
        if x.shape[-2:] != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


def initialize_official(decoder: UNetDecoder) -> None:
    """The official F-CAM initialization of a decoder (``initialize_decoder`` for the blocks and
    the centre, ``initialize_head`` for the segmentation head)."""
    for m in decoder.modules():
        if isinstance(m, nn.Conv2d) and m is not decoder.out_conv:
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            nn.init.zeros_(m.bias)
    nn.init.xavier_uniform_(decoder.out_conv.weight)


def build_decoder(encoder: WSOLEncoder) -> UNetDecoder:
    """The F-CAM decoder that ``encoder`` describes in its ``feature_info``.

    Example:
        >>> decoder = build_decoder(build_encoder("resnet50"))
        >>> round(count_parameters(decoder) / 1e6, 2)
        9.01
    """
    info = encoder.feature_info
    return UNetDecoder(info.skip_channels, info.out_channels, info.decoder_widths,
                       center=info.decoder_center)


class FCAM(nn.Module):
    """Frozen WSOL classifier + trainable decoder.

    ``forward(x)`` -> (class logits (B, K), segmentation logits (B, 2, H, W)).
    ``localization_map(x)`` -> foreground probability softmax(...)[:, 1] in [0, 1], (B, H, W).
    """

    def __init__(self, classifier: WSOLClassifier, decoder: UNetDecoder) -> None:
        super().__init__()
        self.classifier = classifier
        self.decoder = decoder
        self.freeze_classifier()

    def freeze_classifier(self) -> None:
        for p in self.classifier.parameters():
            p.requires_grad_(False)
        self.classifier.eval()

    def train(self, mode: bool = True) -> FCAM:
        super().train(mode)
        self.classifier.eval()  # BN statistics and dropout of the classifier stay frozen
        return self

    def forward(self, x: torch.Tensor, with_features: bool = False) -> tuple:
        """(class logits (B, K), segmentation logits (B, 2, H, W)); with ``with_features`` also
        the encoder's features first (one encoder pass feeds the CAM and the decoder)."""
        # the frozen classifier in fp32 even under autocast (the CAM and the seeds come from
        # these features, in fp32 as the official code); the decoder runs under the caller's
        # autocast
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            feats, logits = self.classifier.forward_features(x.float())
        seg = self.decoder([f.detach() for f in feats], x.shape[-2:])
        return (feats, logits, seg) if with_features else (logits, seg)

    @torch.no_grad()
    def localization_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1].float().softmax(dim=1)[:, 1]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def decoder_parameter_table() -> dict[str, dict[str, float]]:
    """Decoder parameter counts of the backbones the paper reports, ours vs the paper's (millions)."""
    table = {}
    for name in ENCODERS:
        enc = build_encoder(name)
        paper = enc.feature_info.paper_decoder_params
        if paper is None:
            continue
        ours = count_parameters(build_decoder(enc))
        table[name] = {"ours_M": ours / 1e6, "paper_M": paper / 1e6, "ratio": ours / paper}
    return table
