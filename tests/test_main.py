"""The main job (``python -m fcam_nb``) end to end with one epoch per stage."""

import functools
import json
import re

import pytest
import torch

import fcam_nb.__main__ as job
from fcam_nb.__main__ import main
from fcam_nb.data import SyntheticConfig


@pytest.fixture
def small_synthetic_set(monkeypatch):
    """The job's plumbing on a small generated set (64 / 16 / 16 images; the default is 800 /
    100 / 200): these tests check files, resuming and refusals, not the numbers."""
    monkeypatch.setattr(job, "SyntheticConfig",
                        functools.partial(SyntheticConfig, n_train=64, n_val=16, n_test=16))


@pytest.mark.usefixtures("small_synthetic_set")
def test_main_job_writes_results_resumes_and_keeps_one_decoder_per_method(tmp_path):
    run = tmp_path / "run"
    args = ["--out", str(run), "--data", str(tmp_path / "data"), "--stage1-epochs", "1",
            "--stage2-epochs", "1", "--no-progress"]
    first = main(args)
    for row in (first["center_prior"], first["baseline"], first["fcam"]):
        assert {"max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "cls_acc"} <= set(row)
        assert all(0 <= row[k] <= 100 for k in ("max_box_acc", "max_box_acc_v2", "pxap"))
    assert json.loads((run / "results.json").read_text())["fcam"] == first["fcam"]
    assert (run / "localization.png").stat().st_size > 0

    assert first["threads"] == 2  # pinned (--threads): the numbers depend on it
    again = main(args)  # both stages done: loads the checkpoints, same numbers
    assert again["fcam"] == first["fcam"] and again["baseline"] == first["baseline"]
    fresh = main([a if a != str(run) else str(tmp_path / "run2") for a in args])
    assert fresh["fcam"] == first["fcam"] and fresh["baseline"] == first["baseline"]  # retrained

    with pytest.raises(SystemExit, match="1-epoch run; this run asks for 2 epochs"):
        main(args[:5] + ["2"] + args[6:])  # stage 1 extended: its cosine schedule changes

    # stage 1 was validated by CAM alone (the job scores only its --method): another method
    # needs its own folder, and the refusal names the file
    with pytest.raises(SystemExit, match=r"stage1_last\.pt was trained with other settings"):
        main(args + ["--method", "gradcampp"])
    run3 = str(tmp_path / "run3")
    other = main([a if a != str(run) else run3 for a in args] + ["--method", "gradcampp"])
    assert other["method"] == "gradcampp"
    assert (tmp_path / "run3" / "fcam_gradcampp_best.pt").is_file()
    assert (tmp_path / "run3" / "stage1_best_gradcampp.pt").is_file()
    assert not (tmp_path / "run3" / "stage1_best_cam.pt").exists()  # only what the job uses
    trained = [torch.load(tmp_path / r / "stage1_last.pt")["weights"] for r in ("run", "run3")]
    for k, v in trained[0].items():  # the same stage-1 training, selected by another method
        torch.testing.assert_close(trained[1][k], v, rtol=0, atol=0)


def test_full_profile_needs_its_image_folder():
    with pytest.raises(SystemExit, match="--data-root is required"):
        main(["--dataset", "CUB"])


def _fails(argv, match, capsys=None):
    with pytest.raises(SystemExit) as e:
        main(argv)
    text = str(e.value.code) if not isinstance(e.value.code, int) else capsys.readouterr().err
    assert re.search(match, text), text


@pytest.mark.parametrize("extra, match", [
    (["--method", "nope"], r"--method: invalid choice: 'nope' \(choose from '?cam'?, '?gradcam"),
    (["--stage1-epochs", "0"], "must be a positive integer, got 0"),
    (["--backbone", "vgg16"], "--backbone applies to CUB/OpenImages"),
    (["--threads", "-1"], "must be a positive integer"),
])
def test_bad_arguments_stop_at_once(tmp_path, capsys, extra, match):
    _fails(["--out", str(tmp_path / "run"), "--data", str(tmp_path / "data")] + extra, match, capsys)
    assert not (tmp_path / "data").exists()  # nothing generated


def test_bad_folders_stop_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    _fails(["--out", str(a_file)], "--out .*notes.txt is a file", capsys)
    _fails(["--data", str(a_file), "--out", str(tmp_path / "r")], "--data .*is a file", capsys)
    _fails(["--out", str(a_file / "run"), "--data", str(tmp_path / "data")],
           r"output folder .*notes.txt/run cannot be written")
    _fails(["--dataset", "CUB", "--data-root", str(tmp_path / "nope"), "--allow-cpu",
            "--out", str(tmp_path / "cub")], "data folder not found: .*nope")
    assert not any((tmp_path / "cub").glob("*.pt"))


def test_help_lists_choices_and_defaults_in_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{cam,gradcam,gradcampp,smoothgradcampp,xgradcam,layercam,scorecam}" in text
    assert "(default: runs/main)" in text and "stage-1 epochs (default: 16 synthetic" in text
    assert "``" not in text and "default: None" not in text


def test_each_seed_has_its_own_data_folder_and_unwritable_data_is_named(tmp_path, monkeypatch):
    from fcam_nb.__main__ import build_config, parse_args

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(job, "SyntheticConfig",
                        functools.partial(SyntheticConfig, n_train=8, n_val=4, n_test=4))
    cfg = build_config(parse_args(["--seed", "1", "--out", "r1"]))
    assert cfg.data.data_root == str(tmp_path / "data" / "synthetic" / "seed1" / "images") or \
        cfg.data.data_root == "data/synthetic/seed1/images"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit, match="cannot write the synthetic set to afile/sub"):
        main(["--data", "afile/sub", "--out", "r2", "--no-progress"])
