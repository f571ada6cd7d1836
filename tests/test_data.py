"""Synthetic generator and wsol-format loader: determinism, geometry, round trip, error paths."""

import dataclasses
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fcam_nb.data import (
    NUM_CLASSES,
    SPLIT_SIZES,
    MetadataError,
    SyntheticConfig,
    WSOLDataset,
    collate,
    generate,
    official_metadata,
    random_crop_flip,
    read_metadata,
    split_paths,
)
from fcam_nb.data.transforms import denormalize_255, normalize
from fcam_nb.data.wsol import ImageFileError, image_size, load_gt_mask, load_image

SMALL = SyntheticConfig(n_train=8, n_val=4, n_test=4, seed=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), SMALL)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_generator_is_deterministic(synth, tmp_path):
    other = generate(tmp_path / "again", SMALL)
    assert _digest(synth) == _digest(other)
    changed = generate(tmp_path / "seed4", SyntheticConfig(n_train=8, n_val=4, n_test=4, seed=4))
    assert _digest(changed) != _digest(synth)


def test_generation_is_skipped_when_complete(synth):
    stamp = (synth / ".complete").stat().st_mtime_ns
    generate(synth, SMALL)
    assert (synth / ".complete").stat().st_mtime_ns == stamp


def test_boxes_enclose_masks_and_classes_balanced(synth):
    meta = read_metadata(synth / "metadata" / "train", num_classes=4)
    masks = read_metadata(synth / "metadata_masks" / "train", num_classes=4)
    assert sorted(meta.labels.values()) == [0, 0, 1, 1, 2, 2, 3, 3]
    import cv2

    for image_id in meta.image_ids:
        mask = cv2.imread(str(synth / "masks" / masks.mask_paths[image_id][0]), 0) > 0
        ys, xs = np.nonzero(mask)
        (x0, y0, x1, y1), = meta.boxes[image_id]
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
        w, h = meta.sizes[image_id]
        assert mask.shape == (h, w) and 64 <= w <= 128 and 64 <= h <= 128
        assert 0.03 < mask.mean() < 0.3  # an object well inside a visible background


def test_object_scale_sets_the_bird_size():
    from fcam_nb.data.synthetic import render_object

    def area(scale: float) -> float:
        _, mask, _ = render_object(np.random.default_rng(0), 1, 96, 96, object_scale=scale)
        return float((mask > 0).mean())

    # same random draws, every length scaled: area ~ scale^2 (up to rasterization)
    assert area(0.5) / area(1.0) == pytest.approx(0.25, rel=0.1)
    with pytest.raises(ValueError, match="object_scale"):
        SyntheticConfig(object_scale=1.5)


def test_the_mark_gives_the_class_and_the_texture_is_redundant_unless_needed():
    from fcam_nb.data.synthetic import render_object

    def draw(label: int, needed: bool):
        image, mask, part = render_object(np.random.default_rng(0), label, 96, 96,
                                          texture_needed=needed)
        import cv2

        near_head = cv2.dilate(part, np.ones((9, 9), np.uint8)) > 0  # a mark's stroke may spill
        return image.astype(int), (mask > 0) & ~near_head, part > 0

    (a, body, head), (b, _, _), (c, _, _) = draw(0, False), draw(1, False), draw(2, False)
    assert (a[head] != b[head]).any() and (a[body] != b[body]).any()  # own mark, own texture
    (a, body, head), (c, _, _) = draw(0, True), draw(2, True)
    assert (a[body] == c[body]).all() and (a[head] != c[head]).any()  # a (mark, texture) pair
    with pytest.raises(ValueError, match="texture_needed=False"):
        SyntheticConfig(num_classes=9)
    assert SyntheticConfig(num_classes=9, texture_needed=True,
                           texture_amplitude=16.0).num_classes == 9
    with pytest.raises(ValueError, match="texture_amplitude > 0"):
        SyntheticConfig(texture_needed=True)  # the default body is plain: no texture to need
    with pytest.raises(ValueError, match="texture_amplitude > 0"):
        SyntheticConfig(texture_groups=2)


def test_round_trip_through_loader(synth):
    ds = WSOLDataset(**split_paths(synth, "test"), resize=64, size=64, num_classes=4)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() <= item["image"].max() <= 1
    assert item["boxes"].shape == (1, 4) and item["mask"].shape == (64, 64)
    x0, y0, x1, y1 = item["boxes"][0].tolist()
    fg = item["mask"] == 1
    ys, xs = torch.nonzero(fg, as_tuple=True)
    # the resized box and the nearest-resized mask agree to a pixel or two
    assert abs(xs.min().item() - x0) <= 2 and abs(ys.max().item() - y1) <= 2
    assert set(item["mask"].unique().tolist()) <= {0, 1, 255}
    batch = collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 64, 64) and len(batch["boxes"]) == 3
    assert batch["mask"].shape == (3, 64, 64)


def test_gt_mask_ignore_excludes_foreground(tmp_path):
    import cv2

    fg = np.zeros((10, 10), np.uint8)
    fg[2:6, 2:6] = 255
    ign = np.zeros((10, 10), np.uint8)
    ign[4:9, 4:9] = 255
    cv2.imwrite(str(tmp_path / "m.png"), fg)
    cv2.imwrite(str(tmp_path / "i.png"), ign)
    mask = load_gt_mask(tmp_path, ["m.png"], "i.png", 10)
    assert mask[3, 3] == 1 and mask[5, 5] == 1 and mask[7, 7] == 255 and mask[0, 0] == 0


# -------------------------------------------------------------------------------- error paths


def _write_split(root: Path, lines: dict[str, list[str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    defaults = {
        "image_ids.txt": ["a.png", "b.png"],
        "class_labels.txt": ["a.png,0", "b.png,1"],
        "image_sizes.txt": ["a.png,10,8", "b.png,12,9"],
        "localization.txt": ["a.png,1,1,5,5", "b.png,0,0,3,3"],
    }
    defaults.update(lines)
    for name, content in defaults.items():
        if content is not None:
            (root / name).write_text("\n".join(content) + "\n")
    return root


def test_valid_split_parses(tmp_path):
    meta = read_metadata(_write_split(tmp_path / "s", {}), num_classes=2)
    assert meta.boxes["a.png"] == [(1.0, 1.0, 5.0, 5.0)] and meta.sizes["b.png"] == (12, 9)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"class_labels.txt": ["a.png,0", "b.png"]}, r"class_labels.txt:2: expected 2"),
        ({"class_labels.txt": ["a.png,0", "b.png,x"]}, r"class_labels.txt:2: 'x' is not a valid int"),
        ({"class_labels.txt": ["a.png,0", "b.png,7"]}, r"label 7 out of range"),
        ({"class_labels.txt": ["a.png,0", "c.png,1"]}, r"'c.png' is not in image_ids"),
        ({"class_labels.txt": ["a.png,0"]}, r"no entry for 'b.png'"),
        ({"image_sizes.txt": ["a.png,10,8", "b.png,0,9"]}, r"image_sizes.txt:2: image size"),
        ({"image_sizes.txt": ["a.png,10,8"]}, r"image_sizes.txt: no entry for 'b.png'"),
        ({"image_sizes.txt": ["a.png,10", "b.png,12,9"]}, r"image_sizes.txt:1: expected 3"),
        ({"localization.txt": ["a.png,1,1,5", "b.png,0,0,3,3"]}, r"localization.txt:1: expected"),
        ({"localization.txt": ["a.png,1,1,5,x", "b.png,0,0,3,3"]}, r"localization.txt:1: 'x'"),
        ({"localization.txt": ["a.png,5,1,1,5", "b.png,0,0,3,3"]}, r"x0 <= x1"),
        ({"localization.txt": ["a.png,1,1,5,5"]}, r"no localization for 'b.png'"),
        ({"localization.txt": ["a.png,m.png,i.png", "b.png,0,0,3,3"]}, r"mixes box lines"),
        ({"localization.txt": ["a.png,m.png,i.png", "a.png,m2.png,i.png", "b.png,m.png,"]},
         r"localization.txt:2: ignore mask allowed"),
        ({"localization.txt": ["a.png,,i.png", "b.png,m.png,"]}, r"localization.txt:1: empty mask"),
        ({"image_ids.txt": ["a.png", "a.png"]}, r"image_ids.txt:2: 'a.png' already listed at line 1"),
        ({"class_labels.txt": ["a.png,0", "b.png,1", "a.png,1"]}, r"class_labels.txt:3: 'a.png' has two"),
        ({"image_sizes.txt": ["a.png,10,8", "b.png,12,9", "a.png,9,8"]}, r"image_sizes.txt:3: .*two sizes"),
        ({"localization.txt": ["a.png,1,1,nan,5", "b.png,0,0,3,3"]}, r":1: 'nan' is not a finite"),
        ({"localization.txt": ["a.png,1,1,inf,5", "b.png,0,0,3,3"]}, r"localization.txt:1: 'inf'"),
        ({"localization.txt": ["a.png,1,1,11,5", "b.png,0,0,3,3"]}, r":1: .*outside its 10x8"),
        ({"localization.txt": ["a.png,-1,1,5,5", "b.png,0,0,3,3"]}, r"localization.txt:1: .*outside"),
        ({"image_ids.txt": ["a.png", "../b.png"]}, r"image_ids.txt:2: '../b.png' leaves the data"),
        ({"image_ids.txt": ["a.png", "/etc/b.png"]}, r"image_ids.txt:2: .*leaves the data"),
        ({"localization.txt": ["a.png,../m.png,", "b.png,m.png,"]}, r"localization.txt:1: '../m.png'"),
        ({"class_labels.txt": ["a.png,0", "b.png ,1"]}, r"labels.txt:2: field 'b.png ' has leading"),
        ({"image_ids.txt": ["a.png", "b.png "]}, r"image_ids.txt:2: .*trailing spaces"),
        ({"image_sizes.txt": None}, r"missing metadata file: .*image_sizes.txt"),
    ],
)
def test_metadata_errors_name_file_and_line(tmp_path, override, message):
    with pytest.raises(MetadataError, match=message):
        read_metadata(_write_split(tmp_path / "s", override), num_classes=2)


def test_encoding_problems_are_named(tmp_path):
    root = _write_split(tmp_path / "s", {})
    labels = root / "class_labels.txt"
    labels.write_bytes("\ufeffa.png,0\nb.png,1\n".encode())
    with pytest.raises(MetadataError, match="class_labels.txt:1: .*byte-order mark"):
        read_metadata(root, 2)
    labels.write_bytes(b"a.png,0\nb\xe9.png,1\n")  # Latin-1, not UTF-8
    with pytest.raises(MetadataError, match="class_labels.txt:2: not valid UTF-8"):
        read_metadata(root, 2)
    labels.write_bytes(b"a.png,0\r\nb.png,1\r\n")  # Windows line ends are fine
    assert read_metadata(root, 2).labels == {"a.png": 0, "b.png": 1}


def test_empty_sizes_and_empty_localization_are_the_openimages_protocol(tmp_path):
    """OpenImages ships empty image_sizes.txt in every split and an empty train localization."""
    train = read_metadata(_write_split(tmp_path / "t", {"image_sizes.txt": [],
                                                        "localization.txt": []}), 2)
    assert train.sizes == {} and not train.has_boxes and not train.has_masks
    masks = read_metadata(_write_split(tmp_path / "m", {
        "image_sizes.txt": [], "localization.txt": ["a.png,m.png,i.png", "b.png,n.png,"]}), 2)
    assert masks.has_masks and masks.sizes == {}


@pytest.mark.parametrize("dataset", ["CUB", "OpenImages"])
def test_official_metadata_reads_with_the_protocol_counts(dataset):
    root = official_metadata(dataset)
    for split, count in SPLIT_SIZES[dataset].items():
        meta = read_metadata(root / split, NUM_CLASSES[dataset])
        assert len(meta.image_ids) == count, (dataset, split)
        assert len(set(meta.labels.values())) == NUM_CLASSES[dataset]
        if dataset == "CUB":
            assert meta.has_boxes and len(meta.sizes) == count
        else:
            assert meta.sizes == {} and meta.has_masks == (split != "train")


def test_missing_folders_and_files(tmp_path, synth):
    with pytest.raises(MetadataError, match="metadata folder not found"):
        read_metadata(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        WSOLDataset(tmp_path / "no_images", synth / "metadata" / "test")
    broken = tmp_path / "broken"
    shutil.copytree(synth, broken)
    meta = read_metadata(broken / "metadata" / "test")
    (broken / "images" / meta.image_ids[0]).unlink()
    ds = WSOLDataset(**split_paths(broken, "test"), resize=64, size=64)
    with pytest.raises(FileNotFoundError, match="image not found"):
        ds[0]


def test_image_size_mismatch(tmp_path, synth):
    broken = tmp_path / "sizes"
    shutil.copytree(synth, broken)
    sizes = broken / "metadata" / "test" / "image_sizes.txt"
    lines = sizes.read_text().splitlines()
    path, w, h = lines[0].split(",")
    lines[0] = f"{path},{int(w) + 1},{h}"
    sizes.write_text("\n".join(lines) + "\n")
    ds = WSOLDataset(**split_paths(broken, "test"), resize=64, size=64)
    with pytest.raises(ValueError, match="image_sizes.txt says"):
        ds[0]


def test_mask_metadata_must_match(tmp_path, synth):
    with pytest.raises(MetadataError, match="same images"):
        WSOLDataset(synth / "images", synth / "metadata" / "test",
                    mask_metadata_dir=synth / "metadata_masks" / "val")


def test_random_crop_flip_deterministic_and_exact():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    a = random_crop_flip(images, 4, torch.Generator().manual_seed(0))
    b = random_crop_flip(images, 4, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (2, 3, 4, 4)
    # each output is a crop of its own input, possibly flipped
    for i in range(2):
        found = False
        for oy in range(3):
            for ox in range(3):
                crop = images[i, :, oy : oy + 4, ox : ox + 4]
                found |= torch.equal(a[i], crop) or torch.equal(a[i], crop.flip(-1))
        assert found
    with pytest.raises(ValueError):
        random_crop_flip(images, 8)


def test_normalize_round_trip():
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(denormalize_255(normalize(x)), x * 255)


def _jpeg(path, exif_orientation=None):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8))
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(path, quality=95, exif=exif)
    return path


def test_a_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    path = _jpeg(tmp_path / "bird.jpg")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # libjpeg alone fills the rest grey and warns
    with pytest.raises(ImageFileError, match="bird.jpg.*truncated"):
        load_image(path)
    path.write_bytes(b"not an image")
    with pytest.raises(ImageFileError, match="bird.jpg"):
        load_image(path)


def test_exif_orientation_is_not_applied_like_the_reference(tmp_path):
    """wsolevaluation decodes with PIL, which ignores the EXIF orientation: boxes refer to the
    stored pixels (60x40 here, not the 40x60 a rotating decoder gives)."""
    path = _jpeg(tmp_path / "rotated.jpg", exif_orientation=6)  # "rotate 90 CW to display"
    rgb = load_image(path)
    with Image.open(path) as reference:
        np.testing.assert_array_equal(rgb, np.asarray(reference.convert("RGB")))
    assert rgb.shape == (40, 60, 3) and image_size(path) == (60, 40)


def test_resize_is_the_reference_s_antialiased_pil_bilinear(tmp_path):
    """Images reach the network as wsolevaluation's loader gives them: PIL decode, then
    torchvision's ``Resize((R, R))`` on the PIL image (bilinear, antialiased when shrinking) -
    equal to the last bit, for a PNG, a JPEG and an EXIF-rotated JPEG, up and down."""
    from torchvision import transforms

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (90, 70, 3), np.uint8)).save(tmp_path / "a.png")
    paths = [tmp_path / "a.png", _jpeg(tmp_path / "b.jpg"),
             _jpeg(tmp_path / "c.jpg", exif_orientation=8)]
    for path in paths:
        for size in (16, 64, 224):
            with Image.open(path) as image:
                reference = transforms.Resize((size, size))(image.convert("RGB"))
            np.testing.assert_array_equal(load_image(path, size), np.asarray(reference))
    down = load_image(paths[0], 16).astype(float)  # antialiased: not cv2's aliased INTER_LINEAR
    aliased = cv2.resize(load_image(paths[0]), (16, 16), interpolation=cv2.INTER_LINEAR)
    assert np.abs(down - aliased).mean() > 5


def test_synthetic_head_masks_lie_inside_their_birds(synth):
    from fcam_nb.data.synthetic import part_masks

    ds = WSOLDataset(**split_paths(synth, "test"), resize=64, size=64, num_classes=4)
    heads = part_masks(synth, "test", 64)
    birds = torch.stack([ds[i]["mask"] == 1 for i in range(len(ds))])
    assert heads.shape == birds.shape and heads.any(dim=(1, 2)).all()
    inside = (heads & birds).flatten(1).sum(1) / heads.flatten(1).sum(1)
    assert bool((inside > 0.9).all())  # nearest-resized: a pixel of outline may differ
    assert 0.1 < float(heads.float().mean() / birds.float().mean()) < 0.5  # a part, not the bird


def test_training_batches_keep_a_last_batch_of_one_image():
    """Every image is used, as the official DataLoader (drop_last=False)."""
    from fcam_nb.data.loader import make_loader

    sizes = [len(g) for g in make_loader(list(range(33)), 8, torch.Generator().manual_seed(0))
             .batch_sampler]
    assert sizes == [8, 8, 8, 8, 1]


# --- issue 23: nothing misread ---------------------------------------------------------------


def test_16_bit_and_float_pixels_are_converted_or_refused(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0..63000
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), ramp)  # a 16-bit grayscale PNG
    rgb = load_image(path)
    np.testing.assert_array_equal(rgb[..., 0], (ramp >> 8).astype(np.uint8))  # not all white
    tif = tmp_path / "float.tif"
    Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F").save(tif)
    with pytest.raises(ImageFileError, match="float.tif has 'F' pixels"):
        load_image(tif)
    mask = tmp_path / "mask16.png"
    m = np.zeros((8, 8), np.uint16)
    m[2:6, 2:6] = 1  # a 0/1 mask saved with 16 bits
    cv2.imwrite(str(mask), m)
    gt = load_gt_mask(tmp_path, ["mask16.png"], "", 8)
    assert int((gt == 1).sum()) == 16  # was 0: the 8-bit conversion turned the 1s into 0s


def test_too_large_images_are_named(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 > 2 x 100: a decompression bomb
    with pytest.raises(ImageFileError, match="huge.png is too large"):
        image_size(path)
    with pytest.raises(ImageFileError, match="huge.png is too large"):
        load_image(path)


def test_labels_are_bounded_without_an_explicit_class_count(tmp_path, synth):
    broken = tmp_path / "b"
    shutil.copytree(synth, broken)
    labels = broken / "metadata" / "test" / "class_labels.txt"
    lines = labels.read_text().splitlines()
    lines[0] = lines[0].rsplit(",", 1)[0] + ",7"  # the generator recorded 4 classes
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(MetadataError, match=r"label 7 out of range \[0, 4\)"):
        WSOLDataset(**split_paths(broken, "test"), resize=64, size=64)
    (broken / "config.json").unlink()  # no record of the class count: it must be given
    with pytest.raises(ValueError, match="num_classes is needed"):
        WSOLDataset(**split_paths(broken, "test"), resize=64, size=64)


def test_a_box_outside_its_image_is_named_when_sizes_come_from_the_files(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a.png")
    meta = root / "meta"
    meta.mkdir()
    (meta / "image_ids.txt").write_text("a.png\n")
    (meta / "class_labels.txt").write_text("a.png,0\n")
    (meta / "image_sizes.txt").write_text("")  # the OpenImages protocol: sizes from the files
    (meta / "localization.txt").write_text("a.png,1,1,20,5\n")
    ds = WSOLDataset(root / "images", meta, resize=8, size=8, num_classes=2)
    with pytest.raises(MetadataError, match=r"localization.txt: box .* of 'a.png' lies outside "
                                            r"its 8x8 image"):
        ds[0]


def test_synthetic_sets_are_written_whole_and_never_under_a_reader(tmp_path):
    from fcam_nb.data.synthetic import DataInUseError, data_lock

    root = tmp_path / "seed0"
    generate(root, SMALL)
    first = _digest(root)
    with data_lock(root, exclusive=False):  # a job reads it
        with pytest.raises(DataInUseError, match="read by a running job"):
            generate(root, SyntheticConfig(n_train=8, n_val=4, n_test=4, seed=4))
    assert _digest(root) == first  # untouched
    generate(root, SyntheticConfig(n_train=8, n_val=4, n_test=4, seed=4))  # once free: replaced
    assert _digest(root) != first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".seed0.")) == [
        ".seed0.lock"]  # no temporary or old folder left behind
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match="cannot write the synthetic set"):
        generate(tmp_path / "afile" / "data", SMALL)  # a folder that cannot be made


def test_ddp_shards_have_as_many_batches_on_every_process(monkeypatch):
    """The last short batch is kept, so the shards are padded: 9 images on 2 processes give
    each 5 (2 batches of <= 4), never 2 batches on one and 1 on the other (a hang in DDP)."""
    from fcam_nb import distributed
    from fcam_nb.data.loader import make_loader

    sizes = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        loader = make_loader(list(range(9)), 4, torch.Generator().manual_seed(0), shard=True)
        sizes.append([len(g) for g in loader.batch_sampler])
    assert sizes == [[4, 1], [4, 1]]


def test_texture_groups_share_the_body_between_classes():
    """With texture_groups=2, classes 0 and 1 differ only on the head (the mark); without, the
    body's stripes differ too."""
    from fcam_nb.data.synthetic import render_object

    def draw(label, groups):
        return render_object(np.random.default_rng(3), label, 96, 96, texture_groups=groups,
                             num_classes=4)

    (a, mask, head), (b, _, _) = draw(0, 2), draw(1, 2)
    differs = (a != b).any(axis=2)
    assert differs.any() and not (differs & ~(head > 0)).any()
    (c, _, _), (d, _, _) = draw(0, 0), draw(1, 0)
    assert ((c != d).any(axis=2) & (mask > 0) & ~(head > 0)).any()
    with pytest.raises(ValueError, match="texture_groups"):
        SyntheticConfig(texture_groups=5)
    with pytest.raises(ValueError, match="head_scale"):
        SyntheticConfig(head_scale=3.0)


def test_colour_cues_put_the_bird_hue_in_its_class_band():
    """colour_prob=1: every bird of class c takes a hue within 1/(4K) of c/K (mod 1);
    hue_groups=G: class c takes a hue in [(g + 0.1) / G, (g + 0.9) / G], g = c * G // K. Off by
    default, and then the image is the one drawn before the cues existed (sha256 pinned from the
    code of ddd110b). The two cues together are refused."""
    from fcam_nb.data.synthetic import render_object

    def bird_hue(label, rng_seed, **cue):
        img, mask, head = render_object(np.random.default_rng(rng_seed), label, 96, 96,
                                        texture_amplitude=0.0, num_classes=4, **cue)
        body = (mask > 0) & ~(head > 0)
        hue = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)[body][:, 0] / 256  # in [0, 1)
        return np.angle(np.exp(2j * np.pi * hue).mean()) / (2 * np.pi) % 1.0  # circular mean

    def circular_gap(a, b):
        return min(abs(a - b), 1 - abs(a - b))

    for label in range(4):
        for s in range(6):
            assert circular_gap(bird_hue(label, s, colour_prob=1.0), label / 4) <= 1 / 16 + 0.02
            for groups in (2, 3):
                g = label * groups // 4  # groups=3: classes 0 and 1 share band 0, 2 -> 1, 3 -> 2
                hue = bird_hue(label, s, hue_groups=groups)
                assert (g + 0.1) / groups - 0.02 <= hue <= (g + 0.9) / groups + 0.02
    img, mask, head = render_object(np.random.default_rng(0), 1, 96, 80)
    digest = hashlib.sha256(img.tobytes() + mask.tobytes() + head.tobytes()).hexdigest()
    assert digest[:16] == "a31450ffc629fe8d"
    with pytest.raises(ValueError, match="colour_prob"):
        SyntheticConfig(colour_prob=1.5)
    with pytest.raises(ValueError, match="hue_groups"):
        SyntheticConfig(hue_groups=5)
    with pytest.raises(ValueError, match="not both"):
        SyntheticConfig(hue_groups=2, colour_prob=0.5)


def test_sets_generated_before_the_colour_cues_stay_current():
    """The earlier default set (the mark on the head, a textured body) with both cues off keeps
    the stamp written before they existed (sha256 of the config.json of ddd110b's code, seeds 0
    and 3), so a set on disk is not generated again; a cue on, or the mark on the body, changes
    it."""
    from fcam_nb.data.synthetic import _stamp

    def digest(cfg):
        return hashlib.sha256(_stamp(cfg).encode()).hexdigest()[:16]

    def head_set(**kw):
        return SyntheticConfig(mark_site="head", texture_amplitude=16.0, **kw)

    assert digest(head_set(seed=0)) == "c4a4c5d6e371d602"
    assert digest(head_set(seed=3)) == "33eb75ec12001eb1"
    assert digest(head_set(seed=0, colour_prob=0.5)) != digest(head_set(seed=0))
    assert digest(head_set(seed=0, hue_groups=2)) != digest(head_set(seed=0))
    assert digest(SyntheticConfig(seed=0, texture_amplitude=16.0)) != digest(head_set(seed=0))
    assert digest(SyntheticConfig(seed=0)) != digest(SyntheticConfig(seed=0, texture_amplitude=16.0))


def test_default_set_puts_a_plain_bodys_mark_toward_the_tail():
    """The default set: the mark on the body, ``BODY_MARK_OFFSET`` (0.15 a toward the tail), a
    plain body; the head site keeps offset 0, an explicit offset is kept."""
    from fcam_nb.data.synthetic import BODY_MARK_OFFSET, _stamp

    cfg = SyntheticConfig()
    assert (cfg.mark_site, cfg.body_offset, cfg.texture_amplitude) == ("body", -0.15, 0.0)
    assert BODY_MARK_OFFSET == -0.15
    assert SyntheticConfig(mark_site="head").body_offset == 0.0
    assert SyntheticConfig(mark_offset=0.2).body_offset == 0.2
    # None follows the site through dataclasses.replace, and stamps as the offset it draws
    assert dataclasses.replace(cfg, mark_site="head").body_offset == 0.0
    assert dataclasses.replace(SyntheticConfig(mark_site="head"), mark_site="body").body_offset == -0.15
    assert _stamp(cfg) == _stamp(SyntheticConfig(mark_offset=-0.15))
    assert _stamp(SyntheticConfig(mark_site="head")) == _stamp(SyntheticConfig(mark_site="head",
                                                                               mark_offset=0.0))
    with pytest.raises(ValueError, match="texture_amplitude must be >= 0"):
        SyntheticConfig(texture_amplitude=-1.0)


def test_mark_on_the_body_moves_the_part_and_only_the_mark():
    """``mark_site="body"``: the part mask is a disc at the body's centre, inside the bird and
    away from the head; the bird (its mask) and the clutter are drawn as with the mark on the
    head, and the image differs only where the two marks are drawn (on the bird, or where a
    head mark's strokes pass the head's rim)."""
    from fcam_nb.data.synthetic import render_object

    for s in range(8):
        for label in range(4):
            on_head = render_object(np.random.default_rng(s), label, 96, 80)
            on_body = render_object(np.random.default_rng(s), label, 96, 80, mark_site="body")
            (img_h, mask_h, head), (img_b, mask_b, part) = on_head, on_body
            assert np.array_equal(mask_h, mask_b)
            assert part.any() and not (part & ~mask_b).any()  # on the bird
            assert not (part & head).any()  # the head is left plain
            changed = (img_h != img_b).any(axis=2)
            rim = cv2.dilate(head, np.ones((5, 5), np.uint8)) > 0  # a head mark's strokes
            assert changed.any() and not (changed & ~(mask_b > 0) & ~rim).any()
    with pytest.raises(ValueError, match="mark_site"):
        SyntheticConfig(mark_site="tail")


def test_default_birds_are_drawn_as_before_the_mark_site():
    """The default (head) site draws every bird byte for byte as before the option existed (the
    head's marks can pass the head's rim: they are not clipped there): digest of 40 birds of
    every mark, computed with a516eb3's generator."""
    from fcam_nb.data.synthetic import render_object

    h = hashlib.sha256()
    for s in range(40):
        for array in render_object(np.random.default_rng(s), s % 4, 64 + s, 128 - s):
            h.update(array.tobytes())
    assert h.hexdigest()[:16] == "c36624e6c2756fe4"


def test_mark_offset_moves_the_mark_along_the_body():
    """``mark_offset`` < 0 moves the body's mark toward the tail: the part's centroid ends
    farther from the head than at the centre, > 0 nearer; out of range or without the body site
    it is refused."""
    from fcam_nb.data.synthetic import render_object

    def head_distance(s, offset):
        _, _, head = render_object(np.random.default_rng(s), 0, 96, 96)
        _, _, part = render_object(np.random.default_rng(s), 0, 96, 96, mark_site="body",
                                   mark_offset=offset)
        centroid = [np.argwhere(m > 0).mean(axis=0) for m in (head, part)]
        return float(np.linalg.norm(centroid[0] - centroid[1]))

    for s in range(6):
        assert head_distance(s, -0.3) > head_distance(s, 0.0) > head_distance(s, 0.3)
    with pytest.raises(ValueError, match="mark_offset"):
        SyntheticConfig(mark_site="body", mark_offset=0.8)
    with pytest.raises(ValueError, match="mark_site='body'"):
        SyntheticConfig(mark_site="head", mark_offset=-0.15)
