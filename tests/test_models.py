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


def test_decoder_sizes_match_paper_within_10_percent():
    table = decoder_parameter_table()
    for name, row in table.items():
        assert 0.9 <= row["ratio"] <= 1.1, (name, row)


@pytest.mark.parametrize("name, hw", [("resnet50", 28), ("vgg16", 28), ("inceptionv3", 27)])
def test_wsol_backbones_feature_maps(name, hw):
    clf = build_classifier(name, 10).eval()
    with torch.no_grad():
        feats, logits = clf.forward_features(torch.randn(1, 3, 224, 224))
    assert feats[-1].shape[1:] == (clf.encoder.out_channels, hw, hw)
    assert [f.shape[1] for f in feats[:-1]] == list(clf.encoder.skip_channels)
    assert logits.shape == (1, 10)
    model = FCAM(clf, build_decoder(name, clf.encoder))
    with torch.no_grad():
        assert model.localization_map(torch.randn(1, 3, 224, 224)).shape == (1, 224, 224)


def test_tiny_backbone_and_fcam_freeze():
    clf = build_classifier("tiny", 4)
    model = FCAM(clf, build_decoder("tiny", clf.encoder)).train()
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
