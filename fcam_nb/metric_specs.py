"""The WSOL metrics by name: one registration per metric.

Display names (``METRIC_NAMES``), the score tables' columns (``table_keys``), the names a stage
may select its checkpoints by (``select_by_names``: ``RunConfig.check``) and what a selection
falls back on when a split lacks the metric (``selection_metric``) all read ``METRICS``. The
metrics themselves are computed in ``fcam_nb.metrics`` / ``fcam_nb.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fcam_nb.registry import add_entry


@dataclass(frozen=True)
class MetricSpec:
    """``key``: the name in the score dicts; ``needs``: ``boxes``, ``masks`` or ``labels``;
    ``in_table``: a column of the score tables; ``select_by``: the name under which a stage
    selects its checkpoints by this metric (``None``: not a selection metric); ``fallback``: the
    metrics that selection uses, in order, where the split lacks this one; ``optional``: with
    none of them on the split the selection has nothing to rank (every epoch ties) instead of
    refusing."""

    key: str
    display: str
    needs: str
    in_table: bool = True
    select_by: str | None = None
    fallback: tuple[str, ...] = ()
    optional: bool = False


METRICS: dict[str, MetricSpec] = {}
METRIC_NAMES: dict[str, str] = {}  # key -> display name, kept in step with METRICS


def register_metric(spec: MetricSpec, replace: bool = False) -> MetricSpec:
    """Add ``spec``; a key or a ``select_by`` name already taken is refused unless ``replace``."""
    if spec.needs not in ("boxes", "masks", "labels"):
        raise ValueError(f"metric {spec.key!r}: needs must be boxes, masks or labels, got "
                         f"{spec.needs!r}")
    holder = next((s for s in METRICS.values() if s.key != spec.key and s.select_by is not None
                   and s.select_by == spec.select_by), None)
    if holder is not None and not replace:
        raise ValueError(f"select_by name {spec.select_by!r} is already taken by metric "
                         f"{holder.key!r}")
    add_entry(METRICS, spec.key, spec, "metric", replace)
    METRIC_NAMES[spec.key] = spec.display
    return spec


def table_keys() -> tuple[str, ...]:
    """The score tables' columns, in registration order."""
    return tuple(k for k, s in METRICS.items() if s.in_table)


def select_by_names() -> tuple[str, ...]:
    """The names a stage's ``select_by`` accepts."""
    return tuple(s.select_by for s in METRICS.values() if s.select_by is not None)


def selection_metric(metrics: dict, by: str = "loc") -> str | None:
    """The key of ``metrics`` that selecting by ``by`` maximizes: the metric registered under
    ``by``, else its fallbacks in order; None when it is ``optional`` and the split has none of
    them (no localization measured), else ValueError naming what the split lacks."""
    spec = next((s for s in METRICS.values() if s.select_by == by), None)
    if spec is None:
        raise ValueError(f"select_by must be one of {select_by_names()}, got {by!r}")
    for key in (spec.key, *spec.fallback):
        if key in metrics:
            return key
    if spec.optional:
        return None
    raise ValueError(f"select_by={by!r} needs a validation split with {spec.needs}")


# the protocol's localization metrics (Choe et al., CVPR 2020) and the classification accuracy;
# "loc" selects by MaxBoxAcc, or by PxAP on mask-only splits (OpenImages), as the official code
register_metric(MetricSpec("max_box_acc", "MaxBoxAcc", "boxes", select_by="loc",
                           fallback=("pxap",), optional=True))
register_metric(MetricSpec("max_box_acc_v2", "MaxBoxAccV2", "boxes", select_by="loc_v2",
                           fallback=("max_box_acc", "pxap"), optional=True))
register_metric(MetricSpec("pxap", "PxAP", "masks", select_by="pxap"))
register_metric(MetricSpec("top1_loc", "Top-1 Loc", "boxes"))
register_metric(MetricSpec("top5_loc", "Top-5 Loc", "boxes"))
register_metric(MetricSpec("cls_acc", "Cls acc", "labels", in_table=False, select_by="cls"))
