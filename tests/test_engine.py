"""The shared training loop's pieces: randomness per (seed, stage, epoch), selection keys,
mixed precision by GPU generation."""

import pytest
import torch

from fcam_nb.config import DataConfig, RunConfig
from fcam_nb.engine import amp_dtype, epoch_generator, lr_factor, selection_key, selection_metric


def test_epoch_generators_are_distinct_and_reproducible():
    draw = lambda s, st, e: torch.rand(3, generator=epoch_generator(s, st, e))
    torch.testing.assert_close(draw(0, 1, 2), draw(0, 1, 2), rtol=0, atol=0)
    assert not torch.equal(draw(0, 1, 2), draw(0, 2, 2))
    assert not torch.equal(draw(0, 1, 2), draw(1, 1, 2))


def test_selection_key_follows_what_the_split_measures():
    assert selection_key({"max_box_acc": 70.0, "pxap": 50.0}) == 70.0
    assert selection_key({"pxap": 50.0, "cls_acc": 90.0}) == 50.0  # mask-only split (OpenImages)
    assert selection_key({"cls_acc": 90.0}, "cls") == 90.0
    assert selection_key({"max_box_acc": 70.0, "max_box_acc_v2": 60.0}, "loc_v2") == 60.0
    assert selection_key({"pxap": 50.0}, "loc_v2") == 50.0  # no boxes: PxAP
    assert selection_key({"max_box_acc": 70.0, "pxap": 50.0}, "pxap") == 50.0
    with pytest.raises(ValueError, match="needs a validation split with masks"):
        selection_key({"max_box_acc": 70.0}, "pxap")
    assert selection_key({"cls_acc": 90.0}) == 0.0  # no localization: every epoch ties
    # the key that is maximized, named by search tables
    assert selection_metric({"max_box_acc": 70.0, "max_box_acc_v2": 60.0}, "loc_v2") == "max_box_acc_v2"
    assert selection_metric({"max_box_acc": 70.0, "pxap": 50.0}, "pxap") == "pxap"
    assert selection_metric({"pxap": 50.0}, "loc_v2") == "pxap"
    with pytest.raises(ValueError, match="select_by"):
        selection_key({}, "acc")


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16)])
def test_mixed_precision_by_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cfg = RunConfig(DataConfig("d", "m", 2), "out")
    assert amp_dtype(cfg, torch.device("cuda")) == expected
    assert amp_dtype(cfg, torch.device("cpu")) is None
    assert amp_dtype(cfg.override(amp=False), torch.device("cuda")) is None


def test_step_schedule_is_the_official_steplr():
    """``step``: lr x gamma every step_size epochs (the official MyStepLR / wsolevaluation's
    adjust_learning_rate, stepped once per epoch) = torch's StepLR; ``cosine`` starts at 1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0017)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.1)
    for epoch in range(50):
        assert abs(0.0017 * lr_factor(epoch, 50, "step", 15, 0.1) - opt.param_groups[0]["lr"]) \
            < 1e-15, epoch
        opt.step()
        sched.step()
    assert lr_factor(14, 50, "step", 15) == 1.0 and lr_factor(15, 50, "step", 15) == 0.1
    assert lr_factor(0, 10, "cosine") == 1.0 and lr_factor(5, 10, "cosine") == 0.5
    assert lr_factor(7, 10, "constant") == 1.0
    with pytest.raises(ValueError, match="constant, step or cosine"):
        lr_factor(0, 10, "poly")
