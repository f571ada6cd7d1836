"""benchmarks/results_synthetic.py's README line is computed from the grid: its verdict on the
spread of F-CAM's MaxBoxAcc follows the numbers."""

import importlib.util
from pathlib import Path


def _module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results_synthetic.py"
    spec = importlib.util.spec_from_file_location("results_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(fcam_min: float, fcam_max: float) -> dict:
    stat = {"min": 40.0, "mean": 50.0, "std": 1.0, "max": 60.0}
    fcam = {"max_box_acc": {"min": fcam_min, "mean": 80.0, "std": 1.0, "max": fcam_max},
            "pxap": stat}
    return {"summary": {"cpu 1 threads": {"seeds": [0, 1], "stats": {
        "center_prior": {"max_box_acc": stat}, "cam": {"max_box_acc": stat, "pxap": stat},
        "cam+fcam": fcam}}}}


def test_the_results_line_reads_the_spread():
    line = _module().results_line
    wide = line(_result(29.0, 98.0))
    assert "**F-CAM 29.0 / 80.0 MaxBoxAcc" in wide and "a spread of 69.0 points" in wide
    assert "does not yet give the same lesson" in wide
    narrow = line(_result(90.0, 97.5))
    assert "a spread of 7.5 points (within the 10" in narrow and "not yet" not in narrow
