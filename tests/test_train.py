"""Two-stage training on a tiny synthetic set: runs, resumes identically, DDP with gloo."""

import contextlib
import copy
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from fcam_nb import checkpoint
from fcam_nb.checkpoint import CheckpointError, load, save_atomic
from fcam_nb.config import Variant, run_fingerprint
from fcam_nb.data import SyntheticConfig
from fcam_nb.engine import read_history
from fcam_nb.metric_specs import selection_metric
from fcam_nb.presets import synthetic_run
from fcam_nb.train import build_fcam, load_classifier, load_fcam, train_classifier, train_fcam

TINY = SyntheticConfig(n_train=24, n_val=8, n_test=8, seed=1)


def _cfg(data, out, synthetic=TINY, variant=None, stage2=None, epochs=2):
    cfg = synthetic_run(data, out, synthetic, variant=variant)
    return cfg.override(stage1={"epochs": epochs, "batch_size": 8},
                        stage2={"epochs": epochs, "batch_size": 8, **(stage2 or {})},
                        eval_step=0.05, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


class _Killed(BaseException):
    pass


@contextlib.contextmanager
def _interrupted_after_epochs(n: int):
    """The run dies (like kill -9 between two writes) right after its n-th ``*_last.pt``."""
    real, count = checkpoint.save_atomic, [0]

    def save(obj, path):
        out = real(obj, path)
        if str(path).endswith("_last.pt"):
            count[0] += 1
            if count[0] == n:
                raise _Killed
        return out

    checkpoint.save_atomic = save
    try:
        with pytest.raises(_Killed):
            yield
    finally:
        checkpoint.save_atomic = real


def _params(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_two_stages_run_and_log(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run")
    clf = train_classifier(cfg)
    model = train_fcam(cfg, clf)
    hist = read_history(cfg.out_dir)
    # the untrained model is a candidate (epoch -1), as the official main_wsol.py:46-49
    assert [(h["stage"], h["epoch"]) for h in hist] == [(1, -1), (1, 0), (1, 1), (2, -1), (2, 0),
                                                        (2, 1)]
    assert [h.get("initial", False) for h in hist] == [True, False, False] * 2
    assert [h["tag"] for h in hist] == ["stage1"] * 3 + ["fcam_cam"] * 3
    assert {"loss_pce", "loss_crf", "loss_asc", "loss_total", "val_max_box_acc",
            "val_pxap"} <= set(hist[-1])
    assert (tmp_path / "run" / "fcam_cam_best.pt").is_file()
    extra = load(tmp_path / "run" / "fcam_cam_last.pt")["extra_state"]
    assert extra["terms.asc._extra_state"]["t"] == pytest.approx(1.01**2)  # the barrier's t
    assert not model.training


def test_resume_gives_identical_results(data, tmp_path):
    constant = {"lr_schedule": "constant"}  # stage 2 extended by an epoch = resumed (no decay)
    full = _cfg(data, tmp_path / "full", stage2=constant)
    clf = train_classifier(full)
    train_fcam(full, clf)
    ref_clf = _params(clf)
    ref_dec = load(tmp_path / "full" / "fcam_cam_last.pt")["weights"]

    part = _cfg(data, tmp_path / "part", stage2=constant)
    with _interrupted_after_epochs(1):  # killed after epoch 1's checkpoints
        train_classifier(part)
    clf2 = train_classifier(part)  # resumes at epoch 2
    for k, v in ref_clf.items():
        torch.testing.assert_close(clf2.state_dict()[k], v, rtol=0, atol=0)
    train_fcam(part.override(stage2={"epochs": 1}), clf2)  # constant lr: extending = resuming
    train_fcam(part, clf2)
    dec = load(tmp_path / "part" / "fcam_cam_last.pt")["weights"]
    for k, v in ref_dec.items():
        torch.testing.assert_close(dec[k], v, rtol=0, atol=0)


def test_fingerprint_tracks_settings_and_data_not_paths(data, tmp_path):
    cfg = _cfg(data, tmp_path / "a")
    moved = _cfg(data, tmp_path / "b").override(stage1={"epochs": 5}, stage2={"epochs": 7},
                                                progress=True)  # elsewhere, longer, with bars
    assert run_fingerprint(moved, 1) == run_fingerprint(cfg, 1)
    assert run_fingerprint(moved, 2) == run_fingerprint(cfg, 2)
    other_seeds = _cfg(data, tmp_path / "a", stage2={"n_bg": 0.5})
    assert run_fingerprint(other_seeds, 1) == run_fingerprint(cfg, 1)  # stage 2 only
    assert run_fingerprint(other_seeds, 2) != run_fingerprint(cfg, 2)
    other_data = _cfg(tmp_path / "data2", tmp_path / "a",
                      SyntheticConfig(n_train=24, n_val=8, n_test=8, seed=1, object_scale=0.9))
    assert run_fingerprint(other_data, 1) != run_fingerprint(cfg, 1)


def test_checkpoint_of_other_settings_or_data_is_refused(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run")
    clf = train_classifier(cfg)
    train_fcam(cfg, clf)
    with pytest.raises(ValueError, match="fcam_cam_last.pt was trained with other settings"):
        train_fcam(_cfg(data, tmp_path / "run", stage2={"n_bg": 0.5}), clf)
    other_data = _cfg(tmp_path / "data2", tmp_path / "run",
                      SyntheticConfig(n_train=24, n_val=8, n_test=8, seed=1, object_scale=0.9))
    with pytest.raises(ValueError, match="stage1_last.pt was trained with other settings"):
        train_classifier(other_data)
    with pytest.raises(ValueError, match="stage1_best_cam.pt was trained with other settings"):
        load_classifier(other_data)


def test_decoder_of_another_classifier_is_refused(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run", epochs=1)
    clf = train_classifier(cfg)
    train_fcam(cfg, clf)
    other = copy.deepcopy(clf)
    with torch.no_grad():
        other.fc.bias.add_(1e-3)  # any change of stage 1's weights
    with pytest.raises(CheckpointError, match="another stage-1 classifier.*fcam_cam_\\*.pt"):
        train_fcam(cfg, other)
    with pytest.raises(CheckpointError, match="another stage-1 classifier"):
        load_fcam(cfg, other)
    load_fcam(cfg, clf)  # the classifier it was trained on still loads it


def test_changing_a_cosine_run_s_epochs_is_refused(data, tmp_path):
    """Stage 1 decays its lr over the run (cosine): 2 epochs then 4 is not a fresh 4-epoch run
    (the case where a stale decoder used to be reused silently)."""
    cfg = _cfg(data, tmp_path / "run", epochs=2, stage2={"lr_schedule": "constant"})
    train_classifier(cfg)
    for epochs in (4, 1):
        with pytest.raises(CheckpointError, match=f"2-epoch run; this run asks for {epochs}"):
            train_classifier(cfg.override(stage1={"epochs": epochs}))
    train_fcam(cfg)  # stage 2: constant lr, 2 epochs (extending it is resuming: tested above)
    with pytest.raises(CheckpointError, match="best epoch may lie beyond"):  # but no cut
        train_fcam(cfg.override(stage2={"epochs": 1}))


def test_checkpoint_without_fingerprint_is_refused(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run", epochs=1)
    train_classifier(cfg)
    state = load(tmp_path / "run" / "stage1_best_cam.pt")
    del state["fingerprint"]
    save_atomic(state, tmp_path / "run" / "stage1_best_cam.pt")
    with pytest.raises(CheckpointError, match="stage1_best_cam.pt has no fingerprint"):
        load_classifier(cfg)


def test_a_resumed_epoch_is_one_history_record(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run", epochs=2)
    real = checkpoint.save_atomic

    def die_before_last(obj, path):  # killed after epoch 2's log line, before its checkpoint
        if str(path).endswith("stage1_last.pt") and obj["epoch"] == 1:
            raise _Killed
        return real(obj, path)

    checkpoint.save_atomic = die_before_last
    try:
        with pytest.raises(_Killed):
            train_classifier(cfg)
    finally:
        checkpoint.save_atomic = real
    train_classifier(cfg)  # redoes epoch 2 and logs it again
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [-1, 0, 1, 1]
    assert [r["epoch"] for r in read_history(cfg.out_dir)] == [-1, 0, 1]


def test_variants_train_under_their_own_tag(data, tmp_path):
    cfg = _cfg(data, tmp_path / "v", variant=Variant("cam", crf=False, asc=False), epochs=1)
    clf = train_classifier(cfg)
    model = train_fcam(cfg, clf)
    assert (tmp_path / "v" / "fcam_cam_nocrf_noasc_best.pt").is_file()
    assert not (tmp_path / "v" / "fcam_cam_best.pt").exists()
    assert set(read_history(cfg.out_dir)[-1]) >= {"loss_pce", "loss_total"}
    assert "loss_crf" not in read_history(cfg.out_dir)[-1]
    again = load_fcam(cfg, clf)
    for k, v in model.decoder.state_dict().items():
        torch.testing.assert_close(again.decoder.state_dict()[k], v, rtol=0, atol=0)


def test_build_fcam_leaves_the_global_rng_alone(data, tmp_path):
    cfg = _cfg(data, tmp_path / "rng")
    clf = build_fcam(cfg, train_classifier(cfg.override(stage1={"epochs": 1}))).classifier
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = build_fcam(cfg, clf)
    got = torch.rand(3)
    b = build_fcam(cfg, clf)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for k, v in a.decoder.state_dict().items():  # and the decoder init still comes from the seed
        torch.testing.assert_close(b.decoder.state_dict()[k], v, rtol=0, atol=0)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / "ck.pt"
    save_atomic({"weights": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        save_atomic({"weights": Boom()}, path)
    assert load(path) == {"weights": 1}  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load(tmp_path / "nope.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, result: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = _cfg(data, out, epochs=1)
    clf = train_classifier(cfg)
    model = train_fcam(cfg, clf)
    torch.save({"clf": clf.state_dict(), "dec": model.decoder.state_dict()},
               f"{result}.{rank}")
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_gloo(data, tmp_path):
    _cfg(data, tmp_path / "warm")  # generate the dataset once, before the workers start
    port = _free_port()
    mp.spawn(_ddp_worker, args=(2, port, str(data), str(tmp_path / "ddp"), str(tmp_path / "r")),
             nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "r.0"), torch.load(tmp_path / "r.1")
    for key in ("clf", "dec"):
        for k in r0[key]:
            torch.testing.assert_close(r0[key][k], r1[key][k])  # ranks stay in sync
    assert (tmp_path / "ddp" / "fcam_cam_last.pt").is_file()
    lines = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    # only rank 0 logs: per stage the untrained candidate and the one epoch
    assert [(json.loads(line)["stage"], json.loads(line)["epoch"]) for line in lines] == [
        (1, -1), (1, 0), (2, -1), (2, 0)]


def test_each_cam_method_keeps_its_own_classifier(data, tmp_path):
    """One stage-1 run, selected per method on validation (ties: the earlier epoch); a shared
    run gives every method the classifier of select_methods[0]."""
    cfg = _cfg(data, tmp_path / "run", epochs=3).override(
        stage1={"select_methods": ("cam", "gradcampp")})
    train_classifier(cfg)
    history = [r for r in read_history(cfg.out_dir) if r["stage"] == 1]
    assert cfg.stage1.select_by == "pxap"
    for method in ("cam", "gradcampp"):
        keys = [r["val_by"][method]["pxap"] for r in history]
        state = load(tmp_path / "run" / f"stage1_best_{method}.pt")
        # the first epoch reaching the best (the untrained model, epoch -1, is a candidate)
        assert state["epoch"] == history[keys.index(max(keys))]["epoch"]
        assert state["metrics"]["pxap"] == max(keys)
    assert history[0]["val_max_box_acc"] == history[0]["val_by"]["cam"]["max_box_acc"]
    per_method = load_classifier(cfg.with_variant(Variant("gradcampp")))
    expected = load(tmp_path / "run" / "stage1_best_gradcampp.pt")["weights"]
    for k, v in per_method.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0)
    shared = cfg.override(stage1={"shared": True}).with_variant(Variant("gradcampp"))
    assert run_fingerprint(shared, 1) == run_fingerprint(cfg, 1)  # same stage-1 run
    cam_weights = load(tmp_path / "run" / "stage1_best_cam.pt")["weights"]
    for k, v in load_classifier(shared).state_dict().items():
        torch.testing.assert_close(v, cam_weights[k], rtol=0, atol=0)
    with pytest.raises(ValueError, match="no classifier was selected by 'layercam'"):
        load_classifier(cfg, method="layercam")


def test_the_untrained_model_competes_and_stage2_uses_nesterov(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run", epochs=1)
    clf = train_classifier(cfg)
    train_fcam(cfg, clf)
    for tag in ("stage1", "fcam_cam"):
        hist = [h for h in read_history(cfg.out_dir) if h["tag"] == tag]
        by = cfg.stage1.select_by if tag == "stage1" else cfg.stage2.select_by
        val = {k.removeprefix("val_"): v for k, v in hist[0].items() if k.startswith("val_")}
        key = f"val_{selection_metric(val, by)}"  # what the stage selects by (both PxAP here)
        scores = [h[key] for h in hist]
        kept = hist[scores.index(max(scores))]["epoch"]  # ties keep the earlier (-1 first)
        name = "stage1_best_cam.pt" if tag == "stage1" else "fcam_cam_best.pt"
        assert load(tmp_path / "run" / name)["epoch"] == kept
    state = load(tmp_path / "run" / "fcam_cam_last.pt")
    assert state["optimizer"]["param_groups"][0]["nesterov"] is True  # official config.py:144


def test_changed_images_and_unfit_checkpoints_are_refused_naming_the_file(data, tmp_path):
    import shutil

    from fcam_nb.engine import load_weights

    cfg = _cfg(data, tmp_path / "run", epochs=1)
    clf = train_classifier(cfg)
    # the images are part of the fingerprint: one image edited (same size) -> another run
    before = run_fingerprint(cfg, 1)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    moved = _cfg(copy, tmp_path / "run", epochs=1)
    assert run_fingerprint(moved, 1) == before  # the same files elsewhere: the same run
    image = sorted((copy / "images" / "train").rglob("*.png"))[0]
    raw = bytearray(image.read_bytes())
    raw[-20] ^= 0xFF  # same size, other content
    image.write_bytes(bytes(raw))
    assert run_fingerprint(moved, 1) != before
    with pytest.raises(CheckpointError, match="trained with other settings or data"):
        train_classifier(moved)
    # weights that do not fit: the file is named
    state = load(tmp_path / "run" / "stage1_best_cam.pt")
    state["weights"]["fc.weight"] = torch.zeros(9, 3)
    save_atomic(state, tmp_path / "run" / "stage1_best_cam.pt")
    with pytest.raises(CheckpointError, match=r"stage1_best_cam.pt: its weights do not fit"):
        load_classifier(cfg)
    with pytest.raises(CheckpointError, match="not_weights: its weights do not fit"):
        load_weights(clf, "not a state dict", tmp_path / "not_weights")
    # a best checkpoint deleted from a finished stage: what to delete is said
    (tmp_path / "run" / "stage1_best_cam.pt").unlink()
    with pytest.raises(CheckpointError, match=r"stage1_best_cam.pt is missing, but .*stage1_last"
                                              r".pt says this stage finished.*delete stage1_\*"):
        load_classifier(cfg)
