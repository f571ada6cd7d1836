"""WSOL encoders (Choe et al., CVPR 2020) and a tiny CPU encoder.

Every encoder follows ``WSOLEncoder``: ``forward`` returns a list of feature maps from shallow to
deep; the last one is the CAM layer (~28x28 at 224 input for the WSOL nets, stride 4 for the
tiny net: 16x16 at 64 input) and the others are the skips of the F-CAM decoder. The encoder
describes itself in ``feature_info`` (skip and output channels, and the F-CAM decoder that fits
it, as timm's ``feature_info``), and ``cam_layer`` is the module whose output is the last feature
map (what CAM methods hook). ``@register_encoder(name)`` makes a new one buildable by name.

Weights: ``weights=None`` (random, offline), ``"imagenet"`` (torchvision's weights API, needs the
internet, e.g. on Colab) or a path to a local state dict with torchvision's key names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.models.inception import InceptionB

WeightsArg = str | os.PathLike | None


@dataclass(frozen=True)
class FeatureInfo:
    """What an encoder gives the F-CAM decoder.

    skip_channels: channels of the skip features, shallow -> deep; out_channels: channels of the
    CAM layer (the last feature); decoder_widths: output channels of the decoder blocks, deep ->
    shallow; decoder_center: two extra conv-BN-ReLU at the deepest width before the blocks;
    paper_decoder_params: the decoder size the paper reports for this backbone (None: not in it).
    """

    skip_channels: tuple[int, ...]
    out_channels: int
    decoder_widths: tuple[int, ...]
    decoder_center: bool = False
    paper_decoder_params: float | None = None


@runtime_checkable
class WSOLEncoder(Protocol):
    """The encoder contract: ``encoder(x)`` (B, 3, H, W) -> features, shallow to deep, the last
    (B, feature_info.out_channels, h, w) produced by ``cam_layer``."""

    feature_info: FeatureInfo

    @property
    def cam_layer(self) -> nn.Module: ...

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]: ...


ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str, replace: bool = False) -> Callable:
    """Class decorator: make an encoder buildable by ``build_encoder(name)`` (and a
    ``RunConfig.backbone``). A name already taken raises ``ValueError`` unless
    ``replace=True``."""

    def add(cls):
        if name in ENCODERS and ENCODERS[name] is not cls and not replace:
            raise ValueError(f"encoder {name!r} is already registered "
                             f"({ENCODERS[name].__qualname__}); pass replace=True to replace it")
        ENCODERS[name] = cls
        return cls

    return add


def load_state_dict_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy matching tensors; raise naming the keys that are missing or of the wrong shape.

    Classifier keys of the source network (``fc.*``, ``classifier.*``, ``AuxLogits.*``) and
    extra keys are ignored: the WSOL nets drop those layers.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"{source}: missing {len(missing)} weights, e.g. {missing[:3]}")
    bad = [k for k in own if k in state and state[k].shape != own[k].shape]
    if bad:
        raise ValueError(
            f"{source}: shape mismatch for {bad[0]}: {tuple(state[bad[0]].shape)} vs "
            f"{tuple(own[bad[0]].shape)}"
        )
    module.load_state_dict({k: state[k] for k in own if k in state}, strict=False)


def imagenet_weights(backbone: str):
    """torchvision's ImageNet weights (a ``WeightsEnum`` member) of a paper backbone, or None."""
    from torchvision import models as tvm

    return {"resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
            "vgg16": tvm.VGG16_Weights.IMAGENET1K_V1,
            "inceptionv3": tvm.Inception_V3_Weights.IMAGENET1K_V1}.get(backbone)


def _resolve_state(weights: WeightsArg, tv_weights) -> tuple[dict | None, str]:
    if weights is None:
        return None, "random"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return tv_weights.get_state_dict(progress=True), f"torchvision {tv_weights}"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state, str(path)


@register_encoder("resnet50")
class ResNet50Encoder(nn.Module):
    """WSOL ResNet50: layer3 and layer4 with stride 1 -> 2048 x 28 x 28 at 224 input.

    Skips: 64@/2, 256@/4, 512@/8, 1024@/8.
    """

    feature_info = FeatureInfo((64, 256, 512, 1024), 2048, (256, 128, 64, 32, 16),
                               paper_decoder_params=9.0e6)

    def __init__(self, weights: WeightsArg = None) -> None:
        super().__init__()
        net = tvm.resnet50(weights=None)
        state, source = _resolve_state(weights, imagenet_weights("resnet50"))
        if state is not None:
            load_state_dict_into(net, state, source)
        for layer in (net.layer3, net.layer4):
            layer[0].conv2.stride = (1, 1)
            layer[0].downsample[0].stride = (1, 1)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )

    @property
    def cam_layer(self) -> nn.Module:
        return self.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.stem(x)
        s2 = self.layer1(self.pool(s1))
        s3 = self.layer2(s2)
        s4 = self.layer3(s3)
        return [s1, s2, s3, s4, self.layer4(s4)]


@register_encoder("vgg16")
class VGG16Encoder(nn.Module):
    """WSOL VGG16: no pool4 / pool5, plus conv6 (3x3, 512 -> 1024) + ReLU -> 1024 x 28 x 28.

    The F-CAM decoder on VGG16 is shallow, as in the official code (a segmentation-models U-Net
    of encoder depth 3): skips 128@112 (conv2_2) and 256@56 (conv3_3), a centre block of two
    1024-channel conv-BN-ReLU at 28x28, blocks of 256, 128 and 64 channels (the last at full
    resolution, no skip): 23.1 M parameters, the paper's count.
    """

    feature_info = FeatureInfo((128, 256), 1024, (256, 128, 64), decoder_center=True,
                               paper_decoder_params=23.1e6)

    def __init__(self, weights: WeightsArg = None) -> None:
        super().__init__()
        net = tvm.vgg16(weights=None)
        state, source = _resolve_state(weights, imagenet_weights("vgg16"))
        if state is not None:
            load_state_dict_into(net.features, _strip(state, "features."), source)
        f = net.features
        self.block1 = f[0:4]  # conv1_x -> 64@/1
        self.block2 = f[4:9]  # pool1, conv2_x -> 128@/2
        self.block3 = f[9:16]  # pool2, conv3_x -> 256@/4
        self.block4 = f[16:23]  # pool3, conv4_x -> 512@/8 (pool4 = f[23] removed)
        self.block5 = f[24:30]  # conv5_x -> 512@/8 (pool5 = f[30] removed)
        self.conv6 = nn.Sequential(nn.Conv2d(512, 1024, 3, padding=1), nn.ReLU(inplace=True))

    @property
    def cam_layer(self) -> nn.Module:
        return self.conv6

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s2 = self.block2(self.block1(x))
        s3 = self.block3(s2)
        return [s2, s3, self.conv6(self.block5(self.block4(s3)))]


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class _InceptionBStride1(InceptionB):
    """Mixed_6a with stride 1 and padding 1 (keeps ~28x28), weight-compatible with torchvision."""

    def __init__(self, source: InceptionB) -> None:
        nn.Module.__init__(self)
        self.branch3x3 = source.branch3x3
        self.branch3x3dbl_1 = source.branch3x3dbl_1
        self.branch3x3dbl_2 = source.branch3x3dbl_2
        self.branch3x3dbl_3 = source.branch3x3dbl_3
        for conv in (self.branch3x3.conv, self.branch3x3dbl_3.conv):
            conv.stride, conv.padding = (1, 1), (1, 1)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3(x)
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [branch3x3, dbl, F.max_pool2d(x, kernel_size=3, stride=1, padding=1)]


@register_encoder("inceptionv3")
class InceptionV3Encoder(nn.Module):
    """WSOL InceptionV3 up to Mixed_6e (Mixed_6a stride 1) + 2 x [Dropout, Conv3x3, ReLU] -> 1024.

    The geometry of Choe et al.'s ``InceptionCam`` (wsolevaluation ``wsol/inception.py``):
    Conv2d_1a padding 1, Conv2d_4a padding 0, both max-pools padding 1 with ceil mode, no pool
    before Mixed_6a (large feature map): 1024 x 28 x 28 at 224 input. Skips: the channels of
    the official F-CAM encoder (64, 80, 288, 768) at this geometry: 64@110 (Conv2d_2b),
    80@56 (Conv2d_3b), 288@28 (Mixed_5d), 768@28 (Mixed_6e); 5.70 M decoder parameters.
    """

    feature_info = FeatureInfo((64, 80, 288, 768), 1024, (256, 128, 64, 32, 16),
                               paper_decoder_params=5.7e6)

    def __init__(self, weights: WeightsArg = None) -> None:
        super().__init__()
        net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=False)
        state, source = _resolve_state(weights, imagenet_weights("inceptionv3"))
        if state is not None:
            load_state_dict_into(net, state, source)
        net.Conv2d_1a_3x3.conv.padding = (1, 1)
        for pool in (net.maxpool1, net.maxpool2):
            pool.padding, pool.ceil_mode = 1, True
        self.stage1 = nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3)
        self.stage2 = nn.Sequential(net.maxpool1, net.Conv2d_3b_1x1)
        self.stage3 = nn.Sequential(net.Conv2d_4a_3x3, net.maxpool2, net.Mixed_5b, net.Mixed_5c,
                                    net.Mixed_5d)
        self.stage4 = nn.Sequential(
            _InceptionBStride1(net.Mixed_6a), net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e
        )
        self.cam_convs = nn.Sequential(
            nn.Dropout(0.5),
            nn.Conv2d(768, 1024, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Conv2d(1024, 1024, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        for conv in (self.cam_convs[1], self.cam_convs[4]):  # the official's xavier init
            nn.init.xavier_uniform_(conv.weight)  # (wsol_backbones/inceptionv3.py:32-45,296)
            nn.init.zeros_(conv.bias)

    @property
    def cam_layer(self) -> nn.Module:
        return self.cam_convs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        return [s1, s2, s3, s4, self.cam_convs(s4)]


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """Conv3x3 (no bias), BN, ReLU: the block of the tiny encoder and of the F-CAM decoder."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


@register_encoder("tiny")
class TinyEncoder(nn.Module):
    """Small CPU encoder: 4 stages of 2 x [Conv3x3, BN, ReLU], max-pools between the first 3.

    Like the WSOL nets (which drop their last strides), the last stage keeps the resolution:
    ``width * 8`` channels at stride 4, i.e. 16x16 maps for 64x64 inputs (about the number of
    CAM cells across an object that 28x28 maps give on CUB). Skips: width@/1, 2 width@/2,
    4 width@/4.
    """

    # The classifier head keeps PyTorch's default init on this from-scratch net: the official
    # xavier head (the paper's backbones, ``WSOLClassifier``) stalls it at the synthetic
    # profile's lr 0.05 (seed 0: validation accuracy 54% after 16 epochs instead of 97%).
    head_init = "torch"

    def __init__(self, width: int = 16, weights: WeightsArg = None) -> None:
        super().__init__()
        w = width
        self.feature_info = FeatureInfo((w, 2 * w, 4 * w), 8 * w, (2 * w, w, w // 2))
        self.stage1 = nn.Sequential(conv_bn_relu(3, w), conv_bn_relu(w, w))
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.stage3 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w))
        self.stage4 = nn.Sequential(conv_bn_relu(4 * w, 8 * w), conv_bn_relu(8 * w, 8 * w))
        if weights is not None:
            state, source = _resolve_state(weights, None)
            load_state_dict_into(self, state, source)

    @property
    def cam_layer(self) -> nn.Module:
        return self.stage4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        return [s1, s2, s3, self.stage4(s3)]


def build_encoder(name: str, weights: WeightsArg = None) -> WSOLEncoder:
    """Encoder by name (``ENCODERS``: ``resnet50``, ``vgg16``, ``inceptionv3``, ``tiny``).

    Args:
        name: a registered encoder name (case-insensitive).
        weights: None (random init, offline), ``"imagenet"`` (torchvision's weights API, needs
            the internet) or the path of a local state dict with torchvision's key names.
    Example:
        >>> enc = build_encoder("resnet50")
        >>> [f.shape[1] for f in enc(torch.zeros(1, 3, 224, 224))][-1]
        2048
    """
    key = name.lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(ENCODERS)}")
    return ENCODERS[key](weights=weights)
