"""Tests of the LR policies: static schedules and CaLR.

CaLR as in the official DYNAS code, ``exps/NAS-Bench-201-algos/utils/LR_scheduler.py``.
"""
from __future__ import annotations

import math

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.training.lr import ComplexityAwareLR, StaticLR

torch.set_num_threads(1)

C_MIN, C_MAX = 72_752.0, 1_524_272.0  # NAS-Bench-201: all `none` and all `nor_conv_3x3` (DYNAS code)


def _calr(gamma_max=4.0, gamma_min=None, floor=0.0, total=100, lr0=0.1, bounds=(C_MIN, C_MAX)):
    return ComplexityAwareLR(lr0, total, lambda arch: arch["c"], bounds, gamma_max=gamma_max, gamma_min=gamma_min,
                             floor=floor)


# ---------------------------------------------------------------------------------------------- CaLR gamma
@pytest.mark.parametrize("gmax,gmin", [(4.0, None), (3.0, 0.5), (2.0, 2.0 / 3.0)])
def test_gamma_endpoints(gmax, gmin):
    policy = _calr(gmax, gmin)
    expected_min = 1.0 / gmax if gmin is None else gmin
    assert policy.gamma({"c": C_MIN}) == pytest.approx(gmax, rel=1e-12)
    assert policy.gamma({"c": C_MAX}) == pytest.approx(expected_min, rel=1e-12)


@pytest.mark.parametrize("gmax,gmin", [(4.0, 0.25), (3.0, 0.5), (2.0, 0.8)])
def test_gamma_is_one_at_closed_form_point(gmax, gmin):
    policy = _calr(gmax, gmin)
    log_c = math.log(C_MIN) + (gmax - 1.0) / (gmax - gmin) * (math.log(C_MAX) - math.log(C_MIN))
    assert policy.gamma({"c": math.exp(log_c)}) == pytest.approx(1.0, abs=1e-9)


def test_gamma_matches_paper_affine_form():
    gmax, gmin = 4.0, 0.25
    w = -(gmax - gmin) / (math.log(C_MAX) - math.log(C_MIN))
    tau = gmin - w * math.log(C_MAX)
    policy = _calr(gmax)
    for c in (80_000.0, 200_000.0, 830_000.0, 1_000_000.0):
        assert policy.gamma({"c": c}) == pytest.approx(w * math.log(c) + tau, rel=1e-12)


def test_gamma_nb201_table():
    # CaLR: gamma by number of conv3x3 edges on NB201 with gamma_max = 4 (C=16, N=5).
    conv3 = 9 * 16 * 16 * 5 + 9 * 32 * 32 * 5 + 9 * 64 * 64 * 5  # one conv3x3 edge, summed over all cells
    policy = _calr(4.0)
    expected = [4.00, 2.20, 1.49, 1.05, 0.72, 0.46, 0.25]
    for n, gamma in enumerate(expected):
        assert policy.gamma({"c": C_MIN + n * conv3}) == pytest.approx(gamma, abs=0.006)


def test_gamma_is_monotone_decreasing_and_clamped():
    policy = _calr(4.0)
    cs = [C_MIN * 0.5, C_MIN, 100_000.0, 500_000.0, C_MAX, C_MAX * 3]
    gammas = [policy.gamma({"c": c}) for c in cs]
    assert all(a >= b for a, b in zip(gammas, gammas[1:]))
    assert gammas[0] == pytest.approx(4.0) and gammas[-1] == pytest.approx(0.25)


def test_zero_complexity_lower_bound_is_handled():
    # A space whose smallest subnet has no parameter: log(0) must not appear.
    policy = _calr(4.0, bounds=(0.0, 1000.0))
    assert policy.gamma({"c": 0.0}) == pytest.approx(4.0)
    assert policy.gamma({"c": 1000.0}) == pytest.approx(0.25)
    assert math.isfinite(policy.lr(10, {"c": 0.0}))


def test_constant_complexity_warns_and_gives_linear_decay():
    with pytest.warns(UserWarning):
        policy = _calr(4.0, bounds=(500.0, 500.0))
    assert policy.gamma({"c": 500.0}) == 1.0
    assert policy.lr(50, {"c": 500.0}) == pytest.approx(0.1 * 0.5)


def test_bad_gamma_bounds():
    with pytest.raises(ConfigError) as info:
        _calr(2.0, 3.0)
    assert info.value.field == "training.gamma_min"


def test_zero_total_steps():
    with pytest.raises(ConfigError):
        StaticLR(0.1, 0)


# ---------------------------------------------------------------------------------------------- CaLR lr
@pytest.mark.parametrize("t", [0, 1, 25, 50, 99])
@pytest.mark.parametrize("c", [C_MIN, 300_000.0, C_MAX])
def test_calr_lr_formula(t, c):
    lr0, total = 0.1, 100
    policy = _calr(4.0, total=total, lr0=lr0)
    gamma = policy.gamma({"c": c})
    assert policy.lr(t, {"c": c}) == pytest.approx(lr0 * (1 - t / total) ** gamma, rel=1e-12)
    assert policy.path_factor(t, {"c": c}) == pytest.approx((1 - t / total) ** gamma, rel=1e-12)
    assert policy.schedule(t) == 1.0


def test_calr_multiplier_values_at_half():
    # CaLR's decay (1 - t/T)^gamma at t/T = 0.5.
    policy = _calr(4.0, total=100, lr0=1.0)
    assert policy.path_factor(50, {"c": C_MAX}) == pytest.approx(0.84, abs=0.005)
    assert policy.path_factor(50, {"c": C_MIN}) == pytest.approx(0.0625)


def test_calr_small_subnets_decay_faster():
    policy = _calr(4.0)
    for t in (10, 50, 90):
        assert policy.lr(t, {"c": C_MIN}) < policy.lr(t, {"c": 300_000.0}) < policy.lr(t, {"c": C_MAX})
    assert policy.lr(0, {"c": C_MIN}) == policy.lr(0, {"c": C_MAX}) == pytest.approx(0.1)


@pytest.mark.parametrize("t", [100, 101, 10_000])
def test_t_beyond_total_is_clamped(t):
    policy = _calr(4.0, total=100)
    for c in (C_MIN, 400_000.0, C_MAX):
        lr = policy.lr(t, {"c": c})
        assert math.isfinite(lr) and lr > 0
        assert lr == policy.lr(99, {"c": c})
    assert policy.lr(-5, {"c": C_MAX}) == policy.lr(0, {"c": C_MAX})


def test_calr_floor():
    floor = 0.1
    policy = _calr(4.0, floor=floor, total=100, lr0=0.2)
    gamma = policy.gamma({"c": C_MIN})
    for t in (0, 50, 99, 500):
        shape = (1 - min(t, 99) / 100) ** gamma
        assert policy.lr(t, {"c": C_MIN}) == pytest.approx(0.2 * (floor + (1 - floor) * shape), rel=1e-12)
        assert policy.lr(t, {"c": C_MIN}) >= 0.2 * floor


def test_calr_gamma_cache_keyed_by_arch():
    calls = []

    def complexity(arch):
        calls.append(dict(arch))
        return arch["c"]

    policy = ComplexityAwareLR(0.1, 10, complexity, (C_MIN, C_MAX))
    for _ in range(3):
        policy.gamma({"c": C_MIN})
        policy.gamma({"c": C_MAX})
    assert len(calls) == 2
    assert policy.gamma({"c": C_MIN}) != policy.gamma({"c": C_MAX})


# ---------------------------------------------------------------------------------------------- static
def test_static_cosine():
    policy = StaticLR(0.2, 100, "cosine")
    for t in (0, 25, 50, 75, 99):
        assert policy.schedule(t) == pytest.approx(0.5 * (1 + math.cos(math.pi * t / 100)))
        assert policy.lr(t, {}) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * t / 100)))
    assert policy.schedule(50) == pytest.approx(0.5)
    assert policy.path_factor(50, {"x": 1}) == 1.0


def test_static_cosine_lr_min():
    policy = StaticLR(0.2, 100, "cosine", lr_min=0.1)
    assert policy.schedule(0) == pytest.approx(1.0)
    assert policy.schedule(50) == pytest.approx(0.1 + 0.9 * 0.5)
    assert policy.schedule(1000) == pytest.approx(policy.schedule(99))
    assert policy.schedule(99) > 0.1


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_static_poly(power):
    policy = StaticLR(0.1, 40, "poly", power=power)
    for t in (0, 10, 20, 39):
        assert policy.lr(t, {}) == pytest.approx(0.1 * (1 - t / 40) ** power)
    assert math.isfinite(policy.lr(41, {})) and policy.lr(41, {}) > 0


def test_static_constant():
    policy = StaticLR(0.3, 10, "constant")
    assert [policy.lr(t, {}) for t in (0, 5, 9, 50)] == [0.3] * 4


def test_static_unknown_schedule():
    with pytest.raises(ConfigError) as info:
        StaticLR(0.1, 10, "step")
    assert info.value.field == "training.lr_schedule"


def test_policies_are_stateless_checkpoints():
    policy = _calr()
    assert policy.state_dict() == {}
    policy.load_state_dict({})
    assert StaticLR(0.1, 10).state_dict() == {}
