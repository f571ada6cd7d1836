"""Notebook profiles: names, the fallback to ci, one run folder, variant tags."""

import pytest

from fcam_nb import notebook as nb
from fcam_nb.config import Variant


def test_profiles(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("FCAM_DATA_ROOT", raising=False)
    with pytest.raises(ValueError, match="FCAM_PROFILE must be 'ci' or 'full'"):
        nb.get_profile("gpu")
    full = nb.get_profile("full")  # no data paths here: falls back, and says why
    assert full.name == "ci" and "using the ci profile" in full.note
    assert capsys.readouterr().out == ""  # resolving prints nothing
    assert full.runs == tmp_path / "runs"
    cfg = full.config(Variant("gradcampp", crf=False))
    assert cfg.stage2.cam_method == "gradcampp" and not cfg.stage2.use_crf
    assert cfg.out_dir == str(tmp_path / "runs" / "run")
    monkeypatch.setenv("FCAM_RUNS", str(tmp_path / "elsewhere"))  # resolved once, not per call
    assert full.config().out_dir == str(tmp_path / "runs" / "run")
    started = nb.start("full")
    assert "using the ci profile" in capsys.readouterr().out and started.name == "ci"


def test_variant_tags_and_labels_are_distinct():
    variants = [Variant(m, c, a) for m in ("cam", "layercam") for c in (True, False)
                for a in (True, False)]
    assert len({v.tag for v in variants}) == 8 and Variant("cam").tag == "fcam_cam"
    assert [v.label for v in nb.ABLATION] == ["SR", "SR+CRF", "SR+CRF+ASC"]
