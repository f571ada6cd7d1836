"""Prepare CUB-200-2011 and OpenImages30k in the wsolevaluation format (needs the internet once).

* ``download(url, dest, md5=None)``: atomic download (``.part`` then rename) with checksum.
* ``extract(archive, dest)``: tar/tgz/zip, only files and folders, each path checked here (no
  link, no escape from ``dest``), a cap on what an archive may expand to.
* ``cub_metadata(cub_root, out)``: train/test metadata from CUB's own files (images.txt,
  image_class_labels.txt, train_test_split.txt, bounding_boxes.txt): ids
  ``<class folder>/<file>``, 0-based labels, boxes ``x, y, x + w, y + h`` as in wsolevaluation.
* ``validate_split``: parse the metadata and check every referenced file exists.
* ``prepare_cub(root)`` / ``prepare_openimages(root, ...)``: the whole preparation, idempotent
  (a finished step is skipped), used by ``data_scripts/`` and the notebooks' data cell.

The protocol's splits ship with the package (``fcam_nb.data.official_metadata``). CUB: train on
the 5994 CUB train images, validate on CUBV2 (wsolevaluation's 1000 separate images, 5 per
class; its archive has no published checksum, so its content is checked against the val
metadata instead), test on the 5794 CUB test images. ``holdout_per_class`` keeps the older
option of validating on train images held out per class (not the protocol).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import stat
import tarfile
import urllib.request
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath

from fcam_nb.data.official import SPLIT_SIZES, official_metadata
from fcam_nb.data.wsol import METADATA_FILES, MetadataError, image_size, read_metadata

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
CUB_MD5 = "97eceeb196236b17998738112f37df78"
# CUBV2 (wsolevaluation's CUB validation images), the mirrors its dataset scripts use
CUBV2_URLS = (
    "https://onedrive.live.com/download?cid=B7111B95B80CCC66&resid=B7111B95B80CCC66%2130812"
    "&authkey=AFMzb4akufUiWU0",
    "https://onedrive.live.com/download?cid=CDFA15086FCF162E&resid=CDFA15086FCF162E%21106"
    "&authkey=AKqHxnapY3zqUDo",
)


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str | None = None,
             force: bool = False) -> Path:
    """Download ``url`` to ``dest`` (through ``dest.part``, renamed only once complete).

    An existing ``dest`` is kept when its md5 matches (or, with no known md5, as it is: only a
    finished download is ever renamed into place); ``force`` downloads it again. The byte count
    is checked against the server's Content-Length, and a failed download leaves no ``.part``.
    """
    dest = Path(dest)
    if dest.is_file() and not force:
        if md5 is None or _same_md5(file_md5(dest), md5):
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f)
            expected = response.headers.get("Content-Length")
        if expected is not None and part.stat().st_size != int(expected):
            raise OSError(f"download of {dest.name} stopped at {part.stat().st_size} of "
                          f"{expected} bytes")
        check_md5(part, md5)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _same_md5(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def check_md5(path: str | os.PathLike, md5: str | None) -> None:
    """Raise ``ValueError`` naming ``path`` unless its md5 is ``md5`` (any case); None: skip."""
    if md5 is not None and not _same_md5(got := file_md5(path), md5):
        raise ValueError(f"checksum mismatch for {path}: md5 {got}, expected {md5.lower()} "
                         f"(a truncated or different file: delete it and download again)")


# What an archive may expand to by default: 100 times its own size (images barely compress:
# CUB's 1.1 GB archive unpacks to ~1.2 GB; a zip bomb expands ~1000x), and at least 64 MiB
EXPANSION_RATIO, MIN_EXPANSION_CAP = 100, 64 << 20


class ArchiveError(ValueError):
    """An archive is corrupt, holds a member this package refuses, or expands too much."""


def _member_target(root: Path, name: str, archive: Path) -> Path:
    """Where member ``name`` goes: a relative path without ``..`` that stays in ``root`` through
    folders that are real directories (an existing symlink on the way is refused)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if PurePosixPath(name.replace("\\", "/")).is_absolute() or ".." in parts or \
            (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r} escapes the target folder (absolute "
                           f"path or '..'): refused")
    target = root.joinpath(*[p for p in parts if p not in ("", ".")])
    here = root
    for part in target.relative_to(root).parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise ArchiveError(f"{archive}: member {name!r} goes through {here}, which is not a "
                               f"real folder (a symbolic link or a file): refused")
    if target.is_symlink():
        raise ArchiveError(f"{archive}: member {name!r} would replace the symbolic link "
                           f"{target}: refused")
    return target


def _write_member(source, target: Path, budget: list[int], archive: Path, cap: int) -> None:
    """Stream one regular member to ``target`` (never through a symlink), counting the bytes
    actually written against the archive's cap (headers can lie)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o666)
    with os.fdopen(fd, "wb") as out:
        while block := source.read(1 << 20):
            budget[0] += len(block)
            if budget[0] > cap:
                raise ArchiveError(f"{archive} expands to more than {cap} bytes (a zip or tar "
                                   f"bomb?): extraction stopped; pass max_bytes to allow more")
            out.write(block)


def extract(archive: str | os.PathLike, dest: str | os.PathLike,
            max_bytes: int | None = None) -> Path:
    """Unpack a .tar/.tgz/.tar.gz/.zip archive into ``dest``, on any Python version.

    Only regular files and folders are extracted: a symbolic or hard link, device or FIFO
    member is refused (``ArchiveError`` naming it), as is a path that is absolute, holds
    ``..`` or goes through an existing symbolic link; each path is resolved and checked here,
    not by ``tarfile``'s filters (which miss CVE-2025-4517 before Python 3.11.13 / 3.12.11 /
    3.13.4). Files are written without following links, and extraction stops once more than
    ``max_bytes`` have been written (default: ``EXPANSION_RATIO`` x the archive's size, at least
    ``MIN_EXPANSION_CAP``). A truncated or corrupt archive raises ``ArchiveError`` naming it.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    if max_bytes is None:
        max_bytes = max(MIN_EXPANSION_CAP, EXPANSION_RATIO * archive.stat().st_size)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    budget = [0]
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    target = _member_target(root, info.filename, archive)
                    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix file type
                    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                        raise ArchiveError(f"{archive}: member {info.filename!r} is a symbolic "
                                           f"link or special file: only files and folders are "
                                           f"extracted")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    with z.open(info) as source:
                        _write_member(source, target, budget, archive, max_bytes)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t:
                    target = _member_target(root, member.name, archive)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif member.isreg():
                        with t.extractfile(member) as source:
                            _write_member(source, target, budget, archive, max_bytes)
                    else:
                        kind = ("symbolic link" if member.issym() else "hard link"
                                if member.islnk() else "special file")
                        raise ArchiveError(f"{archive}: member {member.name!r} is a {kind}: only "
                                           f"files and folders are extracted")
        else:
            raise ArchiveError(f"{archive}: not a tar or zip archive (truncated or corrupt?)")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile,
            lzma.LZMAError) as e:
        raise ArchiveError(f"{archive} is truncated or corrupt ({type(e).__name__}: {e}); "
                           f"delete it and download it again") from None
    return dest


def _table(path: Path, ncols: int) -> dict[str, list[str]]:
    if not path.is_file():
        raise MetadataError(f"missing CUB file: {path}")
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != ncols:
            raise MetadataError(f"{path}:{lineno}: expected {ncols} fields, got {line!r}")
        out[parts[0]] = parts[1:]
    return out


def _write(folder: Path, rows: list[tuple[str, int, tuple[int, int], list[float]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image_ids.txt").write_text("".join(f"{r[0]}\n" for r in rows))
    (folder / "class_labels.txt").write_text("".join(f"{r[0]},{r[1]}\n" for r in rows))
    (folder / "image_sizes.txt").write_text("".join(f"{r[0]},{r[2][0]},{r[2][1]}\n" for r in rows))
    (folder / "localization.txt").write_text(
        "".join(f"{r[0]},{','.join(f'{v:g}' for v in r[3])}\n" for r in rows)
    )


def cub_metadata(cub_root: str | os.PathLike, out: str | os.PathLike,
                 images: str | os.PathLike | None = None) -> dict[str, int]:
    """Write ``out/train`` and ``out/test`` metadata from an unpacked CUB_200_2011 folder
    (``images``: where its image folders are now, default ``cub_root/images``)."""
    cub = Path(cub_root)
    image_root = Path(images) if images is not None else cub / "images"
    images = _table(cub / "images.txt", 2)
    labels = _table(cub / "image_class_labels.txt", 2)
    split = _table(cub / "train_test_split.txt", 2)
    boxes = _table(cub / "bounding_boxes.txt", 5)
    rows: dict[str, list] = {"train": [], "test": []}
    for key, (rel,) in images.items():
        size = image_size(image_root / rel)  # the header's size: no EXIF rotation, as PIL reads
        x, y, w, h = (float(v) for v in boxes[key])
        row = (rel, int(labels[key][0]) - 1, size, [x, y, x + w, y + h])
        rows["train" if split[key][0] == "1" else "test"].append(row)
    for name, split_rows in rows.items():
        _write(Path(out) / name, split_rows)
    return {k: len(v) for k, v in rows.items()}


def holdout_val(metadata_root: str | os.PathLike, per_class: int = 5) -> dict[str, int]:
    """Move the first ``per_class`` train images of each class into a ``val`` split."""
    root = Path(metadata_root)
    meta = read_metadata(root / "train")
    taken: dict[int, int] = defaultdict(int)
    train, val = [], []
    for image_id in meta.image_ids:
        label = meta.labels[image_id]
        row = (image_id, label, meta.sizes[image_id], list(meta.boxes[image_id][0]))
        if taken[label] < per_class:
            taken[label] += 1
            val.append(row)
        else:
            train.append(row)
    _write(root / "train", train)
    _write(root / "val", val)
    return {"train": len(train), "val": len(val)}


def validate_split(data_root: str | os.PathLike, metadata_dir: str | os.PathLike,
                   num_classes: int, mask_root: str | os.PathLike | None = None) -> int:
    """Parse a split and check that every image (and mask) file exists. Returns its size."""
    meta = read_metadata(metadata_dir, num_classes)
    data_root = Path(data_root)
    masks = Path(mask_root) if mask_root is not None else data_root
    missing = [i for i in meta.image_ids if not (data_root / i).is_file()]
    for image_id, paths in meta.mask_paths.items():
        extra = paths + ([meta.ignore_paths[image_id]] if meta.ignore_paths[image_id] else [])
        missing += [p for p in extra if not (masks / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{metadata_dir}: {len(missing)} files missing, e.g. {missing[0]}")
    return len(meta.image_ids)


def download_any(urls: tuple[str, ...], dest: str | os.PathLike, md5: str | None = None,
                 force: bool = False) -> Path:
    """``download`` from the first mirror that answers; the error names every failed mirror."""
    errors = []
    for url in urls:
        try:
            return download(url, dest, md5, force=force)
        except OSError as e:
            errors.append(f"{url[:60]}...: {e}")
    raise OSError(f"could not download {Path(dest).name}: " + "; ".join(errors))


def copy_metadata(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy the four metadata files of each split folder of ``source`` into ``dest``."""
    source, dest = Path(source), Path(dest)
    for split in ("train", "val", "test"):
        (dest / split).mkdir(parents=True, exist_ok=True)
        for name in METADATA_FILES:
            shutil.copyfile(source / split / name, dest / split / name)
    return dest


def _mark(folder: Path, name: str) -> Path:
    return folder / f".{name}.done"


def prepare_cub(root: str | os.PathLike, archive: str | os.PathLike | None = None,
                cubv2_archive: str | os.PathLike | None = None,
                holdout_per_class: int | None = None,
                metadata_source: str | os.PathLike | None = None,
                archive_md5: str | None = CUB_MD5, redownload: bool = False) -> dict[str, int]:
    """CUB in the wsolevaluation layout: ``root/images/<class>/<file>.jpg``, ``root/metadata``.

    Args:
        root: target folder; finished steps (marked) are skipped, so it can run again.
        archive: a local CUB_200_2011.tgz (else downloaded); its md5 is always checked.
        cubv2_archive: a local CUBV2.tar (else downloaded from ``CUBV2_URLS``).
        holdout_per_class: validate on this many train images per class instead of CUBV2
            (metadata built from CUB's own files; not the protocol).
        metadata_source: the official metadata folder (default: the one shipped in the package).
        archive_md5: expected md5 of the CUB archive (None: not checked; for test archives).
        redownload: download the archives again even when a file is there (CUBV2 has no
            published checksum: use this when its archive is suspect).
    Returns:
        Images per split, after checking that every file of every split exists.
    """
    root = Path(root)
    images, metadata = root / "images", root / "metadata"
    raw = root / "raw"
    if not _mark(root, "cub").is_file():
        archive = archive or download(CUB_URL, root / "CUB_200_2011.tgz", archive_md5,
                                      force=redownload)
        check_md5(archive, archive_md5)
        extract(archive, raw)
        images.mkdir(parents=True, exist_ok=True)
        for folder in sorted((raw / "CUB_200_2011" / "images").iterdir()):
            if (images / folder.name).exists():  # a run interrupted while moving
                shutil.rmtree(images / folder.name)
            shutil.move(str(folder), images / folder.name)  # class folders, no symlink left behind
        _mark(root, "cub").write_text("ok\n")
    if holdout_per_class:
        cub_metadata(raw / "CUB_200_2011", metadata, images=images)
        holdout_val(metadata, holdout_per_class)
    else:
        if not _mark(root, "cubv2").is_file():
            cubv2_archive = cubv2_archive or download_any(CUBV2_URLS, root / "CUBV2.tar",
                                                          force=redownload)
            extract(cubv2_archive, images)  # the archive holds <class>/<file>.jpg
            _mark(root, "cubv2").write_text("ok\n")
        copy_metadata(metadata_source or official_metadata("CUB"), metadata)
    return {split: validate_split(images, metadata / split, 200) for split in ("train", "val", "test")}


def prepare_openimages(root: str | os.PathLike, images_archive: str | os.PathLike,
                       masks_archive: str | os.PathLike,
                       metadata_source: str | os.PathLike | None = None) -> dict[str, int]:
    """OpenImages30k in the wsolevaluation layout under ``root`` (images and masks side by side,
    ``root/metadata`` copied from the shipped official splits). The two archives are the ones
    linked from the wsolevaluation README (download them by hand). Idempotent."""
    root = Path(root)
    for name, archive in (("oi_images", images_archive), ("oi_masks", masks_archive)):
        if not _mark(root, name).is_file():
            extract(archive, root)
            _mark(root, name).write_text("ok\n")
    copy_metadata(metadata_source or official_metadata("OpenImages"), root / "metadata")
    counts = {split: validate_split(root, root / "metadata" / split, 100, mask_root=root)
              for split in ("train", "val", "test")}
    expected = SPLIT_SIZES["OpenImages"]
    if metadata_source is None and counts != expected:
        raise ValueError(f"OpenImages splits have {counts} images, expected {expected}")
    return counts
