"""The paper path rehearsed on the CPU: a subset of the official metadata, placeholder images
at the declared paths and sizes, the real paper configuration, both datasets end to end."""

from pathlib import Path

import pytest
import torch

from fcam_nb.__main__ import main
from fcam_nb.cams import BASELINES
from fcam_nb.config import Variant
from fcam_nb.course.rehearsal import REHEARSAL_CRF_SCALE, make_rehearsal_data, rehearsal_run
from fcam_nb.data import WSOLDataset, official_metadata, read_metadata
from fcam_nb.train import train_classifier, train_fcam


@pytest.mark.parametrize("dataset", ["CUB", "OpenImages"])
def test_rehearsal_data_is_a_verbatim_subset_rendered_at_the_declared_paths(tmp_path, dataset):
    root = make_rehearsal_data(dataset, tmp_path / "r", classes=2, per_class=(3, 2, 2))
    for split, n in (("train", 6), ("val", 4), ("test", 4)):
        official = official_metadata(dataset) / split
        for name in ("image_ids.txt", "class_labels.txt", "localization.txt"):
            ours = (root / "metadata" / split / name).read_text().splitlines()
            assert set(ours) <= set((official / name).read_text().splitlines())
        meta = read_metadata(root / "metadata" / split, 2)
        assert len(meta.image_ids) == n and set(meta.labels.values()) == {0, 1}
        for image_id in meta.image_ids:
            assert (root / "images" / image_id).is_file()
        ds = WSOLDataset(root / "images", root / "metadata" / split, resize=224, size=224,
                         num_classes=2, mask_root=root / "images" if dataset != "CUB" else None)
        item = ds[0]  # CUB: the declared size is checked; OpenImages: masks + ignore decode
        assert item["image"].shape == (3, 224, 224)
        if dataset == "CUB":
            assert "boxes" in item and "mask" not in item
        elif split != "train":
            assert "mask" in item and "boxes" not in item and (item["mask"] == 1).any()
    again = make_rehearsal_data(dataset, tmp_path / "r", classes=2, per_class=(3, 2, 2))
    assert again == root  # complete: reused


@pytest.mark.slow
@pytest.mark.parametrize("dataset, present, absent", [
    ("CUB", "max_box_acc", "pxap"), ("OpenImages", "pxap", "max_box_acc")])
def test_main_job_rehearses_the_paper_path(tmp_path, capsys, dataset, present, absent):
    out = main(["--dataset", dataset, "--rehearsal", "--out", str(tmp_path / "run"),
                "--no-progress"])
    printed = capsys.readouterr().out
    assert f"CRF at scale {REHEARSAL_CRF_SCALE}" in printed and "resnet50 at 224 px" in printed
    assert "not available:" in printed
    for row in (out["baseline"], out["fcam"]):
        assert present in row and absent not in row and 0 <= row[present] <= 100
    assert (tmp_path / "run" / "fcam_cam_best.pt").is_file()
    for method in BASELINES:  # the paper schedule: one classifier per CAM method
        assert (tmp_path / "run" / f"stage1_best_{method}.pt").is_file(), method


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["vgg16", "inceptionv3"])
def test_other_paper_backbones_take_a_step_of_each_stage(tmp_path, backbone):
    cfg = rehearsal_run("CUB", tmp_path / "data", tmp_path / "run", backbone=backbone,
                        variant=Variant("cam"), per_class=(1, 1, 1))
    cfg = cfg.override(stage1={"batch_size": 2, "select_methods": ("cam",)},
                       stage2={"batch_size": 2})  # one step each, CAM's classifier only
    clf = train_classifier(cfg)
    model = train_fcam(cfg, clf)
    with torch.no_grad():
        maps = model.localization_map(torch.zeros(1, 3, 224, 224))
    assert maps.shape == (1, 224, 224)


def test_paper_settings_on_a_cpu_are_refused_with_an_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "images").mkdir()
    with pytest.raises(SystemExit, match=r"min per stage-2 step of 32 images.*--rehearsal"):
        main(["--dataset", "CUB", "--data-root", str(tmp_path / "images"), "--out",
              str(tmp_path / "run")])


def test_main_job_defaults_to_the_shipped_metadata(tmp_path):
    with pytest.raises(SystemExit, match="--data-root is required"):
        main(["--dataset", "OpenImages", "--out", str(tmp_path / "run")])
    assert Path(official_metadata("CUB"), "val", "image_ids.txt").is_file()


def test_a_gpu_rehearsal_keeps_the_paper_crf_scale_and_mixed_precision(tmp_path):
    cpu = rehearsal_run("CUB", tmp_path / "data", tmp_path / "run", per_class=(1, 1, 1))
    gpu = rehearsal_run("CUB", tmp_path / "data", tmp_path / "run", per_class=(1, 1, 1),
                        device="cuda")
    assert (cpu.device, cpu.amp, cpu.stage2.crf_scale) == ("cpu", False, REHEARSAL_CRF_SCALE)
    assert (gpu.device, gpu.amp, gpu.stage2.crf_scale) == ("cuda", True, 1.0)


def test_a_gpu_rehearsal_without_cuda_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="CUDA is not available"):
        main(["--dataset", "CUB", "--rehearsal", "--device", "cuda", "--out",
              str(tmp_path / "run")])
