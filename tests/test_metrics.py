"""Metrics against the literal wsolevaluation loop and hand-computed quirk cases."""

import cv2
import numpy as np
import pytest
import torch

from fcam_nb.metrics import (
    BoxAccumulator,
    PxAPAccumulator,
    activation_histograms,
    best_ious_at_thresholds,
    check_scoremaps,
    max_box_acc_v1,
    max_box_acc_v2,
    multiple_iou,
    reference_box_correct,
    scoremaps_to_uint8,
    threshold_list,
)


def _random_map(rng, size=64, blobs=3):
    yy, xx = np.mgrid[:size, :size]
    m = np.zeros((size, size), np.float32)
    for _ in range(blobs):
        cx, cy = rng.uniform(0, size, 2)
        s = rng.uniform(3, size / 4)
        m += rng.uniform(0.2, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    m += rng.uniform(0, 0.05, m.shape).astype(np.float32)
    m -= m.min()
    return (m / m.max()).astype(np.float32)


@pytest.mark.parametrize("multi", [False, True])
def test_fast_boxes_equal_reference_loop(multi):
    rng = np.random.default_rng(0)
    taus = threshold_list(0.001)
    for k in range(12):
        m = _random_map(rng, size=48 + k, blobs=1 + k % 4)
        if k == 5:
            m = m * 0.3  # max below 1 -> q.max() < 255
        gt = np.array([[5, 6, 30, 28], [10, 2, 40, 20]])[: 1 + k % 2]
        ref = reference_box_correct(m, gt, taus, multi, (30, 50, 70))
        best = best_ious_at_thresholds(scoremaps_to_uint8(m), gt, taus, multi)
        for d in (30, 50, 70):
            np.testing.assert_array_equal((best >= d / 100).astype(np.int64), ref[d])


def test_accumulator_equals_reference_dataset_level():
    rng = np.random.default_rng(1)
    maps = np.stack([_random_map(rng, 64) for _ in range(6)])
    gts = [np.array([[8, 8, 40, 30]]), np.array([[0, 0, 63, 63]]), np.array([[20, 20, 50, 60]])] * 2
    taus = threshold_list(0.01)
    for multi, deltas in ((False, (50,)), (True, (30, 50, 70))):
        acc = BoxAccumulator(multi_contour=multi, iou_thresholds=deltas, step=0.01, size=64)
        acc.update(torch.from_numpy(maps[:4]), gts[:4])
        acc.update(maps[4:], gts[4:])
        counts = {d: np.zeros(len(taus), np.int64) for d in deltas}
        for m, g in zip(maps, gts, strict=True):
            for d, ok in reference_box_correct(m, g, taus, multi, deltas).items():
                counts[d] += ok
        expected = np.mean([(counts[d] * 100.0 / 6).max() for d in deltas])
        assert acc.compute()["max_box_acc"] == expected


def test_uint8_truncation_and_int_theta():
    # 0.5 * 255 = 127.5 -> 127 (truncation, not rounding)
    q = scoremaps_to_uint8(np.array([[0.5, 1.0]], np.float32))
    assert q.tolist() == [[127, 255]]
    # float32 product: 0.2 * 255 in float32 is 51.000004 -> 51; float64 gives 51.00000000000001
    assert scoremaps_to_uint8(np.float32([[0.2]]))[0, 0] == 51
    # theta = int(tau * qmax): qmax = 127, tau = 0.5 -> int(63.5) = 63 -> pixels > 63 are fg
    m = np.zeros((20, 20), np.float32)
    m[5:10, 5:10] = 0.5  # q = 127
    m[12:15, 12:15] = 64 / 255 + 1e-4  # q = 64 > 63: kept at tau 0.5
    boxes_acc = BoxAccumulator(multi_contour=True, iou_thresholds=(50,), step=0.5, size=20)
    boxes_acc.update(m, [np.array([[12, 12, 14, 14]])])
    # tau=0: theta 0 -> both blobs; tau=0.5: theta 63 -> both blobs still (64 > 63)
    assert boxes_acc.curves()[50].tolist() == [100.0, 100.0]


def test_hole_contours_count_in_multi_contour_mode():
    # a ring: RETR_TREE returns the outer contour and the hole; the hole's box can match a GT box
    m = np.zeros((30, 30), np.float32)
    m[5:25, 5:25] = 1.0
    m[10:20, 10:20] = 0.0
    contours = cv2.findContours(
        scoremaps_to_uint8(m), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
    )[0]
    assert len(contours) == 2  # outer boundary + hole
    rects = sorted(cv2.boundingRect(c) for c in contours)
    x, y, w, h = rects[-1]  # the hole starts later (inner)
    hole_gt = np.array([[x, y, x + w, y + h]])
    assert (x, y) != (5, 5)
    best_multi = best_ious_at_thresholds(scoremaps_to_uint8(m), hole_gt, np.array([0.5]), True)
    best_single = best_ious_at_thresholds(scoremaps_to_uint8(m), hole_gt, np.array([0.5]), False)
    assert best_multi[0] == 1.0
    assert best_single[0] < 0.5


def test_largest_contour_by_polygon_area_not_pixel_count():
    # a 1-pixel-wide long line has many pixels but zero polygon area; the square wins
    m = np.zeros((40, 40), np.float32)
    m[2, 0:39] = 1.0  # 39 pixels, contourArea 0
    m[20:24, 20:24] = 1.0  # 16 pixels, contourArea 9
    q = scoremaps_to_uint8(m)
    sq = np.array([[20, 20, 24, 24]])
    best = best_ious_at_thresholds(q, sq, np.array([0.5]), False)
    # box of the square: boundingRect (20, 20, 4, 4) -> [20, 20, 24, 24]
    assert best[0] == 1.0


def test_boundingrect_off_by_one_and_clip():
    # fg pixels 10..19 -> boundingRect x=10, w=10 -> x1 = x + w = 20 (one past), clipped at W-1
    m = np.zeros((32, 32), np.float32)
    m[10:20, 22:32] = 1.0
    acc_box = best_ious_at_thresholds(
        scoremaps_to_uint8(m), np.array([[22, 10, 31, 20]]), np.array([0.0]), False
    )
    assert acc_box[0] == 1.0  # [22, 10, min(32, 31), 20]


def test_no_contour_gives_zero_box():
    q = np.zeros((10, 10), np.uint8)
    best = best_ious_at_thresholds(q, np.array([[0, 0, 0, 0]]), np.array([0.0, 0.5]), False)
    assert best.tolist() == [1.0, 1.0]  # [0,0,0,0] vs [0,0,0,0]: inclusive area 1, IoU 1


def test_iou_inclusive_and_degenerate():
    a = np.array([[0, 0, 9, 9]])
    b = np.array([[5, 5, 14, 14], [0, 0, 9, 9], [20, 20, 10, 10]])
    ious = multiple_iou(a, b)
    assert ious[0, 0] == 25 / (100 + 100 - 25)
    assert ious[0, 1] == 1.0
    assert ious[0, 2] == 0.0  # negative area box -> denominator <= 0 -> 0


def test_resize_box_protocol_rounding():
    from fcam_nb.data.wsol import resize_box

    assert resize_box((10, 20, 99, 50), (100, 60), 224) == (22, 74, 221, 186)
    assert resize_box((0.5, 0.5, 1.5, 1.5), (3, 3), 224) == (37, 37, 112, 112)


def test_thresholds_are_arange():
    t = threshold_list(0.001)
    assert len(t) == 1000 and t[0] == 0 and t[-1] == np.arange(0, 1, 0.001)[-1]


def _reference_pxap(maps, masks, step):
    """wsolevaluation's MaskEvaluator, literally."""
    taus = np.arange(0, 1, step)
    edges = np.append(taus, [1.0, 2.0, 3.0])
    t_hist = np.zeros(len(taus) + 2)
    f_hist = np.zeros(len(taus) + 2)
    for m, g in zip(maps, masks, strict=True):
        t_hist += np.histogram(m[g == 1], bins=edges)[0].astype(float)
        f_hist += np.histogram(m[g == 0], bins=edges)[0].astype(float)
    tp = t_hist[::-1].cumsum()
    fn = t_hist.sum() - tp
    fp = f_hist[::-1].cumsum()
    nz = (tp + fp) != 0
    with np.errstate(invalid="ignore"):
        precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return (precision[1:] * np.diff(recall))[nz[1:]].sum() * 100


def test_pxap_equals_reference_exactly():
    rng = np.random.default_rng(3)
    maps = np.stack([_random_map(rng, 32) for _ in range(5)])
    maps[0, 0, 0] = 1.0
    maps[1, 0, 0] = 0.0
    masks = (rng.random((5, 32, 32)) < 0.3).astype(np.uint8)
    masks[:, :3, :3] = 255  # ignored
    for step in (0.001, 0.01, 0.05):
        acc = PxAPAccumulator(step=step, size=32)
        acc.update(torch.from_numpy(maps[:2]), torch.from_numpy(masks[:2]))
        acc.update(maps[2:], masks[2:])
        assert acc.compute() == _reference_pxap(maps, masks, step)


def test_pxap_perfect_and_errors():
    m = np.zeros((2, 8, 8), np.float32)
    m[:, 2:5, 2:5] = 0.9
    g = (m > 0.5).astype(np.uint8)
    acc = PxAPAccumulator(step=0.01, size=8)
    acc.update(m, g)
    assert acc.compute() == pytest.approx(100.0)
    empty = PxAPAccumulator(step=0.01, size=8)
    empty.update(m, np.zeros_like(g))
    with pytest.raises(ValueError, match="foreground"):
        empty.compute()


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.full((1, 8, 8), np.nan, np.float32), "NaN"),
        (np.full((1, 8, 8), 1.5, np.float32), r"\[0, 1\]"),
        (np.zeros((1, 8, 8), np.int64), "floating"),
        (np.zeros((1, 9, 8), np.float32), "8x8"),
        (np.zeros((1, 1, 8, 8), np.float32), "shape"),
    ],
)
def test_bad_maps(bad, msg):
    with pytest.raises(ValueError, match=msg):
        check_scoremaps(bad, 8)
    acc = max_box_acc_v1(size=8)
    with pytest.raises(ValueError, match=msg):
        acc.update(bad, [np.zeros((1, 4))])


def test_topk_localization():
    m = np.zeros((2, 16, 16), np.float32)
    m[:, 4:8, 4:8] = 1.0
    gts = [np.array([[4, 4, 8, 8]])] * 2
    acc = max_box_acc_v2(step=0.1, size=16)
    preds = np.array([[1, 0, 2, 3, 4], [5, 6, 7, 8, 9]])
    acc.update(m, gts, labels=np.array([1, 0]), topk_preds=preds)
    out = acc.compute()
    assert out["max_box_acc"] == 100.0
    assert out["top1_loc"] == 50.0  # second sample misclassified
    assert out["top5_loc"] == 50.0  # label 0 not in the second sample's top-5


def test_activation_histograms():
    m = np.array([[[0.15, 0.92], [0.25, 0.95]]], np.float32)
    g = np.array([[[0, 1], [255, 1]]], np.uint8)
    edges, fg, bg = activation_histograms(m, g, bins=10)
    assert len(edges) == 11 and fg[9] > 0 and bg[1] > 0 and fg[:9].sum() == 0


def test_cv2_contour_api():
    # guard: the protocol relies on findContours returning (contours, hierarchy)
    out = cv2.findContours(np.zeros((4, 4), np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    assert len(out) == 2


@pytest.mark.parametrize("boxes, msg", [
    (np.array([[1, 1, 4, 4, 2, 2, 6, 6]]), r"\(n, 4\).*\(1, 8\)"),  # was read as two boxes
    (np.array([[1, 1, 4, 4, 2, 2], [0, 0, 3, 3, 1, 1]]), r"\(n, 4\).*\(2, 6\)"),
    (np.array([[1, 1, 4, 4, 0]]), r"\(n, 4\).*\(1, 5\)"),
    (np.array([[5, 1, 2, 4]]), "inverted"),
    (np.array([[1, 1, 9, 4]]), "outside the 8x8 frame"),
    (np.array([[-1, 1, 4, 4]]), "outside"),
    (np.array([[np.nan, 1, 4, 4]]), "NaN"),
    (np.zeros((0, 4)), "no box"),
])
def test_bad_gt_boxes_name_the_argument(boxes, msg):
    acc = max_box_acc_v1(size=8)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\].*" + msg if msg != "no box" else "no box"):
        acc.update(np.zeros((1, 8, 8), np.float32), [boxes])
    assert acc.count == 0


def test_topk_inputs_are_checked():
    acc = max_box_acc_v1(size=8)
    m, gt = np.zeros((2, 8, 8), np.float32), [np.array([[0, 0, 4, 4]])] * 2
    with pytest.raises(ValueError, match=r"topk_preds must be \(2, k\)"):
        acc.update(m, gt, labels=np.array([0, 1]), topk_preds=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must be \(2,\)"):
        acc.update(m, gt, labels=np.array([0, 1, 2]), topk_preds=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="go together"):
        acc.update(m, gt, labels=np.array([0, 1]))
    acc.update(m, gt, labels=np.array([0, 1]), topk_preds=np.array([[0, 1], [0, 1]]))  # K = 2
    assert acc.compute()["top1_loc"] == acc.compute()["top5_loc"]


def test_mask_values_are_checked():
    m = np.zeros((1, 8, 8), np.float32)
    m[:, 2:5, 2:5] = 0.9
    acc = PxAPAccumulator(step=0.01, size=8)
    with pytest.raises(ValueError, match="0/255 object mask"):
        acc.update(m, (m > 0.5).astype(np.uint8) * 255)  # was scored as all-ignore
    with pytest.raises(ValueError, match=r"0 \(background\), 1 \(foreground\) or 255.*\[2\]"):
        acc.update(m, (m > 0.5).astype(np.uint8) * 2)
    acc.update(m, (m > 0.5).astype(np.uint8))
    assert acc.compute() == pytest.approx(100.0)


def _reference_best_ious(m, gt, taus, multi):
    from fcam_nb.metrics import reference_boxes

    boxes, counts = reference_boxes(m, taus, multi)
    ious = multiple_iou(np.concatenate(boxes, axis=0), gt).max(axis=1)
    return np.maximum.reduceat(ious, np.concatenate([[0], np.cumsum(counts)[:-1]]))


def _hard_maps(rng):
    """Maps that stress the one-call trace: symmetric blobs (equal contour areas: the first one
    wins), rings (hole contours), salt noise (hundreds of contours), objects on the frame."""
    size = 40
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    twins = np.exp(-((xx - 10) ** 2 + (yy - 20) ** 2) / 18) + np.exp(-((xx - 29) ** 2 + (yy - 20) ** 2) / 18)
    r = np.hypot(xx - 20, yy - 20)
    ring = np.exp(-((r - 9) ** 2) / 6)
    noise = rng.uniform(0, 1, (size, size)).astype(np.float32)
    edge = np.exp(-((xx - 0) ** 2 + (yy - 39) ** 2) / 60)
    steps = np.zeros((size, size), np.float32)
    steps[2:10, 2:10], steps[20:28, 20:28], steps[30:38, 3:11] = 1.0, 0.6, 0.6
    maps = [twins, ring, noise, edge, steps, ring * 0.5 + noise * 0.2, twins.T]
    return [((m - m.min()) / (m.max() - m.min())).astype(np.float32) for m in maps]


@pytest.mark.parametrize("multi", [False, True])
def test_one_call_trace_equals_reference_ious_exactly(multi):
    rng = np.random.default_rng(3)
    taus = threshold_list(0.001)
    gts = [np.array([[3, 3, 18, 36]]), np.array([[20, 5, 39, 39], [0, 0, 8, 8]])]
    for m in _hard_maps(rng):
        for gt in gts:
            expected = _reference_best_ious(m, gt, taus, multi)
            got = best_ious_at_thresholds(scoremaps_to_uint8(m), gt, taus, multi)
            np.testing.assert_array_equal(got, expected)
            # with a floor, masks that cannot reach it are skipped: exact at and above it
            floored = best_ious_at_thresholds(scoremaps_to_uint8(m), gt, taus, multi, 0.5)
            np.testing.assert_array_equal(floored >= 0.5, expected >= 0.5)
            assert (floored[expected < 0.5] < 0.5).all()


def test_v1_v2_from_one_trace_equal_separate_accumulators():
    from fcam_nb.metrics import update_v1_v2

    rng = np.random.default_rng(4)
    maps = np.stack(_hard_maps(rng) + [_random_map(rng, 40) for _ in range(3)])
    gts = [np.array([[3, 3, 18, 36]]), np.array([[20, 5, 39, 39], [0, 0, 8, 8]])] * 5
    labels, preds = np.arange(10) % 3, np.tile(np.arange(5), (10, 1))
    joint = (max_box_acc_v1(step=0.001, size=40), max_box_acc_v2(step=0.001, size=40))
    update_v1_v2(*joint, maps, gts, labels, preds)
    for acc, alone in zip(joint, (max_box_acc_v1(step=0.001, size=40),
                                  max_box_acc_v2(step=0.001, size=40)), strict=True):
        alone.update(maps, gts, labels, preds)
        for d in acc.iou_thresholds:
            np.testing.assert_array_equal(acc.correct[d], alone.correct[d])
            np.testing.assert_array_equal(acc.correct_top1[d], alone.correct_top1[d])
        assert acc.compute() == alone.compute()
    with pytest.raises(ValueError, match="largest-contour"):
        update_v1_v2(joint[1], joint[0], maps, gts)


def test_maps_shared_among_threads_give_the_serial_counts():
    import threading

    from fcam_nb.metrics import best_ious_v1_v2, map_per_image, update_v1_v2

    rng = np.random.default_rng(5)
    maps = np.stack(_hard_maps(rng) + [_random_map(rng, 40) for _ in range(5)])
    gts = [np.array([[3, 3, 18, 36]]), np.array([[20, 5, 39, 39], [0, 0, 8, 8]])] * 6
    gts = gts[: len(maps)]
    q = scoremaps_to_uint8(maps)
    expected = [(int(m.sum()), len(g)) for m, g in zip(q, gts, strict=True)]
    assert map_per_image(lambda m, g: (int(m.sum()), len(g)), q, gts, workers=3) == expected
    met = threading.Barrier(2, timeout=5)  # two maps in flight at once, or BrokenBarrierError

    def meet(m, g):
        met.wait()
        return threading.get_ident()

    assert len(set(map_per_image(meet, q[:2], gts[:2], workers=2))) == 2
    with pytest.raises(ValueError, match="GT box arrays"):
        map_per_image(meet, q, gts[:-1], workers=2)
    with pytest.raises(ValueError, match="workers"):
        map_per_image(meet, q, gts, workers=0)
    serial = [best_ious_v1_v2(m, g, threshold_list(0.001)) for m, g in zip(q, gts, strict=True)]
    ok = [(b2 >= 0.3).astype(np.int64) for _, b2 in serial]  # each map's V2 boxes at IoU 30
    # top-1 hits (label 0), top-5 only (1-4) and misses (5, 6), among them three maps with boxes
    # found: the counts depend on each map's result meeting its own image's label
    labels, preds = np.arange(len(maps)) % 7, np.tile(np.arange(5), (len(maps), 1))
    found = [i for i, o in enumerate(ok) if o.any()]
    labels[found[:3]] = (0, 3, 6)
    saved = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 3):  # the evaluation shares a batch among torch's thread count
            torch.set_num_threads(threads)
            pair = (max_box_acc_v1(step=0.001, size=40), max_box_acc_v2(step=0.001, size=40))
            update_v1_v2(*pair, maps, gts, labels, preds)
            results.append(pair)
    finally:
        torch.set_num_threads(saved)
    top1 = sum(o for o, y in zip(ok, labels, strict=True) if y == 0)
    top5 = sum(o for o, y in zip(ok, labels, strict=True) if y < 5)
    assert not np.array_equal(top1, top5) and not np.array_equal(top5, sum(ok))
    for _, v2 in results:  # each map's boxes met its own image's label
        np.testing.assert_array_equal(v2.correct[30], sum(ok))
        np.testing.assert_array_equal(v2.correct_top1[30], top1)
        np.testing.assert_array_equal(v2.correct_top5[30], top5)
    for one, many in zip(*results, strict=True):
        for d in one.iou_thresholds:
            np.testing.assert_array_equal(one.correct[d], many.correct[d])
            np.testing.assert_array_equal(one.correct_top1[d], many.correct_top1[d])
            np.testing.assert_array_equal(one.correct_top5[d], many.correct_top5[d])
        assert one.compute() == many.compute()
