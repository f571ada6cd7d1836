"""The six baseline CAM methods (+ ScoreCAM), batched, and map post-processing."""

from fcam_nb.cams.methods import (
    BASELINES,
    CAM,
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
    register_cam_method,
    upsample_maps,
)

__all__ = [
    "BASELINES",
    "CAM",
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
    "register_cam_method",
    "upsample_maps",
]
