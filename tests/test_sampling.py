import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from fcam_nb.sampling import (
    IGNORE,
    background_region,
    foreground_region,
    otsu_threshold_uint8,
    sample_pixels,
    seed_labels,
)


def test_otsu_equals_skimage_on_uint8():
    rng = np.random.default_rng(0)
    imgs = []
    for k in range(40):
        if k % 4 == 0:
            img = rng.integers(0, 256, (16, 16))
        elif k % 4 == 1:  # bimodal
            img = np.where(rng.random((16, 16)) < 0.3, rng.integers(180, 220, (16, 16)),
                           rng.integers(10, 60, (16, 16)))
        elif k % 4 == 2:  # narrow range, ties likely
            img = rng.integers(100, 104, (16, 16))
        else:
            img = np.full((16, 16), 7)
            img[0, :3] = 9  # two values
        imgs.append(img.astype(np.uint8))
    imgs.append(np.full((16, 16), 42, np.uint8))  # constant
    got = otsu_threshold_uint8(torch.from_numpy(np.stack(imgs)))
    expected = [int(threshold_otsu(i)) for i in imgs]
    assert got.tolist() == expected


def test_foreground_region_erodes_and_reverts():
    cams = torch.zeros(2, 32, 32)
    cams[0, 4:28, 4:28] = 1.0  # 24x24 -> eroded by 11x11 to 14x14
    cams[1, 10:14, 10:14] = 1.0  # 4x4 -> erosion empties it -> reverted
    fg = foreground_region(cams)
    assert fg[0].sum() == 14 * 14
    assert fg[1].sum() == 16


def test_erosion_border_counts_as_foreground():
    cams = torch.zeros(1, 32, 32)
    cams[0, :, :16] = 1.0  # touches three borders
    fg = foreground_region(cams)
    assert fg[0, :, :11].all() and not fg[0, :, 11:].any()


def test_background_region_lowest_fraction():
    cams = torch.arange(100.0).view(1, 10, 10) / 99
    bg = background_region(cams, 0.3)
    assert bg.sum() == 30 and bg.view(-1)[:30].all()
    with pytest.raises(ValueError):
        background_region(cams, 1.5)


def test_sample_pixels_inside_region_and_count():
    g = torch.Generator().manual_seed(0)
    region = torch.zeros(3, 8, 8, dtype=torch.bool)
    region[0, 2:4, 2:4] = True
    region[1, 0, 0] = True  # fewer pixels than k
    picked = sample_pixels(region, 2, g)
    assert (picked & ~region).sum() == 0
    assert picked[0].sum() == 2 and picked[1].sum() == 1 and picked[2].sum() == 0


def test_seed_labels_values_and_randomness():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    cam = torch.exp(-((xx - 20) ** 2 + (yy - 12) ** 2) / 40)[None].repeat(4, 1, 1)
    cam = cam / cam.amax(dim=(1, 2), keepdim=True)
    g = torch.Generator().manual_seed(1)
    labels = seed_labels(cam, n_bg=0.3, n_fg_seeds=1, n_bg_seeds=1, generator=g)
    assert set(labels.unique().tolist()) <= {IGNORE, 0, 1}
    for i in range(4):
        assert (labels[i] == 1).sum() == 9 and (labels[i] == 0).sum() >= 4  # 3x3 dilation
        # foreground seeds sit where the CAM is high, background seeds where it is low
        assert cam[i][labels[i] == 1].min() > cam[i][labels[i] == 0].max()
    assert not torch.equal(labels[0], labels[1])  # fresh randomness per image


def test_constant_cam_all_ignore_and_nan():
    labels = seed_labels(torch.full((2, 8, 8), 0.5))
    assert (labels == IGNORE).all()
    with pytest.raises(ValueError, match="NaN"):
        seed_labels(torch.full((1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        seed_labels(torch.zeros(8, 8))


def test_overlap_goes_to_ignore():
    cams = torch.zeros(1, 4, 4)
    cams[0, 0, 0] = 1.0
    # tiny image: fg = the single bright pixel; bg = lowest 90% includes its neighbours
    labels = seed_labels(cams, n_bg=0.9, n_fg_seeds=1, n_bg_seeds=14, dilate_ksz=3,
                         generator=torch.Generator().manual_seed(0))
    assert labels[0, 0, 0] == IGNORE or labels[0, 0, 0] == 1
    assert (labels == 1).sum() + (labels == 0).sum() <= 16


def test_seed_labels_are_the_same_on_every_device(device):
    """Sampling runs on the maps' device; the random keys come from the CPU generator, so the
    seeds do not depend on where the maps live."""
    cam = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(2))
    ref = seed_labels(cam, 0.4, 2, 2, 3, 5, torch.Generator().manual_seed(0))
    got = seed_labels(cam.to(device), 0.4, 2, 2, 3, 5, torch.Generator().manual_seed(0))
    assert got.device.type == device.type
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=0)
