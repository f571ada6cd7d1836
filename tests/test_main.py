"""The main job (``python -m fcam_nb``) end to end with one epoch per stage."""

import json

import pytest

from fcam_nb.__main__ import main


def test_main_job_writes_results_resumes_and_keeps_one_decoder_per_method(tmp_path):
    run = tmp_path / "run"
    args = ["--out", str(run), "--data", str(tmp_path / "data"), "--stage1-epochs", "1",
            "--stage2-epochs", "1", "--no-progress"]
    first = main(args)
    for row in (first["baseline"], first["fcam"]):
        assert {"max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "cls_acc"} <= set(row)
        assert all(0 <= row[k] <= 100 for k in ("max_box_acc", "max_box_acc_v2", "pxap"))
    assert json.loads((run / "results.json").read_text())["fcam"] == first["fcam"]
    assert (run / "localization.png").stat().st_size > 0

    again = main(args)  # both stages done: loads the checkpoints, same numbers
    assert again["fcam"] == first["fcam"] and again["baseline"] == first["baseline"]

    other = main(args + ["--method", "gradcampp"])  # reuses stage 1, trains its own decoder
    assert other["method"] == "gradcampp"
    assert (run / "fcam_cam_best.pt").is_file() and (run / "fcam_gradcampp_best.pt").is_file()
    assert other["baseline"]["cls_acc"] == first["baseline"]["cls_acc"]


def test_full_profile_needs_its_image_folder():
    with pytest.raises(SystemExit, match="--data-root is required"):
        main(["--dataset", "CUB"])
