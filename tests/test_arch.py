"""The architecture vocabulary: one key for every cache, board and table; one uniform draw."""
from __future__ import annotations

import numpy as np

from nni_dynamic_supernet.arch import arch_key, random_arch


def test_arch_key_ignores_key_order_and_the_form_of_subsets() -> None:
    assert arch_key({"b": 1, "a": "x"}) == arch_key({"a": "x", "b": 1}) == '{"a":"x","b":1}'
    assert arch_key({"in": (0, 2)}) == arch_key({"in": [0, 2]})  # an input choice from the space or from JSON
    assert arch_key({"a": 1}) != arch_key({"a": "1"})


def test_random_arch_draws_one_choice_per_label_in_label_order() -> None:
    space = {"op": ["conv", "pool", "skip"], "width": [8, 16]}
    rng, twin = np.random.RandomState(3), np.random.RandomState(3)
    arch = random_arch(space, rng)
    assert arch == {"op": space["op"][twin.randint(3)], "width": space["width"][twin.randint(2)]}
    assert rng.randint(1000) == twin.randint(1000)  # exactly one draw per label, no more
    assert set(random_arch(space, np.random.default_rng(0))) == {"op", "width"}  # a numpy Generator works too
    draws = [random_arch({"x": list(range(4))}, np.random.RandomState(0))["x"] for _ in range(3)]
    assert len(set(draws)) == 1  # reproducible from the seed
