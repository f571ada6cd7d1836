"""The six baseline CAM methods (+ ScoreCAM), batched, and map post-processing."""

from fcam_nb.cams.methods import (
    BASELINES,
    CAM,
    DISPLAY_NAMES,
    METHODS,
    GradCAM,
    GradCAMpp,
    LayerCAM,
    ScoreCAM,
    SmoothGradCAMpp,
    XGradCAM,
    build_cam_method,
    display_name,
    maps_from_one_pass,
    normalize_maps,
    upsample_maps,
)

__all__ = [
    "BASELINES",
    "CAM",
    "DISPLAY_NAMES",
    "METHODS",
    "GradCAM",
    "GradCAMpp",
    "LayerCAM",
    "ScoreCAM",
    "SmoothGradCAMpp",
    "XGradCAM",
    "build_cam_method",
    "display_name",
    "maps_from_one_pass",
    "normalize_maps",
    "upsample_maps",
]
