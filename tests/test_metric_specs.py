"""The metric registry: display names, table columns, selection names and fallbacks."""

import pytest

from fcam_nb.metric_specs import (
    METRIC_NAMES,
    METRICS,
    MetricSpec,
    register_metric,
    select_by_names,
    selection_metric,
    table_keys,
)


def test_the_builtin_metrics():
    assert table_keys() == ("max_box_acc", "max_box_acc_v2", "pxap", "top1_loc", "top5_loc")
    assert select_by_names() == ("loc", "loc_v2", "pxap", "cls")
    assert METRIC_NAMES["max_box_acc_v2"] == "MaxBoxAccV2"
    from fcam_nb.__main__ import RESULT_KEYS

    assert set(RESULT_KEYS) <= set(METRICS)


def test_a_registered_metric_is_a_column_a_name_and_a_selection(tmp_path):
    from fcam_nb.evaluate import score_table

    register_metric(MetricSpec("peak_iou", "PeakIoU", "boxes", select_by="peak",
                               fallback=("max_box_acc",), optional=True))
    try:
        assert "peak_iou" in table_keys() and "peak" in select_by_names()
        table = score_table({"cam": {"max_box_acc": 1.0, "peak_iou": 2.0}})
        assert "PeakIoU" in table.splitlines()[0]
        assert selection_metric({"peak_iou": 1.0, "max_box_acc": 2.0}, "peak") == "peak_iou"
        assert selection_metric({"max_box_acc": 2.0}, "peak") == "max_box_acc"
        assert selection_metric({"cls_acc": 2.0}, "peak") is None
        from fcam_nb.config import ConfigError
        from fcam_nb.data import SyntheticConfig
        from fcam_nb.presets import synthetic_run

        cfg = synthetic_run(tmp_path / "data", tmp_path / "run", SyntheticConfig())
        try:
            cfg.override(stage2={"select_by": "peak"}).check()
        except ConfigError as err:  # e.g. data not generated yet; never the selection name
            assert "select_by" not in str(err)
        with pytest.raises(ConfigError, match="select_by must be one of"):
            cfg.override(stage2={"select_by": "peek"}).check()
    finally:
        METRICS.pop("peak_iou")
        METRIC_NAMES.pop("peak_iou")


def test_registration_is_checked():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(MetricSpec("pxap", "PxAP", "masks"))
    with pytest.raises(ValueError, match="select_by name 'loc' is already taken"):
        register_metric(MetricSpec("other", "Other", "boxes", select_by="loc"))
    with pytest.raises(ValueError, match="needs must be boxes, masks or labels"):
        register_metric(MetricSpec("odd", "Odd", "pixels"))
    with pytest.raises(ValueError, match="select_by must be one of"):
        selection_metric({"pxap": 1.0}, "acc")
    with pytest.raises(ValueError, match="needs a validation split with labels"):
        selection_metric({"pxap": 1.0}, "cls")
