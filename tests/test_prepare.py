"""Dataset preparation on small archives built here in the real on-disk formats."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fcam_nb.course.rehearsal import make_rehearsal_data
from fcam_nb.data import WSOLDataset, prepare, read_metadata

ROOT = Path(__file__).resolve().parents[1]


def _fake_cub(tmp: Path) -> Path:
    """CUB_200_2011.tgz with 2 classes x 3 images and CUB's own text files."""
    cub = tmp / "src" / "CUB_200_2011"
    lines = {"images": [], "labels": [], "split": [], "boxes": []}
    k = 0
    for c, cls in enumerate(["001.Black_footed_Albatross", "002.Laysan_Albatross"], 1):
        for j in range(3):
            k += 1
            rel = f"{cls}/{cls[4:]}_{j:04d}.jpg"
            (cub / "images" / cls).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(cub / "images" / rel), np.full((30 + j, 40, 3), 90 * c, np.uint8))
            lines["images"].append(f"{k} {rel}")
            lines["labels"].append(f"{k} {c}")
            lines["split"].append(f"{k} {1 if j < 2 else 0}")
            lines["boxes"].append(f"{k} 3.0 4.0 20.0 10.5")
    for name, key in (("images.txt", "images"), ("image_class_labels.txt", "labels"),
                      ("train_test_split.txt", "split"), ("bounding_boxes.txt", "boxes")):
        (cub / name).write_text("\n".join(lines[key]) + "\n")
    archive = tmp / "CUB_200_2011.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(cub, arcname="CUB_200_2011")
    return archive


def test_cub_metadata_from_archive(tmp_path):
    archive = _fake_cub(tmp_path)
    prepare.extract(archive, tmp_path / "raw")
    cub = tmp_path / "raw" / "CUB_200_2011"
    assert prepare.cub_metadata(cub, tmp_path / "meta") == {"train": 4, "test": 2}
    meta = read_metadata(tmp_path / "meta" / "test", num_classes=2)
    first = meta.image_ids[0]
    assert first == "001.Black_footed_Albatross/Black_footed_Albatross_0002.jpg"
    assert meta.labels[first] == 0 and meta.sizes[first] == (40, 32)
    assert meta.boxes[first] == [(3.0, 4.0, 23.0, 14.5)]  # x, y, x + w, y + h
    assert prepare.holdout_val(tmp_path / "meta", per_class=1) == {"train": 2, "val": 2}
    assert prepare.validate_split(cub / "images", tmp_path / "meta" / "val", 2) == 2
    ds = WSOLDataset(cub / "images", tmp_path / "meta" / "val", resize=32, size=32,
                     num_classes=200)
    assert ds[0]["boxes"].shape == (1, 4)


def test_prepare_cub_script_end_to_end(tmp_path):
    archive = _fake_cub(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "data_scripts" / "prepare_cub.py"), "--root",
         str(tmp_path / "CUB"), "--archive", str(archive), "--holdout-per-class", "1",
         "--no-md5"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "val: 2 images OK" in proc.stdout and "test: 2 images OK" in proc.stdout


def test_prepare_cub_official_splits_from_the_two_archives_runs_twice(tmp_path):
    """CUB images from CUB_200_2011.tgz, validation images from CUBV2.tar, the official
    metadata (here a subset, with placeholder images at its declared paths)."""
    src = make_rehearsal_data("CUB", tmp_path / "src", classes=2, per_class=(2, 1, 1))
    cub_tgz, cubv2 = tmp_path / "CUB_200_2011.tgz", tmp_path / "CUBV2.tar"
    with tarfile.open(cub_tgz, "w:gz") as t:
        for split in ("train", "test"):
            for image_id in read_metadata(src / "metadata" / split).image_ids:
                t.add(src / "images" / image_id, arcname=f"CUB_200_2011/images/{image_id}")
    with tarfile.open(cubv2, "w") as t:
        for image_id in read_metadata(src / "metadata" / "val").image_ids:
            t.add(src / "images" / image_id, arcname=image_id)
    kw = {"metadata_source": src / "metadata", "archive_md5": None}
    first = prepare.prepare_cub(tmp_path / "CUB", cub_tgz, cubv2, **kw)
    assert first == {"train": 4, "val": 2, "test": 2}
    assert prepare.prepare_cub(tmp_path / "CUB", cub_tgz, cubv2, **kw) == first  # idempotent
    assert not any(p.is_symlink() for p in (tmp_path / "CUB").rglob("*"))
    ds = WSOLDataset(tmp_path / "CUB" / "images", tmp_path / "CUB" / "metadata" / "val",
                     num_classes=2)
    assert ds[0]["boxes"].shape[1] == 4  # declared sizes match the extracted images
    with pytest.raises(ValueError, match="checksum mismatch"):
        prepare.prepare_cub(tmp_path / "other", cub_tgz, cubv2, metadata_source=src / "metadata")


def test_openimages_layout_validates(tmp_path):
    src = tmp_path / "oi"
    for split in ("train", "test"):
        (src / split / "01").mkdir(parents=True)
        cv2.imwrite(str(src / split / "01" / "a.jpg"), np.zeros((10, 12, 3), np.uint8))
        cv2.imwrite(str(src / split / "01" / "a_m.png"), np.full((10, 12), 255, np.uint8))
        cv2.imwrite(str(src / split / "01" / "a_i.png"), np.zeros((10, 12), np.uint8))
    zpath = tmp_path / "oi.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in src.rglob("*"):
            z.write(p, p.relative_to(src))
    root = prepare.extract(zpath, tmp_path / "OpenImages")
    meta = root / "metadata" / "test"
    meta.mkdir(parents=True)
    (meta / "image_ids.txt").write_text("test/01/a.jpg\n")
    (meta / "class_labels.txt").write_text("test/01/a.jpg,0\n")
    (meta / "image_sizes.txt").write_text("test/01/a.jpg,12,10\n")
    (meta / "localization.txt").write_text(
        "test/01/a.jpg,test/01/a_m.png,test/01/a_i.png\ntest/01/a.jpg,test/01/a_m.png,\n")
    assert prepare.validate_split(root, meta, 100) == 1
    (root / "test" / "01" / "a_i.png").unlink()
    with pytest.raises(FileNotFoundError, match="a_i.png"):
        prepare.validate_split(root, meta, 100)


def test_checksum_and_unsafe_archives(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    prepare.check_md5(f, "900150983cd24fb0d6963f7d28e17f72")
    with pytest.raises(ValueError, match="checksum mismatch"):
        prepare.check_md5(f, "0" * 32)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(ValueError, match="escapes"):
        prepare.extract(evil, tmp_path / "out")
    with pytest.raises(ValueError, match="not a tar or zip"):
        prepare.extract(f, tmp_path / "out")


def test_download_from_file_url_with_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    dest = prepare.download(src.as_uri(), tmp_path / "d" / "x.bin",
                            md5="900150983cd24fb0d6963f7d28e17f72")
    assert dest.read_bytes() == b"abc"
    with pytest.raises(ValueError, match="checksum"):
        prepare.download(src.as_uri(), tmp_path / "d" / "y.bin", md5="0" * 32)
    assert not (tmp_path / "d" / "y.bin").exists()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.bin"]  # no .part left
    prepare.check_md5(dest, "900150983CD24FB0D6963F7D28E17F72")  # checksums in any case


def test_download_checks_the_byte_count_and_redownloads_on_request(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abcdef")
    dest = tmp_path / "d" / "x.bin"
    real = prepare.shutil.copyfileobj
    monkeypatch.setattr(prepare.shutil, "copyfileobj", lambda r, f: f.write(r.read(3)))
    with pytest.raises(OSError, match="x.bin stopped at 3 of 6 bytes"):  # a cut connection
        prepare.download(src.as_uri(), dest)
    assert not dest.exists() and not dest.with_name("x.bin.part").exists()
    monkeypatch.setattr(prepare.shutil, "copyfileobj", real)
    prepare.download(src.as_uri(), dest)
    src.write_bytes(b"newer")
    assert prepare.download(src.as_uri(), dest).read_bytes() == b"abcdef"  # kept: no md5 known
    assert prepare.download(src.as_uri(), dest, force=True).read_bytes() == b"newer"


def test_a_truncated_archive_is_named(tmp_path):
    src = tmp_path / "payload"
    src.mkdir()
    (src / "a.bin").write_bytes(bytes(range(256)) * 400)
    tgz = tmp_path / "CUB_200_2011.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src / "a.bin", arcname="a.bin")
    tgz.write_bytes(tgz.read_bytes()[:-200])
    with pytest.raises(ValueError, match="CUB_200_2011.tgz is truncated or corrupt"):
        prepare.extract(tgz, tmp_path / "out")


def test_cub_missing_files(tmp_path):
    from fcam_nb.data import MetadataError

    with pytest.raises(MetadataError, match="missing CUB file"):
        prepare.cub_metadata(tmp_path, tmp_path / "m")


def test_prepare_openimages_from_its_two_archives_runs_twice(tmp_path):
    """Images and masks from two zips (the wsolevaluation layout), the official metadata (here a
    subset with placeholder files at its declared paths): every split checks, twice."""
    src = make_rehearsal_data("OpenImages", tmp_path / "src", classes=2, per_class=(2, 1, 1))
    images_zip, masks_zip = tmp_path / "OpenImages_images.zip", tmp_path / "OpenImages_annotations.zip"
    with zipfile.ZipFile(images_zip, "w") as zi, zipfile.ZipFile(masks_zip, "w") as zm:
        for path in (src / "images").rglob("*.*"):
            (zi if path.suffix == ".jpg" else zm).write(path, path.relative_to(src / "images"))
    kw = {"metadata_source": src / "metadata"}
    first = prepare.prepare_openimages(tmp_path / "OI", images_zip, masks_zip, **kw)
    assert first == {"train": 4, "val": 2, "test": 2}
    assert prepare.prepare_openimages(tmp_path / "OI", images_zip, masks_zip, **kw) == first
    ds = WSOLDataset(tmp_path / "OI", tmp_path / "OI" / "metadata" / "test", num_classes=2)
    assert "mask" in ds[0] and "boxes" not in ds[0]  # masks only, no image sizes needed


# --- issue 23: nothing written outside the target -------------------------------------------


def _tar_with(path, members):
    """A tar of (TarInfo, bytes or None) members, as a hostile archive would hold them."""
    import io

    with tarfile.open(path, "w") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name, kind=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


@pytest.mark.parametrize("kind, linkname, match", [
    (tarfile.SYMTYPE, "../../outside.txt", "is a symbolic link"),
    (tarfile.LNKTYPE, "victim.txt", "is a hard link"),
    (tarfile.FIFOTYPE, "", "is a special file"),
])
def test_tar_links_and_special_members_are_refused(tmp_path, kind, linkname, match):
    """The CVE-2025-4517 pattern needs a symlink then a hard link through it: every link member
    is refused on any Python, before anything escapes."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    tar = _tar_with(tmp_path / "evil.tar", [(_info("sub", tarfile.DIRTYPE), None),
                                            (_info("sub/link", kind, linkname=linkname), None),
                                            (_info("sub/link/x.txt", size=4), b"evil")])
    with pytest.raises(prepare.ArchiveError, match=match):
        prepare.extract(tar, tmp_path / "out")
    assert outside.read_text() == "keep"
    assert not (tmp_path / "out" / "sub" / "link").exists()


def test_members_through_an_existing_link_or_with_dotdot_are_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "images").symlink_to(outside)  # a folder of the target that points away
    tar = _tar_with(tmp_path / "a.tar", [(_info("images/x.jpg", size=3), b"abc")])
    with pytest.raises(prepare.ArchiveError, match="not a real folder"):
        prepare.extract(tar, dest)
    assert not (outside / "x.jpg").exists()
    tar = _tar_with(tmp_path / "b.tar", [(_info("ok/../../../escape.txt", size=1), b"x")])
    with pytest.raises(prepare.ArchiveError, match="escapes"):
        prepare.extract(tar, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists()


def test_zip_links_are_named_and_bombs_stopped(tmp_path):
    import stat as st

    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as z:
        info = zipfile.ZipInfo("a/evil")
        info.external_attr = (st.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(prepare.ArchiveError, match="symbolic link or special file"):
        prepare.extract(link, tmp_path / "out")  # not "truncated or corrupt"
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(80 << 20))  # 80 MB of zeros, ~80 KB compressed
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(prepare.ArchiveError, match="expands to more than"):
        prepare.extract(bomb, tmp_path / "out3")
    prepare.extract(bomb, tmp_path / "out4", max_bytes=100 << 20)  # allowed when asked for
    assert (tmp_path / "out4" / "zeros.bin").stat().st_size == 80 << 20


def test_dot_members_extract_and_a_corrupt_stream_is_named(tmp_path):
    """``tar -C dir -cf x.tar .`` starts with a "./" member; a damaged gzip stream is named."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.txt").write_text("hello")
    tgz = tmp_path / "dot.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname=".")
    out = prepare.extract(tgz, tmp_path / "out")
    assert (out / "a" / "x.txt").read_text() == "hello"
    raw = bytearray(tgz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw[len(raw) // 2 + 1] ^= 0xFF
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(prepare.ArchiveError, match=r"bad.tgz.*truncated or corrupt"):
        prepare.extract(bad, tmp_path / "out2")
