"""Timing of map construction: one positive figure per method and for F-CAM."""

import torch

from fcam_nb.course.runtime import time_maps
from fcam_nb.models import FCAM, build_classifier, build_decoder


def test_time_maps_reports_ms_per_image_for_each_method():
    torch.manual_seed(0)
    clf = build_classifier("tiny", 3).eval()
    fcam = FCAM(clf, build_decoder(clf.encoder)).eval()
    ms = time_maps(clf, fcam, torch.randn(2, 3, 32, 32), ["cam", "gradcampp"], repeats=1)
    assert sorted(ms) == ["cam", "fcam", "gradcampp"]
    assert all(v > 0 for v in ms.values())
    assert sorted(time_maps(clf, None, torch.randn(1, 3, 32, 32), ["layercam"], 1)) == ["layercam"]


def test_time_maps_takes_the_median_of_synchronized_calls(monkeypatch):
    """One warm-up call, then each timed call alone: a single slow call (a hiccup) does not move
    the median."""
    import fcam_nb.course.runtime as runtime

    clock = iter([0.0, 1.0, 1.0, 1.002, 2.0, 2.001])  # calls of 1000, 2 and 1 ms
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(clock))
    clf = build_classifier("tiny", 3).eval()
    ms = time_maps(clf, None, torch.randn(1, 3, 32, 32), ["cam"], repeats=3)
    assert abs(ms["cam"] - 2.0) < 1e-6
