import math

import pytest
import torch

from fcam_nb.losses import SizeConstraint, extended_log_barrier, partial_cross_entropy
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
