"""Run settings: every impossible setting is reported before any work, all at once."""

import pytest

from fcam_nb.config import ConfigError, DataConfig, RunConfig


def _cfg(tmp_path, **fields):
    (tmp_path / "images").mkdir(exist_ok=True)
    for split in ("train", "val"):
        (tmp_path / "meta" / split).mkdir(parents=True, exist_ok=True)
    data = DataConfig(str(tmp_path / "images"), str(tmp_path / "meta"), 2)
    return RunConfig(data, str(tmp_path / "out"), **fields)


def test_a_sound_run_passes(tmp_path):
    assert _cfg(tmp_path).check() is not None
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").iterdir())  # probe gone


def test_every_problem_is_listed(tmp_path):
    cfg = _cfg(tmp_path, backbone="resnet5").override(
        stage1={"epochs": 0, "lr_schedule": "poly", "select_by": "pxap"},
        stage2={"cam_method": "gradcam+", "n_bg": 1.5, "crf_scale": 0.0, "select_by": "v2"},
        data={"resize": 100, "input_size": 224})
    with pytest.raises(ConfigError) as e:
        cfg.check(splits=("train", "val", "test"))
    text = str(e.value)
    for expected in ("backbone 'resnet5' unknown", "stage1.epochs must be a positive integer",
                     "cam_method 'gradcam+' unknown", "n_bg (n-) must lie in (0, 1)",
                     "crf_scale must lie in (0, 1]", "data.resize (100) must be >=",
                     "metadata split folder not found: " + str(tmp_path / "meta" / "test"),
                     "stage1.lr_schedule must be one of", "stage2.select_by must be one of",
                     "stage1.select_by 'pxap' needs masks"):
        assert expected in text, expected


def test_missing_data_and_unwritable_output(tmp_path):
    (tmp_path / "taken").write_text("a file")
    cfg = _cfg(tmp_path).override(data={"data_root": str(tmp_path / "nope")},
                                  out_dir=str(tmp_path / "taken"))
    with pytest.raises(ConfigError, match=r"(?s)data folder not found.*taken is a file"):
        cfg.check()
    with pytest.raises(ConfigError, match="cannot be written"):
        _cfg(tmp_path).override(out_dir=str(tmp_path / "taken" / "run")).check()


def test_weights_take_the_forms_the_encoders_take(tmp_path):
    state = tmp_path / "tiny.pt"
    state.write_bytes(b"a local state dict")
    for weights in (None, "imagenet", "ImageNet", str(state)):
        _cfg(tmp_path, weights=weights).check()
    with pytest.raises(ConfigError, match="'nope.pt' is no file"):
        _cfg(tmp_path, weights="nope.pt").check()


def test_a_method_needs_its_classifier(tmp_path):
    cfg = _cfg(tmp_path).override(stage2={"cam_method": "layercam"})
    with pytest.raises(ConfigError, match="'layercam' has no classifier of its own"):
        cfg.check()
    cfg.override(stage1={"shared": True}).check()  # CAM's classifier, shared
    cfg.override(stage1={"select_methods": ("cam", "layercam")}).check()
    with pytest.raises(ConfigError, match="select_methods must name CAM methods"):
        cfg.override(stage1={"select_methods": ("cam", "lyercam")}).check()
