"""Checkpoint files: atomic writes, safe loads, stale temporary files and one writer per folder.

* ``save_atomic``: write to a temporary file in the same folder, fsync, then ``os.replace``; the
  file gets the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``.
* ``load``: ``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only:
  no code runs from a checkpoint); a missing, empty or truncated file raises an error naming it.
* ``remove_stale_temporaries``: the ``*.tmp`` files a killed write left behind.
* ``run_lock``: an exclusive lock on ``<folder>/.lock`` while a run writes there, so a second
  run (another notebook kernel, another terminal) stops with a clear message instead of
  interleaving its checkpoints and log records.
* ``open_no_follow`` / ``append_line`` / ``write_text_atomic``: a run folder's own files are never
  written through a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

_TMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, or belongs to another run."""


def umask() -> int:
    """The process's umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None],
                 suffix: str = _TMP_SUFFIX) -> Path:
    """Call ``write(f)`` on a new temporary file beside ``path``, fsync it, then ``os.replace``
    it onto ``path``: never a half-written file, and a symbolic link at ``path`` is replaced,
    never followed. The file gets the usual permissions (``0o666`` minus the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    return write_atomic(path, lambda f: torch.save(obj, f))


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by ``save_atomic`` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is empty, truncated or not a checkpoint of this package.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a write was interrupted?): delete it to retrain")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...: say which file and what to do
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]}); delete it to retrain") from e
    if not isinstance(state, dict) or "weights" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of fcam_nb (no 'weights' entry)")
    return state


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``<name>.pt.<random>.tmp`` files of writes that were killed; returns them.
    Call it only while holding ``run_lock(folder)`` (else another run's write could be live)."""
    stale = sorted(Path(folder).glob(f"*.pt.*{_TMP_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def open_no_follow(path: str | os.PathLike, flags: int, what: str = "run file") -> int:
    """``os.open(path, flags | O_NOFOLLOW)``: a run folder's own files (lock, log) are never
    written through a symbolic link (which could point anywhere). Raises ``CheckpointError``
    naming the link."""
    path = Path(path)
    if path.is_symlink():
        raise CheckpointError(f"{path} is a symbolic link: fcam_nb does not write its {what} "
                              f"through links; remove it (the run recreates the file)")
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as e:
        if path.is_symlink():  # created in between
            raise CheckpointError(f"{path} is a symbolic link: remove it") from None
        raise OSError(e.errno, f"cannot open {what} {path}: {e.strerror}") from None


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a run's log, never through a symbolic link."""
    fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "log")
    with os.fdopen(fd, "a") as f:
        f.write(line + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """A text file written by ``write_atomic`` (a link at ``path`` is replaced, not followed)."""
    return write_atomic(path, lambda f: f.write(text.encode()), suffix=".txt.tmp")


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.lock`` (``fcntl.flock``: released by the OS if the
    process dies). Raises ``RuntimeError`` when another process holds it. Without ``fcntl``
    (Windows) no lock is taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_no_follow(folder / ".lock", os.O_RDWR | os.O_CREAT, "lock"), "r+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            raise RuntimeError(f"{folder} is in use by {owner}: wait for that run to finish, or "
                               f"use another run folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
