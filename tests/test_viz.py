"""Plotting helpers: the protocol's box, per-image IoU, colour codes, figure assembly."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fcam_nb.course.viz import (  # noqa: E402
    iou_per_image,
    mask_errors,
    overlay,
    predicted_box,
    regions_overlay,
    show_localization,
    to_rgb_uint8,
)


def _rect_map(x0=4, y0=6, x1=13, y1=9, size=20):
    m = np.zeros((size, size), np.float32)
    m[y0 : y1 + 1, x0 : x1 + 1] = 1.0
    return m


def test_predicted_box_and_iou_follow_the_protocol():
    m = _rect_map()
    m[0, 0] = 0.9  # a smaller blob: the largest contour wins
    # wsolevaluation's [x, y, x + w, y + h] from boundingRect: one pixel past the blob
    assert predicted_box(m, 0.5).tolist() == [4, 6, 14, 10]
    maps = np.stack([_rect_map(), np.zeros((20, 20), np.float32)])
    ious = iou_per_image(maps, [np.array([[4, 6, 14, 10]]), np.array([[4, 6, 13, 9]])], 0.5)
    assert ious[0] == pytest.approx(1.0)
    assert ious[1] < 0.1  # nothing above tau: the [0, 0, 0, 0] box


def test_colour_codes():
    gt = np.array([[1, 1, 0, 255]], np.uint8)
    score = np.array([[0.9, 0.1, 0.9, 0.9]], np.float32)
    out = mask_errors(score, gt, 0.5)
    # the paper's colours: TP red, FN green, FP blue (ignore grey)
    assert out[0].tolist() == [[220, 0, 0], [0, 200, 0], [0, 80, 255], [128, 128, 128]]
    image = torch.zeros(3, 1, 4)
    painted = regions_overlay(image, np.array([[1, 0, 0, 0]]), np.array([[0, 1, 0, 0]]))
    # the sampling's own pair (not the masks' red / blue): foreground orange, background purple
    assert painted[0].tolist() == [[127, 70, 0], [70, 30, 100], [0, 0, 0], [0, 0, 0]]
    image = torch.zeros(3, 11, 11)
    seeds = np.full((11, 11), -255)
    seeds[2, 2], seeds[8, 8] = 1, 0
    dots = regions_overlay(image, np.zeros((11, 11)), np.zeros((11, 11)), seeds, seed_radius=2)
    # a seed is drawn as a dot a few pixels wide, in its colour, with a dark rim
    assert (dots[2, 2:5] == [255, 255, 0]).all() and (dots[8, 6:9] == [0, 255, 255]).all()
    assert (dots[5, 5] == 0).all()


def test_one_colour_per_method_across_the_series():
    from fcam_nb.cams import METHODS
    from fcam_nb.course.viz import MASK_COLOURS, method_colour, variant_colour

    assert method_colour("F-CAM") == method_colour("cam+fcam") == method_colour("fcam") == "#000000"
    assert method_colour("GradCAM++") == method_colour("gradcampp")
    assert method_colour("Smooth-GradCAM++") == method_colour("smoothgradcampp")
    colours = {method_colour(name) for name in METHODS} | {method_colour("F-CAM")}
    assert len(colours) == len(METHODS) + 1  # every method its own colour
    paper_rgb = {"#{:02x}{:02x}{:02x}".format(*c) for c in MASK_COLOURS.values()}
    assert not colours & paper_rgb
    with pytest.raises(KeyError, match="no colour for method 'mystery'"):
        method_colour("mystery")
    assert [variant_colour(v) for v in ("SR", "SR+CRF", "SR+CRF+ASC")] == [
        "#b0b0b0", "#606060", "#000000"]


def test_the_decoder_diagram_names_every_map_and_the_full_resolution_output():
    from fcam_nb.course.viz import decoder_diagram
    from fcam_nb.models import FCAM, build_classifier, build_decoder

    clf = build_classifier("tiny", 4)
    model = FCAM(clf, build_decoder(clf.encoder)).train()
    text = decoder_diagram(model, (32, 32))
    assert text.splitlines()[0].split() == ["input", "image", "3", "x", "32", "x", "32"]
    assert text.count("decoder block") == len(model.decoder.blocks)
    assert "deepest: the CAM's features" in text
    assert text.splitlines()[-1].split()[2:7] == ["2", "x", "32", "x", "32"]
    assert model.training  # left as it was


def test_images_and_overlays_are_uint8_rgb():
    img = torch.rand(3, 8, 10)
    rgb = to_rgb_uint8(img)
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    assert to_rgb_uint8(rgb) is rgb
    assert overlay(img, np.random.default_rng(0).random((8, 10))).shape == (8, 10, 3)


def test_show_localization_builds_one_row_per_image():
    images = [torch.rand(3, 20, 20) for _ in range(2)]
    maps = [np.stack([_rect_map(), _rect_map()])] * 2
    masks = [torch.from_numpy(_rect_map().astype(np.uint8)) for _ in range(2)]
    fig = show_localization(images, maps, ["A", "B"], gt_boxes=[[[4, 6, 13, 9]]] * 2, tau=0.5,
                            masks=masks)
    assert len(fig.axes) == 2 * 5 + 1  # image + (map, errors) per method, and the colour bar
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["GT box", "predicted box", "true positive", "false negative",
                      "false positive", "ignore"]
    box_lines = fig.legends[0].get_lines()  # the legend shows the colours the boxes are drawn in
    assert [tuple(np.round(np.array(line.get_color()) * 255)) for line in box_lines] == [
        (0, 255, 0), (255, 0, 0)]


def test_explorers_redraw_an_image_widget_without_output_capture():
    from fcam_nb.course.viz import sampling_explorer, threshold_explorer

    images = torch.rand(2, 3, 16, 16)
    cams = torch.rand(2, 16, 16)
    box = sampling_explorer(images, cams, erode_ksz=3)
    sliders, image = box.children[0].children, box.children[1]
    first = image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    sliders[0].value = 0.6  # n- changes: the picture is redrawn
    assert image.value != first
    box = threshold_explorer(images, {"CAM": cams.numpy()}, [np.array([[1, 1, 8, 8]])] * 2)
    assert box.children[1].value[:4] == b"\x89PNG"


def test_localization_figure_has_a_colour_bar_of_the_maps():
    images = torch.rand(2, 3, 32, 32)
    maps = [np.random.default_rng(0).random((2, 32, 32)).astype("float32")]
    fig = show_localization(images, maps, ["CAM"], tau=0.5)
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "map value"]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)
    plt.close(fig)


def test_static_figures_show_each_setting_for_read_only_viewers():
    from fcam_nb.course.viz import sampling_figure, threshold_figure

    images = torch.rand(3, 3, 16, 16)
    cams = torch.rand(3, 16, 16)
    fig = threshold_figure(images, {"CAM": cams.numpy(), "F-CAM": cams.numpy()},
                           [np.array([[1, 1, 8, 8]])] * 3, taus=(0.2, 0.5, 0.8), i=1)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["CAM, τ = 0.20", "F-CAM, τ = 0.20"]
    assert len(fig.axes) == 6
    fig = sampling_figure(images, cams, n_bgs=(0.1, 0.7), erode_ksz=3)
    assert len(fig.axes) == 2 * 3
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["foreground region", "background region", "foreground seed",
                      "background seed"]
    # the rows differ: a larger n- paints more of each image blue
    blue = [np.asarray(ax.get_images()[0].get_array())[..., 2].mean() for ax in fig.axes]
    assert np.mean(blue[3:]) > np.mean(blue[:3])


def test_colab_custom_widget_manager_only_on_colab_with_ipywidgets_8(monkeypatch):
    import sys
    import types

    import ipywidgets

    from fcam_nb.course.viz import enable_colab_widgets

    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    colab = types.ModuleType("google.colab")
    colab.output = output
    assert enable_colab_widgets() is False  # not on Colab
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    sys.modules["google"].colab = colab
    monkeypatch.setattr(ipywidgets, "__version__", "7.7.1")
    assert enable_colab_widgets() is False and calls == []  # Colab's own widgets render
    monkeypatch.setattr(ipywidgets, "__version__", "8.1.5")
    assert enable_colab_widgets() is True and calls == [1]


WIDGETS_7_SCRIPT = """
import numpy as np, torch, ipywidgets
assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
from fcam_nb.course.viz import enable_colab_widgets, sampling_explorer, threshold_explorer
assert enable_colab_widgets() is False
images, cams = torch.rand(2, 3, 16, 16), torch.rand(2, 16, 16)
box = sampling_explorer(images, cams, erode_ksz=3)
sliders, image = box.children[0].children, box.children[1]
first = image.value
assert first[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
sliders[0].value = 0.6
assert image.value != first
box = threshold_explorer(images, {"CAM": cams.numpy()}, [np.array([[1, 1, 8, 8]])] * 2)
before = box.children[1].value
box.children[0].children[0].value = 0.2
assert box.children[1].value[:4] == b"\\x89PNG" and box.children[1].value != before
print("ipywidgets", ipywidgets.__version__, "ok")
"""


def test_explorers_work_with_colabs_ipywidgets_7(tmp_path):
    """The sliders under ipywidgets 7.7.1 (what Colab ships) beside the venv's 8.x: .ci/run
    installs 7.7.1 into a folder of its own and names it in FCAM_IPYWIDGETS7; this test runs the
    explorers in a fresh interpreter with that folder first on the path."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = os.environ.get("FCAM_IPYWIDGETS7")
    if not folder:
        if os.environ.get("CI"):
            pytest.fail("CI must set FCAM_IPYWIDGETS7 (.ci/run installs ipywidgets 7.7.1)")
        pytest.skip("FCAM_IPYWIDGETS7 not set: pip install --no-deps --target DIR "
                    "ipywidgets==7.7.1 ipython_genutils, then FCAM_IPYWIDGETS7=DIR")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([folder, str(root)]), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", WIDGETS_7_SCRIPT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ipywidgets 7.7.1 ok" in done.stdout
