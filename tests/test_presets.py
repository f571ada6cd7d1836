"""Ready-made configurations: the synthetic CPU profile and the paper's CUB / OpenImages ones."""

import dataclasses

import pytest

from fcam_nb.cams import BASELINES
from fcam_nb.config import Variant
from fcam_nb.data import SyntheticConfig
from fcam_nb.presets import (
    CRF_LATTICE_RATIO,
    STAGE1_RECIPES,
    CPURefused,
    paper_run,
    resolve_run,
    stage1_recipe,
    synthetic_run,
)

TINY = SyntheticConfig(n_train=4, n_val=2, n_test=2, seed=5)


def test_synthetic_profile_generates_its_data_and_takes_overrides(tmp_path):
    cfg = synthetic_run(tmp_path / "data", tmp_path / "run", TINY,
                        variant=Variant("layercam", crf=False)).override(stage2={"n_bg": 0.4})
    assert (tmp_path / "data" / ".complete").is_file()
    assert (cfg.backbone, cfg.device, cfg.data.input_size, cfg.data.num_classes) == (
        "tiny", "auto", 64, 4)
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
    with pytest.raises(ValueError, match="unknown dataset 'ImageNet'; registered: "):
        paper_run("ImageNet", tmp_path, tmp_path, tmp_path)
    with pytest.raises(ValueError, match="CUB or OpenImages"):
        paper_run("synthetic", tmp_path, tmp_path, tmp_path)


def test_stage1_recipes_as_published(tmp_path):
    """CUB/ResNet50/CAM: the official README's lr 0.0017, step 15, gamma 0.1, 50 epochs;
    OpenImages/VGG16/CAM: wsolevaluation's lr 0.00227913316, step 3, wd 5e-4; Nesterov, head x10;
    the paper schedule selects a classifier per CAM method, the colab one shares CAM's."""
    cfg = paper_run("CUB", tmp_path / "img", tmp_path / "meta", tmp_path / "run")
    s1 = cfg.stage1
    assert (s1.lr, s1.lr_schedule, s1.step_size, s1.gamma, s1.weight_decay, s1.nesterov,
            s1.momentum, s1.new_layers_lr_mult, s1.batch_size) == (
        0.0017, "step", 15, 0.1, 1e-4, True, 0.9, 10.0, 32)
    assert s1.select_methods == BASELINES and not s1.shared
    assert (cfg.eval_step, cfg.val_eval_step) == (0.001, 0.004)  # the official's steps
    assert cfg.stage2.crf_weight == pytest.approx(2e-9 * CRF_LATTICE_RATIO)  # calibrated
    assert 0.5 < CRF_LATTICE_RATIO < 0.7
    oi = paper_run("OpenImages", tmp_path / "img", tmp_path / "meta", tmp_path / "run",
                   backbone="vgg16").stage1
    assert (oi.lr, oi.step_size, oi.weight_decay, oi.epochs) == (0.00227913316, 3, 5e-4, 10)
    colab = paper_run("CUB", tmp_path / "img", tmp_path / "meta", tmp_path / "run",
                      schedule="colab").stage1
    assert (colab.epochs, colab.step_size, colab.shared, colab.select_methods) == (
        10, 3, True, ("cam",))  # 15 of 50 epochs -> 3 of 10
    assert stage1_recipe("cub", "vgg16", "layercam").source.startswith("assumed")
    assert "README.md:59-75" in stage1_recipe("CUB", "resnet50", "cam").source
    assert all(r.source for r in STAGE1_RECIPES.values())
    with pytest.raises(KeyError, match="no stage-1 recipe"):
        stage1_recipe("ILSVRC", "vgg16")


def test_the_main_job_and_the_notebooks_resolve_one_run(tmp_path, monkeypatch):
    from fcam_nb.__main__ import build_config, parse_args
    from fcam_nb.course import notebook as nb

    monkeypatch.chdir(tmp_path)
    for var in ("FCAM_PROFILE", "FCAM_RUNS", "FCAM_DATASET", "FCAM_SCHEDULE", "FCAM_REHEARSAL"):
        monkeypatch.delenv(var, raising=False)
    main = build_config(parse_args(["--out", "runs/nb/run", "--data", "runs/nb/data/seed0",
                                    "--no-progress"]))
    profile = nb.get_profile("ci", runs="runs/nb")
    assert main.device == profile.base.device == "auto"  # the GPU where there is one
    same = profile.base.override(stage1={"select_methods": ("cam",)}, progress=False)
    assert main.to_dict() == same.to_dict()


def test_rehearsals_take_the_schedule(tmp_path):
    colab = resolve_run("CUB", tmp_path / "run", rehearsal=True, schedule="colab",
                        data=tmp_path / "data")
    paper = resolve_run("CUB", tmp_path / "run", rehearsal=True, data=tmp_path / "data")
    assert colab.stage1.shared and not paper.stage1.shared
    assert colab.device == paper.device == "cpu"


def test_the_paper_settings_without_cuda_are_refused_naming_the_callers_switches(tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(CPURefused, match="FCAM_REHEARSAL=1.*FCAM_ALLOW_CPU=1"):
        resolve_run("CUB", tmp_path / "run", data_root=tmp_path,
                    switches=("FCAM_REHEARSAL=1", "FCAM_ALLOW_CPU=1"))
    cfg = resolve_run("CUB", tmp_path / "run", data_root=tmp_path, allow_cpu=True)
    assert cfg.device == "cpu"
