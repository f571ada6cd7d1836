"""benchmarks/results_synthetic.py's README line is computed from the grid: its verdict on the
spread of F-CAM's MaxBoxAcc and on the per-run checks follows the numbers."""

import importlib.util
from pathlib import Path


def _module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results_synthetic.py"
    spec = importlib.util.spec_from_file_location("results_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(fcam_min: float, fcam_max: float, failed: int = 0) -> dict:
    stat = {"min": 40.0, "mean": 50.0, "std": 1.0, "max": 60.0}
    fcam = {"max_box_acc": {"min": fcam_min, "mean": 80.0, "std": 1.0, "max": fcam_max},
            "pxap": stat}
    return {"summary": {"cpu 1 threads": {"seeds": [0, 1], "stats": {
        "center_prior": {"max_box_acc": stat}, "cam": {"max_box_acc": stat, "pxap": stat},
        "cam+fcam": fcam}, "runs": 2,
        "checks_passed": {"fcam_box_gain": 2 - failed, "cam_on_part": 2}}}}


def test_the_results_line_reads_the_spread():
    line = _module().results_line
    wide = line(_result(29.0, 98.0))
    assert "**F-CAM 29.0 / 80.0 MaxBoxAcc" in wide and "a spread of 69.0 points" in wide
    assert "(issue 22 allows 10)" in wide
    narrow = line(_result(90.0, 97.5))
    assert "a spread of 7.5 points (within the 10" in narrow
    assert "every run passes every check" in narrow and "failed" not in narrow
    one_failed = line(_result(90.0, 97.5, failed=1))
    assert "checks failed: fcam_box_gain on 1 of 2 runs" in one_failed
    assert "every run passes" not in one_failed


def test_the_main_job_block_names_ties():
    module = _module()

    def row(seed, fcam):
        scores = {k: 50.0 for k in module.KEYS}
        return {"device": "cpu", "threads": 2, "seed": seed,
                "scores": {"center_prior": scores, "cam": scores,
                           "cam+fcam": dict(scores, max_box_acc=fcam)}}

    rows = [row(s, b) for s, b in enumerate((100.0, 69.0, 100.0, 99.0, 100.0))]
    block = module.main_job_block({"rows": rows, "date": "d", "machine": "m"})
    assert "ranks 3 of 5 seeds there (lowest first; tied with 2 other seeds)" in block
    rows[2]["scores"]["cam+fcam"]["max_box_acc"] = 98.0
    rows[4]["scores"]["cam+fcam"]["max_box_acc"] = 97.0
    assert "ranks 5 of 5 seeds there (lowest first);" in module.main_job_block(
        {"rows": rows, "date": "d", "machine": "m"})
