"""The paper's result tables as data (Belharbi et al., F-CAM, WACV 2022; arXiv 2109.07069).

Tables 1, 2, 3, A.1, A.2 and A.3, transcribed cell by cell from the paper's text (tab-separated
below, as printed: "—" is a missing value). Columns are named ``<dataset>/<backbone>`` with this
package's backbone names (``vgg16``, ``inceptionv3``, ``resnet50``, plus ``mean``) so a measured
row can be put beside its reference; ``reference()`` looks up one cell by our method names.
Rows whose numbers use another backbone (CSTN, TS-CAM) keep it in ``notes``.

Example:
    >>> TABLES["1"].cell("CAM* + ours", "CUB/resnet50")
    90.3
    >>> reference("1", "gradcampp", fcam=False, dataset="OpenImages", backbone="vgg16")
    60.5
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fcam_nb.cams.methods import BASELINES, METHODS, display_name

BACKBONES = ("vgg16", "inceptionv3", "resnet50")

# Paper row names of the six baselines this package implements (our name -> the paper's). Table 2
# and Table A.3 write "Smooth-GradCAM" for Smooth-GradCAM++, Tables 1/3/A.1 "Smooth-GradCAM++".
PAPER_NAMES = {name: METHODS[name].paper_name for name in BASELINES}


@dataclass(frozen=True)
class PaperTable:
    """One table: ``rows[method]`` holds one value per column (None where the paper has —)."""

    name: str
    caption: str
    columns: tuple[str, ...]
    rows: dict[str, tuple[float | None, ...]]
    notes: dict[str, str] = field(default_factory=dict)

    def cell(self, method: str, column: str) -> float | None:
        """The value of ``method``'s row in ``column`` (KeyError naming the choices if unknown)."""
        if method not in self.rows:
            raise KeyError(f"Table {self.name} has no row {method!r}; rows: {list(self.rows)}")
        if column not in self.columns:
            raise KeyError(f"Table {self.name} has no column {column!r}; columns: {self.columns}")
        return self.rows[method][self.columns.index(column)]

    def __str__(self) -> str:
        width = max(len(m) for m in self.rows) + 2
        lines = [f"Table {self.name}: {self.caption}",
                 " " * width + " ".join(f"{_short(c):>9}" for c in self.columns)]
        for method, values in self.rows.items():
            cells = " ".join(f"{'—' if v is None else f'{v:g}':>9}" for v in values)
            lines.append(f"{method:<{width}}{cells}" + (f"  ({self.notes[method]})"
                                                        if method in self.notes else ""))
        return "\n".join(lines)


def _short(column: str) -> str:
    """A column name for printing: ``OpenImages/resnet50`` -> ``OI Res``."""
    *group, backbone = column.split("/")
    name = {"vgg16": "VGG", "inceptionv3": "Inc", "resnet50": "Res", "mean": "Mean"}[backbone]
    prefix = {"OpenImages": "OI"}.get(group[0], group[0]) + " " if group else ""
    return prefix + name


def _value(text: str) -> float | None:
    """One printed cell: a number, a time (ms, sec, min) converted to ms, or — (None)."""
    text = text.strip()
    if text in ("—", "-", ""):
        return None
    if "min" in text:
        minutes, seconds = text.replace("sec", "").split("min")
        return (60 * float(minutes) + float(seconds or 0)) * 1000
    if text.endswith("sec"):
        return float(text[:-3]) * 1000
    return float(text.removesuffix("ms"))


def _parse(text: str, n: int) -> tuple[dict, dict]:
    """Rows of a tab-separated transcription; a row with one cell 'Backbone: value' is a note."""
    rows, notes = {}, {}
    for line in text.strip("\n").splitlines():
        method, *cells = line.split("\t")
        if len(cells) == 1 and ":" in cells[0]:  # e.g. CSTN "Resnet101 [14]: 76.0"
            rows[method], notes[method] = (None,) * n, cells[0]
            continue
        if len(cells) != n:
            raise ValueError(f"transcription of {method!r}: {len(cells)} cells, expected {n}")
        rows[method] = tuple(_value(c) for c in cells)
    return rows, notes


def _columns(datasets: tuple[str, ...], mean: bool = True) -> tuple[str, ...]:
    per = BACKBONES + (("mean",) if mean else ())
    return tuple(f"{d}/{b}" for d in datasets for b in per)


_T1 = """
CAM	71.1	62.1	73.2	68.8	58.1	61.4	58.0	59.1
HaS	76.3	57.7	78.1	70.7	56.9	59.5	58.2	57.8
ACoL	72.3	59.6	72.7	68.2	54.7	63.0	57.8	58.4
SPG	63.7	62.8	71.4	66.0	55.9	62.4	57.7	58.6
ADL	75.7	63.4	73.5	70.8	58.3	62.1	54.3	58.2
CutMix	71.9	65.5	67.8	68.4	58.2	61.7	58.7	59.5
Best WSOL	76.3	65.5	78.1	70.8	58.3	63.0	58.7	59.5
FSL baseline	86.3	94.0	95.8	92.0	61.5	70.3	74.4	68.7
Center baseline	59.7	59.7	59.7	59.7	45.8	45.8	45.8	45.8
CSTN	Resnet101: 76.0
TS-CAM	Deit-S: 83.8
MEIL	73.8	—	—	—	—	—	—	—
DANet	67.7	67.03	—	—	—	—	—	—
SPOL	—	—	96.4	—	—	—	—	—
CAM*	61.6	58.8	71.5	63.9	53.0	62.7	56.8	57.5
GradCAM	69.3	62.3	73.1	68.2	59.6	63.9	60.1	61.2
GradCAM++	84.1	63.3	81.9	76.4	60.5	64.0	60.2	61.5
Smooth-GradCAM++	69.7	66.9	76.3	70.9	52.2	61.7	54.3	56.0
XGradCAM	69.3	60.9	72.7	67.6	59.0	63.9	60.2	61.0
LayerCAM	84.3	66.5	85.2	78.6	59.5	63.5	61.1	61.3
CAM* + ours	87.3	82.0	90.3	86.5	67.8	71.9	72.1	70.6
GradCAM + ours	87.5	84.4	90.5	87.4	68.6	70.0	70.9	69.8
GradCAM++ + ours	91.5	84.6	91.0	89.0	64.8	67.1	66.3	66.0
Smooth-GradCAM++ + ours	89.1	86.8	90.7	88.8	60.3	65.4	64.4	63.3
XGradCAM + ours	86.8	84.4	90.4	88.8	68.7	71.3	70.4	70.1
LayerCAM + ours	91.0	85.3	92.4	89.7	64.3	64.9	65.3	64.8
Best WSOL + ours	91.5	86.8	92.4	89.7	68.7	71.9	72.1	70.6
"""

_T2 = """
CAM	45.8	40.4	56.1	—	—	—
HaS	55.6	41.1	60.7	—	—	—
ACoL	44.8	46.8	57.8	—	—	—
SPG	42.9	44.9	51.5	—	—	—
ADL	39.2	35.2	41.1	—	—	—
CutMix	47.0	48.3	54.5	—	—	—
ICL	57.5	56.1	56.1	—	—	—
CSTN	Resnet101: 49.0
TS-CAM	Deit-S: 71.3
I2C	—	56.0	—	—	68.3	—
MEIL	57.4	—	—	—	—	—
DANet	52.5	49.4	—	61.9	60.4	—
NL-CCAM	52.4	—	—	65.0	—	—
SPOL	—	—	80.1	—	—	93.4
CAM*	33.5	40.9	47.8	52.7	54.8	66.5
GradCAM	18.5	41.6	32.3	41.7	56.2	56.4
GradCAM++	20.8	41.4	34.7	47.5	56.8	61.4
Smooth-GradCAM++	17.7	44.4	33.1	40.2	60.2	57.7
XGradCAM	18.5	40.9	48.3	41.7	55.2	67.3
LayerCAM	24.8	43.9	44.2	47.8	59.7	70.3
CAM* + ours	44.0	54.6	59.1	70.1	73.8	82.6
GradCAM + ours	22.1	56.1	38.8	50.0	75.4	68.5
GradCAM++ + ours	23.2	55.9	39.0	52.0	76.0	68.9
Smooth-GradCAM++ + ours	22.9	57.3	38.9	51.2	77.6	68.6
XGradCAM + ours	22.0	55.8	59.3	49.6	75.3	82.7
LayerCAM + ours	23.1	56.4	47.7	51.9	76.6	76.1
"""

_T3 = """
CAM*	61.6	58.8	71.5	63.9	53.0	62.7	56.8	57.5
CAM* + SR	84.2	73.0	82.2	79.8	64.5	64.1	63.8	64.1
CAM* + SR + CRF	84.6	78.9	86.1	83.2	66.3	68.3	67.5	67.3
CAM* + SR + CRF + ASC	87.3	82.0	90.3	86.5	67.8	71.9	72.1	70.6
Improvement	25.7	23.2	18.8	22.5	14.8	9.2	15.3	12.8
"""

_TA1 = """
CAM	63.7	56.7	63.0	61.1
HaS	63.7	53.4	64.7	60.6
ACoL	57.4	56.2	66.5	60.0
SPG	56.3	55.9	60.4	57.5
ADL	66.3	58.8	58.4	61.1
CutMix	62.3	57.5	62.8	60.8
Best WSOL	66.3	58.8	66.5	61.1
FSL baseline	71.6	86.6	82.4	80.2
Center baseline	59.7	59.7	59.7	59.7
ICL	66.7	60.3	63.2	63.4
CAM*	57.0	54.4	62.1	57.8
GradCAM	62.7	57.1	63.3	61.0
GradCAM++	73.8	60.7	70.2	68.2
Smooth-GradCAM++	64.1	59.7	66.6	63.4
XGradCAM	62.8	56.7	63.2	60.9
LayerCAM	74.1	62.6	72.6	69.7
CAM* + ours	79.1	71.2	79.4	76.5
GradCAM + ours	79.5	76.2	80.8	78.5
GradCAM++ + ours	84.1	73.1	82.7	79.9
Smooth-GradCAM++ + ours	83.1	74.0	81.6	79.5
XGradCAM + ours	80.1	70.6	80.0	76.9
LayerCAM + ours	84.3	73.9	82.7	80.3
Best WSOL + ours	84.3	76.2	82.7	80.3
"""

# Table A.2: the details row (#PCL M, #NFM, #PDEC M per backbone; SFM is 28x28 for all) and the
# time to build one full-size CAM (ms; a P100, one 224x224 image, 200 classes). ADL/Inception is
# printed "16.0" without a unit: read as ms like its neighbours.
_TA2_DETAILS = """
#PCL (M)	19.6	25.6	23.9
#NFM	1024	1024	2048
#PDEC (M)	23.1	5.7	9
"""
_TA2 = """
CAM*	.2ms	.2ms	.3ms
GradCAM	7.7ms	21.1ms	27.8ms
GradCAM++	23.5ms	23.7ms	28.0ms
Smooth-GradCAM++	62.0ms	150.7ms	136.2ms
XGradCAM	2.9ms	19.2ms	14.2ms
LayerCAM	3.2ms	18.2ms	17.9ms
Mean	16.6ms	38.8ms	37.4ms
ours + STDCL	6.2ms	25.5ms	18.5ms
ACoL	12.0ms	19.2ms	24.9ms
SPG	11.0ms	18ms	23.9ms
ADL	6.4ms	16.0	14.4ms
ScoreCAM	1.9sec	3.4sec	9.3sec
SSCAM	1min45sec	2min16sec	5min49sec
IS-CAM	30.1sec	39.0sec	1min39sec
"""

_TA3 = """
CAM	26.8	61.8	58.4	49.0	67.3	36.6	72.6	58.8
HaS	70.9	69.9	74.5	71.8	60.0	68.4	74.0	67.5
ACoL	56.1	71.6	64.0	63.9	68.2	40.7	70.7	59.9
SPG	63.1	58.8	37.8	53.2	71.7	43.5	65.4	60.2
ADL	31.1	45.5	32.7	36.4	66.1	46.6	56.1	56.3
CutMix	29.2	70.2	55.9	51.8	68.1	53.1	73.7	65.0
CAM*	49.3	65.5	65.1	59.9	69.1	61.2	73.2	67.8
GradCAM	24.8	65.4	42.2	44.1	69.0	54.0	72.4	65.1
GradCAM++	24.8	65.2	42.2	44.0	70.3	69.6	72.3	70.7
Smooth-GradCAM++	24.8	65.3	42.2	44.1	69.0	54.0	67.0	63.3
XGradCAM	24.8	65.4	65.1	51.7	69.0	69.4	72.0	70.1
LayerCAM	24.8	65.0	51.2	47.0	70.3	53.9	72.2	65.4
"""


def _table(name: str, caption: str, columns: tuple[str, ...], text: str) -> PaperTable:
    rows, notes = _parse(text, len(columns))
    return PaperTable(name, caption, columns, rows, notes)


TABLES: dict[str, PaperTable] = {
    "1": _table("1", "MaxBoxAcc (CUB) and PxAP (OpenImages), test sets, %",
                _columns(("CUB", "OpenImages")), _T1),
    "2": _table("2", "Top-1 and top-5 localization (CUB, MaxBoxAcc), %",
                tuple(f"{k}/{b}" for k in ("top1", "top5") for b in BACKBONES), _T2),
    "3": _table("3", "Ablation of the loss terms on CAM* seeds: MaxBoxAcc (CUB), PxAP "
                "(OpenImages), %; 'Improvement' = full method - CAM*",
                _columns(("CUB", "OpenImages")), _T3),
    "A.1": _table("A.1", "MaxBoxAccV2 on CUB, %", _columns(("CUB",)), _TA1),
    "A.2": _table("A.2", "Time to build one full-size CAM (ms; P100 GPU, one 224x224 image, 200 "
                  "classes)", BACKBONES, _TA2),
    "A.2 details": _table("A.2 details", "Classifier parameters (M), top-layer feature maps, "
                          "decoder parameters (M); maps are 28x28 for all", BACKBONES,
                          _TA2_DETAILS),
    "A.3": _table("A.3", "Classification accuracy (top-1, %) of the classifiers selected by "
                  "localization (MaxBoxAcc on CUB, PxAP on OpenImages)",
                  _columns(("CUB", "OpenImages")), _TA3),
}


def reference(table: str, method: str, fcam: bool, dataset: str, backbone: str
              ) -> float | None:
    """The paper's number for one of our rows: ``method`` a baseline name (``cam``...),
    ``fcam`` whether with the F-CAM decoder (the "+ ours" row), ``dataset`` CUB/OpenImages (or
    ``top1``/``top5`` for Table 2), ``backbone`` vgg16/inceptionv3/resnet50/mean."""
    if method not in PAPER_NAMES:
        raise KeyError(f"unknown method {method!r}; choose from {list(PAPER_NAMES)}")
    row = PAPER_NAMES[method] + (" + ours" if fcam else "")
    column = backbone if table.startswith("A.2") else f"{dataset}/{backbone}"
    return TABLES[table].cell(row, column)


# Where each of our metrics sits in the paper, per dataset: (table, column dataset prefix).
_METRIC_TABLES = {
    "CUB": {"max_box_acc": ("1", "CUB"), "max_box_acc_v2": ("A.1", "CUB"),
            "top1_loc": ("2", "top1"), "top5_loc": ("2", "top5"), "cls_acc": ("A.3", "CUB")},
    "OpenImages": {"pxap": ("1", "OpenImages"), "cls_acc": ("A.3", "OpenImages")},
}


def beside_paper(measured: dict[str, dict], dataset: str, backbone: str) -> str:
    """Measured rows next to the paper's: ``measured`` maps ``<method>`` and
    ``<method> + F-CAM`` to metric dicts (as notebook 04 builds them); each metric the paper
    reports for ``dataset`` gets ``ours / paper`` (``—`` where the paper has no number, e.g.
    classification accuracy of an F-CAM row: the decoder does not change it)."""
    where = _METRIC_TABLES.get(dataset)
    if where is None:
        raise KeyError(f"the paper reports CUB and OpenImages, not {dataset!r}")
    keys = [k for k in where if all(k in r for r in measured.values())]
    width = max(len(n) for n in measured) + 2
    lines = [f"{dataset}, {backbone}: ours / paper (Tables "
             f"{', '.join(dict.fromkeys(where[k][0] for k in keys))})",
             " " * width + "".join(f"{k:>17}" for k in keys)]
    for name, scores in measured.items():
        method, fcam = name.removesuffix(" + F-CAM"), name.endswith(" + F-CAM")
        cells = []
        for k in keys:
            table, prefix = where[k]
            paper = None
            if not (fcam and table == "A.3"):
                paper = reference(table, method, fcam, prefix, backbone)
            cells.append(f"{scores[k]:.1f} / {'—' if paper is None else f'{paper:.1f}'}")
        lines.append(f"{display_name(name):<{width}}" + "".join(f"{c:>17}" for c in cells))
    return "\n".join(lines)
