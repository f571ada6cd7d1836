"""The notebooks' closing paragraphs follow their numbers: a claim flips when the numbers do."""

from fcam_nb.course import closing


def _coverage(head, rest, cam_obj, cam_on, fcam_obj, fcam_on):
    return {"CAM": {"part_covered": head, "rest_covered": rest, "object_covered": cam_obj,
                    "region_on_object": cam_on},
            "F-CAM": {"object_covered": fcam_obj, "region_on_object": fcam_on}}


def test_closing_01_reads_the_mark_and_fcam_against_the_cam():
    good = closing.closing_01(98.5, 0.35, 80, 55, _coverage(97, 50, 60, 55, 85, 90), (16, 16),
                              (64, 64), True, True)
    assert "16x16 map upsampled to 64x64: at its best threshold" in good
    assert "45% of the region is background" in good and "On validation, F-CAM's" in good
    assert "low-resolution overshoot" in good and "concentrated on the discriminative part" in good
    assert "the paper's claim" in good and "opposite" not in good
    bad = closing.closing_01(98.5, 0.35, 80, 90, _coverage(60, 70, 60, 55, 50, 40), (16, 16),
                             (64, 64), True, False)
    assert "overshoot" not in bad and "does not favour the mark" in bad
    assert "at the threshold (τ = 0.35)" in bad  # a fixed τ is not called the best
    assert "the opposite of the paper's claim" in bad
    weak = closing.closing_01(90, 0.5, 80, 60, _coverage(80, 70, 60, 55, 70, 50), (8, 8), (64, 64),
                               True, True)
    assert "by less than 20 points" in weak and "but with more background" in weak
    no_parts = _coverage(0, 0, 60, 55, 70, 60)  # the coverage without part masks: no mark
    assert "mark" not in closing.closing_01(90, 0.5, 80, 60, no_parts, (8, 8), (64, 64), False,
                                            True)


def test_closing_02_orders_object_sizes_only_when_every_level_agrees():
    levels = [0.1, 0.3, 0.5]
    text = closing.closing_02(True, levels, {"large objects": [30, 20, 40],
                                             "small objects": [10, 5, 20]}, 0.3)
    assert "n⁻ = 0.3 the background region puts 20.0%" in text and "3 of 3" in text
    assert "equals scikit-image's" in text and "0.3 (large objects), 0.3 (small objects)" in text
    assert "do not call for a smaller n⁻" in text  # more risk everywhere is not a smaller best
    text = closing.closing_02(True, levels, {"large objects": [30, 20, 40],
                                             "small objects": [10, 15, 5]}, 0.3)
    assert "a smaller n⁻ for the large objects" in text
    mixed = closing.closing_02(False, levels, {"large objects": [30, 2, 40],
                                               "small objects": [10, 5, 20]}, 0.3)
    assert "2 of 3" in mixed and "does not order the risk" in mixed and "defect" in mixed


def test_closing_03_compares_each_step_with_the_paper():
    rows = {"CAM (baseline)": {"m": 10.0}, "SR": {"m": 20.0}, "SR+CRF": {"m": 60.0},
            "SR+CRF+ASC": {"m": 55.0}}
    text = closing.closing_03(rows, "m", "MaxBoxAcc", (15.9, 3.4, 3.3), {"n_bg": 0.3})
    assert "SR +10.0 points (paper +15.9 points)" in text and "ASC -5.0 points" in text
    assert "largest step here is CRF; in the paper it is SR" in text
    assert "ASC lowered the score" in text and "chose n_bg = 0.3" in text
    rows["SR"]["m"], rows["SR+CRF+ASC"]["m"] = 58.0, 62.0
    text = closing.closing_03(rows, "m", "MaxBoxAcc", (15.9, 3.4, 3.3), None)
    assert "largest step here is SR, as in the paper" in text and "lowered" not in text
    assert "chose" not in text


def test_closing_04_counts_wins_and_reads_the_prior():
    table = {"cam": {"k": 20.0}, "cam + F-CAM": {"k": 60.0},
             "layercam": {"k": 30.0}, "layercam + F-CAM": {"k": 25.0}}
    names = {"cam": "CAM", "layercam": "LayerCAM"}
    text = closing.closing_04(table, {"k": 50.0}, ["cam", "layercam"], "k", "MaxBoxAcc", 4.2,
                              names)
    assert "for 1 of 2 CAM methods" in text and "It does not for LayerCAM" in text
    assert "-30.0 points against the centre prior" in text and "worse than a fixed guess" in text
    table["layercam + F-CAM"]["k"], table["cam"]["k"] = 35.0, 55.0
    text = closing.closing_04(table, {"k": 50.0}, ["cam", "layercam"], "k", "MaxBoxAcc", 4.2,
                              names)
    assert "2 of 2" in text and "does not for" not in text and "fixed guess" not in text


def test_closing_05_and_06_and_07_follow_their_numbers():
    best = {"F-CAM": (90.0, 0.4), "CAM": (50.0, 0.2)}
    wide = closing.closing_05({"F-CAM": 0.5, "CAM": 0.1}, best, {"F-CAM": 0.7, "CAM": 0.2})
    assert "over 50% of the thresholds" in wide and "costs F-CAM less" in wide
    assert "separates object from background more" in wide
    narrow = closing.closing_05({"F-CAM": 0.1, "CAM": 0.5}, best, {"F-CAM": 0.1, "CAM": 0.2})
    assert "not the less threshold-sensitive" in narrow and "not better separated" in narrow
    assert "box accuracy" not in closing.closing_05(None, None, {"F-CAM": 0.7, "CAM": 0.2})

    report = {"a": {"precision": 40.0, "recall": 20.0, "chance_precision": 25.0},
              "b": {"precision": 40.0, "recall": 10.0, "chance_precision": 25.0},
              "c": {"precision": 10.0, "recall": 5.0, "chance_precision": 25.0}}
    text = closing.closing_06(80, 20, 200, report)
    assert "on 20 of 200 test images, the CAM on 80: fewer failures with F-CAM" in text
    assert "a and b are the most precise (40.0% against 25.0% by chance; recall 20.0%, 10.0%)" \
        in text and "2 of 3" in text
    for r in report.values():
        r["precision"] = 20.0
    text = closing.closing_06(20, 30, 200, report)
    assert "does not reduce" in text and "No label-free flag beats chance" in text
    text = closing.closing_06(5, 0, 200, report)
    assert "no failure, a flag has nothing to find" in text and "beats chance" not in text

    ms = {"cam": 4.0, "gradcam": 8.0, "fcam": 5.0, "smoothgradcampp": 30.0, "scorecam": 400.0}
    text = closing.closing_07(ms, 1.2, "cpu")
    assert "5.00 ms per image against the CAM's 4.00 ms (1.25x; the FLOPs predict 1.20x)" in text
    assert "It is faster than Smooth-GradCAM++ and ScoreCAM" in text and "one decoder pass" in text
    ms["fcam"] = 40.0
    text = closing.closing_07(ms, 1.2, "cuda")
    assert "It is faster than ScoreCAM, which needs" in text
    assert "not faster than Smooth-GradCAM++ on this device" in text
    assert "costs more than the classifier" in text
