"""Plotting helpers: CAM overlays with boxes, TP/FP/FN masks, metric curves, histograms, widgets.

All functions take numpy arrays or CPU tensors and return matplotlib objects; nothing is shown
or saved implicitly. One visual language for the whole series:

* localization, as the paper's figures (Fig. 3, 4, 7, A.6-A.11): GT box green, predicted box red;
  masks: true positive red, false negative green, false positive blue, ignore grey
  (``BOX_COLOURS``, ``MASK_COLOURS``); ``show_localization`` adds the legend;
* pixel classes, in the sampling regions and the activation histograms: object / foreground
  orange, background purple; seeds drawn as solid yellow (foreground) and cyan (background) dots
  (``REGION_COLOURS``);
* methods in line and bar plots: F-CAM always black, each baseline one colour of its own, none of
  the above (``method_colour``); the stage-2 variants (SR, +CRF, +ASC) grey to black
  (``variant_colour``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fcam_nb.metrics import best_ious_at_thresholds, boxes_at_thresholds, scoremaps_to_uint8
from fcam_nb.metrics import to_numpy as _np


def to_rgb_uint8(image) -> np.ndarray:
    """(3, H, W) float in [0, 1] or (H, W, 3) uint8 -> (H, W, 3) uint8."""
    arr = _np(image)
    if arr.ndim == 3 and arr.shape[0] == 3:
        arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
    return arr


def predicted_box(score_map, tau: float) -> np.ndarray:
    """The protocol's box (largest contour) of a [0, 1] map at threshold tau: [x0, y0, x1, y1]."""
    return boxes_at_thresholds(scoremaps_to_uint8(_np(score_map)), np.array([tau]), False)[0][0]


def overlay(image, score_map, alpha: float = 0.5, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Heat map of a [0, 1] map blended on the image -> (H, W, 3) uint8."""
    rgb = to_rgb_uint8(image)
    heat = cv2.applyColorMap(scoremaps_to_uint8(_np(score_map).astype(np.float32)), colormap)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return (alpha * heat + (1 - alpha) * rgb).astype(np.uint8)


BOX_COLOURS = {"GT box": (0, 255, 0), "predicted box": (255, 0, 0)}  # RGB


def draw_boxes(rgb: np.ndarray, gt_boxes=None, pred_box=None, thickness: int = 1) -> np.ndarray:
    """Copy of ``rgb`` with GT boxes in green and the predicted box in red (``BOX_COLOURS``)."""
    out = rgb.copy()
    for box in [] if gt_boxes is None else _np(gt_boxes).reshape(-1, 4):
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOURS["GT box"], thickness)
    if pred_box is not None:
        x0, y0, x1, y1 = (int(v) for v in _np(pred_box))
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOURS["predicted box"], thickness)
    return out


MASK_COLOURS = {"true positive": (220, 0, 0), "false negative": (0, 200, 0),
                "false positive": (0, 80, 255), "ignore": (128, 128, 128)}  # the paper's
REGION_COLOURS = {"foreground region": (255, 140, 0), "background region": (140, 60, 200),
                  "foreground seed": (255, 255, 0), "background seed": (0, 255, 255)}  # RGB
FCAM_COLOUR = "#000000"
METHOD_COLOURS = {"cam": "#8c564b", "gradcam": "#e377c2", "gradcampp": "#bcbd22",
                  "smoothgradcampp": "#17becf", "xgradcam": "#7f7f7f", "layercam": "#9edae5",
                  "scorecam": "#c49c94", "center_prior": "#c7c7c7"}
VARIANT_COLOURS = {"SR": "#b0b0b0", "SR+ASC": "#888888", "SR+CRF": "#606060",
                   "SR+CRF+ASC": FCAM_COLOUR}


def _method_key(name: str) -> str:
    key = name.lower().replace("++", "pp").replace("-", "").replace(" ", "")
    return {"centerprior": "center_prior", "centreprior": "center_prior"}.get(key, key)


def method_colour(name: str) -> str:
    """The colour of a method in every line / bar plot of the series: F-CAM (any name holding
    ``fcam``: "F-CAM", "cam+fcam") black, a baseline its own colour (registry names or display
    names: "gradcampp", "GradCAM++"); an unknown name raises."""
    key = _method_key(name)
    if "fcam" in key:
        return FCAM_COLOUR
    if key not in METHOD_COLOURS:
        raise KeyError(f"no colour for method {name!r}; known: {sorted(METHOD_COLOURS)} and F-CAM")
    return METHOD_COLOURS[key]


def variant_colour(label: str) -> str:
    """Stage-2 variants (``Variant.label``: SR, SR+CRF, SR+CRF+ASC): grey to black."""
    key = label.replace("F-CAM", "").replace(" ", "").strip("()")
    return VARIANT_COLOURS.get(key, VARIANT_COLOURS["SR+CRF+ASC"])


def mask_errors(score_map, gt_mask, tau: float) -> np.ndarray:
    """``score_map >= tau`` against the GT mask as RGB uint8 (H, W, 3) in ``MASK_COLOURS``:
    TP red, FN green, FP blue (the paper's), TN black, ignore grey."""
    pred = _np(score_map) >= tau
    gt = _np(gt_mask)
    out = np.zeros((*pred.shape, 3), np.uint8)
    out[pred & (gt == 1)] = MASK_COLOURS["true positive"]
    out[~pred & (gt == 1)] = MASK_COLOURS["false negative"]
    out[pred & (gt == 0)] = MASK_COLOURS["false positive"]
    out[gt == 255] = MASK_COLOURS["ignore"]
    return out


def localization_legend(fig: Figure, masks: bool, boxes: bool = True) -> None:
    """A figure legend naming the colours: GT / predicted boxes and, with ``masks``, TP/FN/FP."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    if boxes:
        handles += [Line2D([], [], color=np.array(c) / 255, label=name)
                    for name, c in BOX_COLOURS.items()]
    if masks:
        handles += [Patch(color=np.array(c) / 255, label=name)
                    for name, c in MASK_COLOURS.items()]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))


def show_localization(
    images, maps: Sequence, titles: Sequence[str], gt_boxes=None, tau: float | Sequence = 0.5,
    masks=None, ncols: int | None = None, scale: float = 2.2,
):
    """Grid: one row per image; per map an overlay with GT (green) and predicted (red) boxes,
    plus a TP/FN/FP panel (red/green/blue) when masks are given, a legend of the colours and
    the maps' colour bar.
    ``maps``: list (one per method) of (N, H, W). Returns the figure."""
    n = len(images)
    taus = list(tau) if isinstance(tau, Sequence) else [tau] * len(maps)
    cols = 1 + len(maps) * (2 if masks is not None else 1)
    fig, axes = plt.subplots(n, cols, figsize=(scale * cols, scale * n), squeeze=False)
    for i in range(n):
        rgb = to_rgb_uint8(images[i])
        axes[i, 0].imshow(draw_boxes(rgb, None if gt_boxes is None else gt_boxes[i]))
        c = 1
        for m, name, t in zip(maps, titles, taus, strict=True):
            panel = overlay(rgb, m[i])
            box = predicted_box(m[i], t)
            axes[i, c].imshow(draw_boxes(panel, None if gt_boxes is None else gt_boxes[i], box))
            axes[i, c].set_title(name if i == 0 else "", fontsize=9)
            c += 1
            if masks is not None:
                axes[i, c].imshow(mask_errors(m[i], masks[i], t))
                axes[i, c].set_title(f"{name} TP/FP/FN" if i == 0 else "", fontsize=9)
                c += 1
    axes[0, 0].set_title("image + GT", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.06 / max(n, 1), 0.92, 1))
    map_colour_bar(fig, fig.add_axes((0.935, 0.25, 0.015, 0.5)))
    localization_legend(fig, masks=masks is not None, boxes=gt_boxes is not None)
    return fig


def map_colour_bar(fig: Figure, cax) -> None:
    """The colour bar of the maps' overlays (jet over [0, 1]) in the axes ``cax``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), "jet"), cax=cax)
    bar.set_label("map value", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def plot_curves(taus: np.ndarray, curves: dict[str, np.ndarray], ylabel: str, ax=None,
                title: str = ""):
    """Metric vs threshold tau for several methods (paper Fig. 5). Returns the axes."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for name, values in curves.items():
        ax.plot(taus, values, label=name, color=method_colour(name))
    ax.set_xlabel("CAM threshold τ")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_histograms(edges: np.ndarray, fg: np.ndarray, bg: np.ndarray, ax=None, title: str = ""):
    """Foreground vs background activation densities (paper Fig. 6). Returns the axes."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    ax.bar(centers, fg, width=width, alpha=0.6, label="object pixels",
           color=np.array(REGION_COLOURS["foreground region"]) / 255)
    ax.bar(centers, bg, width=width, alpha=0.6, label="background pixels",
           color=np.array(REGION_COLOURS["background region"]) / 255)
    ax.set_xlabel("activation (map value in [0, 1])")
    ax.set_ylabel("density (area 1 per class)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def iou_per_image(maps, gt_boxes, tau: float) -> np.ndarray:
    """IoU of the largest-contour box at ``tau`` with the best GT box, per image (N,)."""
    q = scoremaps_to_uint8(_np(maps))
    return np.array([
        best_ious_at_thresholds(q[i], _np(gt_boxes[i]).reshape(-1, 4), np.array([tau]), False)[0]
        for i in range(len(q))
    ])


def mask_iou_per_image(maps, gt_masks, tau: float) -> np.ndarray:
    """Pixel IoU of ``maps >= tau`` with the GT object (mask == 1; ignore pixels left out), (N,)."""
    pred = _np(maps) >= tau
    gt = _np(gt_masks)
    keep = gt != 255
    fg = gt == 1
    inter = (pred & fg & keep).reshape(len(pred), -1).sum(1)
    union = ((pred | fg) & keep).reshape(len(pred), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _figure_png(fig: Figure) -> bytes:
    """PNG bytes of a figure drawn with the Agg canvas (no pyplot, no backend, no display)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def enable_colab_widgets() -> bool:
    """On Colab with ipywidgets 8, turn on Colab's custom widget manager (without it the
    sliders do not render there; Colab's own ipywidgets 7.7.1 needs nothing). Returns whether it
    was turned on; elsewhere a no-op."""
    import sys

    if "google.colab" not in sys.modules:
        return False
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) < 8:
        return False
    from google.colab import output  # Colab only

    output.enable_custom_widget_manager()
    return True


def _explorer(draw: Callable[..., Figure], sliders: dict):
    """Sliders + an image widget redrawn by ``draw(**values)`` on every change.

    The figure is rendered to PNG and shown in an ``ipywidgets.Image``: no ``Output`` widget
    and no ``plt.show()`` inside a widget callback, which is what hung headless kernels (nbclient,
    inline backend) intermittently."""
    import ipywidgets as widgets

    enable_colab_widgets()
    image = widgets.Image(format="png")

    def refresh(_change=None) -> None:
        image.value = _figure_png(draw(**{name: s.value for name, s in sliders.items()}))

    for slider in sliders.values():
        slider.observe(refresh, names="value")
    refresh()
    return widgets.VBox([widgets.HBox(list(sliders.values())), image])


def threshold_figure(images, maps: dict[str, np.ndarray], gt_boxes, taus: Sequence[float],
                     i: int = 0) -> Figure:
    """Image ``i`` with each method's box at each tau: one row per tau, one column per method
    (maps (N, H, W) in [0, 1]; GT box green, predicted red). A static view of the explorer."""
    fig = Figure(figsize=(2.6 * len(maps), 2.6 * len(taus) + 0.3))
    axes = fig.subplots(len(taus), len(maps), squeeze=False)
    rgb = to_rgb_uint8(images[i])
    for row, tau in zip(axes, taus, strict=True):
        for ax, (name, m) in zip(row, maps.items(), strict=True):
            ax.imshow(draw_boxes(overlay(rgb, m[i]), gt_boxes[i], predicted_box(m[i], tau)))
            ax.set_title(f"{name}, τ = {tau:.2f}", fontsize=9)
            ax.axis("off")
    localization_legend(fig, masks=False)
    return fig


def threshold_explorer(images, maps: dict[str, np.ndarray], gt_boxes, index: int = 0):
    """ipywidgets sliders over tau and the image, showing each method's box (notebook only)."""
    import ipywidgets as widgets

    return _explorer(lambda tau, i: threshold_figure(images, maps, gt_boxes, (tau,), i), {
        "tau": widgets.FloatSlider(value=0.5, min=0.0, max=0.99, step=0.01, description="τ"),
        "i": widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
    })


def regions_overlay(image, fg, bg, seeds=None, seed_radius: int = 2) -> np.ndarray:
    """Image with the foreground region tinted orange, the background region purple and seed
    pixels (1 = fg, 0 = bg) drawn as solid yellow / cyan dots of ``seed_radius`` pixels (a seed
    is one pixel: a dot makes it visible) -> (H, W, 3) uint8 (``REGION_COLOURS``)."""
    rgb = to_rgb_uint8(image).astype(np.float32)
    fg, bg = _np(fg).astype(bool), _np(bg).astype(bool)
    rgb[fg] = 0.5 * rgb[fg] + 0.5 * np.array(REGION_COLOURS["foreground region"])
    rgb[bg] = 0.5 * rgb[bg] + 0.5 * np.array(REGION_COLOURS["background region"])
    out = np.ascontiguousarray(rgb.astype(np.uint8))
    if seeds is not None:
        s = _np(seeds)
        for label, name in ((1, "foreground seed"), (0, "background seed")):
            for y, x in np.argwhere(s == label):
                cv2.circle(out, (int(x), int(y)), seed_radius, REGION_COLOURS[name], -1)
                cv2.circle(out, (int(x), int(y)), seed_radius + 1, (0, 0, 0), 1)
    return out


def sampling_figure(images, cams, n_bgs: Sequence[float], seeds: int = 1, step: int = 0,
                    erode_ksz: int = 11) -> Figure:
    """Sampling regions and seeds (see ``regions_overlay``) for each n- (rows) on each image
    (columns); cams (N, H, W) in [0, 1]. ``step`` seeds the random draw. A static view of the
    explorer."""
    from fcam_nb.sampling import background_region, foreground_region, seed_labels

    cams_t = torch.as_tensor(_np(cams))
    fg = foreground_region(cams_t, erode_ksz)
    n = len(images)
    fig = Figure(figsize=(2.2 * n, 2.3 * len(n_bgs)))
    axes = fig.subplots(len(n_bgs), n, squeeze=False)
    for row, n_bg in zip(axes, n_bgs, strict=True):
        bg = background_region(cams_t, n_bg)
        lab = seed_labels(cams_t, n_bg, seeds, seeds, 3, erode_ksz,
                          torch.Generator().manual_seed(step))
        for i, ax in enumerate(row):
            ax.imshow(regions_overlay(images[i], fg[i], bg[i], lab[i]))
            ax.axis("off")
        row[0].set_title(f"n⁻ = {n_bg:.2f}", fontsize=9, loc="left")
    regions_legend(fig)
    return fig


def regions_legend(fig: Figure) -> None:
    """A figure legend of the sampling colours (regions and seeds, ``REGION_COLOURS``)."""
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=np.array(c) / 255, label=n)
                        for n, c in REGION_COLOURS.items()],
               loc="lower center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))


def sampling_explorer(images, cams, erode_ksz: int = 11):
    """ipywidgets explorer of the sampling regions: n- (background fraction) and seed counts."""
    import ipywidgets as widgets

    def draw(n_bg: float, seeds: int, step: int) -> Figure:
        return sampling_figure(images, cams, (n_bg,), seeds, step, erode_ksz)

    return _explorer(draw, {
        "n_bg": widgets.FloatSlider(value=0.3, min=0.1, max=0.7, step=0.05, description="n⁻"),
        "seeds": widgets.IntSlider(value=1, min=1, max=10, description="seeds"),
        "step": widgets.IntSlider(value=0, min=0, max=20, description="step"),
    })


def decoder_diagram(model, size: tuple[int, int] = (224, 224)) -> str:
    """A text diagram of an F-CAM model (``fcam_nb.models.FCAM``): the encoder's feature maps
    (channels x height x width for one ``size`` image), which of them feed the decoder as skips,
    each decoder block's output and the 2-channel full-resolution output."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    shapes: list[tuple[int, ...]] = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
             for block in model.decoder.blocks]
    try:
        with torch.no_grad():
            feats, _ = model.classifier.forward_features(torch.zeros(1, 3, *size, device=device))
            seg = model.decoder(list(feats), size)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)

    def fmt(shape) -> str:
        return " x ".join(str(v) for v in shape)

    n = len(feats)
    lines = [f"{'input image':26s} {fmt((3, *size)):>16s}"]
    for k, f in enumerate(feats):
        role = "deepest: the CAM's features" if k == n - 1 else f"skip {k + 1} (to block {n - 1 - k})"
        lines.append(f"{'encoder map ' + str(k + 1):26s} {fmt(f.shape[1:]):>16s}   {role}")
    for i, shape in enumerate(shapes):
        how = (f"upsample to skip {n - 1 - i}'s size, concat it" if i < n - 1
               else "upsample x2 (no skip left)")
        lines.append(f"{'decoder block ' + str(i + 1):26s} {fmt(shape):>16s}   {how}, "
                     "two conv-BN-ReLU")
    lines.append(f"{'output (logits)':26s} {fmt(seg.shape[1:]):>16s}   background / foreground; "
                 "softmax -> F-CAM's map")
    return "\n".join(lines)
