"""WSOL encoders (Choe et al., CVPR 2020) and a tiny CPU encoder.

The encoder contract (``WSOLEncoder``), checked when an encoder is built:

* ``forward(x)`` returns the feature maps from shallow to deep; the last is the CAM layer (~28x28
  at 224 input for the WSOL nets; 16x16 at 64 input for the tiny net) and the others are the
  skips of the F-CAM decoder;
* ``feature_info`` (``FeatureInfo``) says what they are: channels, reductions (input size /
  map size, as timm's ``feature_info``) and the F-CAM decoder that fits them;
* ``cam_layer`` is the module whose output is the last map (what CAM methods hook);
* ``new_layers`` names the submodules the WSOL net adds or retrains: with pretrained weights they
  train at ``Stage1Config.new_layers_lr_mult`` x the rate, with the classifier head;
* ``weight_source`` (``WeightSource``) says where pretrained weights come from and how their
  keys map onto the encoder's; ``load_encoder_weights`` is the one place weights are loaded.

``@register_encoder(name)`` makes an encoder buildable by name; ``check_encoder`` runs one on an
input and compares what it returns with what it declares (the tests do it for every encoder).
Weights: ``weights=None`` (random, offline), ``"imagenet"`` (torchvision's weights API, needs the
internet, e.g. on Colab) or a path to a local state dict with the source net's key names.
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

from fcam_nb.registry import add_entry

WeightsArg = str | os.PathLike | None


@dataclass(frozen=True)
class FeatureInfo:
    """What an encoder gives the F-CAM decoder.

    skip_channels: channels of the skip features, shallow -> deep; out_channels: channels of the
    CAM layer (the last feature); reductions: input size / map size of every feature, skips then
    the CAM layer, non-decreasing (ResNet50: 2, 4, 8, 8, 8); decoder_widths: output channels of
    the decoder blocks, deep -> shallow (at least one per skip); decoder_center: two extra
    conv-BN-ReLU at the deepest width before the blocks; paper_decoder_params: the decoder size
    the paper reports for this backbone (None: not in it).
    """

    skip_channels: tuple[int, ...]
    out_channels: int
    decoder_widths: tuple[int, ...]
    reductions: tuple[int, ...]
    decoder_center: bool = False
    paper_decoder_params: float | None = None

    def __post_init__(self) -> None:
        problems = []
        channels = (*self.skip_channels, self.out_channels, *self.decoder_widths)
        if not all(isinstance(c, int) and c > 0 for c in channels):
            problems.append(f"channels and decoder widths must be positive integers, got "
                            f"{self.skip_channels}, {self.out_channels}, {self.decoder_widths}")
        if len(self.decoder_widths) < len(self.skip_channels):
            problems.append(f"{len(self.skip_channels)} skips need at least as many decoder "
                            f"blocks, got decoder_widths {self.decoder_widths}")
        if len(self.reductions) != len(self.skip_channels) + 1:
            problems.append(f"reductions needs one entry per skip plus the CAM layer "
                            f"({len(self.skip_channels) + 1}), got {self.reductions}")
        elif not all(isinstance(r, int) and r >= 1 for r in self.reductions) or any(
                a > b for a, b in zip(self.reductions, self.reductions[1:], strict=False)):
            problems.append(f"reductions must be positive integers, non-decreasing from shallow "
                            f"to deep, got {self.reductions}")
        if problems:
            raise ValueError("FeatureInfo: " + "; ".join(problems))


@dataclass(frozen=True)
class WeightSource:
    """Where an encoder's pretrained weights come from (read by ``load_encoder_weights``).

    imagenet: the torchvision weights of the source net (a ``torchvision.models.get_weight``
    name such as ``"ResNet50_Weights.IMAGENET1K_V1"``), or None: ``weights="imagenet"`` is
    refused. key_map: (own key prefix, source key prefix) pairs; an own key under none of the
    prefixes is a layer the source net lacks and keeps its initialization. Empty: the state dict
    uses the encoder's own key names, all of them.
    """

    imagenet: str | None = None
    key_map: tuple[tuple[str, str], ...] = ()

    def source_key(self, key: str) -> str | None:
        """The source net's name of own parameter/buffer ``key`` (None: not in the source)."""
        if not self.key_map:
            return key
        for own, source in self.key_map:
            if key.startswith(own):
                return source + key[len(own):]
        return None


@runtime_checkable
class WSOLEncoder(Protocol):
    """The encoder contract: ``encoder(x)`` (B, 3, H, W) -> features, shallow to deep, the last
    (B, feature_info.out_channels, h, w) produced by ``cam_layer``; ``new_layers`` and
    ``weight_source`` as in the module docstring."""

    feature_info: FeatureInfo
    new_layers: tuple[str, ...]
    weight_source: WeightSource

    @property
    def cam_layer(self) -> nn.Module: ...

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]: ...


ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str, replace: bool = False) -> Callable:
    """Class decorator: make an encoder buildable by ``build_encoder(name)`` (and a
    ``RunConfig.backbone``). A name already taken raises ``ValueError`` unless
    ``replace=True``."""

    def add(cls):
        add_entry(ENCODERS, name, cls, "encoder", replace)
        return cls

    return add


def imagenet_weights(backbone: str):
    """torchvision's ImageNet weights (a ``WeightsEnum`` member) of a registered backbone, or
    None when its ``weight_source`` names none."""
    encoder = ENCODERS.get(backbone.lower())
    source = getattr(encoder, "weight_source", WeightSource())
    return tvm.get_weight(source.imagenet) if source.imagenet else None


def _read_state(weights: WeightsArg, encoder: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(weights, str) and weights.lower() == "imagenet":
        name = encoder.weight_source.imagenet
        if name is None:
            raise ValueError(f"{type(encoder).__name__} names no ImageNet weights (its "
                             f"weight_source.imagenet is None): pass None or a state-dict file")
        tv_weights = tvm.get_weight(name)
        return tv_weights.get_state_dict(progress=True), f"torchvision {tv_weights}"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state, str(path)


def load_encoder_weights(encoder: nn.Module, weights: WeightsArg) -> nn.Module:
    """Load ``weights`` into ``encoder`` through its ``weight_source`` (the only place weights
    are loaded); None leaves the initialization. Returns ``encoder``.

    Every own key the source should hold must be in the state dict with the same shape (a
    ``KeyError`` / ``ValueError`` names the first ones otherwise); the source's extra keys (its
    classifier, ``AuxLogits``, ...) are ignored.
    """
    if weights is None:
        return encoder
    state, source = _read_state(weights, encoder)
    own = encoder.state_dict()
    mapping = {k: encoder.weight_source.source_key(k) for k in own}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    missing = [v for k, v in mapping.items()
               if v not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"{source}: missing {len(missing)} weights, e.g. {missing[:3]}")
    bad = [k for k, v in mapping.items() if v in state and state[v].shape != own[k].shape]
    if bad:
        raise ValueError(f"{source}: shape mismatch for {mapping[bad[0]]}: "
                         f"{tuple(state[mapping[bad[0]]].shape)} vs {tuple(own[bad[0]].shape)}")
    encoder.load_state_dict({k: state[v] for k, v in mapping.items() if v in state}, strict=False)
    return encoder


def check_contract(encoder: nn.Module) -> None:
    """The static part of the contract: ``feature_info``, ``cam_layer`` inside the encoder,
    ``new_layers`` naming submodules, ``weight_source`` prefixes that match keys. Raises
    ``TypeError`` / ``ValueError`` naming the encoder and what is wrong."""
    name = type(encoder).__name__
    problems = []
    if not isinstance(getattr(encoder, "feature_info", None), FeatureInfo):
        problems.append("feature_info must be a FeatureInfo")
    cam_layer = getattr(encoder, "cam_layer", None)
    if not any(m is cam_layer for m in encoder.modules()):
        problems.append("cam_layer must be one of its submodules")
    layers = getattr(encoder, "new_layers", None)
    if not isinstance(layers, tuple):
        problems.append("new_layers must be a tuple of submodule names (() if none)")
    else:
        for layer in layers:
            try:
                encoder.get_submodule(layer)
            except AttributeError:
                problems.append(f"new_layers names {layer!r}, which is not a submodule")
    source = getattr(encoder, "weight_source", None)
    if not isinstance(source, WeightSource):
        problems.append("weight_source must be a WeightSource")
    else:
        keys = list(encoder.state_dict())
        for own, _ in source.key_map:
            if not any(k.startswith(own) for k in keys):
                problems.append(f"weight_source.key_map prefix {own!r} matches no key")
    if problems:
        raise TypeError(f"encoder {name} breaks the encoder contract: " + "; ".join(problems))


def check_encoder(encoder: nn.Module, size: int = 224) -> list[tuple[int, ...]]:
    """Run ``encoder`` on a (1, 3, size, size) input and compare what it returns with its
    ``feature_info``: as many maps as skips + 1, their channels, their reductions (size / map
    size within 10%) and the last map coming from ``cam_layer``. Returns the maps' shapes;
    raises ``ValueError`` naming the first disagreement."""
    check_contract(encoder)
    info, seen = encoder.feature_info, []
    hook = encoder.cam_layer.register_forward_hook(lambda m, i, o: seen.append(o))
    was_training = encoder.training
    try:
        with torch.no_grad():
            device = next(encoder.parameters()).device
            feats = encoder.eval()(torch.zeros(1, 3, size, size, device=device))
    finally:
        hook.remove()
        encoder.train(was_training)
    name = type(encoder).__name__
    channels = (*info.skip_channels, info.out_channels)
    if len(feats) != len(channels):
        raise ValueError(f"{name}: {len(feats)} feature maps, feature_info declares "
                         f"{len(channels)} ({len(info.skip_channels)} skips + the CAM layer)")
    for i, (f, c, r) in enumerate(zip(feats, channels, info.reductions, strict=True)):
        if f.shape[1] != c:
            raise ValueError(f"{name}: map {i} has {f.shape[1]} channels, declared {c}")
        got = size / f.shape[-1]
        if abs(got - r) > 0.1 * r:
            raise ValueError(f"{name}: map {i} is {f.shape[-1]} px at input {size} (reduction "
                             f"{got:.2f}), declared reduction {r}")
    if not seen or seen[-1] is not feats[-1]:
        raise ValueError(f"{name}: the last feature map is not cam_layer's output")
    return [tuple(f.shape) for f in feats]


@register_encoder("resnet50")
class ResNet50Encoder(nn.Module):
    """WSOL ResNet50: layer3 and layer4 with stride 1 -> 2048 x 28 x 28 at 224 input.

    Skips: 64@/2, 256@/4, 512@/8, 1024@/8.
    """

    feature_info = FeatureInfo((64, 256, 512, 1024), 2048, (256, 128, 64, 32, 16),
                               reductions=(2, 4, 8, 8, 8), paper_decoder_params=9.0e6)
    # layer4 is pretrained but retrained at the head's rate, as the official recipe
    # (wsolevaluation main.py, _FEATURE_PARAM_LAYER_PATTERNS: 'resnet': ['layer4.', 'fc.'])
    new_layers = ("layer4",)
    weight_source = WeightSource("ResNet50_Weights.IMAGENET1K_V1",
                                 (("stem.0.", "conv1."), ("stem.1.", "bn1."),
                                  *((f"layer{i}.", f"layer{i}.") for i in range(1, 5))))

    def __init__(self) -> None:
        super().__init__()
        net = tvm.resnet50(weights=None)
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

    feature_info = FeatureInfo((128, 256), 1024, (256, 128, 64), reductions=(2, 4, 8),
                               decoder_center=True, paper_decoder_params=23.1e6)
    new_layers = ("conv6",)  # not in VGG16 (wsolevaluation: every non-'features.' layer)
    # the blocks are slices of torchvision's `features`, which keep its indices as key names
    weight_source = WeightSource("VGG16_Weights.IMAGENET1K_V1",
                                 tuple((f"block{i}.", "features.") for i in range(1, 6)))

    def __init__(self) -> None:
        super().__init__()
        f = tvm.vgg16(weights=None).features
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
                               reductions=(2, 4, 8, 8, 8), paper_decoder_params=5.7e6)
    new_layers = ("cam_convs",)  # not in InceptionV3 (wsolevaluation: non-Mixed/Conv2d layers)
    weight_source = WeightSource("Inception_V3_Weights.IMAGENET1K_V1", (
        ("stage1.0.", "Conv2d_1a_3x3."), ("stage1.1.", "Conv2d_2a_3x3."),
        ("stage1.2.", "Conv2d_2b_3x3."), ("stage2.1.", "Conv2d_3b_1x1."),
        ("stage3.0.", "Conv2d_4a_3x3."), ("stage3.2.", "Mixed_5b."), ("stage3.3.", "Mixed_5c."),
        ("stage3.4.", "Mixed_5d."), ("stage4.0.", "Mixed_6a."), ("stage4.1.", "Mixed_6b."),
        ("stage4.2.", "Mixed_6c."), ("stage4.3.", "Mixed_6d."), ("stage4.4.", "Mixed_6e.")))

    def __init__(self) -> None:
        super().__init__()
        net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=False)
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
    new_layers = ("stage4",)  # the CAM layer, at the head's rate when weights are loaded
    weight_source = WeightSource()  # no ImageNet weights; a state dict of its own keys

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.feature_info = FeatureInfo((w, 2 * w, 4 * w), 8 * w, (2 * w, w, w // 2),
                                        reductions=(1, 2, 4, 4))
        self.stage1 = nn.Sequential(conv_bn_relu(3, w), conv_bn_relu(w, w))
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.stage3 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w))
        self.stage4 = nn.Sequential(conv_bn_relu(4 * w, 8 * w), conv_bn_relu(8 * w, 8 * w))

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
            the internet) or the path of a local state dict with the source net's key names
            (``load_encoder_weights``).
    Raises:
        ValueError: an unknown name; TypeError: an encoder that breaks the contract
            (``check_contract``).
    Example:
        >>> enc = build_encoder("resnet50")
        >>> [f.shape[1] for f in enc(torch.zeros(1, 3, 224, 224))][-1]
        2048
    """
    key = name.lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(ENCODERS)}")
    encoder = ENCODERS[key]()
    check_contract(encoder)
    return load_encoder_weights(encoder, weights)
