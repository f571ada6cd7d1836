import pytest
import torch
from torchvision import models as tvm

from fcam_nb.models import (
    FCAM,
    build_classifier,
    build_decoder,
    build_encoder,
    count_parameters,
    decoder_parameter_table,
)
from fcam_nb.models.backbones import ENCODERS, WSOLEncoder, register_encoder


def test_decoder_sizes_match_the_paper_within_2_percent():
    table = decoder_parameter_table()
    assert set(table) == {"resnet50", "vgg16", "inceptionv3"}
    for name, row in table.items():  # paper: 9.0 / 23.1 / 5.7 M
        assert 0.98 <= row["ratio"] <= 1.02, (name, row)


# skip resolutions at 224 px: ResNet50 and VGG16 as the official F-CAM code; InceptionV3 with
# Choe et al.'s geometry (Conv2d_2a and Conv2d_4a unpadded), hence 110 and 56
SKIP_SIZES = {"resnet50": [112, 56, 28, 28], "vgg16": [112, 56], "inceptionv3": [110, 56, 28, 28]}


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "inceptionv3"])
def test_wsol_backbones_give_28x28_maps_at_224(name):
    hw = 28
    clf = build_classifier(name, 10).eval()
    with torch.no_grad():
        feats, logits = clf.forward_features(torch.randn(1, 3, 224, 224))
    info = clf.encoder.feature_info
    assert feats[-1].shape[1:] == (info.out_channels, hw, hw)
    assert [f.shape[1] for f in feats[:-1]] == list(info.skip_channels)
    assert [f.shape[-1] for f in feats[:-1]] == SKIP_SIZES[name]
    assert logits.shape == (1, 10)
    assert isinstance(clf.encoder, WSOLEncoder)
    model = FCAM(clf, build_decoder(clf.encoder))
    with torch.no_grad():
        assert model.localization_map(torch.randn(1, 3, 224, 224)).shape == (1, 224, 224)


def test_tiny_backbone_and_fcam_freeze():
    clf = build_classifier("tiny", 4)
    model = FCAM(clf, build_decoder(clf.encoder)).train()
    assert not clf.training  # classifier stays in eval mode
    assert all(not p.requires_grad for p in clf.parameters())
    logits, seg = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 4) and seg.shape == (2, 2, 64, 64)
    seg.sum().backward()
    assert all(p.grad is None for p in clf.parameters())
    assert any(p.grad is not None for p in model.decoder.parameters())
    maps = model.localization_map(torch.randn(2, 3, 64, 64))
    assert maps.min() >= 0 and maps.max() <= 1
    assert count_parameters(clf) < 1_000_000


def test_weights_from_local_state_dict(tmp_path):
    torch.manual_seed(0)
    ref = tvm.resnet50(weights=None)
    path = tmp_path / "r50.pth"
    torch.save(ref.state_dict(), path)
    enc = build_encoder("resnet50", weights=str(path))
    torch.testing.assert_close(enc.stem[0].weight, ref.conv1.weight)
    torch.testing.assert_close(enc.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    assert enc.layer4[0].conv2.stride == (1, 1)  # WSOL stride change kept after loading


def test_vgg_weights_from_local_state_dict(tmp_path):
    ref = tvm.vgg16(weights=None)
    path = tmp_path / "vgg.pth"
    torch.save(ref.state_dict(), path)
    enc = build_encoder("vgg16", weights=str(path))
    torch.testing.assert_close(enc.block5[0].weight, ref.features[24].weight)


def test_bad_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_encoder("resnet50", weights=str(tmp_path / "missing.pth"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(KeyError, match="missing"):
        build_encoder("resnet50", weights=str(tmp_path / "bad.pth"))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_encoder("alexnet")


def test_a_registered_encoder_gets_its_decoder_from_its_feature_info():
    from torch import nn

    from fcam_nb.models.backbones import FeatureInfo, WeightSource

    @register_encoder("two_level_test")
    class TwoLevel(nn.Module):
        feature_info = FeatureInfo(skip_channels=(8,), out_channels=16, decoder_widths=(8, 4),
                                   reductions=(1, 2))
        new_layers = ("b",)
        weight_source = WeightSource()

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 16, 3, stride=2, padding=1)

        @property
        def cam_layer(self):
            return self.b

        def forward(self, x):
            s = self.a(x)
            return [s, self.b(s)]

    try:
        clf = build_classifier("two_level_test", 3)
        assert isinstance(clf.encoder, WSOLEncoder)
        seg = FCAM(clf, build_decoder(clf.encoder))(torch.randn(2, 3, 16, 16))[1]
        assert seg.shape == (2, 2, 16, 16)
    finally:
        del ENCODERS["two_level_test"]


def test_cam_layer_is_not_saved_twice():
    keys = build_classifier("tiny", 4).state_dict().keys()
    assert not any("cam_layer" in k for k in keys) and any(k.startswith("encoder.stage4") for k in keys)


def test_one_mapping_names_the_imagenet_weights_of_each_paper_backbone():
    from fcam_nb.models.backbones import imagenet_weights

    urls = {name: imagenet_weights(name).url for name in ("resnet50", "vgg16", "inceptionv3")}
    assert all(url.endswith(".pth") for url in urls.values()) and len(set(urls.values())) == 3
    assert imagenet_weights("tiny") is None


def test_official_initialization_of_decoder_and_heads():
    """dlib/base/initialization.py: decoder convs kaiming-uniform (fan-in, ReLU), zero biases,
    segmentation and classification heads xavier-uniform; Inception's extra convs xavier."""
    import math

    torch.manual_seed(0)
    tiny = build_classifier("tiny", num_classes=7)
    dec = build_decoder(tiny.encoder)
    assert tiny.fc.bias.abs().max() > 0  # the tiny net keeps PyTorch's default head (ours)
    clf = build_classifier("resnet50", num_classes=7)

    def bound(w, fan):
        spread = pytest.approx(fan / math.sqrt(3), rel=0.15)  # uniform(-b, b): std b / sqrt 3
        return w.abs().max().item() <= fan * (1 + 1e-6) and w.std().item() == spread

    convs = [m for m in dec.modules() if isinstance(m, torch.nn.Conv2d) and m is not dec.out_conv]
    for conv in convs:
        fan_in = conv.weight[0].numel()
        assert bound(conv.weight, math.sqrt(6 / fan_in))  # gain sqrt(2) * sqrt(3 / fan_in)
    out = dec.out_conv.weight
    fan_in, fan_out = out[0].numel(), out.shape[0] * out[0, 0].numel()
    assert out.abs().max().item() <= math.sqrt(6 / (fan_in + fan_out))
    assert (dec.out_conv.bias == 0).all()
    fc = clf.fc.weight
    assert fc.abs().max().item() <= math.sqrt(6 / (fc.shape[0] + fc.shape[1]))
    assert bound(fc, math.sqrt(6 / (fc.shape[0] + fc.shape[1])))
    assert (clf.fc.bias == 0).all()
    inc = ENCODERS["inceptionv3"]()
    for conv in (inc.cam_convs[1], inc.cam_convs[4]):
        w = conv.weight
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        assert bound(w, math.sqrt(6 / (fan_in + fan_out))) and (conv.bias == 0).all()


def test_the_classifier_runs_in_fp32_under_autocast():
    """The seeds' CAM comes from the encoder's features: fp32 even when the decoder is under
    autocast (the official code has no autocast)."""
    torch.manual_seed(0)
    clf = build_classifier("tiny", num_classes=3).eval()
    model = FCAM(clf, build_decoder(clf.encoder))
    x = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats, logits, seg = model(x, with_features=True)
    assert feats[-1].dtype == torch.float32 and logits.dtype == torch.float32
    assert seg.dtype == torch.bfloat16  # the decoder keeps the caller's autocast
    torch.testing.assert_close(feats[-1], clf.forward_features(x)[0][-1], rtol=0, atol=0)


def test_an_encoder_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        @register_encoder("resnet50")
        class Other(torch.nn.Module):
            pass
    assert ENCODERS["resnet50"].__name__ == "ResNet50Encoder"


@pytest.mark.parametrize("name,size", [("resnet50", 224), ("vgg16", 224), ("inceptionv3", 224),
                                       ("tiny", 64)])
def test_every_encoder_returns_what_its_feature_info_declares(name, size):
    from fcam_nb.models.backbones import check_encoder

    shapes = check_encoder(build_encoder(name), size)
    assert shapes[-1][-1] == {"tiny": 16}.get(name, 28)


def test_check_encoder_names_a_wrong_declaration():
    import dataclasses

    from fcam_nb.models.backbones import check_encoder

    enc = build_encoder("tiny")
    enc.feature_info = dataclasses.replace(enc.feature_info, reductions=(1, 2, 2, 4))
    with pytest.raises(ValueError, match="map 2 is 16 px at input 64 .*declared reduction 2"):
        check_encoder(enc, 64)
    enc.feature_info = dataclasses.replace(enc.feature_info, reductions=(1, 2, 4, 4),
                                           out_channels=64)
    with pytest.raises(ValueError, match="map 3 has 128 channels, declared 64"):
        check_encoder(enc, 64)


def test_feature_info_refuses_an_inconsistent_description():
    from fcam_nb.models.backbones import FeatureInfo

    with pytest.raises(ValueError, match="one entry per skip plus the CAM layer"):
        FeatureInfo((8, 16), 32, (16, 8), reductions=(2, 4))
    with pytest.raises(ValueError, match="non-decreasing"):
        FeatureInfo((8, 16), 32, (16, 8), reductions=(2, 8, 4))
    with pytest.raises(ValueError, match="at least as many decoder blocks"):
        FeatureInfo((8, 16), 32, (16,), reductions=(2, 4, 4))


def test_the_contract_is_checked_when_an_encoder_is_built():
    from torch import nn

    from fcam_nb.models.backbones import FeatureInfo, WeightSource

    class Base(nn.Module):
        feature_info = FeatureInfo((4,), 8, (4,), reductions=(1, 2))
        new_layers = ("b",)
        weight_source = WeightSource()

        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 8, 1, stride=2)

        @property
        def cam_layer(self):
            return self.b

        def forward(self, x):
            return [self.a(x), self.b(self.a(x))]

    cases = {"typo_layers": ({"new_layers": ("c",)}, "new_layers names 'c'"),
             "list_layers": ({"new_layers": ["b"]}, "new_layers must be a tuple"),
             "bad_prefix": ({"weight_source": WeightSource("X", (("z.", "features."),))},
                            "prefix 'z.' matches no key"),
             "no_info": ({"feature_info": None}, "feature_info must be a FeatureInfo")}
    for name, (attrs, message) in cases.items():
        register_encoder(name)(type(name, (Base,), attrs))
        try:
            with pytest.raises(TypeError, match=message):
                build_encoder(name)
        finally:
            del ENCODERS[name]
    register_encoder("fine_test")(Base)
    try:
        with pytest.raises(ValueError, match="names no ImageNet weights"):
            build_encoder("fine_test", weights="imagenet")
    finally:
        del ENCODERS["fine_test"]


SOURCE_NETS = {"resnet50": lambda: tvm.resnet50(weights=None),
               "vgg16": lambda: tvm.vgg16(weights=None),
               "inceptionv3": lambda: tvm.inception_v3(weights=None, aux_logits=True,
                                                       init_weights=True)}


@pytest.mark.parametrize("name", sorted(SOURCE_NETS))
def test_local_weights_fill_every_source_layer_and_only_those(name, tmp_path):
    """Every parameter and buffer the source net has lands in the encoder under its mapped
    name (BN statistics included); the layers the WSOL net adds keep their initialization."""
    torch.manual_seed(0)
    ref = SOURCE_NETS[name]()
    with torch.no_grad():  # BN statistics away from their defaults, so a miss would show
        for module in ref.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    path = tmp_path / f"{name}.pth"
    torch.save(ref.state_dict(), path)  # with its classifier (and AuxLogits): ignored
    torch.manual_seed(1)
    fresh = build_encoder(name)
    torch.manual_seed(1)  # the same initialization, then the weights
    enc = build_encoder(name, weights=str(path))
    source = ref.state_dict()
    unmapped = set()
    for key, value in enc.state_dict().items():
        mapped = enc.weight_source.source_key(key)
        if mapped is None:  # a layer the WSOL net adds: left at its initialization
            unmapped.add(key.split(".")[0])
            torch.testing.assert_close(value, fresh.state_dict()[key], rtol=0, atol=0)
            continue
        torch.testing.assert_close(value, source[mapped], rtol=0, atol=0, msg=key)
    assert unmapped == {"resnet50": set(), "vgg16": {"conv6"},
                        "inceptionv3": {"cam_convs"}}[name]
    if name == "inceptionv3":
        assert enc.stage4[0].branch3x3.conv.stride == (1, 1)  # Mixed_6a's WSOL stride kept


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "inceptionv3", "tiny"])
def test_new_layers_get_the_heads_rate_with_pretrained_weights(name):
    from fcam_nb.config import Stage1Config
    from fcam_nb.train import _param_groups

    clf = build_classifier(name, 3)
    body, new = _param_groups(clf, Stage1Config(lr=0.01), pretrained=True)
    assert new["lr"] == pytest.approx(0.1) and body["lr"] == 0.01
    expected = {id(p) for layer in clf.encoder.new_layers
                for p in clf.encoder.get_submodule(layer).parameters()}
    expected |= {id(p) for p in clf.fc.parameters()}
    assert {id(p) for p in new["params"]} == expected  # the official's layer4/conv6/cam_convs
    assert clf.encoder.get_submodule(clf.encoder.new_layers[0]) is clf.cam_layer  # as before
    assert len(body["params"]) + len(new["params"]) == len(list(clf.parameters()))
    assert len(_param_groups(clf, Stage1Config(lr=0.01), pretrained=False)) == 1
