"""Each checker passes its worked solution on fresh inputs and fails a plausible wrong answer;
a cell not attempted yet fails nothing."""

import numpy as np
import pytest
import torch

from fcam_nb.course import exercises
from fcam_nb.course.exercises import EXERCISES, ExerciseFailed, check
from fcam_nb.course.solutions import SOLUTIONS

WRONG = {
    # the class-0 map for every image instead of each image's own label
    "01.cam": lambda f, w, y: torch.einsum("bchw,c->bhw", f, w[0]),
    # min-max over the whole batch
    "01.normalize": lambda c: (c - c.min()) / (c.max() - c.min()),
    # the mean as threshold
    "02.otsu": lambda u8: int(u8.mean()),
    # exactly k pixels by sort order: ties broken by position
    "02.background": lambda c, n: torch.zeros_like(c.flatten(1), dtype=torch.bool).scatter_(
        1, c.flatten(1).argsort(1)[:, : max(1, int(n * c[0].numel()))], True).view_as(c),
    # mean over every pixel of the batch, seeds or not
    "03.partial_ce": lambda lg, s: torch.nn.functional.cross_entropy(
        lg, s.clamp(min=0), reduction="none").mul(s != -255).mean(),
    # the plain log barrier: NaN past 0, wrong beyond -1/t^2
    "03.elb": lambda f, t: -torch.log(-f) / t,
    # exclusive areas (x1 - x0)
    "04.iou": lambda a, b: _exclusive_iou(a, b),
    # one threshold for all three IoU levels
    "04.max_box_acc_v2": lambda iou: float(100 * np.mean(
        [(iou >= d).mean(1) for d in (0.3, 0.5, 0.7)], axis=0).max()),
    # strictly above
    "05.within": lambda c, frac: float(np.mean(c > frac * c.max())),
    # ignore pixels counted as background
    "05.histograms": lambda m, k, b: SOLUTIONS["05.histograms"](m, np.where(k == 255, 0, k), b),
    # precision and recall swapped
    "06.precision_recall": lambda f, x: SOLUTIONS["06.precision_recall"](f, x)[::-1],
    # OR instead of AND
    "06.both_top": lambda a, b, s: (a >= np.sort(a)[-round(s * len(a))])
    | (b >= np.sort(b)[-round(s * len(b))]),
    # the mean call
    "07.ms_per_image": lambda secs, batch: 1000 * float(np.mean(secs)) / batch,
    # inverted ratios
    "07.ratios": lambda ms, ref: {n: ms[ref] / t for n, t in ms.items()},
}


def _exclusive_iou(a, b):
    a, b = a[:, None, :].astype(float), b[None].astype(float)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return iw * ih / np.maximum(area_a + area_b - iw * ih, 1)


def test_every_exercise_has_a_solution_and_a_wrong_answer_here():
    assert set(EXERCISES) == set(SOLUTIONS) == set(WRONG)
    by_notebook = {}
    for name in EXERCISES:
        by_notebook.setdefault(name[:2], []).append(name)
    assert sorted(by_notebook) == ["01", "02", "03", "04", "05", "06", "07"]
    assert all(len(names) >= 2 for names in by_notebook.values())


@pytest.mark.parametrize("name", sorted(EXERCISES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_solution_passes_its_checker(name, seed, capsys):
    assert check(name, SOLUTIONS[name], seed=seed) is True
    assert "passed on" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_plausible_wrong_answer_fails_with_the_hint(name, seed):
    with pytest.raises(ExerciseFailed, match=f"{name}: case .*Hint: "):
        check(name, WRONG[name], seed=seed)


def test_not_attempted_fails_nothing(capsys):
    def my_otsu(u8):
        raise NotImplementedError

    assert check("02.otsu", my_otsu) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_a_crash_or_a_missing_return_names_the_case():
    with pytest.raises(ExerciseFailed, match="raised ZeroDivisionError"):
        check("07.ms_per_image", lambda secs, batch: 1 / 0, seed=0)
    with pytest.raises(ExerciseFailed, match="returned None"):
        check("05.within", lambda curve, frac: None, seed=0)
    with pytest.raises(ExerciseFailed, match=r"shape \(2, 5, 5\), expected \(2, 7, 7\)|shape"):
        check("01.normalize", lambda c: c[:, :5, :5], seed=0)


def test_fresh_inputs_at_every_call_unless_seeded():
    ex = EXERCISES["02.otsu"]
    a = ex.cases(np.random.default_rng())[0][0]
    b = ex.cases(np.random.default_rng())[0][0]
    assert not np.array_equal(a, b)
    c = ex.cases(np.random.default_rng(5))[0][0]
    assert np.array_equal(c, ex.cases(np.random.default_rng(5))[0][0])


def test_an_unknown_exercise_is_named():
    with pytest.raises(KeyError, match="no exercise '09.x'"):
        check("09.x", lambda: None)
    with pytest.raises(ValueError, match="registered twice"):
        exercises._register(EXERCISES["04.iou"])


def test_each_notebook_leaves_its_exercises_to_the_student():
    """Every registered exercise has its cell in its notebook: a stub that raises
    NotImplementedError and the checker's call; no solution is written there."""
    import json
    from pathlib import Path

    notebooks = {p.name[:2]: p for p in Path(__file__).parents[1].glob("notebooks/0*.ipynb")}
    for name in EXERCISES:
        cells = json.loads(notebooks[name[:2]].read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        mine = [s for s in sources if f'exercises.check("{name}", ' in s]
        assert len(mine) == 1, name
        assert "raise NotImplementedError  # your code here" in mine[0], name


def test_otsu_accepts_every_threshold_with_otsus_split():
    """Thresholds inside a run of empty grey levels split the pixels alike: all are right."""

    def last_equivalent(u8):
        t = SOLUTIONS["02.otsu"](u8)
        present = np.unique(u8)
        return int(present[present > t].min()) - 1

    for seed in range(3):
        assert check("02.otsu", last_equivalent, seed=seed)
