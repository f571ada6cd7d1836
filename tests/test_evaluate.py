"""Evaluation loop: GT-perfect maps score 100, blank maps score low, bad batches are named."""

import pytest
import torch

from fcam_nb.evaluate import (
    cam_predictor,
    center_prior_predictor,
    evaluate,
    fcam_predictor,
    part_and_body_coverage,
)
from fcam_nb.models import FCAM, build_classifier, build_decoder

SIZE = 32


def _batches(n_batches: int = 2, b: int = 3):
    """Rectangles as objects: masks in {0, 1, 255 (1-px ignore band)} and their boxes."""
    out = []
    g = torch.Generator().manual_seed(0)
    for _ in range(n_batches):
        masks = torch.zeros(b, SIZE, SIZE, dtype=torch.uint8)
        boxes = []
        for i in range(b):
            x0, y0 = (int(v) for v in torch.randint(0, 12, (2,), generator=g))
            x1, y1 = x0 + 10 + i, y0 + 12
            masks[i, y0 : y1 + 1, x0 : x1 + 1] = 1
            masks[i, y0 - 1 if y0 else y0, x0 : x1 + 1] = 255
            boxes.append(torch.tensor([[x0, y0, x1, y1]]))
        out.append({"image": torch.rand(b, 3, SIZE, SIZE, generator=g),
                    "label": torch.arange(b) % 2, "mask": masks, "boxes": boxes})
    return out


def _from_masks(batches):
    """A predictor that answers each batch with its GT masks (and confident right logits)."""
    it = iter(batches)

    def predict(inputs, labels):
        maps = (next(it)["mask"] == 1).float()
        return maps, torch.nn.functional.one_hot(labels, 5).float()

    return predict


def test_perfect_maps_score_100():
    batches = _batches()
    out = evaluate(_from_masks(batches), batches, SIZE, step=0.01)
    for k in ("max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "top5_loc", "cls_acc"):
        assert out[k] == pytest.approx(100.0), k


def test_blank_maps_cannot_localize():
    batches = _batches()

    def blank(inputs, labels):
        return torch.zeros(inputs.shape[0], SIZE, SIZE), torch.zeros(inputs.shape[0], 5)

    out = evaluate(blank, batches, SIZE, step=0.01, keep_maps=True)
    assert out["max_box_acc"] < 50 and out["pxap"] < 50
    assert out["maps"].shape == (6, SIZE, SIZE)


def test_bad_batches_are_named():
    with pytest.raises(ValueError, match="must be 16x16, got 32"):
        evaluate(_from_masks(_batches()), _batches(), 16)
    with pytest.raises(ValueError, match="no batch"):
        evaluate(_from_masks([]), [], SIZE)


def test_predictors_give_full_resolution_maps_in_unit_range():
    torch.manual_seed(0)
    clf = build_classifier("tiny", 2).eval()
    x, y = torch.randn(2, 3, SIZE, SIZE), torch.tensor([0, 1])
    for predict in (cam_predictor(clf, "cam"),
                    fcam_predictor(FCAM(clf, build_decoder(clf.encoder)).eval())):
        maps, logits = predict(x, y)
        assert maps.shape == (2, SIZE, SIZE) and logits.shape == (2, 2)
        assert 0 <= float(maps.min()) and float(maps.max()) <= 1


def test_tables_and_regions_follow_what_the_split_has(tmp_path):
    from fcam_nb.data import SyntheticConfig, WSOLDataset, generate, split_paths
    from fcam_nb.evaluate import object_regions, primary_metric, score_table

    rows = {"CAM": {"max_box_acc": 50.0, "pxap": 60.0}, "F-CAM": {"max_box_acc": 90.0}}
    table = score_table(rows)
    assert "MaxBoxAcc" in table and "PxAP" not in table and "90.0" in table
    assert primary_metric({"pxap": 1.0}) == "pxap" and primary_metric(rows["CAM"]) == "max_box_acc"
    root = generate(tmp_path, SyntheticConfig(n_train=2, n_val=2, n_test=3, seed=0))
    paths = split_paths(root, "test")
    with_masks = WSOLDataset(**paths, resize=32, size=32)
    boxes_only = WSOLDataset(paths["data_root"], paths["metadata_dir"], resize=32, size=32)
    masks, boxes = object_regions(with_masks), object_regions(boxes_only)
    assert masks.shape == boxes.shape == (3, 32, 32)
    # a box covers its mask (up to the protocol's int() rounding of box corners at 32 px)
    assert (masks & ~boxes).sum() <= 0.02 * masks.sum() and boxes.sum() > masks.sum()


def test_center_prior_is_one_centred_gaussian_and_finds_centred_objects():
    torch.manual_seed(0)
    clf = build_classifier("tiny", 2).eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    maps, logits = center_prior_predictor(clf)(x, torch.tensor([0, 1, 0]))
    assert maps.shape == (3, SIZE, SIZE) and torch.equal(maps[0], maps[2])
    assert float(maps.max()) == 1.0 and float(maps.min()) == 0.0
    torch.testing.assert_close(maps[0], maps[0].flip(0).flip(1))  # symmetric about the centre
    torch.testing.assert_close(logits, clf(x))
    c = SIZE // 2
    centred = [{"image": torch.rand(1, 3, SIZE, SIZE), "label": torch.tensor([0]),
                "boxes": [torch.tensor([[c - 6, c - 6, c + 5, c + 5]])]}]
    corner = [{"image": torch.rand(1, 3, SIZE, SIZE), "label": torch.tensor([0]),
               "boxes": [torch.tensor([[0, 0, 7, 7]])]}]
    assert evaluate(center_prior_predictor(clf), centred, SIZE, step=0.01)["max_box_acc"] == 100
    assert evaluate(center_prior_predictor(clf), corner, SIZE, step=0.01)["max_box_acc"] == 0


def test_part_and_body_coverage_of_a_map_on_the_head_only():
    objects = torch.zeros(1, 20, 20, dtype=torch.bool)
    objects[0, 5:15, 2:18] = True  # the bird
    parts = torch.zeros_like(objects)
    parts[0, 5:15, 14:18] = True  # its head: 40 of 160 pixels
    maps = parts.float() * 0.9 + 0.05  # a CAM on the head only
    out = part_and_body_coverage(maps, objects, parts)
    assert out["part_covered"] == pytest.approx(100) and out["rest_covered"] == pytest.approx(0)
    assert out["object_covered"] == pytest.approx(25) and out["region_on_object"] == pytest.approx(100)
    assert out["part"] == pytest.approx(0.95) and out["background"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="outside its object"):
        part_and_body_coverage(maps, parts, objects)


def test_cam_predictors_score_like_one_predictor_each():
    from fcam_nb.evaluate import cam_predictor, cam_predictors, evaluate_many, joint

    torch.manual_seed(0)
    clf = build_classifier("tiny", num_classes=3).eval()
    batches = _batches()
    names = ("cam", "gradcam", "layercam")
    together = evaluate_many(cam_predictors(clf, names), batches, SIZE, step=0.01)
    alone = evaluate_many(joint({n: cam_predictor(clf, n) for n in names}), batches, SIZE,
                          step=0.01)
    assert list(together) == list(names)
    assert together == alone
