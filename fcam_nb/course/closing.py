"""The closing paragraph of each notebook: what this run showed, written from its own numbers.

Each function takes the values a notebook has computed and returns a paragraph whose wording
follows them (a claim the numbers do not support is not made: the sentence says what happened
instead). Numbers are percentages or points as the notebooks print them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# the paper's ablation steps (Table 3: SR, then + CRF, then + ASC, on CAM* seeds)
PAPER_STEP_NAMES = ("SR", "CRF", "ASC")
# points by which the CAM's coverage of the class mark must exceed that of the rest of the bird
# for "concentrated on the discriminative part" (also the lesson's check in results_synthetic.py)
PART_MARGIN = 20


def _signed(value: float, unit: str = "points") -> str:
    return f"{value:+.1f} {unit}"


def closing_01(cls_acc: float, tau: float, object_covered: float, region_on_object: float,
               coverage: Mapping[str, Mapping[str, float]], cam_cells: tuple[int, int],
               input_size: tuple[int, int], has_parts: bool, tau_is_best: bool) -> str:
    """Notebook 01. ``object_covered`` / ``region_on_object``: the CAM's region at ``tau`` on
    the test split (% of the object covered, % of the region on the object; the object is the
    filled GT box on box-only sets); ``tau_is_best``: ``tau`` is the CAM's MaxBoxAcc threshold
    (else a fixed one, on mask-only sets); ``coverage``: the Otsu regions'
    ``part_and_body_coverage`` on validation for "CAM" and "F-CAM"; ``has_parts``: the set has
    part masks (the class mark), so ``part_covered`` / ``rest_covered`` mean something."""
    cam, fcam = coverage["CAM"], coverage["F-CAM"]
    h, w = cam_cells
    text = [f"The classifier labels {cls_acc:.1f}% of the test images correctly. Its CAM is a "
            f"{h}x{w} map upsampled to {input_size[0]}x{input_size[1]}: at "
            f"{'its best threshold' if tau_is_best else 'the threshold'} (τ = {tau:.2f}) the "
            f"test region covers {object_covered:.0f}% of the object and "
            f"{100 - region_on_object:.0f}% of the region is background"
            + (" (the low-resolution overshoot)." if region_on_object < 75 else ".")]
    if has_parts:
        part, rest = cam["part_covered"], cam["rest_covered"]
        if part >= rest + PART_MARGIN:
            reading = (f"it is concentrated on the discriminative part ({PART_MARGIN} points or "
                       "more above the rest), as the paper describes CAMs")
        elif part > rest:
            reading = (f"it leans towards the mark, by less than {PART_MARGIN} points: the "
                       "part/body contrast is weak in this run")
        else:
            reading = ("it does not favour the mark in this run, so the paper's picture of a CAM "
                       "confined to the discriminative part is not what this seed shows")
        text.append(f"On the validation birds the CAM's Otsu region covers {part:.0f}% of the class "
                    f"mark and {rest:.0f}% of the rest of the bird: {reading}.")
    more = fcam["object_covered"] > cam["object_covered"]
    cleaner = fcam["region_on_object"] > cam["region_on_object"]
    text.append(f"On validation, F-CAM's Otsu region covers {fcam['object_covered']:.0f}% of the "
                f"object against the CAM's {cam['object_covered']:.0f}%, and "
                f"{fcam['region_on_object']:.0f}% of it lies on the object against "
                f"{cam['region_on_object']:.0f}%: "
                + ("more of the object and less background, the paper's claim." if more and cleaner
                   else "more of the object, but with more background." if more
                   else "less background, but less of the object." if cleaner
                   else "neither more object nor less background in this run, the opposite of "
                        "the paper's claim (see notebook 03 for why a run can fail)."))
    return " ".join(text)


def closing_02(otsu_matches: bool, levels: Sequence[float], on_object: Mapping[str, Sequence[float]],
               n_bg: float) -> str:
    """Notebook 02. ``on_object``: per object size ("large objects", "small objects"), the % of
    the lowest-n⁻ background region lying on the object at each n⁻ of ``levels``."""
    levels = list(levels)
    i = min(range(len(levels)), key=lambda k: abs(levels[k] - n_bg))
    large, small = on_object["large objects"], on_object["small objects"]
    worse_large = sum(a > b for a, b in zip(large, small, strict=True))
    text = [("The batched Otsu threshold equals scikit-image's on every map of the batch."
             if otsu_matches else "The batched Otsu threshold differs from scikit-image's on "
             "this batch: a defect to report.")]
    text.append(f"At this run's n⁻ = {levels[i]:g} the background region puts {large[i]:.1f}% of "
                f"its pixels on large objects and {small[i]:.1f}% on small ones; large objects "
                f"catch more of it at {worse_large} of {len(levels)} values of n⁻"
                + ("." if worse_large == len(levels) else
                   ": object size does not order the risk at every n⁻ in this run."))
    best = {name: levels[int(np.argmin(v))] for name, v in on_object.items()}
    text.append("The least background on the object is at n⁻ = "
                + ", ".join(f"{b:g} ({name})" for name, b in best.items())
                + (": a smaller n⁻ for the large objects, as the paper chooses on OpenImages."
                   if best["large objects"] < best["small objects"] else
                   ": here the large objects do not call for a smaller n⁻ than the small ones."))
    return " ".join(text)


def closing_03(rows: Mapping[str, Mapping[str, float]], key: str, metric: str,
               paper_steps: Sequence[float], chosen: Mapping[str, float] | None) -> str:
    """Notebook 03. ``rows``: "CAM (baseline)", "SR", "SR+CRF", "SR+CRF+ASC" scores; ``key``
    the metric read (``metric`` its display name); ``paper_steps``: the paper's gains of SR,
    CRF and ASC (Table 3); ``chosen``: the settings the validation search picked (None:
    not run)."""
    order = ["CAM (baseline)", "SR", "SR+CRF", "SR+CRF+ASC"]
    here = [rows[b][key] - rows[a][key] for a, b in zip(order, order[1:], strict=False)]
    steps = ", ".join(f"{n} {_signed(h)} (paper {_signed(p)})"
                      for n, h, p in zip(PAPER_STEP_NAMES, here, paper_steps, strict=True))
    big_here = PAPER_STEP_NAMES[int(np.argmax(here))]
    big_paper = PAPER_STEP_NAMES[int(np.argmax(paper_steps))]
    total = rows["SR+CRF+ASC"][key] - rows["CAM (baseline)"][key]
    text = [f"From the CAM's {rows['CAM (baseline)'][key]:.1f} {metric} to the full F-CAM's "
            f"{rows['SR+CRF+ASC'][key]:.1f} ({_signed(total)}), step by step: {steps}."]
    text.append(f"The largest step here is {big_here}"
                + (", as in the paper." if big_here == big_paper else
                   f"; in the paper it is {big_paper} (section 2's note after the comparison "
                   f"gives the reasons the steps differ)."))
    negative = [n for n, h in zip(PAPER_STEP_NAMES, here, strict=True) if h < 0]
    if negative:
        text.append(f"{' and '.join(negative)} lowered the score in this run (one run here, "
                    f"the paper's means over its backbones there).")
    if chosen is not None:
        text.append("The validation search chose " + ", ".join(f"{k} = {v:g}" for k, v in
                                                              chosen.items()) + ".")
    return " ".join(text)


def closing_04(table: Mapping[str, Mapping[str, float]], prior: Mapping[str, float],
               methods: Sequence[str], key: str, metric: str, paper_margin: float,
               names: Mapping[str, str]) -> str:
    """Notebook 04. ``table[m]`` and ``table[m + " + F-CAM"]`` for every CAM method ``m``;
    ``prior`` the centre prior's scores; ``paper_margin``: the paper's CAM* minus its centre
    baseline on this dataset's column (Table 1)."""
    gains = {m: table[m + " + F-CAM"][key] - table[m][key] for m in methods}
    wins = [m for m, g in gains.items() if g > 0]
    cam_margin = table["cam"][key] - prior[key]
    fcam_margin = table["cam + F-CAM"][key] - prior[key]
    text = [f"F-CAM beats its baseline on {metric} for {len(wins)} of {len(methods)} CAM methods "
            f"(gains from {min(gains.values()):+.1f} to {max(gains.values()):+.1f} points)."]
    if len(wins) < len(methods):
        text.append("It does not for " + ", ".join(names[m] for m in methods if m not in wins)
                    + ".")
    text.append(f"The CAM is {_signed(cam_margin)} against the centre prior that looks at no "
                f"pixel (paper: {_signed(paper_margin)}), F-CAM {_signed(fcam_margin)}"
                + (": on this set the CAM does worse than a fixed guess, which the paper's CAMs do "
                   "not (Table 1)." if cam_margin < 0 < paper_margin else "."))
    return " ".join(text)


def closing_05(width: Mapping[str, float] | None, best: Mapping[str, tuple[float, float]] | None,
               separation: Mapping[str, float]) -> str:
    """Notebook 05. ``width``: the share of thresholds (0-1) where each method's box accuracy is
    within 90% of its best (None: no boxes); ``best``: (best accuracy, its τ) per method;
    ``separation``: mean foreground minus mean background activation per method."""
    text = []
    if width is not None and best is not None:
        wider = width["F-CAM"] > width["CAM"]
        text.append(f"F-CAM's box accuracy stays within 90% of its best ({best['F-CAM'][0]:.1f}% "
                    f"at τ = {best['F-CAM'][1]:.2f}) over {100 * width['F-CAM']:.0f}% of the "
                    f"thresholds, the CAM's ({best['CAM'][0]:.1f}% at τ = {best['CAM'][1]:.2f}) "
                    f"over {100 * width['CAM']:.0f}%: "
                    + ("a threshold chosen without labels costs F-CAM less." if wider else
                       "in this run F-CAM is not the less threshold-sensitive of the two."))
    gap = separation["F-CAM"] - separation["CAM"]
    text.append(f"The mean activation gap between object and background is "
                f"{separation['F-CAM']:.2f} for F-CAM and {separation['CAM']:.2f} for the CAM "
                + ("(F-CAM separates object from background more, the paper's Fig. 6 reading)."
                   if gap > 0 else "(F-CAM's maps are not better separated in this run)."))
    return " ".join(text)


def closing_06(failed_cam: int, failed_fcam: int, images: int,
               report: Mapping[str, Mapping[str, float]]) -> str:
    """Notebook 06. Failures = IoU < 0.5 per image; ``report``: each flag's ``flag_scores``
    (precision, recall, chance_precision in %)."""
    text = [f"F-CAM fails (IoU < 0.5) on {failed_fcam} of {images} test images, the CAM on "
            f"{failed_cam}"
            + (": fewer failures with F-CAM." if failed_fcam < failed_cam else
               ": F-CAM does not reduce the failures in this run.")]
    above = {n: r for n, r in report.items() if r["precision"] > r["chance_precision"]}
    if failed_fcam in (0, images):
        text.append("With " + ("no failure" if failed_fcam == 0 else "every image a failure")
                    + ", a flag has nothing to find: its precision says nothing here.")
    elif above:
        top = max(r["precision"] for r in above.values())
        leaders = [n for n, r in above.items() if r["precision"] == top]
        recalls = ", ".join(f"{above[n]['recall']:.1f}%" for n in leaders)
        text.append(f"Of the label-free flags, {' and '.join(leaders)} "
                    f"{'is' if len(leaders) == 1 else 'are'} the most precise ({top:.1f}% against "
                    f"{above[leaders[0]]['chance_precision']:.1f}% by chance; recall {recalls}); "
                    f"{len(above)} of {len(report)} flags beat chance.")
    else:
        text.append("No label-free flag beats chance here: none of them can stand in for labels "
                    "on this run.")
    return " ".join(text)


def closing_07(ms: Mapping[str, float], flops_ratio: float, device: str) -> str:
    """Notebook 07. ``ms``: milliseconds per image per method (with "fcam"); ``flops_ratio``:
    F-CAM's forward FLOPs over the encoder's."""
    ratio = ms["fcam"] / ms["cam"]
    slow = [m for m in ("smoothgradcampp", "scorecam") if m in ms]
    names = {"smoothgradcampp": "Smooth-GradCAM++", "scorecam": "ScoreCAM"}
    text = [f"On this {device}, F-CAM takes {ms['fcam']:.2f} ms per image against the CAM's "
            f"{ms['cam']:.2f} ms ({ratio:.2f}x; the FLOPs predict {flops_ratio:.2f}x) and "
            f"GradCAM's {ms['gradcam']:.2f} ms."]
    beaten = [names[m] for m in slow if ms["fcam"] < ms[m]]
    unbeaten = [names[m] for m in slow if ms["fcam"] >= ms[m]]
    if beaten:
        text.append(f"It is faster than {' and '.join(beaten)}, which need"
                    f"{'s' if len(beaten) == 1 else ''} several passes per map.")
    if unbeaten:
        text.append(f"It is not faster than {' and '.join(unbeaten)} on this device.")
    text.append("Full resolution costs one decoder pass, not a multiple of the classifier."
                if ratio < 2 else "Here the decoder costs more than the classifier itself.")
    return " ".join(text)
