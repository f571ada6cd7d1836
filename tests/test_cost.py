"""Cost estimates: CRF pixel pairs, the CPU refusal's figure, FLOPs per stage."""

import pytest

from fcam_nb.course.cost import cpu_crf_seconds_per_step, crf_pairs_per_image, per_image_costs
from fcam_nb.presets import paper_run


def test_crf_pairs_and_the_cpu_estimate(tmp_path):
    assert crf_pairs_per_image(224, 1.0) == 224.0**4 and crf_pairs_per_image(224, 0.5) == 112.0**4
    cfg = paper_run("CUB", tmp_path, tmp_path, tmp_path)
    from fcam_nb.course.cost import CPU_CRF_NS_PER_PAIR

    seconds = cpu_crf_seconds_per_step(cfg)  # 32 maps of 224 px: 224^4 pairs each
    assert seconds == pytest.approx(32 * 224.0**4 * CPU_CRF_NS_PER_PAIR * 1e-9)
    assert 5 < seconds / 60 < 60  # minutes per step (8 here), not seconds or hours
    assert cpu_crf_seconds_per_step(cfg.override(stage2={"use_crf": False})) == 0


def test_stage_costs_count_training_above_evaluation():
    c = per_image_costs("tiny", input_size=64, num_classes=4)
    assert c["encoder_fwd"] > 0 and c["decoder_fwd"] > 0
    assert c["stage1_train"] == 3 * c["encoder_fwd"] > c["eval"]
    assert c["stage2_train"] > c["stage2_eval"] > c["eval"]


@pytest.mark.parametrize("schedule, epochs, scale", [("paper", (50, 50), 1.0), ("colab", (10, 3), 0.5)])
def test_schedules(tmp_path, schedule, epochs, scale):
    cfg = paper_run("CUB", tmp_path, tmp_path, tmp_path, schedule=schedule)
    assert (cfg.stage1.epochs, cfg.stage2.epochs, cfg.stage2.crf_scale) == (*epochs, scale)
    with pytest.raises(ValueError, match="schedule"):
        paper_run("CUB", tmp_path, tmp_path, tmp_path, schedule="fast")


def test_the_cost_table_reads_each_datasets_schedules():
    """benchmarks/cost_table.py's series estimate for every schedule and paper dataset (fake
    per-image costs: the point is that the script reads the dataset specs)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cost_table.py"
    spec = importlib.util.spec_from_file_location("cost_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    costs = dict.fromkeys(("stage1_train", "eval", "stage2_train", "stage2_eval"), 1.0)
    for schedule in ("colab", "paper"):
        for dataset in ("CUB", "OpenImages"):
            conv, crf = module.series_flops(costs, dataset, schedule, 1.0)
            assert conv > 0 and crf > 0
