"""Cost estimates: CRF pixel pairs, the CPU refusal's figure, FLOPs per stage."""

import pytest

from fcam_nb.course.cost import cpu_crf_seconds_per_step, crf_pairs_per_image, per_image_costs
from fcam_nb.presets import paper_run


def test_crf_pairs_and_the_cpu_estimate(tmp_path):
    assert crf_pairs_per_image(224, 1.0) == 224.0**4 and crf_pairs_per_image(224, 0.5) == 112.0**4
    cfg = paper_run("CUB", tmp_path, tmp_path, tmp_path)
    minutes = cpu_crf_seconds_per_step(cfg) / 60  # 32 maps of 224 px at ~9 ns per pair
    assert 10 < minutes < 15
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
