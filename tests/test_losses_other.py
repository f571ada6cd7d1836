import dataclasses
import math

import pytest
import torch

from fcam_nb.losses import (
    FCAMObjective,
    SizeConstraint,
    extended_log_barrier,
    partial_cross_entropy,
)
from fcam_nb.sampling import IGNORE


def test_elb_piecewise_and_continuous():
    t = 2.0
    f = torch.tensor([-10.0, -1 / t**2, 0.0, 3.0])
    psi = extended_log_barrier(f, t)
    assert psi[0].item() == pytest.approx(-math.log(10) / t)
    assert psi[2].item() == pytest.approx(t * 0 - math.log(1 / t**2) / t + 1 / t)
    # continuity at the switch point
    eps = 1e-5
    left = extended_log_barrier(torch.tensor(-1 / t**2 - eps, dtype=torch.float64), t)
    right = extended_log_barrier(torch.tensor(-1 / t**2 + eps, dtype=torch.float64), t)
    assert abs(left - right) < 1e-3
    with pytest.raises(ValueError):
        extended_log_barrier(f, 0.0)


def test_size_constraint_penalizes_empty_region_and_schedule():
    sc = SizeConstraint(weight=0.1)
    full_fg = torch.zeros(1, 2, 8, 8)
    full_fg[:, 1] = 1.0
    half = torch.full((1, 2, 8, 8), 0.5)
    assert sc(full_fg) > sc(half)
    for _ in range(300):
        sc.step_epoch()
    assert sc.t == 10.0
    sc2 = SizeConstraint()
    sc2.load_state_dict(sc.state_dict())
    assert sc2.t == 10.0
    with pytest.raises(ValueError):
        sc(torch.zeros(1, 3, 4, 4))


def test_size_constraint_value():
    sc = SizeConstraint(weight=0.1, t0=1.0)
    probs = torch.full((2, 2, 2, 2), 0.5)  # each region sums to 2
    expected = 0.1 / 2 * 2 * (-math.log(2.0))
    assert sc(probs).item() == pytest.approx(expected)


def test_partial_ce_only_on_seeds():
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    seeds = torch.full((1, 2, 2), IGNORE)
    seeds[0, 0, 0] = 1
    loss = partial_cross_entropy(logits, seeds)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert logits.grad[0, :, 1, 1].abs().sum() == 0
    empty = partial_cross_entropy(logits, torch.full((1, 2, 2), IGNORE))
    assert empty.item() == 0.0
    with pytest.raises(ValueError):
        partial_cross_entropy(logits, seeds[:, :1])


def _stage2(**changes):
    from fcam_nb.config import Stage2Config

    return dataclasses.replace(Stage2Config(erode_ksz=3, crf_scale=0.5, crf_weight=1e-4), **changes)


def test_objective_from_config_has_the_switched_on_terms():
    assert list(FCAMObjective.from_config(_stage2()).terms) == ["pce", "crf", "asc"]
    only_pce = FCAMObjective.from_config(_stage2(use_crf=False, use_asc=False))
    assert list(only_pce.terms) == ["pce"]
    logits = torch.randn(2, 2, 16, 16, requires_grad=True)
    out = only_pce(logits, torch.rand(2, 16, 16), torch.rand(2, 3, 16, 16) * 255,
                   torch.Generator().manual_seed(0))
    assert set(out) == {"pce", "total"} and out["total"] is not None
    out["total"].backward()
    assert logits.grad is not None


def test_objective_sums_the_active_terms_with_their_weights():
    logits = torch.randn(2, 2, 16, 16)
    cams, images = torch.rand(2, 16, 16), torch.rand(2, 3, 16, 16) * 255
    full = FCAMObjective.from_config(_stage2(pce_weight=0.1))
    out = full(logits, cams, images, torch.Generator().manual_seed(0))
    seeds = full.seeds(cams, torch.Generator().manual_seed(0))
    assert out["pce"].item() == pytest.approx(0.1 * partial_cross_entropy(logits, seeds).item())
    assert out["total"].item() == pytest.approx(sum(out[k].item() for k in ("pce", "crf", "asc")))
    full.terms["crf"].start_epoch = 2  # a term active from epoch 2 on
    assert "crf" not in full(logits, cams, images, None, epoch=1)
    assert "crf" in full(logits, cams, images, None, epoch=2)


def test_barrier_t_survives_a_parent_state_dict():
    objective = FCAMObjective.from_config(_stage2())
    for _ in range(3):
        objective.step_epoch()
    state = objective.state_dict()
    fresh = FCAMObjective.from_config(_stage2())
    fresh.load_state_dict(state)
    assert fresh.terms["asc"].t == pytest.approx(1.01**3)
    parent = torch.nn.Module()
    parent.objective = objective
    assert any("_extra_state" in k for k in parent.state_dict())  # not lost when nested


def test_a_registered_loss_term_is_one_class_switched_on_by_its_settings():
    from fcam_nb.config import ConfigError
    from fcam_nb.losses import LOSS_TERMS, LossTerm, register_loss_term

    @register_loss_term
    class Area(LossTerm):
        name = "area_test"

        def __init__(self, weight: float, **activity):
            super().__init__(**activity)
            self.weight = weight

        def term(self, x):
            return self.weight * x.probs[:, 1].mean()

    try:
        assert list(LOSS_TERMS)[:3] == ["pce", "crf", "asc"]  # the paper's, summed first
        assert list(FCAMObjective.from_config(_stage2()).terms) == ["pce", "crf", "asc"]
        objective = FCAMObjective.from_config(
            _stage2(terms={"area_test": {"weight": 2.0, "start_epoch": 1}}))
        assert list(objective.terms) == ["pce", "crf", "asc", "area_test"]
        logits = torch.randn(2, 2, 16, 16)
        args = (logits, torch.rand(2, 16, 16), torch.rand(2, 3, 16, 16) * 255, None)
        assert "area_test" not in objective(*args, epoch=0)
        out = objective(*args, epoch=1)
        assert out["area_test"].item() == pytest.approx(2.0 * logits.softmax(1)[:, 1].mean().item())
        with pytest.raises(ValueError, match="already registered"):
            register_loss_term(type("Other", (Area,), {}))  # same name, another class
        with pytest.raises(ValueError, match="needs a `name` of its own"):
            register_loss_term(type("Total", (LossTerm,), {"name": "total"}))
        with pytest.raises(ValueError, match="unregistered loss terms"):
            FCAMObjective.from_config(_stage2(terms={"areaa": {}}))
        from fcam_nb.config import DataConfig, RunConfig

        run = RunConfig(DataConfig("/nonexistent", "/nonexistent", num_classes=2), "/tmp/x")
        for terms, message in (({"areaa": {}}, "names 'areaa', no registered loss term"),
                               ({"crf": {}}, "'crf' is set by its own fields"),
                               ({"area_test": {"wieght": 1}}, "missing 1 required positional argument")):
            with pytest.raises(ConfigError, match=message):
                run.override(stage2={"terms": terms}).check()
    finally:
        LOSS_TERMS.pop("area_test", None)


def test_the_extra_terms_setting_leaves_existing_fingerprints_alone():
    """Runs without extra terms keep the fingerprints they had before ``Stage2Config.terms``
    existed (values computed with the code of ebef147), so their checkpoints stay valid."""
    from fcam_nb.config import DataConfig, RunConfig, run_fingerprint

    run = RunConfig(DataConfig("/nonexistent/images", "/nonexistent/meta", num_classes=2),
                    "/tmp/x")
    assert (run_fingerprint(run, 1), run_fingerprint(run, 2)) == ("d8d4c7b52aae4d69",
                                                                  "b8f42febcc851784")
    assert run_fingerprint(run.override(stage2={"terms": {"tv": {"weight": 1.0}}}), 2) \
        != "b8f42febcc851784"
