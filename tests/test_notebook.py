"""Notebook profiles: names, the fallback to ci, one run folder, variant tags."""

import pytest
import torch

from fcam_nb.config import Variant
from fcam_nb.course import notebook as nb


def test_profiles(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
    for var in ("FCAM_DATA_ROOT", "FCAM_REHEARSAL", "FCAM_ALLOW_CPU", "FCAM_METADATA_ROOT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="FCAM_PROFILE must be 'ci' or 'full'"):
        nb.get_profile("gpu")
    with pytest.raises(ValueError, match="FCAM_DATA_ROOT"):
        nb.get_profile("full")
    ci = nb.get_profile("ci")
    assert capsys.readouterr().out == ""  # resolving prints nothing
    assert ci.runs == tmp_path / "runs" and ci.has_boxes and ci.has_masks
    cfg = ci.config(Variant("gradcampp", crf=False))
    assert cfg.stage2.cam_method == "gradcampp" and not cfg.stage2.use_crf
    assert cfg.out_dir == str(tmp_path / "runs" / "run")
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "elsewhere"))  # resolved once, not per call
    assert ci.config().out_dir == str(tmp_path / "runs" / "run")
    # an exercise's own dataset settings, in its own folder
    small = nb.SyntheticConfig(n_train=4, n_val=2, n_test=2, object_scale=1.0)
    other = nb.get_profile("ci", runs=str(tmp_path / "big"), synthetic=small)
    assert '"object_scale": 1.0' in (tmp_path / "big" / "data" / "seed0" / "config.json").read_text()
    assert other.config().out_dir == str(tmp_path / "big" / "run")


def test_full_profile_without_cuda_stops_with_the_cost(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("FCAM_DATA_ROOT", str(tmp_path / "images"))
    monkeypatch.delenv("FCAM_REHEARSAL", raising=False)
    monkeypatch.delenv("FCAM_ALLOW_CPU", raising=False)
    with pytest.raises(RuntimeError, match=r"min per stage-2 step.*FCAM_REHEARSAL=1"):
        nb.get_profile("full")
    monkeypatch.setenv("FCAM_ALLOW_CPU", "1")
    profile = nb.get_profile("full")
    assert profile.base.device == "cpu" and profile.dataset == "CUB" and not profile.has_masks


def test_rehearsal_profile_uses_the_paper_configuration_on_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("FCAM_REHEARSAL", "1")
    monkeypatch.setenv("FCAM_DATASET", "openimages")
    profile = nb.get_profile("full")
    cfg = profile.base
    assert profile.rehearsal and profile.dataset == "OpenImages" and not profile.has_boxes
    assert (cfg.backbone, cfg.data.input_size, cfg.device) == ("resnet50", 224, "cpu")
    assert len(nb.split(profile, "test")) > 0


def test_variant_tags_and_labels_are_distinct():
    variants = [Variant(m, c, a) for m in ("cam", "layercam") for c in (True, False)
                for a in (True, False)]
    assert len({v.tag for v in variants}) == 8 and Variant("cam").tag == "fcam_cam"
    assert [v.label for v in nb.ABLATION] == ["SR", "SR+CRF", "SR+CRF+ASC"]


def test_every_setting_is_checked_before_any_download(monkeypatch, tmp_path):
    from fcam_nb.data import prepare

    monkeypatch.setattr(prepare, "prepare_cub", lambda *a, **k: pytest.fail("download started"))
    monkeypatch.setenv("FCAM_SCHEDULE", "fast")
    with pytest.raises(ValueError, match=r"FCAM_SCHEDULE must be one of \['colab', 'paper'\]"):
        nb.prepare_data("full", "CUB", str(tmp_path / "CUB" / "images"))
    monkeypatch.delenv("FCAM_SCHEDULE")
    monkeypatch.setenv("FCAM_REHEARSAL", "maybe")
    with pytest.raises(ValueError, match="FCAM_REHEARSAL='maybe' is not a boolean"):
        nb.prepare_data("full", "CUB", str(tmp_path / "CUB" / "images"))
    for word in ("yes", "TRUE", "on", "1"):  # the usual spellings are a rehearsal, no download
        monkeypatch.setenv("FCAM_REHEARSAL", word)
        assert nb.prepare_data("full", "CUB", "data/CUB/images") == "data/CUB/images"
        assert nb.env_flag("FCAM_REHEARSAL")
    monkeypatch.setenv("FCAM_REHEARSAL", "no")
    assert not nb.env_flag("FCAM_REHEARSAL")
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("FCAM_RUNS", str(afile))
    with pytest.raises(ValueError, match="FCAM_RUNS .*afile is a file"):
        nb.get_profile("ci")


def test_the_full_profile_takes_a_registered_dataset(monkeypatch, tmp_path):
    """A dataset registered by the user (no official metadata) runs in the notebooks with its
    own FCAM_METADATA_ROOT; the settings check names what is missing otherwise."""
    from fcam_nb.data.specs import DATASETS, DatasetSpec, register_dataset
    from fcam_nb.presets import STAGE1_RECIPES

    register_dataset(DatasetSpec("Birds12", has_boxes=True, has_masks=False, num_classes=12,
                                 n_bg=0.5, schedules={"colab": (2, 1, 1.0)}))
    monkeypatch.setitem(STAGE1_RECIPES, ("birds12", "*", "*"), STAGE1_RECIPES[("cub", "*", "*")])
    try:
        for key in ("FCAM_REHEARSAL", "FCAM_METADATA_ROOT", "FCAM_SCHEDULE"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
        monkeypatch.setenv("FCAM_ALLOW_CPU", "1")
        with pytest.raises(ValueError, match="Birds12 has no official metadata.*FCAM_METADATA"):
            nb.check_settings("full", "birds12")
        with pytest.raises(ValueError, match="'synthetic' is the ci profile's"):
            nb.check_settings("full", "synthetic")
        with pytest.raises(ValueError, match="registered dataset other than synthetic.*Birds12"):
            nb.check_settings("full", "Birds13")
        monkeypatch.setenv("FCAM_REHEARSAL", "1")
        with pytest.raises(ValueError, match="rehearses the datasets with official metadata"):
            nb.check_settings("full", "Birds12")
        monkeypatch.delenv("FCAM_REHEARSAL")
        (tmp_path / "meta").mkdir()
        monkeypatch.setenv("FCAM_METADATA_ROOT", str(tmp_path / "meta"))
        assert nb.prepare_data("full", "birds12", str(tmp_path / "images")) == \
            str(tmp_path / "images")  # prepared by the user: left alone
        profile = nb.get_profile("full", dataset="birds12", data_root=str(tmp_path / "images"))
        assert profile.dataset == "Birds12" and profile.base.data.num_classes == 12
        assert profile.base.data.metadata_root == str(tmp_path / "meta")
        assert profile.has_boxes and not profile.has_masks
    finally:
        DATASETS.pop("Birds12", None)
