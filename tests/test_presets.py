"""Ready-made configurations: the synthetic CPU profile and the paper's CUB / OpenImages ones."""

import dataclasses

import pytest

from fcam_nb.config import Variant
from fcam_nb.data import SyntheticConfig
from fcam_nb.presets import paper_run, synthetic_run

TINY = SyntheticConfig(n_train=4, n_val=2, n_test=2, seed=5)


def test_synthetic_profile_generates_its_data_and_takes_overrides(tmp_path):
    cfg = synthetic_run(tmp_path / "data", tmp_path / "run", TINY,
                        variant=Variant("layercam", crf=False)).override(stage2={"n_bg": 0.4})
    assert (tmp_path / "data" / ".complete").is_file()
    assert (cfg.backbone, cfg.device, cfg.data.input_size, cfg.data.num_classes) == (
        "tiny", "cpu", 64, 4)
    assert (cfg.stage2.cam_method, cfg.stage2.use_crf, cfg.stage2.n_bg) == ("layercam", False, 0.4)
    assert cfg.stage2.erode_ksz == 15 and cfg.stage2.crf_map_mode == "area"
    assert len(cfg.data.dataset("train", train=True)) == 4
    with pytest.raises(TypeError, match="n_neg"):
        cfg.override(stage2={"n_neg": 0.3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stage2.n_bg = 0.1  # settings change through override only


@pytest.mark.parametrize("dataset, classes, epochs, n_bg, masks",
                         [("CUB", 200, 50, 0.7, False), ("OpenImages", 100, 10, 0.1, True)])
def test_paper_profiles(tmp_path, dataset, classes, epochs, n_bg, masks):
    cfg = paper_run(dataset, tmp_path / "img", tmp_path / "meta", tmp_path / "run")
    assert (cfg.data.num_classes, cfg.stage1.epochs, cfg.stage2.epochs) == (classes, epochs, epochs)
    assert cfg.stage2.n_bg == n_bg and (cfg.data.mask_root is not None) == masks
    assert (cfg.weights, cfg.data.input_size, cfg.backbone) == ("imagenet", 224, "resnet50")


def test_paper_profile_rejects_other_datasets(tmp_path):
    with pytest.raises(ValueError, match="CUB or OpenImages"):
        paper_run("ImageNet", tmp_path, tmp_path, tmp_path)
