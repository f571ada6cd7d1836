"""Synthetic WSOL dataset that shows the F-CAM phenomenon, written in the wsolevaluation format.

Each image holds one "bird": an elliptic body and a round head of ONE saturated colour (so a
colour-based CRF can spread from the mark to the rest of the bird), on a cluttered, desaturated,
noisy background. The class is given by a bold mark (bar, cross, ring, ...) drawn on the body's
axis, 0.15 body semi-axes from its centre toward the tail (``mark_site="body"``,
``BODY_MARK_OFFSET``): the discriminative part, written under ``parts/`` as a disc so where a map
falls can be measured. The rest of the bird (body and head) is plain. The object to localize is
the whole bird. Measured by benchmarks/results_synthetic.py (the main job, seeds 0-4, 1 and 2
threads; docs/results.md): on validation the CAM's Otsu region covers 99-100% of the mark's disc
but 61-77% of the rest of the bird; its test MaxBoxAcc lies -2 to +20 points from the centred
prior's, and F-CAM's decoder grows from the mark's seeds to the bird on 9 of the 10 runs.
Other sets, for exercises and screens (``docs/synthetic.md``): ``mark_site="head"`` with
``texture_amplitude=16`` is the earlier default (the mark in the head, a class stripe texture of
+-16 grey levels on the body; there the F-CAM result depended on the seed); ``texture_needed=True``
makes a class a (mark, texture) pair, so the body is needed to tell classes apart;
``texture_groups`` makes classes share body textures (2: classes 0-1 and 2-3 wear the same
stripes), ``mark_prob`` < 1 hides the mark on some birds, ``head_scale`` scales the head (and the
body's mark disc), ``colour_prob`` / ``hue_groups`` tie the bird's hue to its class (a band per
class for that share of birds / a band per group of classes), ``mark_offset`` moves the body's
mark along the axis.

The bird spans about 2/3 of the image's short side (``object_scale`` 0.7; ~12% of the pixels): at
this size a 16x16 CAM (4 px cells) has about 10 cells along the bird - the order of CUB's 28x28
CAMs (8 px cells) along a bird. With ``object_scale`` 1 the bird fills the image and any blob on
it has IoU >= 0.5 with its box, so box scores say little.

Layout under ``root``::

    images/<split>/<class>/<n>.png      RGB images, 64-128 px, various aspect ratios
    masks/<split>/<class>/<n>.png       object masks (255 = object)
    masks/<split>/<class>/<n>_ignore.png  ignore band (1 px around the outline, as ambiguous)
    parts/<split>/<class>/<n>.png       the mark's disc (the discriminative part; 255), for analyses
    metadata/<split>/{image_ids,class_labels,image_sizes,localization}.txt        boxes
    metadata_masks/<split>/{image_ids,class_labels,image_sizes,localization}.txt  masks

Deterministic from ``seed``: the same arguments give byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from fcam_nb.checkpoint import umask

LAYOUT = 2  # files written per image (2: with the part masks under parts/); older data is redone
MARK_SITES = ("head", "body")  # the mark on the head (at one end of the bird) or the body's axis
# The default site's offset: 0.15 body semi-axes toward the tail (at the centre the CAM's blob
# boxes the bird by itself; docs/synthetic.md, "The default set")
BODY_MARK_OFFSET = -0.15
MARKS = ("hbar", "vbar", "cross", "ring", "dots_h", "dots_v", "square", "triangle")


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator settings. Sizes are per split."""

    num_classes: int = 4
    n_train: int = 800
    n_val: int = 100
    n_test: int = 200
    min_size: int = 64
    max_size: int = 128
    texture_amplitude: float = 0.0  # the body's class texture, +- grey levels (0: a plain body)
    clutter_noise: float = 22.0
    mark_prob: float = 1.0  # the class mark is visible on this share of the birds
    texture_frequency: float = 7.0  # stripe periods per image side
    object_scale: float = 0.7  # bird size relative to the image's short side (1: fills it)
    texture_needed: bool = False  # True: a class is a (mark, texture) pair, the body is needed
    texture_groups: int = 0  # >0: the classes share this many body textures (0: one per class)
    head_scale: float = 1.0  # head radius relative to the default (0.14-0.17 of the bird's scale)
    colour_prob: float = 0.0  # share of birds whose hue lies in their class's band (else random)
    hue_groups: int = 0  # >0: the classes fall in this many groups, each with its own hue band
    mark_site: str = "body"  # where the class mark (the discriminative part) sits: "head" or "body"
    # shift of the mark along the body axis (+ toward the head), in body semi-axes a; None: the
    # site's own (``body_offset``: BODY_MARK_OFFSET on the body, 0 on the head)
    mark_offset: float | None = None
    seed: int = 0

    @property
    def body_offset(self) -> float:
        """The mark's shift along the body axis that is drawn: ``mark_offset``, or the site's own
        when it is None (so ``dataclasses.replace(cfg, mark_site=...)`` takes the new site's)."""
        if self.mark_offset is not None:
            return self.mark_offset
        return BODY_MARK_OFFSET if self.mark_site == "body" else 0.0

    def __post_init__(self) -> None:
        most = 2 * len(MARKS) if self.texture_needed else len(MARKS)
        if not 2 <= self.num_classes <= most:
            raise ValueError(f"num_classes must be in [2, {most}] (texture_needed="
                             f"{self.texture_needed}), got {self.num_classes}")
        if not 32 <= self.min_size <= self.max_size:
            raise ValueError("need 32 <= min_size <= max_size")
        if not 0.3 <= self.object_scale <= 1.0:
            raise ValueError(f"object_scale must be in [0.3, 1] (1: the bird fills the image), "
                             f"got {self.object_scale}")
        if not 0 <= self.texture_groups <= min(4, self.num_classes):
            raise ValueError(f"texture_groups must be in [0, {min(4, self.num_classes)}] (0: one "
                             f"texture per class), got {self.texture_groups}")
        if not 0.5 <= self.head_scale <= 2:
            raise ValueError(f"head_scale must be in [0.5, 2], got {self.head_scale}")
        if not 0 < self.mark_prob <= 1:
            raise ValueError(f"mark_prob must be in (0, 1], got {self.mark_prob}")
        if not 0 <= self.hue_groups <= self.num_classes:
            raise ValueError(f"hue_groups must be in [0, {self.num_classes}], got {self.hue_groups}")
        if not 0 <= self.colour_prob <= 1:
            raise ValueError(f"colour_prob must be in [0, 1], got {self.colour_prob}")
        if self.mark_site not in MARK_SITES:
            raise ValueError(f"mark_site must be one of {MARK_SITES}, got {self.mark_site!r}")
        if not -0.5 <= self.body_offset <= 0.5:
            raise ValueError(f"mark_offset must be in [-0.5, 0.5] (body semi-axes), got "
                             f"{self.mark_offset}")
        if self.texture_amplitude < 0:
            raise ValueError(f"texture_amplitude must be >= 0 (grey levels), got "
                             f"{self.texture_amplitude}")
        if self.mark_offset and self.mark_site != "body":
            raise ValueError("mark_offset moves the mark along the body: it needs mark_site='body'")
        if (self.texture_needed or self.texture_groups) and self.texture_amplitude <= 0:
            raise ValueError("texture_needed / texture_groups set the body's class texture: they "
                             f"need texture_amplitude > 0 (16.0, say), got {self.texture_amplitude}")
        if self.colour_prob and self.hue_groups:
            raise ValueError("colour_prob and hue_groups tie the hue to the class in two ways: "
                             "set one of them, not both")


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    hsv = np.uint8([[[int(h * 179), int(s * 255), int(v * 255)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _clutter(rng: np.random.Generator, h: int, w: int, noise: float) -> np.ndarray:
    """Desaturated cluttered background, float32 (h, w, 3) in [0, 255].

    Grey shapes plus strong pixel noise (std ``noise``): neighbouring background pixels differ
    by more than the CRF's colour sigma, unlike the pixels of the smooth object.
    """
    base = rng.uniform(60, 190)
    img = np.full((h, w, 3), base, np.float32)
    for _ in range(int(rng.integers(25, 45))):
        grey = rng.uniform(30, 230)
        tint = rng.uniform(-18, 18, size=3)
        color = tuple(float(c) for c in np.clip(grey + tint, 0, 255))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            axes = (int(rng.integers(2, max(3, w // 6))), int(rng.integers(2, max(3, h // 6))))
            cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
        else:
            dx, dy = int(rng.integers(2, max(3, w // 5))), int(rng.integers(2, max(3, h // 5)))
            cv2.rectangle(img, (cx, cy), (cx + dx, cy + dy), color, -1)
    img += rng.normal(0, noise, size=img.shape).astype(np.float32)
    return img


def _draw_mark(img: np.ndarray, mark: str, c: tuple[int, int], r: int, color) -> None:
    x, y = c
    t = max(2, r // 2)  # stroke
    a = max(2, int(round(r * 0.75)))
    if mark == "hbar":
        cv2.line(img, (x - a, y), (x + a, y), color, t)
    elif mark == "vbar":
        cv2.line(img, (x, y - a), (x, y + a), color, t)
    elif mark == "cross":
        cv2.line(img, (x - a, y), (x + a, y), color, t)
        cv2.line(img, (x, y - a), (x, y + a), color, t)
    elif mark == "ring":
        cv2.circle(img, (x, y), max(2, a - t // 2), color, t)
    elif mark == "dots_h":
        cv2.circle(img, (x - a // 2 - 1, y), t, color, -1)
        cv2.circle(img, (x + a // 2 + 1, y), t, color, -1)
    elif mark == "dots_v":
        cv2.circle(img, (x, y - a // 2 - 1), t, color, -1)
        cv2.circle(img, (x, y + a // 2 + 1), t, color, -1)
    elif mark == "square":
        cv2.rectangle(img, (x - a + 1, y - a + 1), (x + a - 1, y + a - 1), color, t)
    elif mark == "triangle":  # symmetric under the horizontal flip of training
        pts = np.array([[x, y - a], [x - a, y + a - 1], [x + a, y + a - 1]], np.int32)
        cv2.polylines(img, [pts], True, color, t)


def _class_texture(label: int, h: int, w: int, period: int) -> np.ndarray:
    """Faint class-specific body pattern in {-1, +1}, (h, w, 1); symmetric under h-flips."""
    if label >= 4:  # classes 4-7: the patterns of 0-3 at twice the period
        return _class_texture(label - 4, h, w, period * 2)
    yy, xx = np.mgrid[:h, :w]
    half = max(1, period // 2)
    rows, cols = (yy // half) % 2, (xx // half) % 2
    pattern = (rows, cols, rows ^ cols, rows & cols)[label]
    return (2.0 * pattern - 1.0)[..., None].astype(np.float32)


def render_object(
    rng: np.random.Generator, label: int, w: int, h: int, texture_amplitude: float = 16.0,
    clutter_noise: float = 22.0,
    mark_prob: float = 1.0,
    texture_frequency: float = 7.0,
    object_scale: float = 0.7,
    texture_needed: bool = False,
    texture_groups: int = 0,
    num_classes: int = 4,
    head_scale: float = 1.0,
    colour_prob: float = 0.0,
    hue_groups: int = 0,
    mark_site: str = "head",
    mark_offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the bird of class ``label`` on clutter in a w x h image -> (RGB image, object mask,
    part mask), masks uint8 255 / 0.

    The class mark sits on the head (``mark_site="head"``) or on the body's axis (``"body"``:
    ``mark_offset`` semi-axes a from the body's centre, + toward the head; clipped to the bird);
    the part mask is the mark's disc (the head, or a head-sized disc on the body). The body
    wears a class texture of +-``texture_amplitude`` grey levels (redundant evidence, like
    plumage patterns; with ``texture_needed`` a class is a (mark, texture) pair and the texture
    is needed). The hue is random unless ``colour_prob`` > 0
    (that share of birds: within 1/(4K) of label / K) or ``hue_groups`` > 0 (always: the band
    [(g + 0.1) / G, (g + 0.9) / G] of group g = label * G // K). This function's own defaults
    draw the earlier default bird (mark on the head, +-16 texture; tests pin it);
    ``generate_split`` passes ``SyntheticConfig``'s, which draw today's default set.
    """
    m = min(w, h)
    img = _clutter(rng, h, w, clutter_noise)
    a = rng.uniform(0.30, 0.38) * m * object_scale  # body semi-major axis
    b = rng.uniform(0.18, 0.24) * m * object_scale
    r = rng.uniform(0.14, 0.17) * m * object_scale * head_scale  # head radius
    angle = rng.uniform(0, 2 * np.pi)
    ux, uy = np.cos(angle), np.sin(angle)
    reach = a + 1.6 * r
    cx = rng.uniform(reach * abs(ux) + b + 2, w - reach * abs(ux) - b - 2) if w > 2 * (
        reach * abs(ux) + b + 2
    ) else w / 2
    cy = rng.uniform(reach * abs(uy) + b + 2, h - reach * abs(uy) - b - 2) if h > 2 * (
        reach * abs(uy) + b + 2
    ) else h / 2
    # shift the body back so body + head are centred around (cx, cy)
    bx, by = cx - ux * 0.6 * r, cy - uy * 0.6 * r
    hx, hy = bx + ux * (a + 0.55 * r), by + uy * (a + 0.55 * r)
    hue = rng.uniform(0, 1)
    if colour_prob > 0 and rng.random() < colour_prob:  # the class's hue band, 1/(2K) wide
        hue = (label + 0.5 * (hue - 0.5)) / num_classes % 1.0
    if hue_groups:  # the group's band, 0.8 / G wide, gaps between bands
        hue = (label * hue_groups // num_classes + 0.1 + 0.8 * hue) / hue_groups
    color = _hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.65, 1.0))
    mask = np.zeros((h, w), np.uint8)
    body = (int(round(bx)), int(round(by)))
    axes = (int(round(a)), int(round(b)))
    head = (int(round(hx)), int(round(hy)))
    cv2.ellipse(mask, body, axes, float(np.degrees(angle)), 0, 360, 255, -1)
    cv2.circle(mask, head, int(round(r)), 255, -1)
    site = head  # the mark's centre
    if mark_site == "body":  # on the body's axis, mark_offset * a from its centre toward the head
        site = (int(round(bx + ux * mark_offset * a)), int(round(by + uy * mark_offset * a)))
    part = np.zeros((h, w), np.uint8)
    cv2.circle(part, site, int(round(r)), 255, -1)
    part &= mask  # the mark's disc, on the bird (a body disc wider than the body is cut)
    obj = mask > 0
    texture = rng.normal(0, 4, size=(h, w, 3)).astype(np.float32)
    period = max(4, round(m / texture_frequency))
    mark, pattern = (label // 2, label % 2) if texture_needed else (label, label)
    if texture_groups and not texture_needed:  # classes 0..K-1 in groups of K / texture_groups
        pattern = label * texture_groups // num_classes
    texture += texture_amplitude * _class_texture(pattern, h, w, period=period)
    img[obj] = color + texture[obj]
    mark_color = tuple(float(c) for c in (color * 0.12))
    if rng.random() < mark_prob:  # else the head is seen from an angle that hides the mark
        if mark_site == "head":  # drawn as it always was (its strokes can pass the head's rim)
            _draw_mark(img, MARKS[mark], site, int(round(r)), mark_color)
        else:  # on the body the mark is clipped to the bird
            drawn = img.copy()
            _draw_mark(drawn, MARKS[mark], site, int(round(r)), mark_color)
            img[obj] = drawn[obj]
    return np.clip(img, 0, 255).astype(np.uint8), mask, part


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _ignore_band(mask: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)


def write_image(path: Path, array: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or grey (H, W) uint8 image; the format follows the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cannot write {path}")


def generate_split(root: Path, split: str, n: int, cfg: SyntheticConfig, seed: int) -> None:
    """Write one split's images, masks and both metadata folders."""
    rng = np.random.default_rng(seed)
    ids, labels, sizes, boxes, masks = [], [], [], [], []
    for i in range(n):
        label = i % cfg.num_classes
        w = int(rng.integers(cfg.min_size, cfg.max_size + 1))
        h = int(rng.integers(cfg.min_size, cfg.max_size + 1))
        image, mask, part = render_object(rng, label, w, h, cfg.texture_amplitude,
                                          cfg.clutter_noise, cfg.mark_prob, cfg.texture_frequency,
                                          cfg.object_scale, cfg.texture_needed,
                                          cfg.texture_groups, cfg.num_classes, cfg.head_scale,
                                          cfg.colour_prob, cfg.hue_groups, cfg.mark_site,
                                          cfg.body_offset)
        rel = f"{split}/{label}/{i:05d}.png"
        mask_rel = f"{split}/{label}/{i:05d}.png"
        ignore_rel = f"{split}/{label}/{i:05d}_ignore.png"
        write_image(root / "images" / rel, image)
        write_image(root / "masks" / mask_rel, mask)
        write_image(root / "masks" / ignore_rel, _ignore_band(mask))
        write_image(root / "parts" / mask_rel, part)
        x0, y0, x1, y1 = _box(mask)
        ids.append(rel)
        labels.append(f"{rel},{label}")
        sizes.append(f"{rel},{w},{h}")
        boxes.append(f"{rel},{x0},{y0},{x1},{y1}")
        masks.append(f"{rel},{mask_rel},{ignore_rel}")
    for meta_name, loc in (("metadata", boxes), ("metadata_masks", masks)):
        folder = root / meta_name / split
        folder.mkdir(parents=True, exist_ok=True)
        for name, lines in (
            ("image_ids.txt", ids),
            ("class_labels.txt", labels),
            ("image_sizes.txt", sizes),
            ("localization.txt", loc),
        ):
            (folder / name).write_text("\n".join(lines) + "\n")


class DataInUseError(RuntimeError):
    """A synthetic data folder is being generated or read by another process."""


@contextlib.contextmanager
def data_lock(root: str | os.PathLike, exclusive: bool) -> Iterator[None]:
    """Hold ``<root>.lock`` beside the data folder: shared while a job reads the set, exclusive
    while it is (re)generated. Raises ``DataInUseError`` when the other kind is held (a job
    reading the folder, or a generation under way). No lock without ``fcntl`` (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = root.parent / f".{root.name}.lock"
    if lock.is_symlink():
        raise DataInUseError(f"{lock} is a symbolic link: remove it")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            what = "read by a running job" if exclusive else "being generated"
            raise DataInUseError(
                f"the synthetic set {root} is {what} in another process: wait for it, or give "
                f"this run its own data folder (the default is one folder per seed)") from None
        yield
    finally:
        os.close(fd)


def generate(root: str | os.PathLike, cfg: SyntheticConfig | None = None) -> Path:
    """Generate the dataset under ``root`` (skipped when an identical one is already there).

    Returns the root. A ``config.json`` records the settings. A new set is written into a
    temporary folder beside ``root`` and renamed into place once complete, under an exclusive
    ``data_lock``: an interrupted generation leaves the old set (or nothing), and a folder that a
    running job reads (shared lock) is never rewritten (``DataInUseError``). A folder that cannot
    be written raises ``OSError`` naming it.

    Example:
        >>> root = generate("data/synthetic/seed0", SyntheticConfig(seed=0))
        >>> test = WSOLDataset(**split_paths(root, "test"), resize=64, size=64)
    """
    cfg = cfg or SyntheticConfig()
    root = Path(root)
    if is_generated(root, cfg):
        return root
    if root.is_symlink():
        raise OSError(f"cannot write the synthetic set to {root}: it is a symbolic link (a new set "
                      f"is renamed into place); give the folder it points to")
    try:
        with data_lock(root, exclusive=True):
            if is_generated(root, cfg):  # generated meanwhile by another process
                return root
            for stale in root.parent.glob(f".{root.name}.old-*"):  # a generation killed mid-swap
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
            os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's 0700 would make the set owner-only
            try:
                for k, (split, n) in enumerate((("train", cfg.n_train), ("val", cfg.n_val),
                                                ("test", cfg.n_test))):
                    generate_split(tmp, split, n, cfg, seed=cfg.seed * 1000 + k)
                (tmp / "config.json").write_text(_stamp(cfg))
                (tmp / ".complete").write_text("ok\n")
                old = root.parent / f".{root.name}.old-{os.getpid()}"
                if root.exists() or root.is_symlink():
                    os.replace(root, old)
                os.replace(tmp, root)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except PermissionError as e:
        raise PermissionError(e.errno, f"cannot write the synthetic set to {root} ({e.strerror}): "
                                       f"choose a writable data folder") from None
    except OSError as e:
        raise OSError(e.errno, f"cannot write the synthetic set to {root}: {e.strerror or e}"
                      ) from None
    return root


# Settings added after a set's layout, with the value that draws exactly what the code drew
# before them: left out of the stamp at that value, so the sets already on disk stay current.
_ADDED_NEUTRAL = {"colour_prob": 0.0, "hue_groups": 0, "mark_site": "head",
                  "mark_offset": 0.0}


def _stamp(cfg: SyntheticConfig) -> str:
    drawn = {**asdict(cfg), "mark_offset": cfg.body_offset}  # None stamps as what it draws
    settings = {k: v for k, v in drawn.items() if _ADDED_NEUTRAL.get(k, object()) != v}
    return json.dumps({**settings, "layout": LAYOUT}, sort_keys=True)


def is_generated(root: str | os.PathLike, cfg: SyntheticConfig) -> bool:
    """Whether ``root`` holds a complete set generated with exactly ``cfg``."""
    stamp, done = Path(root) / "config.json", Path(root) / ".complete"
    return done.exists() and stamp.exists() and stamp.read_text() == _stamp(cfg)


def seed_folder(base: str | os.PathLike, seed: int) -> Path:
    """The default data folder of one seed: ``<base>/seed<seed>`` (jobs of different seeds
    never share, and so never rewrite, one set)."""
    return Path(base) / f"seed{seed}"


def split_paths(root: str | os.PathLike, split: str) -> dict[str, Path]:
    """Keyword arguments for ``WSOLDataset`` on a generated split."""
    root = Path(root)
    return {
        "data_root": root / "images",
        "metadata_dir": root / "metadata" / split,
        "mask_root": root / "masks",
        "mask_metadata_dir": root / "metadata_masks" / split,
    }


def part_masks(root: str | os.PathLike, split: str, size: int) -> torch.Tensor:
    """The part masks (the head, or the body's mark disc) of a generated split, in the order of
    its metadata, nearest-resized to ``size`` x ``size`` like the GT masks -> bool (N, size,
    size)."""
    from fcam_nb.data.wsol import load_mask_image, read_metadata

    root = Path(root)
    meta = read_metadata(root / "metadata" / split)
    return torch.from_numpy(np.stack([load_mask_image(root / "parts" / image_id, size) > 127
                                      for image_id in meta.image_ids]))
