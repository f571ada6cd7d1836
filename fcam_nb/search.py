"""Stage-2 hyperparameters chosen on the validation split, as the paper does.

The paper picks n- (the background fraction, ``Stage2Config.n_bg``) in [0.1, 0.7] by 0.1 and the
partial-CE weight alpha (``Stage2Config.pce_weight``) in {1, 0.1} on validation (Sec. 3.1,
"Implementation details"; its Fig. 8 shows the n- curves). ``search_stage2`` trains one decoder
per grid point on the same stage-1 classifier, each in its own folder under
``<out_dir>/search/`` (resumable like any run), and ranks them by the validation localization
score of their selected epoch. The test split is never looked at.

Example:
    >>> rows = search_stage2(cfg, classifier, {"n_bg": (0.3, 0.6), "pce_weight": (1.0, 0.1)})
    >>> best = rows[0]["settings"]                    # apply with cfg.override(stage2=best)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from fcam_nb.checkpoint import load
from fcam_nb.config import RunConfig
from fcam_nb.engine import best_path, selection_key, selection_metric
from fcam_nb.evaluate import METRIC_NAMES
from fcam_nb.models import WSOLClassifier
from fcam_nb.train import train_fcam

PAPER_GRID = {"n_bg": tuple(round(0.1 * k, 1) for k in range(1, 8)), "pce_weight": (1.0, 0.1)}


def grid_points(grid: dict[str, Sequence]) -> list[dict]:
    """Every combination of ``grid`` (Stage2Config field -> values), in order."""
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ValueError(f"grid needs at least one value per setting, got {grid}")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def point_name(point: dict) -> str:
    """Folder name of a grid point, e.g. ``n_bg=0.3,pce_weight=1.0``."""
    return ",".join(f"{k}={v}" for k, v in point.items())


def search_stage2(cfg: RunConfig, classifier: WSOLClassifier, grid: dict[str, Sequence],
                  epochs: int | None = None) -> list[dict]:
    """Train a decoder of ``cfg.stage2.variant`` per grid point and rank them on validation.

    Args:
        cfg: the run (its stage-2 settings are the base every point changes).
        classifier: the stage-1 classifier every decoder is trained on.
        grid: ``Stage2Config`` field -> values, e.g. ``PAPER_GRID``.
        epochs: stage-2 epochs per point (default ``cfg.stage2.epochs``).
    Returns:
        One row per point, best first: ``settings`` (the point), ``score`` (validation key of
        the selected epoch: ``cfg.stage2.select_by``), ``metric`` (its name), ``epoch`` (the
        selected epoch), ``folder``. Ties keep grid order.
    """
    rows = []
    for point in grid_points(grid):
        stage2 = dict(point, **({"epochs": epochs} if epochs is not None else {}))
        run = cfg.override(stage2=stage2,
                           out_dir=str(Path(cfg.out_dir) / "search" / point_name(point)))
        train_fcam(run, classifier)
        state = load(best_path(Path(run.out_dir), run.stage2.variant.tag))
        metrics = state["metrics"]
        key = selection_metric(metrics, cfg.stage2.select_by)
        rows.append({"settings": point, "score": selection_key(metrics, cfg.stage2.select_by),
                     "metric": METRIC_NAMES.get(key, "none"), "epoch": state["epoch"],
                     "folder": run.out_dir})
    return sorted(rows, key=lambda r: -r["score"])  # stable: ties keep grid order


def search_table(rows: list[dict]) -> str:
    """The ranked rows as text: settings, validation score, selected epoch."""
    lines = [f"{'settings':32s} {'val ' + rows[0]['metric']:>16s} {'epoch':>6s}"]
    for r in rows:
        lines.append(f"{point_name(r['settings']):32s} {r['score']:16.1f} {r['epoch']:6d}")
    return "\n".join(lines)
