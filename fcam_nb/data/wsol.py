"""Reader for the wsolevaluation metadata format (CUB, ILSVRC, OpenImages) and a torch Dataset.

A split folder ``metadata/<dataset>/<split>/`` holds::

    image_ids.txt      path
    class_labels.txt   path,label
    image_sizes.txt    path,w,h
    localization.txt   path,x0,y0,x1,y1           (boxes: CUB / ILSVRC, one line per box)
                       path,mask.png,ignore.png   (masks: OpenImages; ignore on the first line only)

``image_sizes.txt`` may be empty (OpenImages: sizes are then read from the image files when a
box needs them) and ``localization.txt`` may be empty (a training split: classification labels
only); when a file has lines, every image needs one. Files are UTF-8 without a byte-order mark
(Windows line ends are accepted). Everything is checked when the split is read, before any
training: every malformed line (wrong field count, a number that is not one or is NaN/inf, a
field with spaces around it, an id that is not listed or leaves the data folder, a label out of
range, two lines that disagree, a box inverted or outside its image) raises ``MetadataError``
naming the file and the line number.

Images are decoded and resized like the reference (wsolevaluation, F-CAM): with PIL,
``convert("RGB")``, EXIF orientation NOT applied (boxes refer to the stored pixels), then
``Image.resize`` with the bilinear filter, which PIL widens when shrinking (antialiased: the
reference's ``transforms.Resize`` on a PIL image); a truncated or corrupt file raises an error
naming it (libjpeg alone only warns and fills the rest grey).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")


class MetadataError(ValueError):
    """A metadata file is missing or one of its lines is malformed."""


@dataclass
class SplitMetadata:
    """Parsed metadata of one split. Boxes are x0y0x1y1 in original pixels."""

    image_ids: list[str]
    labels: dict[str, int]
    sizes: dict[str, tuple[int, int]]
    boxes: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    mask_paths: dict[str, list[str]] = field(default_factory=dict)
    ignore_paths: dict[str, str] = field(default_factory=dict)

    @property
    def has_masks(self) -> bool:
        return bool(self.mask_paths)

    @property
    def has_boxes(self) -> bool:
        return bool(self.boxes)


def _lines(path: Path) -> list[tuple[int, str]]:
    """The non-empty lines of a UTF-8 metadata file with their 1-based numbers."""
    if not path.is_file():
        raise MetadataError(f"missing metadata file: {path}")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise MetadataError(f"{path}:1: the file starts with a UTF-8 byte-order mark (BOM); save "
                            f"it as UTF-8 without BOM")
    out = []
    for i, line in enumerate(raw.split(b"\n")):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise MetadataError(f"{path}:{i + 1}: not valid UTF-8 ({e.reason} at byte "
                                f"{e.start}): {line[:80]!r}") from None
        if text.strip():
            out.append((i + 1, text))
    return out


def _fields(path: Path, lineno: int, line: str, n: int) -> list[str]:
    parts = line.split(",")
    if len(parts) != n:
        raise MetadataError(f"{path}:{lineno}: expected {n} comma-separated fields, got {line!r}")
    for part in parts:
        if part != part.strip():
            raise MetadataError(f"{path}:{lineno}: field {part!r} has leading or trailing "
                                f"spaces: {line!r}")
    return parts


def _number(path: Path, lineno: int, text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise MetadataError(f"{path}:{lineno}: {text!r} is not a valid {kind.__name__}") from None
    if kind is float and not math.isfinite(value):
        raise MetadataError(f"{path}:{lineno}: {text!r} is not a finite number")
    return value


def _check_relative(path: Path, lineno: int, rel: str) -> None:
    """A path from the metadata stays inside its root folder (no absolute path, no ``..``)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (len(rel) > 1 and rel[1] == ":"):
        raise MetadataError(f"{path}:{lineno}: {rel!r} leaves the data folder (absolute path "
                            f"or '..'); paths are relative to the image folder")


def read_metadata(metadata_dir: str | os.PathLike, num_classes: int | None = None) -> SplitMetadata:
    """Parse one split folder. Raises MetadataError on missing files or malformed lines."""
    root = Path(metadata_dir)
    if not root.is_dir():
        raise MetadataError(f"metadata folder not found: {root}")
    ids_path = root / "image_ids.txt"
    image_ids, first_line = [], {}
    for lineno, line in _lines(ids_path):
        (image_id,) = _fields(ids_path, lineno, line, 1)
        _check_relative(ids_path, lineno, image_id)
        if image_id in first_line:
            raise MetadataError(f"{ids_path}:{lineno}: {image_id!r} already listed at line "
                                f"{first_line[image_id]}")
        first_line[image_id] = lineno
        image_ids.append(image_id)
    if not image_ids:
        raise MetadataError(f"{ids_path}: no image id")
    known = set(image_ids)

    def check_id(path: Path, lineno: int, image_id: str) -> None:
        if image_id not in known:
            raise MetadataError(f"{path}:{lineno}: {image_id!r} is not in image_ids.txt")

    labels: dict[str, int] = {}
    path = root / "class_labels.txt"
    for lineno, line in _lines(path):
        image_id, label_s = _fields(path, lineno, line, 2)
        check_id(path, lineno, image_id)
        label = int(_number(path, lineno, label_s, int))
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise MetadataError(f"{path}:{lineno}: label {label} out of range [0, {num_classes})")
        if labels.get(image_id, label) != label:
            raise MetadataError(f"{path}:{lineno}: {image_id!r} has two labels, "
                                f"{labels[image_id]} and {label}")
        labels[image_id] = label

    sizes: dict[str, tuple[int, int]] = {}
    path = root / "image_sizes.txt"
    for lineno, line in _lines(path):
        image_id, w_s, h_s = _fields(path, lineno, line, 3)
        check_id(path, lineno, image_id)
        w, h = int(_number(path, lineno, w_s, int)), int(_number(path, lineno, h_s, int))
        if w <= 0 or h <= 0:
            raise MetadataError(f"{path}:{lineno}: image size must be positive, got {w}x{h}")
        if sizes.get(image_id, (w, h)) != (w, h):
            raise MetadataError(f"{path}:{lineno}: {image_id!r} has two sizes, "
                                f"{sizes[image_id]} and {(w, h)}")
        sizes[image_id] = (w, h)

    meta = SplitMetadata(image_ids=image_ids, labels=labels, sizes=sizes)
    path = root / "localization.txt"
    for lineno, line in _lines(path):
        parts = line.split(",")
        image_id = parts[0]
        check_id(path, lineno, image_id)
        if len(parts) == 5:
            _fields(path, lineno, line, 5)
            x0, y0, x1, y1 = (float(_number(path, lineno, p, float)) for p in parts[1:])
            if x1 < x0 or y1 < y0:
                raise MetadataError(f"{path}:{lineno}: box needs x0 <= x1 and y0 <= y1: {line!r}")
            w, h = sizes.get(image_id, (math.inf, math.inf))
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                raise MetadataError(f"{path}:{lineno}: box {line!r} lies outside its "
                                    f"{w}x{h} image")
            meta.boxes.setdefault(image_id, []).append((x0, y0, x1, y1))
        elif len(parts) == 3:
            _, mask_path, ignore_path = _fields(path, lineno, line, 3)
            if not mask_path:
                raise MetadataError(f"{path}:{lineno}: empty mask path")
            for rel in (mask_path, ignore_path):
                if rel:
                    _check_relative(path, lineno, rel)
            if image_id in meta.mask_paths:
                if ignore_path:
                    raise MetadataError(
                        f"{path}:{lineno}: ignore mask allowed on an image's first line only"
                    )
                meta.mask_paths[image_id].append(mask_path)
            else:
                meta.mask_paths[image_id] = [mask_path]
                meta.ignore_paths[image_id] = ignore_path
        else:
            raise MetadataError(
                f"{path}:{lineno}: expected 'path,x0,y0,x1,y1' or 'path,mask,ignore', got {line!r}"
            )
    if meta.boxes and meta.mask_paths:
        raise MetadataError(f"{path}: mixes box lines and mask lines")
    for name, table, optional in (("class_labels.txt", labels, False),
                                  ("image_sizes.txt", sizes, True)):
        missing = [i for i in image_ids if i not in table]
        if missing and not (optional and not table):  # an empty optional file is allowed
            raise MetadataError(f"{root / name}: no entry for {missing[0]!r}")
    loc = meta.boxes or meta.mask_paths
    missing = [i for i in image_ids if i not in loc]
    if missing and loc:  # an empty localization.txt means a split without localization
        raise MetadataError(f"{path}: no localization for {missing[0]!r}")
    return meta


class ImageFileError(OSError):
    """An image or mask file exists but cannot be decoded completely (truncated, corrupt)."""


def load_image(path: str | os.PathLike, resize: int | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) decoded as the reference does (PIL, ``convert("RGB")``, EXIF
    orientation not applied); with ``resize`` R: (R, R, 3) by PIL's antialiased bilinear resize
    (the reference's ``transforms.Resize((R, R))``). Raises ``FileNotFoundError`` or
    ``ImageFileError`` naming the file (a truncated JPEG is an error, not a grey lower half)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()  # decodes everything now: a truncated file raises here
            rgb = _to_rgb8(image, path)
    except Image.DecompressionBombError as e:
        raise ImageFileError(f"image {path} is too large to decode safely ({e}); shrink it, or "
                             f"raise PIL.Image.MAX_IMAGE_PIXELS if you trust it") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL: UnidentifiedImageError, truncation
        if isinstance(e, ImageFileError):
            raise
        raise ImageFileError(f"cannot decode image {path} (truncated or corrupt?): {e}") from None
    if resize is not None:
        rgb = rgb.resize((resize, resize), Image.BILINEAR)
    return np.array(rgb)  # writable (torch.from_numpy warns on read-only arrays)


def _to_rgb8(image: Image.Image, path: Path) -> Image.Image:
    """8-bit RGB: PIL's ``convert("RGB")`` for 8-bit modes (the reference); 16-bit grayscale
    (``I;16*``) keeps its high byte, as PIL does for 16-bit RGB (``convert`` would clip it to
    white); 32-bit integer or float pixels have no agreed range and are refused."""
    if image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.uint16) >> 8
        return Image.fromarray(values.astype(np.uint8), mode="L").convert("RGB")
    if image.mode in ("I", "F"):
        raise ImageFileError(f"image {path} has {image.mode!r} pixels (32-bit integer or float), "
                             f"whose range is not defined: save it with 8 bits per channel")
    return image.convert("RGB")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (no EXIF rotation, no decoding)."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except Image.DecompressionBombError as e:
        raise ImageFileError(f"image {path} is too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"cannot read image {path}: {e}") from None


def load_mask_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Grayscale mask as float32, nearest-resized to size x size (the protocol's loader: cv2,
    which callers threshold at 0.5). The pixel depth is kept (``IMREAD_ANYDEPTH``): a 16-bit or
    float mask holding 0/1 stays 0/1 (8-bit conversion would make its 1s zeros); 8-bit masks
    read as the protocol reads them."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if mask is None:
        raise ImageFileError(f"cannot decode mask {path} (truncated or corrupt?)")
    return cv2.resize(np.float32(mask), (size, size), interpolation=cv2.INTER_NEAREST)


def load_gt_mask(
    mask_root: str | os.PathLike, mask_paths: list[str], ignore_path: str, size: int
) -> np.ndarray:
    """GT mask (size, size) uint8: 1 foreground (union of instances), 0 background, 255 ignore.

    Ignore = ignore-box region minus the foreground, as in wsolevaluation's ``get_mask``.
    """
    root = Path(mask_root)
    fg = np.stack([load_mask_image(root / p, size) > 0.5 for p in mask_paths]).any(axis=0)
    if ignore_path:
        ignore = np.logical_and(load_mask_image(root / ignore_path, size) > 0.5, ~fg)
    else:
        ignore = np.zeros_like(fg)
    return fg.astype(np.uint8) + 255 * ignore.astype(np.uint8)


def resize_box(box: Sequence[float], image_size: tuple[int, int], size: int) -> tuple[int, ...]:
    """Scale an ``x0, y0, x1, y1`` box from ``image_size = (w, h)`` to ``size`` x ``size``.

    Each coordinate is ``int(x * size / w)`` exactly as the protocol's ``resize_bbox``.
    """
    x0, y0, x1, y1 = box
    w, h = image_size
    return (int(x0 * size / w), int(y0 * size / h), int(x1 * size / w), int(y1 * size / h))


def _generated_classes(data_root: Path) -> int | None:
    """The class count the synthetic generator recorded beside its images, if any."""
    stamp = data_root.parent / "config.json"
    try:
        return int(json.loads(stamp.read_text())["num_classes"]) if stamp.is_file() else None
    except (ValueError, KeyError, TypeError):
        return None


class WSOLDataset(Dataset):
    """One split of a wsol-format dataset.

    Item: dict with ``image`` float (3, R, R) in [0, 1] (resized to ``resize`` R, not normalized),
    ``label`` int, ``boxes`` int64 (n, 4) in the ``size`` x ``size`` frame (protocol rounding),
    ``mask`` uint8 (size, size) with 1/0/255 when the dataset has masks, ``index`` and ``image_id``.
    ``mask_metadata_dir`` adds masks from a second metadata folder over the same images.
    ``num_classes`` bounds the labels; it may be left out only for a generated synthetic set
    (read from its ``config.json``).
    Set ``cache=True`` to keep decoded images in memory (small datasets).
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        metadata_dir: str | os.PathLike,
        resize: int = 224,
        size: int = 224,
        num_classes: int | None = None,
        mask_root: str | os.PathLike | None = None,
        mask_metadata_dir: str | os.PathLike | None = None,
        check_sizes: bool = True,
        cache: bool = False,
    ) -> None:
        self.data_root = Path(data_root)
        if not self.data_root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.data_root}")
        num_classes = num_classes if num_classes is not None else _generated_classes(self.data_root)
        if num_classes is None:
            raise ValueError(f"num_classes is needed to check the labels of {metadata_dir} (e.g. "
                             f"200 for CUB, 100 for OpenImages)")
        self.num_classes = num_classes
        self.meta = read_metadata(metadata_dir, num_classes)
        if mask_metadata_dir is not None:
            masks = read_metadata(mask_metadata_dir, num_classes)
            if masks.image_ids != self.meta.image_ids or not masks.has_masks:
                raise MetadataError(
                    f"{mask_metadata_dir}: must list the same images as {metadata_dir} with masks"
                )
            self.meta.mask_paths, self.meta.ignore_paths = masks.mask_paths, masks.ignore_paths
        self.mask_root = Path(mask_root) if mask_root is not None else self.data_root
        self.metadata_dir = Path(metadata_dir)
        self.resize = resize
        self.size = size
        self.check_sizes = check_sizes
        self._cache: dict[int, dict] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.meta.image_ids)

    def __getitem__(self, index: int) -> dict:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image_id = self.meta.image_ids[index]
        path = self.data_root / image_id
        actual = image_size(path)
        w, h = self.meta.sizes.get(image_id, actual)
        if self.check_sizes and actual != (w, h):
            raise ValueError(f"{image_id}: image is {actual[0]}x{actual[1]} but image_sizes.txt "
                             f"says {w}x{h}")
        for box in self.meta.boxes.get(image_id, ()):  # sizes read from the file: check here
            if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
                raise MetadataError(f"{self.metadata_dir / 'localization.txt'}: box "
                                    f"{list(box)} of {image_id!r} lies outside its {w}x{h} image")
        resized = load_image(path, self.resize)
        item = {
            "image": torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0,
            "label": self.meta.labels[image_id],
            "index": index,
            "image_id": image_id,
        }
        if self.meta.has_masks:
            item["mask"] = torch.from_numpy(
                load_gt_mask(
                    self.mask_root,
                    self.meta.mask_paths[image_id],
                    self.meta.ignore_paths[image_id],
                    self.size,
                )
            )
        if self.meta.boxes:
            boxes = [resize_box(b, (w, h), self.size) for b in self.meta.boxes[image_id]]
            item["boxes"] = torch.tensor(boxes, dtype=torch.int64)
        if self._cache is not None:
            self._cache[index] = item
        return item


def collate(items: list[dict]) -> dict:
    """Batch items: stacks tensors, keeps per-image box arrays as a list."""
    out = {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.int64),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.int64),
        "image_id": [it["image_id"] for it in items],
    }
    if "boxes" in items[0]:
        out["boxes"] = [it["boxes"] for it in items]
    if "mask" in items[0]:
        out["mask"] = torch.stack([it["mask"] for it in items])
    return out
