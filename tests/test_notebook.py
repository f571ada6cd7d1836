"""Notebook profiles: names, the fallback to ci, one run folder, variant tags."""

import pytest

from fcam_nb import notebook as nb


def test_profiles(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("FCAM_DATA_ROOT", raising=False)
    with pytest.raises(ValueError, match="FCAM_PROFILE must be 'ci' or 'full'"):
        nb.get_profile("gpu")
    full = nb.get_profile("full")  # no data paths here: falls back, and says so
    assert full.name == "ci" and "using the ci profile" in capsys.readouterr().out
    assert full.runs == tmp_path / "runs"
    cfg = full.config("gradcampp", use_crf=False)
    assert cfg.stage2.cam_method == "gradcampp" and not cfg.stage2.use_crf
    assert cfg.out_dir == str(tmp_path / "runs" / "run")


def test_variant_tags_are_distinct():
    tags = {nb.variant_tag(m, c, s) for m in ("cam", "layercam") for c in (True, False)
            for s in (True, False)}
    assert len(tags) == 8 and nb.variant_tag("cam") == "fcam_cam"
