"""Checkpoint files: safe loading, clear errors, stale temporaries, one writer per folder."""

import multiprocessing
import os
import stat

import pytest
import torch

from fcam_nb.checkpoint import (
    CheckpointError,
    load,
    remove_stale_temporaries,
    run_lock,
    save_atomic,
)


def test_truncated_or_empty_checkpoints_name_the_file(tmp_path):
    path = save_atomic({"weights": {"w": torch.ones(1000)}}, tmp_path / "stage1_last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="stage1_last.pt cannot be read.*delete it"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="stage1_last.pt is empty"):
        load(path)


def test_loading_runs_no_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "evil.pt"
    torch.save({"weights": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt cannot be read"):
        load(path)


def test_foreign_checkpoints_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of fcam_nb"):
        load(tmp_path / "other.pt")


def test_checkpoints_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_atomic({"weights": 1}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_stale_temporaries_are_removed(tmp_path):
    save_atomic({"weights": 1}, tmp_path / "a.pt")
    stale = tmp_path / "a.pt.k3j2x9.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / "notes.tmp"
    other.write_text("not ours")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and other.exists() and (tmp_path / "a.pt").exists()


def _hold_lock(folder, ready, release):
    with run_lock(folder):
        ready.set()
        release.wait(30)


def test_a_second_run_in_the_same_folder_is_stopped(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    other.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RuntimeError, match=f"in use by pid {other.pid}"), run_lock(tmp_path):
            pass
    finally:
        release.set()
        other.join(30)
    with run_lock(tmp_path):  # free again once the other run ended
        pass


def test_run_files_are_never_written_through_links(tmp_path):
    from fcam_nb.checkpoint import append_line

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(CheckpointError, match=r"\.lock is a symbolic link"):
        with run_lock(run):
            pass
    (run / "log.jsonl").symlink_to(victim)
    with pytest.raises(CheckpointError, match=r"log.jsonl is a symbolic link"):
        append_line(run / "log.jsonl", "{}")
    assert victim.read_text() == "precious"  # not truncated, nothing appended
