"""Label-free failure flags and their scoring."""

import numpy as np
import pytest

from fcam_nb.course.failures import (
    cam_fcam_disagreement,
    failure_modes,
    flag_scores,
    foreground_area,
    uncertainty,
)


def test_scores_of_agreeing_and_disagreeing_maps():
    blob = np.zeros((2, 16, 16), np.float32)
    blob[:, 4:10, 4:10] = 1.0
    fcam = blob.copy()
    fcam[1] = 0.0
    fcam[1, 10:16, 10:16] = 1.0  # image 1: the decoder went elsewhere
    d = cam_fcam_disagreement(blob, fcam)
    assert d[0] == pytest.approx(0.0) and d[1] == pytest.approx(1.0)
    assert foreground_area(fcam).tolist() == pytest.approx([36 / 256, 36 / 256])
    unsure = np.full((1, 8, 8), 0.5, np.float32)
    assert uncertainty(unsure)[0] == pytest.approx(1.0, abs=1e-4)
    assert uncertainty(blob)[0] == pytest.approx(0.0, abs=1e-3)


def test_flag_scores_against_chance():
    failures = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    flagged = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    out = flag_scores(flagged, failures)
    assert (out["precision"], out["recall"], out["chance_precision"]) == (50.0, 50.0, 20.0)
    with pytest.raises(ValueError, match="must be"):
        flag_scores(flagged[:5], failures)


def test_failure_modes_sort_each_failure_once():
    failures = np.array([1, 1, 1, 1, 0], bool)
    modes = failure_modes(failures, seed_precision=np.array([0.2, 0.9, 0.9, 0.9, 0.1]),
                          predicted_area=np.array([10, 30, 5, 11, 10]),
                          object_area=np.array([10, 10, 10, 10, 10]))
    assert modes == {"cam_misled": 1, "too_large": 1, "too_small": 1, "misplaced": 1}
