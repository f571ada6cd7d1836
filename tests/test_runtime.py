"""Timing of map construction: one positive figure per method and for F-CAM."""

import torch

from fcam_nb.models import FCAM, build_classifier, build_decoder
from fcam_nb.runtime import time_maps


def test_time_maps_reports_ms_per_image_for_each_method():
    torch.manual_seed(0)
    clf = build_classifier("tiny", 3).eval()
    fcam = FCAM(clf, build_decoder(clf.encoder)).eval()
    ms = time_maps(clf, fcam, torch.randn(2, 3, 32, 32), ["cam", "gradcampp"], repeats=1)
    assert sorted(ms) == ["cam", "fcam", "gradcampp"]
    assert all(v > 0 for v in ms.values())
    assert sorted(time_maps(clf, None, torch.randn(1, 3, 32, 32), ["layercam"], 1)) == ["layercam"]
