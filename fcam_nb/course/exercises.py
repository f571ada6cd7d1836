"""Checked exercises of the notebooks: the student writes a function, ``check`` runs it.

Each exercise names a function the student writes in a notebook cell (the cell raises
``NotImplementedError`` until filled). ``check(name, fn)`` calls it on fresh random inputs
(a new draw at every call, unless ``seed`` is given) and compares each answer with the package's
own implementation or the published definition; the first answer that differs raises
``ExerciseFailed`` with the input, the expected and the received value and a hint. A function that
still raises ``NotImplementedError`` is reported as not attempted, so the notebooks run end to end
(CI executes them) before the student starts. Worked solutions: ``fcam_nb.course.solutions``.

    from fcam_nb.course import exercises
    exercises.check("02.otsu", my_otsu)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fcam_nb.course.failures import flag_scores
from fcam_nb.losses.partial_ce import partial_cross_entropy
from fcam_nb.losses.size import extended_log_barrier
from fcam_nb.metrics import activation_histograms, multiple_iou
from fcam_nb.sampling import IGNORE, background_region, otsu_threshold_uint8

Case = tuple[Any, ...]
V2_IOUS = (0.3, 0.5, 0.7)


class ExerciseFailed(AssertionError):
    """A student's answer differs from the expected one on a checked input."""


@dataclass(frozen=True)
class Exercise:
    """One checked exercise: ``cases(rng)`` draws the inputs (tuples of arguments),
    ``expected(*args)`` gives the right answer, ``compare(got, want)`` returns ``None`` when
    they agree, else what differs."""

    name: str
    task: str
    cases: Callable[[np.random.Generator], list[Case]]
    expected: Callable[..., Any]
    compare: Callable[[Any, Any], str | None]
    hint: str


EXERCISES: dict[str, Exercise] = {}


def _register(ex: Exercise) -> Exercise:
    if ex.name in EXERCISES:
        raise ValueError(f"exercise {ex.name!r} is registered twice")
    EXERCISES[ex.name] = ex
    return ex


# ------------------------------------------------------------------------------------------
# comparisons
# ------------------------------------------------------------------------------------------
def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _close(rtol: float = 1e-4, atol: float = 1e-6) -> Callable[[Any, Any], str | None]:
    def compare(got: Any, want: Any) -> str | None:
        if got is None:
            return "the function returned None (a missing return?)"
        g, w = _as_array(got).astype(np.float64), _as_array(want).astype(np.float64)
        if g.shape != w.shape:
            return f"shape {g.shape}, expected {w.shape}"
        if not np.isfinite(g).all():
            return f"{int((~np.isfinite(g)).sum())} values are NaN or infinite"
        bad = ~np.isclose(g, w, rtol=rtol, atol=atol)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f" at index {idx}" if g.ndim else ""
            return (f"{int(bad.sum())} of {bad.size} values differ; first{where}: got "
                    f"{g[idx]:.6g}, expected {w[idx]:.6g}")
        return None

    return compare


def _equal(got: Any, want: Any) -> str | None:
    if got is None:
        return "the function returned None (a missing return?)"
    g, w = _as_array(got), _as_array(want)
    if g.shape != w.shape:
        return f"shape {g.shape}, expected {w.shape}"
    if g.dtype == bool or w.dtype == bool:
        g, w = g.astype(bool), w.astype(bool)
    bad = g != w
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if g.ndim else ()
        return (f"{int(bad.sum())} of {bad.size} values differ; first at index {idx}: got "
                f"{g[idx]!r}, expected {w[idx]!r}" if g.ndim else f"got {g!r}, expected {w!r}")
    return None


def _pair(compare: Callable[[Any, Any], str | None]) -> Callable[[Any, Any], str | None]:
    def both(got: Any, want: Any) -> str | None:
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return f"expected a pair of values, got {type(got).__name__}"
        for label, g, w in zip(("first", "second"), got, want, strict=True):
            problem = compare(g, w)
            if problem:
                return f"{label} value: {problem}"
        return None

    return both


def _describe(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        arr = _as_array(value)
        span = f", values {arr.min():.3g}..{arr.max():.3g}" if arr.size and arr.dtype != bool else ""
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"{kind} {tuple(arr.shape)} {arr.dtype}{span}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {v:.3g}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__} of {len(value)}"
    return repr(value)


# ------------------------------------------------------------------------------------------
# the checker
# ------------------------------------------------------------------------------------------
def check(name: str, fn: Callable[..., Any], seed: int | None = None, quiet: bool = False
          ) -> bool:
    """Run the student's ``fn`` for exercise ``name`` on fresh inputs.

    Returns True when every answer matches, False when ``fn`` raises ``NotImplementedError``
    (not attempted yet: nothing fails). Raises ``ExerciseFailed`` on the first wrong answer or
    on any other exception of ``fn``, naming the input.
    """
    if name not in EXERCISES:
        raise KeyError(f"no exercise {name!r}; there are {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    rng = np.random.default_rng(seed)
    cases = ex.cases(rng)
    for i, args in enumerate(cases, 1):
        want = ex.expected(*args)
        shown = ", ".join(_describe(a) for a in args)
        try:
            got = fn(*args)
        except NotImplementedError:
            if not quiet:
                print(f"{name}: not attempted yet — {ex.task}")
            return False
        except Exception as err:
            raise ExerciseFailed(f"{name}: case {i} of {len(cases)} ({shown}) raised "
                                 f"{type(err).__name__}: {err}. Hint: {ex.hint}") from err
        problem = ex.compare(got, want)
        if problem:
            raise ExerciseFailed(f"{name}: case {i} of {len(cases)} ({shown}): {problem}. "
                                 f"Hint: {ex.hint}")
    if not quiet:
        print(f"{name}: passed on {len(cases)} fresh inputs")
    return True


# ------------------------------------------------------------------------------------------
# 01 low-resolution CAMs
# ------------------------------------------------------------------------------------------
def _cam_expected(features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor
                  ) -> torch.Tensor:
    return torch.einsum("bchw,bc->bhw", features, weight[labels])


def _cam_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for b, c, k, h, w in ((2, 8, 3, 5, 5), (4, 16, 5, 7, 9), (3, 32, 4, 14, 14)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        out.append((torch.rand(b, c, h, w, generator=g), torch.randn(k, c, generator=g),
                    torch.randint(0, k, (b,), generator=g)))
    return out


_register(Exercise(
    "01.cam",
    "my_cam(features (B, C, h, w), weight (K, C), labels (B,)) -> (B, h, w): each image's map "
    "M_y = sum_c w_{y,c} F_c for its own label y",
    _cam_cases, _cam_expected, _close(),
    "index the classifier's weight rows by each image's label (weight[labels] is (B, C)), then "
    "sum over channels: torch.einsum('bchw,bc->bhw', ...)"))


def _normalize_expected(cams: torch.Tensor) -> torch.Tensor:
    flat = cams.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return out.view_as(cams)


def _normalize_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for b, h, w in ((3, 7, 7), (5, 14, 10)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        cams = torch.randn(b, h, w, generator=g) * torch.rand(b, 1, 1, generator=g) * 10
        out.append((cams + torch.randn(b, 1, 1, generator=g) * 5,))
    const = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(int(rng.integers(99))))
    const[1] = 2.5  # one constant map
    out.append((const,))
    return out


_register(Exercise(
    "01.normalize",
    "my_normalize(cams (B, h, w)) -> (B, h, w): each map min-max scaled to [0, 1] on its own; a "
    "constant map becomes zeros",
    _normalize_cases, _normalize_expected, _close(),
    "take min and max per map (flatten(1).min(1)), not over the whole batch, and guard the "
    "constant map (max == min) instead of dividing by zero"))


# ------------------------------------------------------------------------------------------
# 02 sampling regions
# ------------------------------------------------------------------------------------------
def _otsu_expected(u8: np.ndarray) -> tuple[int, np.ndarray]:
    """Otsu's threshold and the image: thresholds in a run of empty grey levels split the pixels
    the same way (equal between-class variance), so the check compares partitions."""
    return int(otsu_threshold_uint8(torch.from_numpy(np.ascontiguousarray(u8))[None])[0]), u8


def _same_partition(got: Any, want: tuple[int, np.ndarray]) -> str | None:
    threshold, u8 = want
    if got is None:
        return "the function returned None (a missing return?)"
    if np.ndim(got) != 0:
        return f"expected one threshold, got shape {np.shape(got)}"
    differ = int(((u8 > got) != (u8 > threshold)).sum())
    if differ:
        return (f"threshold {got} puts {differ} pixels on the other side than Otsu's threshold "
                f"{threshold} (any threshold from {threshold} up to the next grey level present "
                f"in the image gives Otsu's split)")
    return None


def _otsu_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for h, w, lo, hi in ((20, 30, 0, 255), (16, 16, 40, 200), (33, 17, 0, 120), (24, 24, 90, 250)):
        n = h * w
        split = rng.uniform(0.2, 0.8)
        a = rng.normal(rng.uniform(lo, (lo + hi) / 2), rng.uniform(5, 30), int(n * split))
        b = rng.normal(rng.uniform((lo + hi) / 2, hi), rng.uniform(5, 30), n - int(n * split))
        values = np.clip(np.concatenate([a, b]), lo, hi)
        out.append((rng.permutation(values).reshape(h, w).astype(np.uint8),))
    return out


_register(Exercise(
    "02.otsu",
    "my_otsu(u8 (H, W) uint8) -> int: Otsu's threshold t (foreground: values > t), as "
    "skimage.filters.threshold_otsu on an integer image",
    _otsu_cases, _otsu_expected, _same_partition,
    "histogram of the 256 levels; for every t, w0 = share <= t, w1 = share > t, mu0, mu1 their "
    "means; maximize w0 w1 (mu0 - mu1)^2 (the between-class variance), first argmax, t between "
    "the image's min (included) and max (excluded)"))


def _background_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for b, h, w, n_bg in ((2, 12, 12, 0.3), (3, 16, 10, 0.1), (2, 20, 20, 0.5)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        cams = torch.relu(torch.randn(b, h, w, generator=g))  # ReLU: many tied zeros
        out.append((cams / cams.flatten(1).max(1).values[:, None, None], n_bg))
    return out


_register(Exercise(
    "02.background",
    "my_lowest_region(cams (B, H, W), n_bg) -> bool (B, H, W): per map, the pixels whose value is "
    "at most the k-th lowest, k = max(1, int(n_bg * H * W)); ties with the k-th value included",
    _background_cases, lambda cams, n_bg: background_region(cams, n_bg), _equal,
    "ReLU'd CAMs have many zeros: take the k-th lowest value per map (torch.kthvalue on "
    "flatten(1)) and keep every pixel <= it; picking exactly k pixels by sort order breaks ties "
    "by position and puts the seeds in the top rows"))


# ------------------------------------------------------------------------------------------
# 03 decoder training
# ------------------------------------------------------------------------------------------
def _pce_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for b, h, w, share in ((2, 8, 8, 0.1), (3, 10, 6, 0.3), (2, 12, 12, 0.02)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        logits = torch.randn(b, 2, h, w, generator=g) * 3
        seeds = torch.randint(0, 2, (b, h, w), generator=g)
        keep = torch.rand(b, h, w, generator=g) < share
        keep[0, 0, 0] = True
        keep[-1] = False
        keep[-1, 1, :3] = True  # the last image has three seeds only
        out.append((logits, torch.where(keep, seeds, torch.full_like(seeds, IGNORE))))
    return out


_register(Exercise(
    "03.partial_ce",
    f"my_partial_ce(logits (B, 2, H, W), seeds (B, H, W) int64 in {{0, 1, {IGNORE}}}) -> scalar: "
    f"-1/|Omega| sum over seed pixels of log softmax(logits)[label]; {IGNORE} = no seed",
    _pce_cases, lambda logits, seeds: partial_cross_entropy(logits, seeds), _close(),
    "average over the seed pixels of the whole batch (not over all pixels, not per image then "
    f"over images); F.cross_entropy(..., ignore_index={IGNORE}) does the masking"))


def _elb_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for t in (1.0, 5.0, 20.0):
        edge = -1.0 / t**2
        f = np.concatenate([rng.uniform(-3, edge, 6), rng.uniform(edge, 2, 6), [edge, 0.0]])
        out.append((torch.tensor(f, dtype=torch.float64), t))
    return out


_register(Exercise(
    "03.elb",
    "my_elb(f tensor, t) -> tensor: the extended log-barrier psi_t(f) = -log(-f)/t for f <= -1/t^2, "
    "else t f - log(1/t^2)/t + 1/t (element-wise; finite for any f)",
    _elb_cases, lambda f, t: extended_log_barrier(f, t), _close(1e-6, 1e-9),
    "two branches joined at f = -1/t^2 (value and slope continuous there); clamp f before the "
    "log so the unused branch does not produce NaN, then torch.where"))


# ------------------------------------------------------------------------------------------
# 04 benchmark evaluation
# ------------------------------------------------------------------------------------------
def _iou_cases(rng: np.random.Generator) -> list[Case]:
    def boxes(n: int) -> np.ndarray:
        x0, y0 = rng.integers(0, 150, n), rng.integers(0, 150, n)
        return np.stack([x0, y0, x0 + rng.integers(0, 70, n), y0 + rng.integers(0, 70, n)], 1)

    return [(boxes(3), boxes(4)), (boxes(5), boxes(1)), (boxes(6), boxes(6))]


_register(Exercise(
    "04.iou",
    "my_box_iou(a (A, 4), b (B, 4)) -> (A, B): IoU of every pair of x0 y0 x1 y1 boxes with the "
    "protocol's inclusive pixel areas ((x1 - x0 + 1) (y1 - y0 + 1))",
    _iou_cases, multiple_iou, _close(1e-9, 1e-12),
    "a box from x0 to x1 covers x1 - x0 + 1 pixels (wsolevaluation's calculate_multiple_iou); "
    "broadcast a[:, None] against b[None] and clip the intersection at 0"))


def _v2_expected(best_iou: np.ndarray) -> float:
    return float(np.mean([100 * (best_iou >= d).mean(1).max() for d in V2_IOUS]))


def _v2_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for t, n in ((10, 40), (25, 60), (50, 30)):
        taus = np.linspace(0, 1, t)[:, None]
        centre = rng.uniform(0.2, 0.8, (1, n))  # each image's best threshold differs
        iou = np.clip(rng.uniform(0.6, 1.0, (1, n)) - 1.5 * np.abs(taus - centre), 0, 1)
        while abs(_v2_expected(iou) - 100 * max(
                np.mean([(iou >= d).mean(1)[i] for d in V2_IOUS]) for i in range(t))) < 1e-9:
            iou = np.clip(iou + rng.normal(0, 0.05, iou.shape), 0, 1)  # make V2 != one tau
        out.append((iou,))
    return out


_register(Exercise(
    "04.max_box_acc_v2",
    "my_max_box_acc_v2(best_iou (T, N)) -> float percent: best_iou[i, j] is image j's best-box IoU "
    "at threshold i; for each delta in (0.3, 0.5, 0.7) the best threshold's accuracy, averaged",
    _v2_cases, _v2_expected, _close(1e-9, 1e-9),
    "V2 picks the best threshold separately for each IoU level delta: max over thresholds "
    "inside, mean over the three deltas outside"))


# ------------------------------------------------------------------------------------------
# 05 threshold sensitivity and activations
# ------------------------------------------------------------------------------------------
def _within_expected(curve: np.ndarray, frac: float) -> float:
    return float((curve >= frac * curve.max()).mean())


def _within_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for t, frac in ((100, 0.9), (50, 1.0), (200, 0.8)):
        x = np.linspace(0, 1, t)
        curve = np.round(100 * np.exp(-((x - rng.uniform(0.2, 0.8)) / rng.uniform(0.1, 0.4)) ** 2))
        out.append((curve, frac))
    return out


_register(Exercise(
    "05.within",
    "my_within_share(curve (T,), frac) -> float in [0, 1]: the share of thresholds whose accuracy "
    "is at least frac times the curve's best",
    _within_cases, _within_expected, _close(1e-12, 1e-12),
    "'at least': >=, so the best threshold itself always counts (frac = 1 gives the share of "
    "thresholds tied with the best)"))


def _hist_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for n, h, w, bins in ((4, 16, 16, 10), (3, 20, 12, 25)):
        maps = rng.beta(0.7, 1.5, (n, h, w))
        masks = (rng.random((n, h, w)) < 0.3).astype(np.uint8)
        masks[rng.random((n, h, w)) < 0.1] = 255  # ignore pixels (OpenImages)
        maps[masks == 255] = 1.0  # they hold high scores: counting them changes the answer
        out.append((maps, masks, bins))
    return out


_register(Exercise(
    "05.histograms",
    "my_histograms(maps (N, H, W) in [0, 1], masks (N, H, W) with 1 object, 0 background, "
    "255 ignore, bins) -> (fg density (bins,), bg density (bins,)) over bins equal bins of [0, 1]",
    _hist_cases, lambda maps, masks, bins: activation_histograms(maps, masks, bins)[1:],
    _pair(_close(1e-9, 1e-9)),
    "np.histogram(values, bins=np.linspace(0, 1, bins + 1), density=True) on maps[masks == 1] "
    "and on maps[masks == 0]: ignore pixels (255) belong to neither"))


# ------------------------------------------------------------------------------------------
# 06 failure analysis
# ------------------------------------------------------------------------------------------
def _pr_expected(flagged: np.ndarray, failures: np.ndarray) -> tuple[float, float]:
    r = flag_scores(flagged, failures)
    return r["precision"], r["recall"]


def _pr_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for n, p_flag, p_fail in ((50, 0.2, 0.3), (80, 0.5, 0.1), (30, 0.0, 0.4)):
        out.append((rng.random(n) < p_flag, rng.random(n) < p_fail))
    return out


_register(Exercise(
    "06.precision_recall",
    "my_precision_recall(flagged (N,) bool, failures (N,) bool) -> (precision %, recall %): "
    "precision = flagged failures / flagged (0 when nothing is flagged), recall = flagged "
    "failures / failures",
    _pr_cases, _pr_expected, _pair(_close(1e-9, 1e-9)),
    "precision divides by the number flagged, recall by the number of failures; guard the "
    "empty flag (nothing flagged: precision 0)"))


def _top_expected(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    k = int(round(share * len(a)))
    top_a = np.zeros(len(a), bool)
    top_a[np.argsort(-a)[:k]] = True
    top_b = np.zeros(len(b), bool)
    top_b[np.argsort(-b)[:k]] = True
    return top_a & top_b


def _top_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for n, share in ((100, 0.2), (100, 0.1), (60, 0.25)):
        a = rng.normal(size=n)
        out.append((a, 0.6 * a + rng.normal(size=n), share))
    return out


_register(Exercise(
    "06.both_top",
    "my_both_top(a (N,), b (N,), share) -> bool (N,): the images that are in the top `share` of "
    "BOTH scores (the k = round(share N) largest of each; the scores have no ties)",
    _top_cases, _top_expected, _equal,
    "one flag per score (its k largest: argsort or >= np.quantile(score, 1 - share)), then "
    "their AND; the OR flags far more images"))


# ------------------------------------------------------------------------------------------
# 07 runtime
# ------------------------------------------------------------------------------------------
def _median_expected(seconds: Sequence[float], batch: int) -> float:
    return 1000 * float(np.median(seconds)) / batch


def _median_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for repeats, batch in ((5, 8), (7, 1), (3, 32)):  # odd: the median is one call
        seconds = list(rng.uniform(0.010, 0.012, repeats))
        seconds[int(rng.integers(repeats))] = float(rng.uniform(0.2, 0.5))  # a hiccup
        out.append((seconds, batch))
    return out


_register(Exercise(
    "07.ms_per_image",
    "my_ms_per_image(seconds: list of per-call times in s, batch) -> milliseconds per image, from "
    "the median call",
    _median_cases, _median_expected, _close(1e-9, 1e-12),
    "the median ignores one slow call (a hiccup: another process, a page fault); the mean does "
    "not. Then seconds -> milliseconds (x 1000) and per call -> per image (/ batch)"))


def _ratios_cases(rng: np.random.Generator) -> list[Case]:
    names = ("cam", "gradcam", "layercam", "fcam")
    out = []
    for ref in ("cam", "gradcam"):
        out.append(({n: float(rng.uniform(1, 50)) for n in names}, ref))
    return out


_register(Exercise(
    "07.ratios",
    "my_ratios(ms: dict name -> ms per image, reference) -> dict name -> how many times the "
    "reference's time each method takes (the reference itself: 1.0)",
    _ratios_cases,
    lambda ms, reference: {n: t / ms[reference] for n, t in ms.items()},
    lambda got, want: (f"expected a dict with keys {sorted(want)}, got {_describe(got)}"
                       if not isinstance(got, dict) or set(got) != set(want)
                       else _close(1e-9, 1e-12)([got[k] for k in want], list(want.values()))),
    "each method's time divided by the reference's (F-CAM / CAM = 1.6 means F-CAM is slower)"))
